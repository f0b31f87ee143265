"""The eager step's glue shortcuts (session 26): each gives what the path it
skips gives, bit for bit."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core, constraints, handlers
from csvi.infer.autoguide import AutoNormal
from csvi.transforms import IdentityTransform, IndependentTransform, biject_to


def test_zero_constant_is_shared_and_negative_zero_keeps_its_sign():
    assert _core.astensor(0.0) is _core.astensor(0.0)
    neg = _core.astensor(-0.0)
    assert neg is not _core.astensor(0.0) and np.signbit(neg.numpy())
    assert not np.signbit(_core.astensor(0.0).numpy())
    assert float(1.0 / _core.astensor(-0.0)) == -np.inf
    assert float(1.0 / _core.astensor(0.0)) == np.inf
    # a Delta's default log_density is that shared zero, never written to
    d = dist.Delta(csvi.tensor([1.0, 2.0]))
    assert float(d.log_prob(csvi.tensor([1.0, 2.0])).sum()) == 0.0
    assert not np.signbit(_core.astensor(0.0).numpy())


def test_data_conversions_are_still_noted_while_freezing():
    tape = _core.Tape(record_all=True)
    with _core.recording(tape):
        tape.freezing = True
        try:
            _core.astensor(_core.as_data(np.arange(4.0)))  # a view: nothing to refresh
            assert tape.conversions == []
            ints = _core.as_data(np.arange(4))
            _core.astensor(ints)  # a float64 copy, refreshed before each run
            assert len(tape.conversions) == 1 and tape.conversions[0][0] is ints
            strided = _core.as_data(np.arange(8.0))[::2]
            _core.astensor(strided)
            assert len(tape.conversions) == 2
        finally:
            tape.freezing = False


def _model(y):
    mu = csvi.sample("mu", dist.Normal(0.0, 5.0))
    sigma = csvi.sample("sigma", dist.HalfNormal(2.0))
    w = csvi.sample("w", dist.Normal(np.zeros(3), 1.0).to_event(1))
    with csvi.plate("groups", 4):
        a = csvi.sample("a", dist.Normal(mu, sigma))
    with csvi.plate("data", len(y)):
        csvi.sample("y", dist.Normal(a[np.arange(len(y)) % 4] + csvi.sum(w), 1.0), obs=y)


def _guide_trace(guide, y, seed):
    csvi.set_rng_seed(seed)
    tr = handlers.trace(guide).get_trace(y)
    tr.compute_log_prob()
    return tr


def test_autonormal_identity_shortcut_equals_the_transform_path():
    y = np.linspace(-1.0, 1.0, 8)
    csvi.clear_param_store()
    csvi.set_rng_seed(0)
    guide = AutoNormal(_model)
    guide(y)
    plans = {p.name: p for p in guide._site_plans}
    assert plans["mu"].identity and plans["a"].identity and plans["w"].identity
    assert not plans["sigma"].identity
    fast = _guide_trace(guide, y, 1)
    for p in guide._site_plans:
        p.identity = False
    slow = _guide_trace(guide, y, 1)
    assert list(fast.nodes) == list(slow.nodes)
    for name, site in fast.nodes.items():
        if site.type != "sample":
            continue
        other = slow.nodes[name]
        assert np.array_equal(_core.value_of(site.value), _core.value_of(other.value))
        assert np.array_equal(_core.value_of(site.log_prob), _core.value_of(other.log_prob))
        assert type(site.fn) is type(other.fn) and site.fn.event_dim == other.fn.event_dim


def test_exact_identity_test_refuses_subclasses():
    from csvi.infer.autoguide.normal import _is_exact_identity

    class Shifted(IdentityTransform):
        def _call(self, x):
            return _core.astensor(x) + 1.0

    assert _is_exact_identity(biject_to(constraints.real))
    assert _is_exact_identity(IndependentTransform(IdentityTransform(), 1))
    assert not _is_exact_identity(Shifted())
    assert not _is_exact_identity(IndependentTransform(Shifted(), 1))
    assert not _is_exact_identity(biject_to(constraints.positive))


def _positive_model():
    csvi.sample("s", dist.HalfNormal(1.0))
    with csvi.plate("g", 3):
        csvi.sample("v", dist.Normal(0.0, 1.0))


def _replay_with(values):
    def guide():
        csvi.sample("s", dist.Delta(values["s"]))
        csvi.sample("v", dist.Delta(values["v"]))  # (no plate: any shape)
    tr = handlers.trace(guide).get_trace()
    return handlers.trace(handlers.replay(_positive_model, trace=tr)).get_trace()


def test_replay_passing_case_in_line_and_failures_as_before():
    ok = _replay_with({"s": csvi.tensor(0.5), "v": csvi.tensor(np.zeros(3))})
    assert float(ok.nodes["s"].value) == 0.5
    with pytest.raises(ValueError, match="outside the support of the model's HalfNormal"):
        _replay_with({"s": csvi.tensor(-0.5), "v": csvi.tensor(np.zeros(3))})
    with pytest.raises(ValueError, match=r"the guide's value has shape \(2,\)"):
        _replay_with({"s": csvi.tensor(0.5), "v": csvi.tensor(np.zeros(2))})
    # a value that is not a csvi Tensor takes check_replayed's own path
    def guide():
        csvi.sample("s", dist.HalfNormal(1.0))
        with csvi.plate("g", 3):
            csvi.sample("v", dist.Normal(0.0, 1.0))
    tr = handlers.trace(guide).get_trace()
    tr.nodes["v"].value = np.ones(3)
    replayed = handlers.trace(handlers.replay(_positive_model, trace=tr)).get_trace()
    assert np.array_equal(replayed.nodes["v"].value, np.ones(3))
    tr.nodes["v"].value = np.ones(2)
    with pytest.raises(ValueError, match=r"the guide's value has shape \(2,\)"):
        handlers.trace(handlers.replay(_positive_model, trace=tr)).get_trace()


@pytest.mark.parametrize("constraint", [constraints.real, constraints.softplus_positive,
                                        constraints.positive, constraints.unit_interval])
def test_param_in_line_equals_the_store_path(constraint):
    csvi.clear_param_store()
    init = np.array([0.25, 0.5, 0.75])
    tape = _core.Tape(record_all=True)

    def run():
        p = csvi.param("p", init, constraint=constraint)
        return p, csvi.get_param_store().get_param("p")

    with _core.recording(tape):
        traced = handlers.trace(run).get_trace()
        p, q = traced.nodes["_RETURN"].value
        assert traced.nodes["p"].type == "param"
        assert np.array_equal(p.numpy(), q.numpy())
        store = csvi.get_param_store()
        assert p.unconstrained() is store.leaf("p") and q.unconstrained() is store.leaf("p")
        (p.sum() * 2.0).backward()
    assert np.array_equal(store.leaf("p").grad, 2.0 * _grad_of_transform(constraint, init))


def _grad_of_transform(constraint, init):
    t = _core.Tape(record_all=True)
    x = csvi.tensor(biject_to(constraint).inv(init).numpy(), requires_grad=True)
    with _core.recording(t):
        biject_to(constraint)(x).sum().backward()
    return x.grad


def test_expand_in_line_and_its_errors():
    d = dist.Normal(np.zeros(3), 1.0)
    assert d.expand((3,)) is d
    e = d.expand([2, 3])  # not a tuple: as_shape's path
    assert type(e).__name__ == "ExpandedDistribution" and e.batch_shape == (2, 3)
    assert d.expand(np.array([2, 3])).batch_shape == (2, 3)
    with pytest.raises(ValueError, match=r"Normal.expand: batch_shape \(3,\) cannot be "
                                         r"expanded to \(4,\)"):
        d.expand((4,))
    with pytest.raises(TypeError, match="Normal.expand: batch_shape"):
        d.expand((2.5, 3))
    with pytest.raises(TypeError, match="Normal.expand: batch_shape"):
        d.expand((-1, 3))
    with pytest.raises(ValueError, match=r"cannot be expanded to \(3, 2\)"):
        type(e)(d, (3, 2))
