"""csvi.transforms: round trips, log|det J| against finite-difference Jacobians,
tape gradients against central differences, and biject_to onto every
constraint (including extreme unconstrained inputs and boundary values)."""
import math

import numpy as np
import pytest

import csvi
from csvi import _core, constraints
from csvi import transforms as T

RNG = np.random.default_rng(20240611)


def _normal(*shape):
    return lambda rng: rng.normal(size=shape)


def _positive(*shape):
    return lambda rng: np.exp(rng.normal(size=shape))


# name -> (transform factory, sampler of x in the domain, drop the last output
# coordinate for the Jacobian (simplex codomain: K-1 free coordinates))
CASES = {
    "exp": (T.ExpTransform, _normal(5), False),
    "sigmoid": (T.SigmoidTransform, _normal(5), False),
    "softplus": (T.SoftplusTransform, _normal(5), False),
    "affine": (lambda: T.AffineTransform(np.array([1.0, -2.0, 0.5, 0.0, 3.0]),
                                         np.array([2.0, -0.5, 3.0, 1e-2, -4.0])), _normal(5), False),
    "affine_event": (lambda: T.AffineTransform(0.3, -1.7, event_dim=1), _normal(4), False),
    "identity": (T.IdentityTransform, _normal(4), False),
    "greater_than": (lambda: T.biject_to(constraints.greater_than(3.0)), _normal(4), False),
    "less_than": (lambda: T.biject_to(constraints.less_than(1.5)), _normal(4), False),
    "interval": (lambda: T.biject_to(constraints.interval(-2.0, 5.0)), _normal(4), False),
    "stick_breaking": (T.StickBreakingTransform, _normal(4), True),
    "stick_breaking_k2": (T.StickBreakingTransform, _normal(1), True),
    "independent_exp": (lambda: T.IndependentTransform(T.ExpTransform(), 1), _normal(4), False),
    "compose_mixed": (lambda: T.ComposeTransform([T.AffineTransform(0.5, 2.0),
                                                  T.StickBreakingTransform()]), _normal(3), True),
    "log (exp.inv)": (lambda: T.ExpTransform().inv, _positive(4), False),
    "logit (sigmoid.inv)": (lambda: T.SigmoidTransform().inv,
                            lambda rng: rng.uniform(0.05, 0.95, size=4), False),
    "tanh": (T.TanhTransform, _normal(5), False),
    "atanh (tanh.inv)": (lambda: T.TanhTransform().inv,
                         lambda rng: rng.uniform(-0.95, 0.95, size=4), False),
    "power": (lambda: T.PowerTransform(2.5), _positive(4), False),
    "power_negative": (lambda: T.PowerTransform(-0.7), _positive(4), False),
    "power_array": (lambda: T.PowerTransform(np.array([0.5, 3.0, -2.0, 1.5])), _positive(4), False),
    "ordered": (T.OrderedTransform, _normal(4), False),
    "positive_ordered": (lambda: T.biject_to(constraints.positive_ordered_vector), _normal(4), False),
    "compose_tanh_affine": (lambda: T.ComposeTransform([T.TanhTransform(),
                                                        T.AffineTransform(1.0, 3.0)]), _normal(4), False),
}
NAMES = sorted(CASES)


def _value(t):
    return np.asarray(_core.value_of(t), dtype=np.float64)


def _fd_jacobian(f, x, h=1e-6):
    """Central-difference Jacobian of flat f(x) w.r.t. flat x."""
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for i in range(x.size):
        step = h * max(1.0, abs(x.flat[i]))
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += step
        xm.flat[i] -= step
        cols.append((f(xp).ravel() - f(xm).ravel()) / (2 * step))
    return np.stack(cols, axis=-1)


def _fd_grad(f, x, h=1e-6):
    return _fd_jacobian(lambda z: np.atleast_1d(f(z)), x, h)[0].reshape(np.shape(x))


def _tape_grad(scalar_fn, x0):
    x = csvi.tensor(x0, requires_grad=True)
    scalar_fn(x).backward()
    return x.grad


# ---- round trips ---------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_forward_then_inverse_round_trip(name):
    factory, sample, _ = CASES[name]
    t = factory()
    x = sample(RNG)
    y = t(x)
    np.testing.assert_allclose(_value(t.inv(y)), x, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(_value(t(t.inv(y))), _value(y), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_batched_shapes(name):
    factory, sample, _ = CASES[name]
    t = factory()
    x = np.stack([sample(RNG) for _ in range(3)])            # a batch dim in front
    y = t(x)
    assert y.shape == t.forward_shape(x.shape)
    assert t.inverse_shape(y.shape) == x.shape
    ldj = t.log_abs_det_jacobian(x, y)
    assert ldj.shape == x.shape[:x.ndim - t.event_dim]
    # each batch member on its own gives the same values
    for b in range(3):
        np.testing.assert_allclose(_value(t(x[b])), _value(y)[b], rtol=1e-14)
        np.testing.assert_allclose(_value(t.log_abs_det_jacobian(x[b], t(x[b]))), _value(ldj)[b],
                                   rtol=1e-12, atol=1e-14)


# ---- log|det J| ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_log_abs_det_jacobian_matches_finite_differences(name):
    factory, sample, drop_last = CASES[name]
    t = factory()
    x = sample(RNG)

    def f(z):
        out = _value(t(z))
        return out[..., :-1] if drop_last else out

    sign, logdet = np.linalg.slogdet(_fd_jacobian(f, x))
    assert sign != 0
    ldj = _value(t.log_abs_det_jacobian(x, t(x))).sum()
    np.testing.assert_allclose(ldj, logdet, rtol=1e-6, atol=1e-6)


def test_stick_breaking_log_det_at_extremes_uses_stable_logs():
    x = np.array([-30.0, 30.0, 5.0, -700.0])
    t = T.StickBreakingTransform()
    ldj = _value(t.log_abs_det_jacobian(x, t(x)))
    assert np.isfinite(ldj)
    # z_i = sigmoid(s_i), ldj = sum log z_i + (K-1-i) log(1 - z_i) with s_i = x_i - log(K-1-i)
    s = x - np.log(np.arange(4, 0, -1))
    log_z = -np.logaddexp(0.0, -s)
    log_1mz = -np.logaddexp(0.0, s)
    np.testing.assert_allclose(ldj, np.sum(log_z + np.arange(4, 0, -1) * log_1mz), rtol=1e-13)


# ---- gradients through the tape --------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_forward_gradient_matches_finite_differences(name):
    factory, sample, _ = CASES[name]
    t = factory()
    x0 = sample(RNG)
    w = RNG.normal(size=t.forward_shape(x0.shape))
    grad = _tape_grad(lambda x: csvi.sum(t(x) * w), x0)
    expected = _fd_grad(lambda z: float(np.sum(_value(t(z)) * w)), x0)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7)


LDJ_DEPENDS_ON_X = [n for n in NAMES if n not in ("identity", "affine", "affine_event")]


@pytest.mark.parametrize("name", LDJ_DEPENDS_ON_X)
def test_log_det_gradient_matches_finite_differences(name):
    factory, sample, _ = CASES[name]
    t = factory()
    x0 = np.stack([sample(RNG) for _ in range(2)])
    v = RNG.normal(size=x0.shape[:x0.ndim - t.event_dim])

    def ldj(x):
        return t.log_abs_det_jacobian(x, t(x))

    grad = _tape_grad(lambda x: csvi.sum(ldj(x) * v), x0)
    expected = _fd_grad(lambda z: float(np.sum(_value(ldj(z)) * v)), x0)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7)


def test_stick_breaking_gradients_at_extreme_inputs():
    t = T.StickBreakingTransform()
    x0 = np.array([[-30.0, 30.0, 5.0], [30.0, 30.0, -30.0]])
    w = RNG.normal(size=(2, 4))
    grad = _tape_grad(lambda x: csvi.sum(t(x) * w), x0)
    expected = _fd_grad(lambda z: float(np.sum(_value(t(z)) * w)), x0, h=1e-5)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-12)
    grad = _tape_grad(lambda x: csvi.sum(t.log_abs_det_jacobian(x, None)), x0)
    expected = _fd_grad(lambda z: float(np.sum(_value(t.log_abs_det_jacobian(z, None)))), x0, h=1e-5)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-9)


def test_affine_gradients_reach_loc_and_scale():
    x0 = RNG.normal(size=(3, 2))
    loc0, scale0 = RNG.normal(size=2), np.exp(RNG.normal(size=2))
    w = RNG.normal(size=(3, 2))

    def loss(loc, scale, x=x0):
        t = T.AffineTransform(loc, scale, event_dim=1)
        y = t(x)
        return csvi.sum(y * w) + csvi.sum(t.log_abs_det_jacobian(x, y))

    loc, scale = csvi.tensor(loc0, requires_grad=True), csvi.tensor(scale0, requires_grad=True)
    loss(loc, scale).backward()
    np.testing.assert_allclose(loc.grad, _fd_grad(lambda l: _value(loss(l, scale0)), loc0), rtol=1e-6)
    np.testing.assert_allclose(scale.grad, _fd_grad(lambda s: _value(loss(loc0, s)), scale0),
                               rtol=1e-6)


@pytest.mark.parametrize("make,sample", [
    (T.StickBreakingTransform, lambda rng: rng.dirichlet(np.ones(4) * 2.0, size=2)),
    (T.SigmoidTransform, lambda rng: rng.uniform(0.1, 0.9, size=(2, 3))),
    (T.ExpTransform, lambda rng: np.exp(rng.normal(size=3))),
    (T.SoftplusTransform, lambda rng: np.exp(rng.normal(size=3))),
    (lambda: T.biject_to(constraints.interval(-2.0, 5.0)), lambda rng: rng.uniform(-1.5, 4.5, size=3)),
], ids=["stick_breaking", "sigmoid", "exp", "softplus", "interval"])
def test_inverse_gradient_matches_finite_differences(make, sample):
    t = make()
    y0 = sample(RNG)
    w = RNG.normal(size=t.inverse_shape(y0.shape))
    grad = _tape_grad(lambda y: csvi.sum(t.inv(y) * w), y0)
    expected = _fd_grad(lambda z: float(np.sum(_value(t.inv(z)) * w)), y0, h=1e-7)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)
    # the Tensor path and the NumPy path agree
    np.testing.assert_allclose(_value(t.inv(csvi.tensor(y0, requires_grad=True))),
                               _value(t.inv(y0)), rtol=1e-12, atol=1e-14)


# ---- biject_to ----------------------------------------------------------------------------

CONSTRAINTS = {
    "real": (constraints.real, (6,)),
    "real_vector": (constraints.real_vector, (2, 3)),
    "positive": (constraints.positive, (6,)),
    "nonnegative": (constraints.nonnegative, (6,)),
    "greater_than(3)": (constraints.greater_than(3.0), (6,)),
    "greater_than_eq(-2)": (constraints.greater_than_eq(-2.0), (6,)),
    "less_than(1.5)": (constraints.less_than(1.5), (6,)),
    "interval(-2,5)": (constraints.interval(-2.0, 5.0), (6,)),
    "half_open_interval(0,4)": (constraints.half_open_interval(0.0, 4.0), (6,)),
    "unit_interval": (constraints.unit_interval, (6,)),
    "simplex": (constraints.simplex, (3, 4)),
    "independent(positive,1)": (constraints.independent(constraints.positive, 1), (2, 3)),
    "independent(interval,2)": (constraints.independent(constraints.interval(0.0, 2.0), 2), (2, 3)),
    "independent(simplex,1)": (constraints.independent(constraints.simplex, 1), (2, 3, 2)),
    "ordered_vector": (constraints.ordered_vector, (3, 4)),
}
C_NAMES = sorted(CONSTRAINTS)


def _unconstrained(rng, shape):
    x = rng.normal(scale=5.0, size=shape)
    flat = x.reshape(-1)
    flat[:3] = [30.0, -30.0, 0.0][:flat.size]
    return x


@pytest.mark.parametrize("name", C_NAMES)
def test_biject_to_lands_inside_the_constraint(name):
    c, shape = CONSTRAINTS[name]
    t = T.biject_to(c)
    for x in [_unconstrained(RNG, shape), np.full(shape, 30.0), np.full(shape, -30.0),
              RNG.uniform(-30.0, 30.0, size=shape)]:
        y = _value(t(x))
        assert np.all(np.isfinite(y)), (name, x, y)
        assert c.check(y), (name, x, y)
        # a batch dim is kept, and the event's log|det J| is finite
        assert np.all(np.isfinite(_value(t.log_abs_det_jacobian(x, t(x)))))


@pytest.mark.parametrize("name", C_NAMES)
def test_biject_to_event_dim_matches_the_constraint(name):
    c, shape = CONSTRAINTS[name]
    t = T.biject_to(c)
    assert t.event_dim == c.event_dim


BOUNDARIES = [
    (constraints.positive, [0.0, 1e-320, 1e300]),
    (constraints.nonnegative, [0.0, 2.0]),
    (constraints.greater_than(3.0), [3.0, 3.5]),
    (constraints.less_than(1.5), [1.5, -1e10]),
    (constraints.unit_interval, [0.0, 1.0, 1e-300, 1 - 1e-16]),
    (constraints.interval(-2.0, 5.0), [-2.0, 5.0]),
    (constraints.simplex, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
]


@pytest.mark.parametrize("c,values", BOUNDARIES, ids=[repr(c) for c, _ in BOUNDARIES])
def test_inverse_of_boundary_values_is_finite(c, values):
    t = T.biject_to(c)
    y = np.array(values)
    x = _value(t.inv(y))
    assert np.all(np.isfinite(x)), (c, y, x)
    back = _value(t(x))
    if c.check(y):          # an open bound itself may round back onto the bound
        assert c.check(back)
    np.testing.assert_allclose(back, y, rtol=1e-12, atol=1e-12)


def test_sigmoid_inverse_is_accurate_near_the_ends():
    t = T.SigmoidTransform()
    y = np.array([1e-300, 1e-20, 0.5, 1 - 1e-12])
    expected = np.log(y) - np.log1p(-y)
    np.testing.assert_allclose(_value(t.inv(y)), expected, rtol=1e-12)


def test_stick_breaking_round_trip_at_extreme_inputs():
    t = T.StickBreakingTransform()
    x = np.array([[30.0, -30.0, 10.0], [-30.0, -30.0, -30.0], [20.0, 20.0, 20.0]])
    y = _value(t(x))
    assert constraints.simplex.check(y)
    np.testing.assert_allclose(_value(t.inv(y)), x, rtol=1e-8)


def test_stick_breaking_zero_maps_to_the_uniform_vector():
    y = _value(T.StickBreakingTransform()(np.zeros(4)))
    np.testing.assert_allclose(y, np.full(5, 0.2), rtol=1e-14)


@pytest.mark.parametrize("c", [constraints.boolean, constraints.nonnegative_integer,
                               constraints.positive_integer, constraints.integer_interval(0, 5)],
                         ids=repr)
def test_discrete_constraints_are_not_implemented(c):
    with pytest.raises(NotImplementedError, match="discrete") as info:
        T.biject_to(c)
    assert repr(c) in str(info.value)


def test_unknown_constraint_is_named():
    class Ordered(constraints.Constraint):
        def __repr__(self):
            return "constraints.ordered_vector"

    with pytest.raises(NotImplementedError, match="constraints.ordered_vector"):
        T.biject_to(Ordered())


def test_registry_accepts_new_constraint_types():
    class Shifted(constraints.Constraint):
        def __init__(self, shift):
            self.shift = shift

    registry = T.ConstraintRegistry()
    registry.register(Shifted, lambda c: T.AffineTransform(c.shift, 1.0))
    t = registry(Shifted(4.0))
    np.testing.assert_allclose(_value(t(np.array([1.0]))), [5.0])


def test_transform_errors():
    with pytest.raises(ValueError, match="at least 1 dim"):
        T.StickBreakingTransform()(1.0)
    with pytest.raises(ValueError, match="scale must be nonzero"):
        T.AffineTransform(0.0, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="at least one"):
        T.ComposeTransform([])
    assert T.ExpTransform().inv.inv.__class__ is T.ExpTransform
    assert T.biject_to(constraints.interval(-2.0, 5.0)).codomain.lower == -2.0


# ---- transform_to: what the param store uses (Pyro's choice per constraint) ---------

def test_transform_to_uses_softmax_for_the_simplex_and_biject_to_stick_breaking():
    assert isinstance(T.transform_to(constraints.simplex), T.SoftmaxTransform)
    assert isinstance(T.biject_to(constraints.simplex), T.StickBreakingTransform)
    t = T.transform_to(constraints.independent(constraints.simplex, 1))
    assert isinstance(t, T.IndependentTransform)
    assert isinstance(t.base_transform, T.SoftmaxTransform)
    assert isinstance(T.transform_to(constraints.positive), T.ExpTransform)
    with pytest.raises(NotImplementedError, match="transform_to: .*discrete"):
        T.transform_to(constraints.boolean)


def test_softmax_transform_as_torch_computes_it():
    """torch's SoftmaxTransform: exp then normalize; inverse log(y); no log|det J|."""
    t = T.SoftmaxTransform()
    x = np.array([[0.0, math.log(2.0), math.log(3.0)], [5.0, 5.0, 5.0]])
    np.testing.assert_allclose(_value(t(x)), [[1 / 6, 2 / 6, 3 / 6], [1 / 3] * 3], rtol=1e-15)
    # huge inputs do not overflow (the max is taken out)
    np.testing.assert_allclose(_value(t(np.array([1000.0, 1000.0]))), [0.5, 0.5])
    y = np.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(_value(t.inv(y)), np.log(y), rtol=1e-15)
    np.testing.assert_allclose(_value(t(t.inv(y))), y, rtol=1e-15)
    assert not t.bijective and t.event_dim == 1
    with pytest.raises(NotImplementedError, match="not a bijection"):
        t.log_abs_det_jacobian(x, t(x))


def test_softmax_gradient_matches_finite_differences():
    t = T.SoftmaxTransform()
    x0 = RNG.normal(size=4)
    c = np.array([0.3, -1.2, 2.0, 0.7])
    want = _fd_grad(lambda z: float((_value(t(z)) * c).sum()), x0)
    np.testing.assert_allclose(_tape_grad(lambda z: (t(z) * c).sum(), x0), want, rtol=1e-7,
                               atol=1e-9)


def test_simplex_param_follows_pyros_param_store(fresh_store):
    """Pyro keeps transform_to(simplex).inv(init) = log(init) and hands the model
    softmax of it: an unnormalized positive init comes back normalized, and the
    gradient reaches the unconstrained value through the softmax Jacobian."""
    init = np.array([1.0, 2.0, 3.0])
    p = csvi.param("w", init, constraint=constraints.simplex)
    np.testing.assert_allclose(fresh_store.unconstrained("w"), np.log(init), rtol=1e-15)
    probs = init / 6.0
    np.testing.assert_allclose(_value(p), probs, rtol=1e-15)
    c = np.array([0.5, -1.0, 2.0])
    (p * c).sum().backward()
    # d/dx_i sum_j c_j softmax(x)_j = p_i (c_i - sum_j c_j p_j)
    np.testing.assert_allclose(fresh_store.leaf("w").grad, probs * (c - c @ probs),
                               rtol=1e-14)
    np.testing.assert_allclose(_value(fresh_store["w"]), probs, rtol=1e-15)


def test_interval_with_an_overflowing_width(fresh_store):
    """interval(-1e308, 1.7e308): upper - lower is inf, which made the affine
    step NaN; the transform scales by halves instead."""
    c = constraints.interval(-1e308, 1.7e308)
    for registry in (T.biject_to, T.transform_to):
        t = registry(c)
        y = _value(t(np.array([-30.0, 0.0, 30.0])))
        assert np.all(np.isfinite(y)) and c.check(y)
        np.testing.assert_allclose(y[1], (1.7e308 - 1e308) / 2, rtol=1e-14)
        for v in (-9e307, 0.0, 1.6e308):
            back = _value(t(t.inv(np.array([v]))))[0]
            assert abs(back - v) <= 1e-13 * 1.35e308
    value = _value(csvi.param("p", 0.0, constraint=c))
    assert np.isfinite(value) and abs(value) <= 1e-13 * 1.35e308
    assert np.all(np.isfinite(fresh_store.unconstrained("p")))

def test_softplus_positive_maps_through_softplus_and_survives_save_load(tmp_path):
    c = constraints.softplus_positive
    assert isinstance(T.biject_to(c), T.SoftplusTransform)
    assert c.check(np.array([1e-300, 2.0])) and not c.check(np.array([0.0]))
    csvi.clear_param_store()
    try:
        csvi.param("s", np.array([0.5, 3.0]), constraint=c)
        store = csvi.get_param_store()
        np.testing.assert_allclose(store.unconstrained("s"), np.log(np.expm1([0.5, 3.0])))
        store.save(tmp_path / "p.npz")
        csvi.clear_param_store()
        store.load(tmp_path / "p.npz")
        assert store.constraint("s") is c
        np.testing.assert_allclose(store["s"].numpy(), [0.5, 3.0])
    finally:
        csvi.clear_param_store()


def test_tanh_log_det_is_finite_where_tanh_rounds_to_one():
    x = np.array([-400.0, -20.0, 0.0, 20.0, 400.0])
    t = T.TanhTransform()
    ldj = _value(t.log_abs_det_jacobian(x, t(x)))
    # log(1 - tanh(x)^2) = log(4) - 2|x| - 2 log(1 + exp(-2|x|))
    expected = np.log(4.0) - 2 * np.abs(x) - 2 * np.log1p(np.exp(-2 * np.abs(x)))
    np.testing.assert_allclose(ldj, expected, rtol=1e-14)
    assert np.all(np.isfinite(_value(t.inv(np.array([-1.0, 1.0])))))


def test_power_gradients_reach_a_tensor_exponent():
    x0 = np.exp(RNG.normal(size=(3, 2)))
    e0 = np.array([0.5, -1.5])
    w = RNG.normal(size=(3, 2))

    def loss(e):
        t = T.PowerTransform(e)
        y = t(x0)
        return csvi.sum(y * w) + csvi.sum(t.log_abs_det_jacobian(x0, y) * w)

    e = csvi.tensor(e0, requires_grad=True)
    loss(e).backward()
    np.testing.assert_allclose(e.grad, _fd_grad(lambda z: _value(loss(z)), e0), rtol=1e-6)


@pytest.mark.parametrize("exponent", [0.0, np.inf, [1.0, 0.0]])
def test_power_refuses_a_zero_or_infinite_exponent(exponent):
    with pytest.raises(ValueError, match="PowerTransform: exponent"):
        T.PowerTransform(exponent)


def test_biject_to_positive_ordered_vector():
    """exp of a running sum of exps: finite for inputs up to about 6 (at 30, as
    in Pyro, it overflows), strictly increasing and positive."""
    c = constraints.positive_ordered_vector
    t = T.biject_to(c)
    assert t.codomain is c and t.event_dim == 1
    for x in [RNG.uniform(-6.0, 6.0, size=(3, 4)), np.full((2, 3), -30.0)]:
        y = _value(t(x))
        assert np.all(np.isfinite(y)) and c.check(y), (x, y)
    v = np.array([0.5, 1.0, 3.0])
    z = np.log(v)
    np.testing.assert_allclose(_value(t.inv(v)), [z[0], np.log(z[1] - z[0]), np.log(z[2] - z[1])],
                               rtol=1e-13)
