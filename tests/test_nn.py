"""csvi.nn: layers' values and gradients, the Module tree and its state,
csvi.module's registration in the param store, PyroModule, and amortized
guides (a small VAE) eager and compiled."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints, nn
from csvi.infer import SVI, Trace_ELBO
from csvi.nn import PyroModule, PyroParam, PyroSample
from csvi.nn import functional as F
from csvi.optim import Adam, ClippedAdam
from gradcheck import assert_grads_match

pytestmark = pytest.mark.usefixtures("fresh_store")

RNG = np.random.default_rng(0)


def away_from_zero(shape):
    """Inputs with |x| >= 0.1, clear of the kinks of relu and friends."""
    x = RNG.uniform(0.1, 2.0, shape)
    return x * np.where(RNG.random(shape) < 0.5, -1.0, 1.0)


# ---- layers: values and gradients ------------------------------------------------

def test_linear_matches_numpy_and_its_gradients_match_finite_differences():
    x, w, b = RNG.standard_normal((5, 3)), RNG.standard_normal((4, 3)), RNG.standard_normal(4)
    np.testing.assert_allclose(F.linear(x, w, b).numpy(), x @ w.T + b, rtol=1e-14)
    assert_grads_match(F.linear, [x, w, b])
    assert_grads_match(lambda x, w: F.linear(x, w), [RNG.standard_normal(3), w])
    layer = nn.Linear(3, 4)
    np.testing.assert_allclose(layer(x).numpy(),
                               x @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-14)


@pytest.mark.parametrize("fn, reference", [
    (F.relu, lambda x: np.maximum(x, 0)),
    (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (F.tanh, np.tanh),
    (F.softplus, lambda x: np.log1p(np.exp(x))),
    (lambda x: F.softplus(x, beta=2.0, threshold=3.0),
     lambda x: np.where(2 * x > 3.0, x, np.log1p(np.exp(2 * x)) / 2)),
    (F.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    (lambda x: F.elu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (F.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x)),
    (lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
], ids=["relu", "sigmoid", "tanh", "softplus", "softplus_beta_threshold", "elu", "elu_alpha",
        "leaky_relu", "leaky_relu_slope"])
def test_activation_values_and_gradients(fn, reference):
    x = away_from_zero((4, 5))
    np.testing.assert_allclose(fn(x).numpy(), reference(x), rtol=1e-13, atol=1e-15)
    assert_grads_match(fn, [x])


def test_activation_layers_call_their_functional_forms():
    x = away_from_zero((3, 4))
    for layer, fn in [(nn.ReLU(), F.relu), (nn.Sigmoid(), F.sigmoid), (nn.Tanh(), F.tanh),
                      (nn.Softplus(2.0, 1.0), lambda x: F.softplus(x, 2.0, 1.0)),
                      (nn.ELU(0.3), lambda x: F.elu(x, 0.3)),
                      (nn.LeakyReLU(0.1), lambda x: F.leaky_relu(x, 0.1))]:
        np.testing.assert_array_equal(layer(x).numpy(), fn(x).numpy())


def test_dropout_mask_scale_gradient_and_eval_mode():
    x = RNG.standard_normal((200, 50))

    def dropped(x):
        csvi.set_rng_seed(3)  # the same mask on every call, for finite differences
        return F.dropout(x, 0.3)

    y = dropped(x).numpy()
    kept = y != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-15)
    assert_grads_match(dropped, [x[:4, :5]])
    layer = nn.Dropout(0.3)
    assert (layer(x).numpy() == 0).any()
    layer.eval()
    assert layer(x) is not None and np.array_equal(layer(x).numpy(), x)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        nn.Dropout(1.5)


def test_linear_init_is_torchs_from_csvis_generator():
    csvi.set_rng_seed(7)
    layer = nn.Linear(9, 4)
    csvi.set_rng_seed(7)
    gen = csvi._core.get_generator()
    w, b = gen.uniform(-1 / 3, 1 / 3, (4, 9)), gen.uniform(-1 / 3, 1 / 3, 4)
    np.testing.assert_array_equal(layer.weight.numpy(), w)
    np.testing.assert_array_equal(layer.bias.numpy(), b)
    assert nn.Linear(9, 4, bias=False).bias is None


# ---- the Module tree -------------------------------------------------------------

class Net(nn.Module):
    def __init__(self, d_in=3, hidden=5, d_out=2):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, d_out)
        self.scale = nn.Parameter(np.ones(d_out))

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_named_parameters_children_and_train_eval():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "body.0.weight", "body.0.bias", "head.weight", "head.bias"]
    assert len(list(net.parameters())) == 5
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "head"]
    assert isinstance(net.body[0], nn.Linear) and len(net.body) == 2
    assert net.eval() is net and not any(m.training for m in net.modules())
    assert all(m.training for m in net.train().modules())
    with pytest.raises(TypeError, match="Parameter or None"):
        net.head.weight = np.zeros((2, 5))


def test_state_dict_save_load_round_trip(tmp_path):
    csvi.set_rng_seed(1)
    net = Net()
    x = RNG.standard_normal((4, 3))
    path = tmp_path / "net.npz"
    np.savez(path, **net.state_dict())
    csvi.set_rng_seed(2)
    other = Net()
    assert not np.array_equal(other(x).numpy(), net(x).numpy())
    with np.load(path) as saved:
        other.load_state_dict(dict(saved))
    np.testing.assert_array_equal(other(x).numpy(), net(x).numpy())
    state = net.state_dict()
    state["head.weight"] = np.zeros((2, 4))
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"layer 'head'.*\(2, 5\).*\(2, 4\)"):
        other.load_state_dict(state)
    for k, v in other.state_dict().items():  # nothing was written
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(KeyError, match="missing keys"):
        other.load_state_dict({"scale": np.ones(2)})


def test_wrong_input_width_names_module_layer_and_shapes():
    net = Net()
    with pytest.raises(ValueError, match=r"layer 'body.0'.*unregistered Net.*\(4, 7\).*"
                                         r"in_features=3.*\(5, 3\)"):
        net(np.zeros((4, 7)))
    csvi.module("encoder", net)
    with pytest.raises(ValueError, match=r"layer 'head'.*module 'encoder'.*\(4, 6\).*"
                                         r"in_features=5.*\(2, 5\)"):
        net.head(np.zeros((4, 6)))


# ---- csvi.module ------------------------------------------------------------------

def test_module_registers_params_under_pyro_names_sharing_buffers():
    net = Net()
    values = {n: p.numpy() for n, p in net.named_parameters()}
    assert csvi.module("net", net) is net
    store = csvi.get_param_store()
    assert sorted(store.keys()) == sorted(f"net$$${n}" for n in values)
    for n, p in net.named_parameters():
        assert p is store.leaf(f"net$$${n}")
        np.testing.assert_array_equal(store[f"net$$${n}"].numpy(), values[n])
    store.unconstrained("net$$$head.bias")[...] = 5.0  # an optimizer's in-place update
    np.testing.assert_array_equal(net.head.bias.numpy(), [5.0, 5.0])


def test_svi_trains_a_registered_module():
    csvi.set_rng_seed(0)
    net = nn.Linear(2, 1)
    X = RNG.standard_normal((50, 2))
    y = X @ np.array([2.0, -1.0]) + 0.5

    def model(X, y):
        csvi.module("lin", net)
        with csvi.plate("data", len(X)):
            csvi.sample("y", dist.Normal(net(X).squeeze(-1), 0.1), obs=y)

    svi = SVI(model, lambda X, y: None, Adam({"lr": 0.05}), Trace_ELBO())
    for _ in range(400):
        svi.step(X, y)
    np.testing.assert_allclose(net.weight.numpy(), [[2.0, -1.0]], atol=0.02)
    np.testing.assert_allclose(net.bias.numpy(), [0.5], atol=0.02)


def test_module_checkpoint_round_trip_through_the_param_store(tmp_path):
    csvi.set_rng_seed(0)
    net = Net()
    csvi.module("net", net)
    x = RNG.standard_normal((3, 3))
    expected = net(x).numpy()
    csvi.get_param_store().save(tmp_path / "params.npz")
    csvi.clear_param_store()
    csvi.get_param_store().load(tmp_path / "params.npz")
    fresh = Net()
    csvi.module("net", fresh, update_module_params=True)  # the module takes the store's
    np.testing.assert_array_equal(fresh(x).numpy(), expected)
    rebuilt = Net()
    csvi.module("net", rebuilt)  # default: the store takes the module's values
    np.testing.assert_array_equal(csvi.get_param_store()["net$$$head.weight"].numpy(),
                                  rebuilt.head.weight.numpy())


def test_registering_other_shapes_under_one_name_raises_before_touching_params():
    csvi.module("net", Net(hidden=5))
    store = csvi.get_param_store()
    before = {n: store.unconstrained(n).copy() for n in store.keys()}
    other = Net(hidden=6)
    first = other.scale
    with pytest.raises(ValueError, match=r"csvi.module\('net'\): param 'weight' of layer "
                                         r"'body.0'.*\(6, 3\).*'net\$\$\$body.0.weight' with "
                                         r"shape \(5, 3\)"):
        csvi.module("net", other)
    assert other.scale is first  # not rebound to the store's
    for n, v in before.items():
        np.testing.assert_array_equal(store.unconstrained(n), v)


def test_a_param_reshaped_after_registration_raises():
    net = Net()
    csvi.module("net", net)
    net.head.weight = nn.Parameter(np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"param 'weight' of layer 'head'.*\(2, 7\).*"
                                         r"\(2, 5\)"):
        csvi.module("net", net)


def test_frozen_params_stay_out_of_the_store():
    net = nn.Linear(2, 2)
    net.bias.requires_grad = False
    csvi.module("lin", net)
    assert list(csvi.get_param_store().keys()) == ["lin$$$weight"]
    with pytest.raises(TypeError, match="instance, not the class"):
        csvi.module("lin", nn.Linear)


# ---- PyroModule ------------------------------------------------------------------

SIGMA = 0.5


class BayesianRegression(PyroModule):
    """The Bayesian regression tutorial's model, with a known noise scale so
    the posterior is Gaussian in closed form."""

    def __init__(self, in_features):
        super().__init__()
        self.linear = PyroModule[nn.Linear](in_features, 1)
        self.linear.weight = PyroSample(dist.Normal(0., 1.).expand([1, in_features]).to_event(2))
        self.linear.bias = PyroSample(dist.Normal(0., 10.).expand([1]).to_event(1))

    def forward(self, x, y=None):
        mean = self.linear(x).squeeze(-1)
        with csvi.plate("data", x.shape[0]):
            return csvi.sample("obs", dist.Normal(mean, SIGMA), obs=y)


def test_pyro_module_bayesian_regression_recovers_the_exact_posterior():
    rng = np.random.default_rng(1)
    n, p = 40, 3
    X = rng.standard_normal((n, p))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + SIGMA * rng.standard_normal(n)
    model = BayesianRegression(p)
    assert isinstance(model.linear, nn.Linear) and type(model.linear).__name__ == "PyroLinear"

    def guide(x, y=None):
        w_loc = csvi.param("w_loc", np.zeros((1, p)))
        w_scale = csvi.param("w_scale", np.full((1, p), 0.1), constraint=constraints.positive)
        b_loc = csvi.param("b_loc", np.zeros(1))
        b_scale = csvi.param("b_scale", np.full(1, 0.1), constraint=constraints.positive)
        csvi.sample("linear.weight", dist.Normal(w_loc, w_scale).to_event(2))
        csvi.sample("linear.bias", dist.Normal(b_loc, b_scale).to_event(1))

    svi = SVI(model, guide, ClippedAdam({"lr": 0.03, "lrd": 0.02 ** (1 / 6000)}),
              Trace_ELBO(num_particles=8))
    svi.run(6000, X, y, compile=True, progress_bar=False)
    A = np.hstack([X, np.ones((n, 1))])
    precision = A.T @ A / SIGMA ** 2 + np.diag([1.0, 1.0, 1.0, 1 / 100.0])
    mean = np.linalg.solve(precision, A.T @ y / SIGMA ** 2)
    store = csvi.get_param_store()
    loc = np.r_[store["w_loc"].numpy().ravel(), store["b_loc"].numpy()]
    scale = np.r_[store["w_scale"].numpy().ravel(), store["b_scale"].numpy()]
    # a mean-field Gaussian's optimum: the exact means, sd = diag(precision)^-1/2
    np.testing.assert_allclose(loc, mean, atol=0.02)
    np.testing.assert_allclose(scale, 1 / np.sqrt(np.diag(precision)), rtol=0.05)


def test_pyro_module_sites_names_caching_and_params():
    class Net(PyroModule):
        def __init__(self):
            super().__init__()
            self.fc = PyroModule[nn.Linear](2, 2)
            self.plain = nn.Linear(2, 1)  # not a PyroModule: registered by csvi.module
            self.scale = PyroParam(np.full(2, 0.5), constraint=constraints.positive)
            self.z = PyroSample(dist.Normal(0.0, 1.0))

        def forward(self, x):
            assert self.z is self.z  # drawn once per call
            return self.plain(self.fc(x) * self.scale + self.z)

    net = Net()
    trace = csvi.handlers.trace(net).get_trace(np.ones((3, 2)))
    params = [n for n, s in trace.nodes.items() if s.type == "param"]
    samples = [n for n, s in trace.nodes.items() if s.type == "sample"]
    # self.plain is read before its argument is computed
    assert params == ["plain$$$weight", "plain$$$bias", "fc.weight", "fc.bias", "scale"]
    assert samples == ["z"]
    store = csvi.get_param_store()
    np.testing.assert_allclose(store["scale"].numpy(), [0.5, 0.5])
    assert net.fc.weight is store.leaf("fc.weight")
    store.unconstrained("scale")[...] = 0.0  # log(1): the module reads the store's value
    np.testing.assert_allclose(net.scale.numpy(), [1.0, 1.0])
    net.scale = np.full(2, 2.0)
    np.testing.assert_allclose(store["scale"].numpy(), [2.0, 2.0])


# ---- amortized guides: a small VAE ------------------------------------------------

class TinyVAE(nn.Module):
    def __init__(self, x_dim=12, z_dim=2, hidden=16, dropout=0.0):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(x_dim, hidden), nn.Softplus(),
                                     nn.Dropout(dropout), nn.Linear(hidden, 2 * z_dim))
        self.decoder = nn.Sequential(nn.Linear(z_dim, hidden), nn.Softplus(),
                                     nn.Linear(hidden, x_dim), nn.Sigmoid())
        self.z_dim = z_dim

    def model(self, data, batch=None):
        csvi.module("decoder", self.decoder)
        with csvi.plate("data", len(data), subsample_size=batch) as idx:
            z = csvi.sample("z", dist.Normal(np.zeros((len(idx), self.z_dim)), 1.0).to_event(1))
            csvi.sample("x", dist.Bernoulli(self.decoder(z)).to_event(1), obs=data[idx])

    def guide(self, data, batch=None):
        csvi.module("encoder", self.encoder)
        with csvi.plate("data", len(data), subsample_size=batch) as idx:
            out = self.encoder(data[idx])
            loc, scale = out[:, :self.z_dim], csvi.exp(out[:, self.z_dim:])
            csvi.sample("z", dist.Normal(loc, scale).to_event(1))


def binary_patterns(n, seed):
    """Noisy copies of three 12-pixel prototypes."""
    rng = np.random.default_rng(seed)
    protos = np.array([[1] * 6 + [0] * 6, [0] * 6 + [1] * 6, [1, 0] * 6], dtype=float)
    x = protos[rng.integers(0, 3, n)]
    flip = rng.random(x.shape) < 0.05
    return np.where(flip, 1 - x, x)


def test_vae_improves_held_out_elbo():
    csvi.set_rng_seed(0)
    train, test = binary_patterns(300, 1), binary_patterns(100, 2)
    vae = TinyVAE()
    svi = SVI(vae.model, vae.guide, Adam({"lr": 1e-2}), Trace_ELBO())

    def held_out():
        return -np.mean([svi.evaluate_loss(test) for _ in range(20)]) / len(test)

    before = held_out()
    svi.compile(train, 32).run(600)
    after = held_out()
    # 12 Bernoulli pixels: about -8.3 nats at p=1/2; the patterns allow about -3
    assert after > before + 2.0, (before, after)


@pytest.mark.parametrize("dropout, particles", [(0.0, 1), (0.2, 1), (0.2, 3)])
def test_vae_compiled_equals_eager(dropout, particles):
    """Same draws, minibatches and dropout masks: the same params, bit for bit
    with one particle and to rounding with several (README)."""
    train = binary_patterns(100, 3)

    def fit(compiled):
        csvi.clear_param_store()
        csvi.set_rng_seed(4)
        vae = TinyVAE(dropout=dropout)
        svi = SVI(vae.model, vae.guide, Adam({"lr": 1e-2}), Trace_ELBO(num_particles=particles))
        if compiled:
            losses = svi.compile(train, 16).run(5)
        else:
            losses = np.array([svi.step(train, 16) for _ in range(5)])
        store = csvi.get_param_store()
        return losses, {n: store.unconstrained(n).copy() for n in store.keys()}

    eager_losses, eager = fit(False)
    compiled_losses, compiled = fit(True)
    assert len(set(eager_losses.tolist())) == 5  # fresh minibatches (and masks) each step
    tol = {"rtol": 0, "atol": 0} if particles == 1 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(compiled_losses, eager_losses, **tol)
    assert eager.keys() == compiled.keys() and len(eager) == 8
    for n in eager:
        np.testing.assert_allclose(compiled[n], eager[n], err_msg=n, **tol)
