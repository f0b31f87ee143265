"""Every Tensor op: forward against NumPy/SciPy, gradients against central
finite differences, on shapes that exercise broadcasting, plus the errors."""
import itertools
import operator

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import csvi
from csvi import _core
from gradcheck import assert_grads_match, numerical_grad


@pytest.fixture(autouse=True)
def _fresh_default_tape():
    _core.current_tape().clear()
    yield
    _core.current_tape().clear()


def draw(rng, shape, domain):
    """Random float64 data of `shape` inside the op's domain, away from kinks."""
    if domain == "any":
        return rng.standard_normal(shape)
    if domain == "pos":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "away0":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)
    if domain == "gt-1":
        return rng.uniform(-0.6, 2.0, shape)
    raise ValueError(domain)


def check_forward(got, expected):
    assert isinstance(got, csvi.Tensor)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13, atol=1e-300)


# ---- elementwise binary -------------------------------------------------------

BINARY = {
    "add": (operator.add, np.add, "any", "any"),
    "sub": (operator.sub, np.subtract, "any", "any"),
    "mul": (operator.mul, np.multiply, "any", "any"),
    "div": (operator.truediv, np.divide, "any", "away0"),
    "pow": (operator.pow, np.power, "pos", "any"),
}

BROADCAST_PAIRS = [
    ((), ()),
    ((), (3,)),
    ((3,), ()),
    ((1,), (4,)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 3, 4)),
    ((2, 1, 4), (3, 1)),
    ((1, 3, 1), (2, 1, 2)),
    ((2, 1, 1, 3), (1, 2, 1)),
]

EMPTY_PAIRS = [((0,), (1,)), ((2, 0, 3), (3,)), ((1,), (0,)), ((0, 2), ())]


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_binary_forward_and_grad(name, shapes):
    op, ref, da, db = BINARY[name]
    rng = np.random.default_rng(1)
    a, b = draw(rng, shapes[0], da), draw(rng, shapes[1], db)
    check_forward(op(csvi.tensor(a), csvi.tensor(b)), ref(a, b))
    assert_grads_match(op, [a, b])
    assert_grads_match(op, [a, b], wrt=[0])   # Tensor (+) ndarray
    assert_grads_match(op, [a, b], wrt=[1])   # ndarray (+) Tensor


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shapes", EMPTY_PAIRS, ids=str)
def test_binary_size_zero(name, shapes):
    op, ref, da, db = BINARY[name]
    rng = np.random.default_rng(2)
    a, b = draw(rng, shapes[0], da), draw(rng, shapes[1], db)
    check_forward(op(csvi.tensor(a), csvi.tensor(b)), ref(a, b))
    ga, gb = assert_grads_match(op, [a, b])
    assert not ga.any() and not gb.any()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=4, min_side=1, max_side=3),
       name=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**32 - 1))
def test_binary_random_broadcasting(shapes, name, seed):
    _core.current_tape().clear()
    op, ref, da, db = BINARY[name]
    rng = np.random.default_rng(seed)
    a, b = draw(rng, shapes.input_shapes[0], da), draw(rng, shapes.input_shapes[1], db)
    check_forward(op(csvi.tensor(a), csvi.tensor(b)), ref(a, b))
    assert_grads_match(op, [a, b])


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_with_python_scalars(name):
    op, ref, da, db = BINARY[name]
    rng = np.random.default_rng(3)
    a, b = draw(rng, (2, 3), da), draw(rng, (2, 3), db)
    sa, sb = float(draw(rng, (), da)), float(draw(rng, (), db))
    check_forward(op(csvi.tensor(a), sb), ref(a, sb))
    check_forward(op(sa, csvi.tensor(b)), ref(sa, b))
    if name != "pow":  # pow with a scalar exponent is POW_SCALAR, tested below
        assert_grads_match(lambda x: op(x, sb), [a])
    assert_grads_match(lambda y: op(sa, y), [b])


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_numpy_ufuncs_and_reflected_operators(name):
    op, ref, da, db = BINARY[name]
    rng = np.random.default_rng(4)
    a, b = draw(rng, (3, 1), da), draw(rng, (4,), db)
    # ndarray (+) Tensor goes through Tensor.__array_ufunc__, not NumPy.
    check_forward(op(a, csvi.tensor(b)), ref(a, b))
    check_forward(ref(a, csvi.tensor(b)), ref(a, b))
    check_forward(ref(csvi.tensor(a), b), ref(a, b))
    assert_grads_match(lambda x, y: ref(x, y), [a, b])
    assert_grads_match(lambda y: ref(a, y), [b])


def test_same_tensor_on_both_sides():
    x = np.random.default_rng(5).uniform(0.5, 2.0, (2, 3))
    for op in (operator.add, operator.sub, operator.mul, operator.truediv, operator.pow):
        assert_grads_match(lambda t: op(t, t), [x])


def test_pow_tensor_exponent_at_zero_base():
    # 0 ** b with b > 1: both partials are 0 (no NaN from log 0).
    a = np.array([0.0, 0.0, 1.5])
    b = np.array([2.0, 3.0, 2.0])
    check_forward(csvi.tensor(a) ** csvi.tensor(b), a ** b)
    ga, gb = assert_grads_match(operator.pow, [a, b])
    assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))


def test_pow_tensor_exponent_negative_base_integer_exponent():
    a = np.array([-2.0, -0.5, 3.0])
    b = np.array([2.0, 3.0, 2.0])
    check_forward(csvi.tensor(a) ** csvi.tensor(b), a ** b)
    assert_grads_match(operator.pow, [a, b], wrt=[0])


def test_python_scalar_base_tensor_exponent():
    b = np.random.default_rng(6).standard_normal((2, 2))
    check_forward(2.0 ** csvi.tensor(b), 2.0 ** b)
    assert_grads_match(lambda y: 2.0 ** y, [b])


# ---- pow with a scalar exponent ----------------------------------------------

@pytest.mark.parametrize("p", [2, 2.0, 0.5, 3, -1, 0, 1, -2.5, 1.5, np.float64(2.0)], ids=repr)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=str)
def test_pow_scalar_exponent(p, shape):
    rng = np.random.default_rng(7)
    x = rng.uniform(0.5, 2.0, shape)
    check_forward(csvi.tensor(x) ** p, np.power(x, float(p)))
    check_forward(np.power(csvi.tensor(x), p), np.power(x, float(p)))
    assert _core.current_tape().op_names() == []
    assert_grads_match(lambda t: t ** p, [x])
    t = csvi.tensor(x, requires_grad=True)
    y = t ** p
    assert _core.current_tape().op_names() == ["POW_SCALAR"]
    y.sum().backward()


@pytest.mark.parametrize("p", [2, 3, -1, 1, 0])
def test_pow_integer_exponent_negative_base(p):
    x = np.array([-1.5, -0.5, 0.7, 2.0])
    check_forward(csvi.tensor(x) ** p, np.power(x, float(p)))
    assert_grads_match(lambda t: t ** p, [x])


def test_pow_scalar_at_zero():
    x = np.zeros(3)
    for p in (2, 1, 3):
        (g,) = assert_grads_match(lambda t: t ** p, [x])
        assert np.all(np.isfinite(g))
    t = csvi.tensor(x, requires_grad=True)
    (t ** 0).sum().backward()
    np.testing.assert_array_equal(t.grad, np.zeros(3))
    check_forward(csvi.tensor(x) ** 0.5, np.sqrt(x))
    check_forward(np.square(csvi.tensor([-3.0, 2.0])), np.square([-3.0, 2.0]))


# ---- comparisons ---------------------------------------------------------------

COMPARISONS = {
    "gt": (operator.gt, np.greater),
    "ge": (operator.ge, np.greater_equal),
    "lt": (operator.lt, np.less),
    "le": (operator.le, np.less_equal),
}


@pytest.mark.parametrize("name", list(COMPARISONS))
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS + EMPTY_PAIRS, ids=str)
def test_comparison(name, shapes):
    op, ref = COMPARISONS[name]
    rng = np.random.default_rng(8)
    # small integers so that ties occur
    a = rng.integers(-1, 2, shapes[0]).astype(float)
    b = rng.integers(-1, 2, shapes[1]).astype(float)
    expected = ref(a, b).astype(np.float64)
    check_forward(op(csvi.tensor(a), csvi.tensor(b)), expected)
    check_forward(op(csvi.tensor(a), b), expected)
    check_forward(ref(a, csvi.tensor(b)), expected)   # ndarray <op> Tensor
    x = csvi.tensor(a, requires_grad=True)
    c = op(x, b)
    assert not c.requires_grad, "a comparison has no gradient"
    check_forward(c, expected)


def test_comparison_does_not_record_or_carry_grad():
    x = csvi.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    tape = _core.current_tape()
    c = (x > 0) * 3.0 + (x <= 0)
    assert not c.requires_grad
    assert tape.num_ops == 0
    y = (x * c).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, c.numpy())


def test_comparison_python_scalar_on_left():
    a = np.array([-1.0, 0.0, 1.0])
    check_forward(0.0 < csvi.tensor(a), (0.0 < a).astype(float))
    check_forward(0.0 >= csvi.tensor(a), (0.0 >= a).astype(float))


# ---- elementwise unary ---------------------------------------------------------

UNARY = {
    # name: (csvi function, method name or None, numpy ufunc or None, reference, domain)
    "neg": (operator.neg, None, np.negative, np.negative, "any"),
    "exp": (csvi.exp, "exp", np.exp, np.exp, "any"),
    "log": (csvi.log, "log", np.log, np.log, "pos"),
    "log1p": (csvi.log1p, "log1p", np.log1p, np.log1p, "gt-1"),
    "expm1": (csvi.expm1, "expm1", np.expm1, np.expm1, "any"),
    "sqrt": (csvi.sqrt, "sqrt", np.sqrt, np.sqrt, "pos"),
    "abs": (csvi.abs, "abs", np.absolute, np.abs, "away0"),
    "sigmoid": (csvi.sigmoid, "sigmoid", None, sp.expit, "any"),
    "softplus": (csvi.softplus, "softplus", None, lambda x: np.logaddexp(0.0, x), "any"),
    "tanh": (csvi.tanh, "tanh", np.tanh, np.tanh, "any"),
    "relu": (csvi.relu, "relu", None, lambda x: np.maximum(x, 0.0), "away0"),
}

UNARY_SHAPES = [(), (1,), (5,), (2, 3), (2, 1, 3, 1)]


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
def test_unary_forward_and_grad(name, shape):
    fn, method, ufunc, ref, domain = UNARY[name]
    x = draw(np.random.default_rng(9), shape, domain)
    check_forward(fn(csvi.tensor(x)), ref(x))
    if method is not None:
        check_forward(getattr(csvi.tensor(x), method)(), ref(x))
    if ufunc is not None:
        check_forward(ufunc(csvi.tensor(x)), ref(x))
        assert_grads_match(ufunc, [x])
    if name != "neg":  # (-ndarray is NumPy's business)
        check_forward(fn(x), ref(x))  # plain ndarray input gives a constant Tensor
    assert_grads_match(fn, [x])


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_size_zero(name):
    fn, method, ufunc, ref, domain = UNARY[name]
    x = np.zeros((2, 0))
    check_forward(fn(csvi.tensor(x)), ref(x))
    (g,) = assert_grads_match(fn, [x])
    assert g.shape == (2, 0)


def test_builtin_abs_and_kinks():
    x = np.array([-2.0, -0.0, 0.0, 3.0])
    check_forward(abs(csvi.tensor(x)), np.abs(x))
    # Convention at the kink: abs and relu have derivative 0 at x == 0.
    t = csvi.tensor(x, requires_grad=True)
    (abs(t) + csvi.relu(t)).sum().backward()
    np.testing.assert_array_equal(t.grad, np.sign(x) + (x > 0))


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "tanh"])
def test_unary_stable_at_extremes(name):
    fn, _, _, ref, _ = UNARY[name]
    x = np.array([-1000.0, -745.0, -710.0, -40.0, -36.0, -35.9, 0.0, 35.9, 36.0, 40.0,
                  710.0, 745.0, 1000.0])
    t = csvi.tensor(x, requires_grad=True)
    y = fn(t)
    assert np.all(np.isfinite(y.numpy()))
    # (scipy's expit flushes to 0 below about -709; csvi keeps the subnormals)
    np.testing.assert_allclose(y.numpy(), ref(x), rtol=1e-15, atol=1e-300)
    y.sum().backward()
    assert np.all(np.isfinite(t.grad))
    # derivatives in forms that keep their relative precision in the tails
    with np.errstate(over="ignore"):
        expected = {"sigmoid": sp.expit(x) * sp.expit(-x), "softplus": sp.expit(x),
                    "tanh": 1.0 / np.cosh(x) ** 2}[name]
    np.testing.assert_allclose(t.grad, expected, rtol=1e-13, atol=1e-300)


def test_softplus_accuracy_across_its_thresholds():
    x = np.linspace(-60.0, 60.0, 2001)
    np.testing.assert_allclose(csvi.softplus(x).numpy(), np.logaddexp(0.0, x), rtol=2e-15, atol=0)
    x = np.array([-36.0001, -35.9999, 35.9999, 36.0001])
    assert_grads_match(csvi.softplus, [x], rtol=1e-7)


def test_log_sqrt_at_zero_follow_the_math():
    with np.errstate(divide="ignore"):
        check_forward(csvi.log(np.array([0.0, 1.0])), np.log([0.0, 1.0]))
    t = csvi.tensor([0.0, 4.0], requires_grad=True)
    csvi.sqrt(t).sum().backward()
    assert t.grad[0] == np.inf and t.grad[1] == 0.25


# ---- clip and where -----------------------------------------------------------

@pytest.mark.parametrize("bounds", [(-0.5, 0.5), (None, 0.2), (-0.2, None), (0.3, 0.3)], ids=str)
def test_clip(bounds):
    lo, hi = bounds
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 4))
    x[x == 0] = 1.0
    expected = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    check_forward(csvi.clip(csvi.tensor(x), lo, hi), expected)
    check_forward(csvi.tensor(x).clip(lo, hi), expected)
    check_forward(csvi.tensor(x).clamp(lo, hi), expected)
    check_forward(np.clip(csvi.tensor(x), lo, hi), expected)
    check_forward(np.clip(csvi.tensor(x), a_min=lo, a_max=hi), expected)
    check_forward(np.clip(csvi.tensor(x), min=lo, max=hi), expected)
    # away from the boundaries, finite differences apply
    keep = np.abs(x - (lo if lo is not None else -9)) > 1e-3
    keep &= np.abs(x - (hi if hi is not None else 9)) > 1e-3
    xs = x[keep]
    assert_grads_match(lambda t: csvi.clip(t, lo, hi), [xs])


def test_clip_at_boundaries():
    # Convention (as torch.clamp): at x == a_min or x == a_max the gradient passes.
    lo, hi = -1.0, 2.0
    x = np.array([-3.0, -1.0, -0.5, 2.0, 2.5, lo, hi])
    t = csvi.tensor(x, requires_grad=True)
    y = csvi.clip(t, lo, hi)
    check_forward(y, np.clip(x, lo, hi))
    y.sum().backward()
    np.testing.assert_array_equal(t.grad, ((x >= lo) & (x <= hi)).astype(float))


def test_clip_bad_bounds():
    with pytest.raises(ValueError, match="a_min"):
        csvi.clip(csvi.tensor([1.0]), 2.0, 1.0)


@pytest.mark.parametrize("shapes", [((), (), ()), ((3,), (3,), (3,)), ((2, 1), (1, 3), (3,)),
                                    ((3,), (2, 1), ()), ((2, 3, 1), (4,), (1, 4))], ids=str)
def test_where(shapes):
    rng = np.random.default_rng(11)
    c = rng.integers(0, 2, shapes[0]).astype(bool)
    a, b = rng.standard_normal(shapes[1]), rng.standard_normal(shapes[2])
    expected = np.where(c, a, b)
    check_forward(csvi.where(c, csvi.tensor(a), csvi.tensor(b)), expected)
    check_forward(np.where(c, csvi.tensor(a), b), expected)
    check_forward(csvi.where(csvi.tensor(c), a, csvi.tensor(b)), expected)
    assert_grads_match(lambda x, y: csvi.where(c, x, y), [a, b])
    assert_grads_match(lambda x: np.where(c, x, b), [a])
    assert_grads_match(lambda y: csvi.where(c.astype(float), 0.5, y), [b])


def test_where_at_boundary_with_condition_from_tensor():
    x = np.array([-2.0, 0.0, 0.0, 1.5])
    t = csvi.tensor(x, requires_grad=True)
    y = csvi.where(t >= 0, t * 3.0, -t)
    check_forward(y, np.where(x >= 0, 3 * x, -x))
    y.sum().backward()
    np.testing.assert_array_equal(t.grad, np.where(x >= 0, 3.0, -1.0))


def test_where_condition_gets_no_gradient():
    x = csvi.tensor([0.3, 0.7], requires_grad=True)
    y = csvi.where(x, x * 2, x * 5)  # nonzero condition -> first branch
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


# ---- reductions ---------------------------------------------------------------

def _all_axes(ndim):
    out = [None]
    for r in range(ndim + 1):
        out += list(itertools.combinations(range(ndim), r))
    return out


REDUCTIONS = {
    "sum": (csvi.sum, np.sum),
    "mean": (csvi.mean, np.mean),
    "logsumexp": (csvi.logsumexp, sp.logsumexp),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@pytest.mark.parametrize("axis", _all_axes(3), ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_every_axis_combination(name, axis, keepdims):
    fn, ref = REDUCTIONS[name]
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 4))
    expected = ref(x, axis=axis, keepdims=keepdims)
    check_forward(fn(csvi.tensor(x), axis=axis, keepdims=keepdims), expected)
    if axis is not None:  # the same axes written negatively, in another order
        neg = tuple(a - 3 for a in reversed(axis))
        check_forward(fn(csvi.tensor(x), axis=neg, keepdims=keepdims), expected)
    assert_grads_match(lambda t: fn(t, axis=axis, keepdims=keepdims), [x])


@pytest.mark.parametrize("name", list(REDUCTIONS))
@pytest.mark.parametrize("shape,axis", [((), None), ((), ()), ((5,), 0), ((5,), -1),
                                        ((2, 1, 3, 1), (1, 2)), ((2, 1, 3, 1), 3),
                                        ((1, 1), None), ((3, 4, 5, 6), (1, 3)),
                                        ((2,) * 8, (0, 3, 5, 7)), ((2,) * 8, None)], ids=str)
def test_reduction_other_shapes(name, shape, axis):
    fn, ref = REDUCTIONS[name]
    x = np.random.default_rng(13).standard_normal(shape)
    for keepdims in (False, True):
        # (scipy's logsumexp gives shape (1,) for a 0-d input with keepdims)
        shape = np.sum(x, axis=axis, keepdims=keepdims).shape
        check_forward(fn(csvi.tensor(x), axis=axis, keepdims=keepdims),
                      np.reshape(ref(x, axis=axis, keepdims=keepdims), shape))
    if x.size <= 64:
        assert_grads_match(lambda t: fn(t, axis=axis), [x])
    else:  # analytic check of the VJP with a random cotangent is cheaper here
        assert_grads_match(lambda t: fn(t, axis=axis), [x], eps=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction_methods_and_numpy_functions(name):
    fn, ref = REDUCTIONS[name]
    x = np.random.default_rng(14).standard_normal((3, 4))
    t = csvi.tensor(x)
    check_forward(getattr(t, name)(), ref(x))
    check_forward(getattr(t, name)(axis=1, keepdims=True), ref(x, axis=1, keepdims=True))
    check_forward(getattr(t, name)(0), ref(x, 0))
    check_forward(fn(x, axis=np.int64(1)), ref(x, axis=1))
    if name != "logsumexp":
        check_forward(ref(t), ref(x))
        check_forward(ref(t, axis=-1, keepdims=True), ref(x, axis=-1, keepdims=True))
        assert_grads_match(lambda u: ref(u, axis=0), [x])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=5).map(tuple),
       name=st.sampled_from(sorted(REDUCTIONS)), keepdims=st.booleans(), data=st.data())
def test_reduction_random_shapes_and_axes(shape, name, keepdims, data):
    _core.current_tape().clear()
    fn, ref = REDUCTIONS[name]
    axis = data.draw(st.none() | st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda a: a % len(shape), max_size=len(shape)).map(tuple)) if shape else None
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    expected_shape = np.sum(x, axis=axis, keepdims=keepdims).shape
    check_forward(fn(csvi.tensor(x), axis=axis, keepdims=keepdims),
                  np.reshape(ref(x, axis=axis, keepdims=keepdims), expected_shape))
    assert_grads_match(lambda t: fn(t, axis=axis, keepdims=keepdims), [x])


@settings(max_examples=30, deadline=None, derandomize=True)
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, max_dims=4, min_side=1, max_side=3),
       seed=st.integers(0, 2**32 - 1))
def test_where_random_broadcasting(shapes, seed):
    _core.current_tape().clear()
    rng = np.random.default_rng(seed)
    sc, sa, sb = shapes.input_shapes
    c = rng.integers(0, 2, sc).astype(float)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    check_forward(csvi.where(c, a, b), np.where(c, a, b))
    assert_grads_match(lambda x, y: csvi.where(c, x, y), [a, b])


def test_reductions_over_size_zero():
    x = np.zeros((2, 0, 3))
    check_forward(csvi.sum(x, axis=1), np.sum(x, axis=1))
    check_forward(csvi.sum(x), np.sum(x))
    check_forward(csvi.logsumexp(x, axis=1), sp.logsumexp(x, axis=1))
    check_forward(csvi.mean(x, axis=0), np.zeros((0, 3)))
    assert_grads_match(lambda t: csvi.sum(t, axis=(0, 2)), [x])
    assert_grads_match(lambda t: csvi.logsumexp(t, axis=1), [x])
    with pytest.raises(ValueError, match="empty"):
        csvi.mean(x, axis=1)


def test_logsumexp_stability():
    cases = [
        [1000.0, 1000.0], [-1000.0, -1000.0], [1000.0, -1000.0], [-np.inf, 0.0],
        [-np.inf, -np.inf], [710.0, 709.0, -5.0], [1e308, 1e308 / 2],
    ]
    for row in cases:
        x = np.array(row)
        t = csvi.tensor(x, requires_grad=True)
        y = csvi.logsumexp(t)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.testing.assert_allclose(y.numpy(), sp.logsumexp(x), rtol=1e-15)
            lse = sp.logsumexp(x)
            expected = sp.softmax(x) if np.isfinite(lse) else np.zeros_like(x)
        y.backward()
        assert np.all(np.isfinite(t.grad)), (row, t.grad)
        np.testing.assert_allclose(t.grad, expected, rtol=1e-14, atol=1e-300)
    x = np.array([[1000.0, 999.0], [-1000.0, -1001.0]])
    assert_grads_match(lambda t: csvi.logsumexp(t, axis=1), [x])


def test_logsumexp_of_inf():
    x = np.array([np.inf, 0.0])
    check_forward(csvi.logsumexp(x), sp.logsumexp(x))


@pytest.mark.parametrize("fn", [csvi.sum, csvi.mean, csvi.logsumexp])
def test_reduction_bad_axis(fn):
    t = csvi.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="out of range"):
        fn(t, axis=2)
    with pytest.raises(ValueError, match="out of range"):
        fn(t, axis=(0, -3))
    with pytest.raises(ValueError, match="repeated"):
        fn(t, axis=(1, -1))
    with pytest.raises(TypeError):
        fn(t, axis=1.5)


def test_reduction_unsupported_arguments():
    t = csvi.tensor(np.ones((2, 3)))
    with pytest.raises(TypeError):
        t.sum(dtype=np.float32)
    with pytest.raises(TypeError):
        t.mean(out=np.zeros(()))


# ---- matmul --------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((1, 1), (1, 1)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((3,), (2, 3, 4)),
    ((2, 2, 3), (3,)),
    ((2, 1, 2, 3), (4, 3, 2)),
    ((2, 1, 2, 3), (1, 3, 3, 2)),
    ((1, 2, 3), (3, 1, 3, 2)),
    ((0, 3), (3, 2)),
    ((2, 3), (3, 0)),
    ((2, 0), (0, 3)),
    ((0,), (0,)),
    ((0, 2, 3), (3, 2)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    rng = np.random.default_rng(15)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    expected = np.matmul(a, b)
    check_forward_close = lambda got: np.testing.assert_allclose(got.numpy(), expected,
                                                                 rtol=1e-12, atol=1e-13)
    for got in (csvi.tensor(a) @ csvi.tensor(b), csvi.matmul(a, b),
                a @ csvi.tensor(b), csvi.tensor(a) @ b, np.matmul(a, csvi.tensor(b)),
                np.matmul(csvi.tensor(a), b)):
        assert isinstance(got, csvi.Tensor) and got.shape == expected.shape
        check_forward_close(got)
    mm = operator.matmul
    assert_grads_match(mm, [a, b])
    assert_grads_match(mm, [a, b], wrt=[0])
    assert_grads_match(mm, [a, b], wrt=[1])


def test_matmul_same_tensor_twice():
    x = np.random.default_rng(16).standard_normal((3, 3))
    assert_grads_match(lambda t: t @ t, [x])
    assert_grads_match(lambda t: t @ t.T, [x])


def test_matmul_larger_against_numpy():
    rng = np.random.default_rng(17)
    a, b = rng.standard_normal((4, 1, 30, 40)), rng.standard_normal((3, 40, 20))
    np.testing.assert_allclose((csvi.tensor(a) @ b).numpy(), a @ b, rtol=1e-12, atol=1e-12)
    ta, tb = csvi.tensor(a, requires_grad=True), csvi.tensor(b, requires_grad=True)
    g = rng.standard_normal((4, 3, 30, 20))
    ((ta @ tb) * g).sum().backward()
    # the VJP of matmul in closed form, with broadcast batch dims summed out
    np.testing.assert_allclose(ta.grad, (g @ np.swapaxes(b, -1, -2)).sum(1, keepdims=True),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tb.grad, (np.swapaxes(a, -1, -2) @ g).sum(0), rtol=1e-12, atol=1e-12)


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        csvi.tensor(np.ones((2, 3))) @ csvi.tensor(np.ones((4, 2)))
    with pytest.raises(ValueError, match="align"):
        csvi.tensor(np.ones(3)) @ csvi.tensor(np.ones(4))
    with pytest.raises(ValueError, match="at least 1 dim"):
        csvi.tensor(2.0) @ csvi.tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"\(2, 2, 3\).*\(3, 3, 2\)"):
        csvi.tensor(np.ones((2, 2, 3))) @ csvi.tensor(np.ones((3, 3, 2)))
    with pytest.raises(ValueError):
        np.ones((2, 3)) @ csvi.tensor(np.ones((2, 3)))


# ---- reshape and transpose ------------------------------------------------------

@pytest.mark.parametrize("src,dst", [((2, 3), (3, 2)), ((2, 3), (6,)), ((2, 3), (-1,)),
                                     ((2, 3), (1, -1, 1)), ((6,), (2, 1, 3)), ((), (1, 1)),
                                     ((1,), ()), ((2, 0), (0, 5)), ((2, 0), (-1,)),
                                     ((4, 3), (2, -1))], ids=str)
def test_reshape(src, dst):
    x = np.random.default_rng(18).standard_normal(src)
    expected = x.reshape(dst)
    check_forward(csvi.reshape(csvi.tensor(x), dst), expected)
    check_forward(csvi.tensor(x).reshape(dst), expected)
    check_forward(csvi.tensor(x).reshape(*dst), expected)
    check_forward(np.reshape(csvi.tensor(x), dst), expected)
    assert_grads_match(lambda t: t.reshape(dst), [x])


def test_reshape_errors():
    t = csvi.tensor(np.ones((2, 3)))
    for bad in [(4,), (-1, 4), (-1, -1), (2, -2), (7, -1)]:
        with pytest.raises(ValueError, match="reshape"):
            t.reshape(bad)
    with pytest.raises(ValueError, match="at most 16"):
        csvi.tensor(np.ones(1)).reshape((1,) * 17)


@pytest.mark.parametrize("shape,axes", [((2, 3), None), ((2, 3, 4), None), ((2, 3, 4), (1, 0, 2)),
                                        ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (-1, 0, -2)),
                                        ((5,), None), ((), None), ((2, 1, 3), (1, 2, 0)),
                                        ((2, 0, 3), (2, 1, 0)), ((33, 70), None),
                                        ((70, 1), (1, 0)), ((0, 5), None)], ids=str)
def test_transpose(shape, axes):
    x = np.random.default_rng(19).standard_normal(shape)
    expected = np.transpose(x, axes)
    check_forward(csvi.transpose(csvi.tensor(x), axes), expected)
    check_forward(np.transpose(csvi.tensor(x), axes), expected)
    if axes is None:
        check_forward(csvi.tensor(x).T, x.T)
        check_forward(csvi.tensor(x).transpose(), expected)
    else:
        check_forward(csvi.tensor(x).transpose(axes), expected)
        check_forward(csvi.tensor(x).transpose(*axes), expected)
    assert_grads_match(lambda t: csvi.transpose(t, axes), [x])


def test_matrix_transpose_gradients_accumulate():
    """The tiled 2-D path adds into a gradient that other ops also feed."""
    x = np.random.default_rng(20).standard_normal((40, 35))
    assert_grads_match(lambda t: csvi.transpose(t) * 3.0 + csvi.transpose(t) + t.T.T.T, [x])


@pytest.mark.parametrize("n,k,m", [(5, 3, 4), (1, 3, 4), (5, 3, 1), (4, 0, 3), (0, 3, 2)],
                         ids=str)
def test_matmul_nt(n, k, m):
    """a @ b.T without a transposed copy (a Linear layer's product)."""
    rng = np.random.default_rng(21)
    a, b = rng.standard_normal((n, k)), rng.standard_normal((m, k))
    check_forward(csvi._core.matmul_nt(a, b), a @ b.T)
    if a.size and b.size:
        assert_grads_match(csvi._core.matmul_nt, [a, b])
    with pytest.raises(ValueError, match=r"matmul_nt.*\(5, 3\) and \(4, 2\)"):
        csvi._core.matmul_nt(np.ones((5, 3)), np.ones((4, 2)))


def test_transpose_bad_axes():
    t = csvi.tensor(np.ones((2, 3)))
    for bad in [(0,), (0, 0), (0, 2), (1, 0, 2)]:
        with pytest.raises(ValueError, match="permutation"):
            csvi.transpose(t, bad)


# ---- indexing ------------------------------------------------------------------

INDEX_KEYS = {
    "int": 0,
    "neg int": -1,
    "last": 3,
    "slice": slice(1, 3),
    "reversed": slice(None, None, -1),
    "step": slice(None, None, 2),
    "empty slice": slice(2, 2),
    "ints": (1, 2),
    "neg ints": (-1, -2, -3),
    "full int": (1, 2, 0),
    "colon, int": (slice(None), 2),
    "ellipsis, int": (Ellipsis, 1),
    "ellipsis, None": (Ellipsis, None),
    "None, int": (None, 0),
    "int, colon, None": (1, slice(None), None),
    "repeated": np.array([0, 0, 2, 0]),
    "repeated negative": np.array([-1, 0, -1, 3]),
    "list": [0, 0, 3],
    "two arrays": (np.array([0, 1, 1]), np.array([2, 2, -5])),
    "colon, array": (slice(None), np.array([4, 4, 0])),
    "2-D array": np.array([[0, 1], [1, 1]]),
    "bool axis 0": np.array([True, False, True, True]),
    "bool mask": "mask",
    "empty array": np.array([], dtype=np.int64),
    "empty tuple": (),
    "ellipsis": Ellipsis,
    "array, None, slice": (np.array([2, 2]), None, slice(1, None)),
}


@pytest.mark.parametrize("key_name", list(INDEX_KEYS))
def test_getitem(key_name):
    x = np.random.default_rng(20).standard_normal((4, 5, 3))
    key = INDEX_KEYS[key_name]
    if isinstance(key, str):
        key = x > 0.3
    expected = x[key]
    check_forward(csvi.tensor(x)[key], expected)
    (g,) = assert_grads_match(lambda t: t[key], [x])
    # repeated indices accumulate: the gradient of sum(x[key]) counts each position
    t = csvi.tensor(x, requires_grad=True)
    t[key].sum().backward()
    counts = np.zeros(x.size)
    np.add.at(counts, np.arange(x.size).reshape(x.shape)[key].reshape(-1), 1.0)
    np.testing.assert_array_equal(t.grad, counts.reshape(x.shape))


def test_getitem_zero_d_and_one_d():
    s = np.array(2.5)
    for key in [(), Ellipsis, None, (None, None)]:
        check_forward(csvi.tensor(s)[key], s[key])
        assert_grads_match(lambda t: t[key], [s])
    v = np.arange(5.0)
    for key in [2, -5, slice(-2, None), np.array([4, -1, 4])]:
        check_forward(csvi.tensor(v)[key], v[key])


def test_getitem_out_of_bounds():
    t = csvi.tensor(np.ones((4, 5)))
    for key in [4, -5, (0, 5), np.array([0, 4]), np.array([True, False])]:
        with pytest.raises(IndexError):
            t[key]


def test_iteration_and_len():
    x = np.random.default_rng(21).standard_normal((3, 2))
    t = csvi.tensor(x, requires_grad=True)
    rows = list(t)
    assert len(rows) == len(t) == 3
    for r, e in zip(rows, x):
        check_forward(r, e)
    (rows[0] * rows[2]).sum().backward()
    np.testing.assert_array_equal(t.grad, np.stack([x[2], np.zeros(2), x[0]]))


@pytest.mark.parametrize("index", [[0, 2, 0, -1], [[1, 1], [-3, 0]], 2, -1, [], [3, 3, 3]],
                         ids=str)
@pytest.mark.parametrize("shape", [(4,), (4, 3), (4, 2, 3)], ids=str)
def test_tensor_index_takes_rows(index, shape):
    x = np.random.default_rng(22).standard_normal(shape)
    idx = np.array(index, dtype=np.int64)
    check_forward(csvi.tensor(x)[csvi.tensor(idx)], x[idx])
    assert_grads_match(lambda t: t[csvi.tensor(idx)], [x])
    # the index tensor gets no gradient even if it asks for one
    it = csvi.tensor(idx, requires_grad=True)
    t = csvi.tensor(x, requires_grad=True)
    t[it].sum().backward()
    counts = np.zeros(shape[0])
    np.add.at(counts, idx.reshape(-1), 1.0)
    np.testing.assert_array_equal(t.grad, np.broadcast_to(counts.reshape((-1,) + (1,) * (len(shape) - 1)), shape))


@pytest.mark.parametrize("bad", [4.0, -5.0, 1.5, np.nan, np.inf, -np.inf, 1e30, -1e300])
def test_tensor_index_bad_values(bad):
    t = csvi.tensor(np.ones((4, 2)), requires_grad=True)
    with pytest.raises(IndexError, match="TAKE"):
        t[csvi.tensor([0.0, bad])]
    assert _core.current_tape().num_ops == 0, "a failed op must not stay on the tape"


def test_comparison_tensor_indexes_as_a_boolean_mask():
    x = np.random.default_rng(34).standard_normal((5, 3))
    t = csvi.tensor(x, requires_grad=True)
    for key, np_key in [(t > 0, x > 0), (t[:, 0] <= 0.1, x[:, 0] <= 0.1)]:
        check_forward(t[key], x[np_key])
    assert_grads_match(lambda u: u[u[:, 1] > 0], [x])
    assert_grads_match(lambda u: u[csvi.tensor(x) < 0.2], [x])


def test_tensor_index_errors():
    with pytest.raises(IndexError):
        csvi.tensor(1.0)[csvi.tensor(0.0)]
    with pytest.raises(IndexError, match="too many indices"):
        csvi.tensor(np.ones((2, 2)))[csvi.tensor(0.0), csvi.tensor(1.0), 0]


# ---- stack and concatenate ----------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 8, 9, 11, 20])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_stack(n, axis):
    rng = np.random.default_rng(23)
    xs = [rng.standard_normal((2, 3)) for _ in range(n)]
    expected = np.stack(xs, axis=axis)
    check_forward(csvi.stack([csvi.tensor(x) for x in xs], axis=axis), expected)
    check_forward(np.stack([csvi.tensor(x) for x in xs], axis=axis), expected)
    check_forward(csvi.stack(xs[:-1] + [csvi.tensor(xs[-1])], axis=axis), expected)
    assert_grads_match(lambda *ts: csvi.stack(ts, axis=axis), xs)
    if n > 1:  # a mix of Tensors and arrays, gradients only to the Tensors
        assert_grads_match(lambda *ts: csvi.stack(ts, axis=axis), xs, wrt=range(0, n, 2))


def test_stack_and_concatenate_same_tensor_repeatedly():
    x = np.random.default_rng(33).standard_normal((2, 3))
    assert_grads_match(lambda t: csvi.stack([t, t * 2.0, t] * 4, axis=1), [x])
    assert_grads_match(lambda t: csvi.concatenate([t, t[:, :1], t] * 3, axis=-1), [x])


def test_stack_zero_d():
    xs = [np.array(float(k)) for k in range(10)]
    check_forward(csvi.stack([csvi.tensor(x) for x in xs]), np.stack(xs))
    assert_grads_match(lambda *ts: csvi.stack(ts), xs)


@pytest.mark.parametrize("n", [1, 2, 4, 9, 12])
@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_concatenate(n, axis):
    rng = np.random.default_rng(24)
    xs = []
    for k in range(n):
        shape = [2, 3]
        shape[axis] = 1 + k % 3
        xs.append(rng.standard_normal(shape))
    expected = np.concatenate(xs, axis=axis)
    check_forward(csvi.concatenate([csvi.tensor(x) for x in xs], axis=axis), expected)
    check_forward(np.concatenate([csvi.tensor(x) for x in xs], axis=axis), expected)
    assert_grads_match(lambda *ts: csvi.concatenate(ts, axis=axis), xs)
    if n > 1:
        assert_grads_match(lambda *ts: csvi.concatenate(ts, axis=axis), xs, wrt=range(1, n, 2))


def test_concatenate_axis_none_flattens():
    rng = np.random.default_rng(28)
    xs = [rng.standard_normal((2, 3)), rng.standard_normal(4), rng.standard_normal((1, 1, 2))]
    check_forward(csvi.concatenate(xs, axis=None), np.concatenate(xs, axis=None))
    check_forward(np.concatenate([csvi.tensor(x) for x in xs], axis=None),
                  np.concatenate(xs, axis=None))
    assert_grads_match(lambda *ts: csvi.concatenate(ts, axis=None), xs)


def test_concatenate_3d_and_empty_parts():
    rng = np.random.default_rng(25)
    xs = [rng.standard_normal((2, k, 3)) for k in (0, 2, 0, 1)]
    for axis in (1, -2):
        check_forward(csvi.concatenate([csvi.tensor(x) for x in xs], axis=axis),
                      np.concatenate(xs, axis=axis))
        assert_grads_match(lambda *ts: csvi.concatenate(ts, axis=axis), xs)
    ys = [rng.standard_normal((2, 2, 3)) for _ in range(3)]
    assert_grads_match(lambda *ts: csvi.concatenate(ts, axis=2), ys)


def test_stack_and_concatenate_errors():
    a, b = csvi.tensor(np.ones((2, 3))), csvi.tensor(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        csvi.stack([a, b])
    with pytest.raises(ValueError, match="out of range"):
        csvi.stack([a, a], axis=3)
    with pytest.raises(ValueError, match="out of range"):
        csvi.concatenate([a, a], axis=-3)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        csvi.concatenate([a, b], axis=1)
    with pytest.raises(ValueError, match="zero-dimensional"):
        csvi.concatenate([csvi.tensor(1.0), csvi.tensor(2.0)])
    with pytest.raises(ValueError, match="at least one"):
        csvi.stack([])
    with pytest.raises(ValueError, match="at least one"):
        csvi.concatenate([])


# ---- broadcasting errors -------------------------------------------------------

@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv,
                                operator.pow, operator.gt, operator.le])
def test_broadcast_mismatch_names_both_shapes(op):
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        op(csvi.tensor(np.ones((2, 3))), csvi.tensor(np.ones(4)))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3, 1, 5\)"):
        op(csvi.tensor(np.ones(2)), np.ones((3, 1, 5)))
    assert _core.current_tape().num_ops == 0


def test_where_broadcast_mismatch():
    with pytest.raises(ValueError, match="broadcast"):
        csvi.where(np.ones(3) > 0, csvi.tensor(np.ones(2)), 0.0)


# ---- compositions ------------------------------------------------------------------

def test_composite_function_against_numpy():
    rng = np.random.default_rng(26)
    X = rng.standard_normal((6, 3))
    y = (rng.uniform(size=6) > 0.5).astype(float)
    w0, b0, s0 = rng.standard_normal(3), rng.standard_normal(()), rng.standard_normal((2, 3))

    def loss(w, b, s):
        logits = X @ w + b                              # (6,)
        ll = y * logits - csvi.softplus(logits)          # Bernoulli log-lik
        scale = csvi.exp(s).mean(axis=0)                 # (3,)
        prior = -0.5 * csvi.sum((w / scale) ** 2) - csvi.log(scale).sum()
        lse = csvi.logsumexp(csvi.stack([ll, -ll], axis=1), axis=1)
        return ll.sum() + prior + 0.1 * lse.mean() + csvi.tanh(s[0, 1:]).sum()

    def loss_np(w, b, s):
        logits = X @ w + b
        ll = y * logits - np.logaddexp(0.0, logits)
        scale = np.exp(s).mean(axis=0)
        prior = -0.5 * np.sum((w / scale) ** 2) - np.log(scale).sum()
        lse = sp.logsumexp(np.stack([ll, -ll], axis=1), axis=1)
        return ll.sum() + prior + 0.1 * lse.mean() + np.tanh(s[0, 1:]).sum()

    check_forward(loss(csvi.tensor(w0), csvi.tensor(b0), csvi.tensor(s0)), loss_np(w0, b0, s0))
    grads = assert_grads_match(loss, [w0, b0, s0])
    for k, x in enumerate([w0, b0, s0]):
        def f(v, k=k):
            args = [w0, b0, s0]
            args[k] = v
            return loss_np(*args)
        np.testing.assert_allclose(grads[k], numerical_grad(f, x), rtol=1e-6, atol=1e-8)


def test_long_chain():
    x = np.random.default_rng(27).uniform(0.5, 1.5, (3,))

    def chain(t):
        for k in range(60):
            t = csvi.tanh(t * 1.1 + 0.01 * k) + 0.5 * csvi.sigmoid(t) - 0.1 * t ** 2
            t = csvi.log1p(csvi.exp(t))
        return t

    def chain_np(v):
        for k in range(60):
            v = np.tanh(v * 1.1 + 0.01 * k) + 0.5 * sp.expit(v) - 0.1 * v ** 2
            v = np.log1p(np.exp(v))
        return v

    check_forward(chain(csvi.tensor(x)), chain_np(x))
    t = csvi.tensor(x, requires_grad=True)
    y = chain(t)
    assert _core.current_tape().num_ops == 60 * 11  # ops per iteration
    y.sum().backward()
    np.testing.assert_allclose(t.grad, numerical_grad(lambda v: chain_np(v).sum(), x),
                               rtol=1e-6, atol=1e-9)


def test_sigmoid_softplus_identity():
    # d/dx softplus(x) = sigmoid(x), computed through two different ops
    x = np.linspace(-30, 30, 13)
    t = csvi.tensor(x, requires_grad=True)
    csvi.softplus(t).sum().backward()
    np.testing.assert_allclose(t.grad, csvi.sigmoid(x).numpy(), rtol=1e-15)


# ---- many dims and large sizes (other paths of the broadcast iterator) ---------

def test_eight_dim_broadcasting():
    rng = np.random.default_rng(29)
    a = rng.standard_normal((2, 1, 2, 1, 2, 1, 2, 1))
    b = rng.standard_normal((1, 2, 1, 2, 1, 2, 1, 2))
    for op, ref in [(operator.mul, np.multiply), (operator.sub, np.subtract)]:
        check_forward(op(csvi.tensor(a), csvi.tensor(b)), ref(a, b))
        assert_grads_match(op, [a, b])
    c = rng.standard_normal((3, 1, 2))
    assert_grads_match(lambda x, y: csvi.where(y > 0, x, y), [a, c])


def test_eight_dim_transpose_and_reduction():
    rng = np.random.default_rng(30)
    shape = (2, 1, 3, 2, 1, 2, 2, 1)
    x = rng.standard_normal(shape)
    perm = tuple(rng.permutation(8))
    check_forward(csvi.transpose(csvi.tensor(x), perm), np.transpose(x, perm))
    assert_grads_match(lambda t: csvi.transpose(t, perm), [x])
    axes = (0, 2, 5)
    check_forward(csvi.logsumexp(csvi.tensor(x), axis=axes), sp.logsumexp(x, axis=axes))
    assert_grads_match(lambda t: csvi.logsumexp(csvi.transpose(t, perm), axis=axes), [x])


def test_matmul_many_batch_dims():
    rng = np.random.default_rng(31)
    a, b = rng.standard_normal((2, 1, 2, 1, 2, 3)), rng.standard_normal((1, 2, 1, 2, 3, 2))
    np.testing.assert_allclose((csvi.tensor(a) @ b).numpy(), a @ b, rtol=1e-12, atol=1e-13)
    assert_grads_match(operator.matmul, [a, b])


def test_large_arrays_against_numpy():
    # past the size at which the forward runs without the GIL
    rng = np.random.default_rng(32)
    a, b = rng.standard_normal((300, 400)), rng.standard_normal(400)
    x = csvi.tensor(a, requires_grad=True)
    y = csvi.softplus(x * b + 1.0)
    np.testing.assert_allclose(y.numpy(), np.logaddexp(0.0, a * b + 1.0), rtol=1e-14)
    s = csvi.logsumexp(y, axis=0).sum() + y.T.mean()
    ref = sp.logsumexp(np.logaddexp(0.0, a * b + 1.0), axis=0).sum() + np.logaddexp(0.0, a * b + 1.0).mean()
    np.testing.assert_allclose(s.item(), ref, rtol=1e-13)
    s.backward()
    z = a * b + 1.0
    sp_z = np.logaddexp(0.0, z)
    dy = np.exp(sp_z - sp.logsumexp(sp_z, axis=0)) + 1.0 / z.size
    np.testing.assert_allclose(x.grad, dy * sp.expit(z) * b, rtol=1e-12, atol=1e-15)
