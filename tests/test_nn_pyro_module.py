"""The rest of Pyro's PyroModule API: the decorator forms of PyroParam and
PyroSample, PyroModuleList, to_pyro_module_, named_pyro_params."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints, nn
from csvi.nn import PyroModule, PyroModuleList, PyroParam, PyroSample, to_pyro_module_

pytestmark = pytest.mark.usefixtures("fresh_store")


def sites(trace, kind):
    return {n: s for n, s in trace.nodes.items() if s.type == kind}


class Decorated(PyroModule):
    """Pyro's docstring example of the decorator forms."""

    @PyroParam
    def loc(self):
        return np.array([0.5, -1.0])

    @PyroParam(constraint=constraints.positive, event_dim=1)
    def scale(self):
        return np.array([2.0, 3.0])

    @PyroSample
    def x(self):
        return dist.Normal(self.loc, self.scale).to_event(1)

    @PyroSample
    def y(self):
        return self.x * 2.0  # a deterministic site

    def forward(self):
        return self.y + self.x


def test_decorated_params_and_samples_are_sites_with_pyros_names():
    m = Decorated()
    trace = csvi.handlers.trace(m).get_trace()
    assert list(sites(trace, "param")) == ["loc", "scale"]
    samples = sites(trace, "sample")
    assert list(samples) == ["x", "y"]
    assert samples["y"].infer.get("_deterministic") or samples["y"].is_observed
    x = samples["x"].value.numpy()
    np.testing.assert_allclose(samples["y"].value.numpy(), 2 * x)
    np.testing.assert_allclose(trace.nodes["_RETURN"].value.numpy(), 3 * x)
    store = csvi.get_param_store()
    np.testing.assert_allclose(store["loc"].numpy(), [0.5, -1.0])
    np.testing.assert_allclose(store["scale"].numpy(), [2.0, 3.0])
    np.testing.assert_allclose(store.unconstrained("scale"), np.log([2.0, 3.0]))
    # the site's log-density is the prior's at the params' values
    loc, scale = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    expected = np.sum(-0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(samples["x"].fn.log_prob(samples["x"].value).numpy(), expected)


def test_decorated_param_reads_outside_a_call_and_bad_class_attribute():
    m = Decorated()
    np.testing.assert_allclose(m.scale.numpy(), [2.0, 3.0])  # no site, no store entry
    assert "scale" not in csvi.get_param_store()

    class Bad(PyroModule):
        w = PyroParam(np.zeros(2))

    with pytest.raises(TypeError, match="must decorate a method"):
        Bad().w
    with pytest.raises(TypeError, match="not a decorator"):
        PyroParam(np.zeros(2))(lambda self: None)


def test_pyro_module_list_names_its_layers_by_index():
    class Stack(PyroModule):
        def __init__(self):
            super().__init__()
            self.layers = PyroModuleList([PyroModule[nn.Linear](2, 2) for _ in range(3)])
            self.layers[1].weight = PyroSample(dist.Normal(0.0, 1.0).expand([2, 2]).to_event(2))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    assert nn.PyroModule[nn.ModuleList] is PyroModuleList
    stack = Stack()
    x = np.array([[1.0, -2.0]])
    trace = csvi.handlers.trace(stack).get_trace(x)
    assert list(sites(trace, "param")) == [
        "layers.0.weight", "layers.0.bias", "layers.1.bias", "layers.2.weight", "layers.2.bias"]
    assert list(sites(trace, "sample")) == ["layers.1.weight"]
    store = csvi.get_param_store()
    h = x
    for i in range(3):
        w = (trace.nodes["layers.1.weight"].value.numpy() if i == 1
             else store[f"layers.{i}.weight"].numpy())
        h = h @ w.T + store[f"layers.{i}.bias"].numpy()
    np.testing.assert_allclose(trace.nodes["_RETURN"].value.numpy(), h, rtol=1e-12)
    part = stack.layers[1:]
    assert type(part) is nn.ModuleList and len(part) == 2 and part[0] is stack.layers[1]
    assert stack.layers[-1] is stack.layers[2]
    with pytest.raises(IndexError, match="out of range"):
        stack.layers[3]


def test_to_pyro_module_makes_a_network_bayesian_in_place():
    csvi.set_rng_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    to_pyro_module_(net)
    assert isinstance(net, PyroModule[nn.Sequential]) and isinstance(net, nn.Sequential)
    assert isinstance(net[0], PyroModule[nn.Linear]) and isinstance(net[1], PyroModule)
    for m in net.modules():
        for name, value in list(m.named_parameters(recurse=False)):
            setattr(m, name, PyroSample(dist.Normal(0.0, 1.0).expand(value.shape)
                                        .to_event(value.ndim)))
    x = np.random.default_rng(1).standard_normal((5, 3))
    trace = csvi.handlers.trace(net).get_trace(x)
    samples = sites(trace, "sample")
    assert list(samples) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert not sites(trace, "param")
    v = {n: s.value.numpy() for n, s in samples.items()}
    ref = np.tanh(x @ v["0.weight"].T + v["0.bias"]) @ v["2.weight"].T + v["2.bias"]
    np.testing.assert_allclose(trace.nodes["_RETURN"].value.numpy(), ref, rtol=1e-12)
    with pytest.raises(TypeError, match="expected a csvi.nn.Module"):
        to_pyro_module_(object())


def test_to_pyro_module_keeps_params_as_store_params():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())
    to_pyro_module_(net)
    trace = csvi.handlers.trace(net).get_trace(np.ones((1, 2)))
    assert list(sites(trace, "param")) == ["0.weight"]
    assert net[0].weight is csvi.get_param_store().leaf("0.weight")
    net2 = nn.Sequential(nn.Linear(2, 2))
    to_pyro_module_(net2, recurse=False)
    assert isinstance(net2, PyroModule) and not isinstance(net2[0], PyroModule)


def test_named_pyro_params_gives_constrained_values():
    class Net(PyroModule):
        def __init__(self):
            super().__init__()
            self.fc = PyroModule[nn.Linear](2, 1)
            self.scale = PyroParam(np.array([0.5, 4.0]), constraint=constraints.positive)

    net = Net()
    named = dict(net.named_pyro_params())
    assert list(named) == ["scale", "fc.weight", "fc.bias"]
    np.testing.assert_allclose(named["scale"].numpy(), [0.5, 4.0])
    assert named["fc.weight"] is net.fc.weight
    assert list(dict(net.named_pyro_params(prefix="m", recurse=False))) == ["m.scale"]
