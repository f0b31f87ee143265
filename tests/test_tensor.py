"""The Tensor type's API and autodiff semantics: construction, conversion,
backward on the default tape, detach, tape growth, and NumPy interop."""
import operator
import pickle

import numpy as np
import pytest

import csvi
from csvi import _core
from gradcheck import numerical_grad


@pytest.fixture(autouse=True)
def _fresh_default_tape():
    _core.current_tape().clear()
    yield
    _core.current_tape().clear()


def tape():
    return _core.current_tape()


# ---- construction and inspection -------------------------------------------------

@pytest.mark.parametrize("data", [1, 2.5, True, [1, 2, 3], [[1.0, 2.0], [3.0, 4.0]],
                                  np.arange(6, dtype=np.int32).reshape(2, 3),
                                  np.array([True, False]), np.float32(1.5), np.zeros((2, 0)),
                                  np.arange(12.0).reshape(3, 4)[:, ::2]], ids=repr)
def test_construction(data):
    t = csvi.tensor(data)
    expected = np.asarray(data, dtype=np.float64)
    assert t.dtype == np.float64
    assert t.shape == expected.shape and t.ndim == expected.ndim and t.size == expected.size
    np.testing.assert_array_equal(t.numpy(), expected)
    assert not t.requires_grad and t.is_leaf and t.grad is None
    u = csvi.tensor(t, requires_grad=True)
    assert u.requires_grad and u is not t
    np.testing.assert_array_equal(u.numpy(), expected)


def test_construction_copies_and_numpy_returns_copies():
    a = np.array([1.0, 2.0])
    t = csvi.tensor(a)
    a[0] = 9.0
    assert t.numpy()[0] == 1.0
    v = t.numpy()
    v[1] = 9.0
    assert t.numpy()[1] == 2.0
    w = np.asarray(t)
    w[1] = 9.0
    assert t.numpy()[1] == 2.0
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    assert t.tolist() == [1.0, 2.0]


def test_astensor_shares_float64_data():
    a = np.arange(3.0)
    t = _core.astensor(a)
    a[0] = 7.0
    assert float(t[0]) == 7.0
    x = csvi.tensor(1.0)
    assert _core.astensor(x) is x


def test_too_many_dims():
    with pytest.raises(ValueError, match="at most 8"):
        csvi.tensor(np.ones((1,) * 9), requires_grad=True) * 2.0


def test_len_iter_repr():
    t = csvi.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert len(t) == 2
    with pytest.raises(TypeError):
        len(csvi.tensor(1.0))
    r = repr(t)
    assert r.startswith("tensor(") and "requires_grad=True" in r and "4." in r
    assert "requires_grad" not in repr(csvi.tensor([1.0]))


def test_pickle_roundtrip():
    t = csvi.tensor([[1.0, -2.0]], requires_grad=True)
    u = pickle.loads(pickle.dumps(t))
    np.testing.assert_array_equal(u.numpy(), t.numpy())
    assert u.requires_grad


# ---- conversion to Python --------------------------------------------------------

def test_scalar_conversions_are_eager():
    x = csvi.tensor(1.5, requires_grad=True)
    y = x * 3.0
    assert y.item() == 4.5 and float(y) == 4.5 and int(y) == 4 and bool(y) is True
    assert isinstance(y.item(), float)
    assert bool(csvi.tensor([0.0])) is False
    assert operator.index(csvi.tensor(3.0)) == 3
    assert [10, 20, 30, 40][csvi.tensor(2.0)] == 30
    with pytest.raises(TypeError):
        operator.index(csvi.tensor(2.5))
    # converting does not disturb the graph
    (y * y).backward()
    assert x.grad == pytest.approx(18.0 * 1.5)


def test_conversions_of_many_elements_fail():
    t = csvi.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="2 elements"):
        t.item()
    with pytest.raises(ValueError):
        float(t)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    assert csvi.tensor([[3.0]]).item() == 3.0


def test_conversions_fail_while_freezing():
    t = _core.Tape(record_all=True)
    with _core.recording(t):
        x = csvi.tensor([1.0], requires_grad=True)
        y = x * 2.0
        t.freezing = True
        try:
            for convert in (float, bool, lambda v: v.item(), lambda v: v.numpy(), np.asarray):
                with pytest.raises(RuntimeError, match="eager"):
                    convert(y)
        finally:
            t.freezing = False
        assert float(y) == 2.0


# ---- flags ----------------------------------------------------------------------

def test_requires_grad_flags():
    x = csvi.tensor([1.0, 2.0], requires_grad=True)
    c = csvi.tensor([3.0, 4.0])
    y = x * c
    assert y.requires_grad and not y.is_leaf
    z = c * c
    assert not z.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_()
    assert c.requires_grad_() is c and c.requires_grad
    (x * c).sum().backward()
    np.testing.assert_array_equal(c.grad, x.numpy())
    np.testing.assert_array_equal(x.grad, c.numpy())


# ---- backward ------------------------------------------------------------------

def test_backward_fills_grad_of_leaves():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(3), rng.standard_normal((2, 3))
    x, w = csvi.tensor(a, requires_grad=True), csvi.tensor(b, requires_grad=True)
    loss = csvi.sum(csvi.tanh(w @ x) ** 2)
    assert x.grad is None
    loss.backward()
    f = lambda u, v: np.sum(np.tanh(v @ u) ** 2)
    np.testing.assert_allclose(x.grad, numerical_grad(lambda u: f(u, b), a), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(w.grad, numerical_grad(lambda v: f(a, v), b), rtol=1e-6, atol=1e-9)
    assert isinstance(x.grad, np.ndarray) and x.grad.dtype == np.float64


def test_backward_needs_a_scalar():
    x = csvi.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        (x * 2).backward()
    (x * 2)[1:].backward()  # one element of any shape is a scalar
    np.testing.assert_array_equal(x.grad, [0.0, 2.0])


def test_backward_of_a_scalar_leaf():
    x = csvi.tensor(3.0, requires_grad=True)
    x.backward()
    x.backward()
    assert x.grad == 2.0
    with pytest.raises(ValueError, match="scalar"):
        csvi.tensor([1.0, 2.0], requires_grad=True).backward()


def test_backward_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (csvi.tensor(1.0) * 2).backward()


def test_default_tape_freed_after_backward():
    x = csvi.tensor(2.0, requires_grad=True)
    y = x * x
    assert tape().num_ops == 1
    y.backward()
    assert tape().num_ops == 0 and tape().num_slots == 0
    with pytest.raises(RuntimeError, match="freed"):
        y.backward()
    assert x.grad == 4.0
    (x * 3).backward()   # a leaf can start a new graph
    assert x.grad == 7.0


def test_grad_accumulates_over_backward_calls():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3))
    x = csvi.tensor(a, requires_grad=True)
    f = lambda v: np.sum(np.exp(v) * v)
    for k in range(1, 4):
        (csvi.exp(x) * x).sum().backward()
        np.testing.assert_allclose(x.grad, k * numerical_grad(f, a), rtol=1e-6)
    x.grad = None
    (csvi.exp(x) * x).sum().backward()
    np.testing.assert_allclose(x.grad, numerical_grad(f, a), rtol=1e-6)


def test_leaf_used_many_times_accumulates():
    x = csvi.tensor([1.0, -2.0], requires_grad=True)
    y = x * 2 + x * x + csvi.exp(x) + x[::-1] * x
    y.sum().backward()
    v = x.numpy()
    np.testing.assert_allclose(x.grad, 2 + 2 * v + np.exp(v) + 2 * v[::-1])


def test_non_default_tape_keeps_its_graph():
    t = _core.Tape(record_all=True)
    with _core.recording(t):
        x = csvi.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).sum()
        c = csvi.tensor([1.0]) + 1.0   # constants are recorded on such a tape
    assert t.num_ops == 3 and tape().num_ops == 0
    y.backward()
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * 2 * x.numpy())
    assert c.numpy()[0] == 2.0


# ---- detach and constants -------------------------------------------------------------

def test_detach_stops_gradients():
    x = csvi.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    d = y.detach()
    assert not d.requires_grad
    np.testing.assert_array_equal(d.numpy(), y.numpy())
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad, y.numpy())   # d is a constant


def test_detach_keeps_the_original_differentiable():
    # y - y.detach() is 0 but has y's gradient (the score-function / DiCE trick)
    x = csvi.tensor([0.5, 2.0], requires_grad=True)
    y = csvi.log(x) * 3.0
    z = csvi.exp(y - y.detach())
    np.testing.assert_array_equal(z.numpy(), [1.0, 1.0])
    z.sum().backward()
    np.testing.assert_allclose(x.grad, 3.0 / x.numpy())


def test_detach_of_leaf_then_reuse():
    x = csvi.tensor([3.0], requires_grad=True)
    y = x * 2
    x.detach()
    (y + x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0 + 6.0])


def test_detach_of_constant_is_itself():
    c = csvi.tensor([1.0])
    assert c.detach() is c


def test_comparisons_do_not_cut_the_gradient():
    x = csvi.tensor([-1.0, 2.0], requires_grad=True)
    y = x * 3
    m = y > 0
    (m * y).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 3.0])


@pytest.mark.parametrize("op", [
    lambda c, d: c + d, lambda c, d: c - d, lambda c, d: c * d, lambda c, d: c / d,
    lambda c, d: c ** d, lambda c, d: c ** 2, lambda c, d: -c, lambda c, d: abs(c),
    lambda c, d: c @ d.T, lambda c, d: csvi.exp(c), lambda c, d: np.log(d), lambda c, d: c.sum(),
    lambda c, d: c.mean(0), lambda c, d: csvi.logsumexp(c), lambda c, d: c.reshape(-1),
    lambda c, d: c.T, lambda c, d: c[0, ::-1], lambda c, d: c[csvi.tensor([1, 0])],
    lambda c, d: csvi.stack([c, d]), lambda c, d: csvi.concatenate([c] * 10),
    lambda c, d: csvi.where(c > d, c, d), lambda c, d: csvi.clip(c, 0, 1), lambda c, d: c > d,
    lambda c, d: c.detach(), lambda c, d: csvi.softplus(c) + csvi.sigmoid(d),
])
def test_ops_on_constants_do_not_grow_the_default_tape(op):
    rng = np.random.default_rng(2)
    c = csvi.tensor(rng.uniform(0.5, 1.5, (2, 3)))
    d = csvi.tensor(rng.uniform(0.5, 1.5, (2, 3)))
    out = op(c, d)
    assert isinstance(out, csvi.Tensor) and not out.requires_grad
    assert tape().num_ops == 0 and tape().num_slots == 0
    op(c, d.numpy())  # an ndarray operand is a constant too
    assert tape().num_ops == 0 and tape().num_slots == 0


def test_only_differentiable_parts_are_recorded():
    x = csvi.tensor([1.0, 2.0], requires_grad=True)
    c = csvi.exp(csvi.tensor([0.0, 1.0])) * 2  # constant subexpression: not recorded
    y = (x * c).sum()
    assert tape().op_names() == ["MUL", "SUM"]
    y.backward()
    np.testing.assert_allclose(x.grad, c.numpy())


# ---- NumPy interop ------------------------------------------------------------------

UFUNCS = [np.add, np.subtract, np.multiply, np.divide, np.true_divide, np.power]
UNARY_UFUNCS = [np.negative, np.positive, np.exp, np.log, np.log1p, np.expm1, np.sqrt,
                np.absolute, np.tanh, np.square]


@pytest.mark.parametrize("uf", UNARY_UFUNCS, ids=lambda u: u.__name__)
def test_unary_ufuncs_give_tensors(uf):
    a = np.array([0.5, 1.5, 2.0])
    x = csvi.tensor(a, requires_grad=True)
    y = uf(x)
    assert isinstance(y, csvi.Tensor)
    np.testing.assert_allclose(y.numpy(), uf(a), rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, numerical_grad(lambda v: uf(v).sum(), a), rtol=1e-6)


@pytest.mark.parametrize("uf", UFUNCS, ids=lambda u: u.__name__)
def test_binary_ufuncs_with_arrays_give_tensors(uf):
    a, b = np.array([[0.5], [1.5]]), np.array([1.0, 2.0, 0.7])
    x = csvi.tensor(b, requires_grad=True)
    for y in (uf(a, x), uf(x, a.T[0, :1]), uf(a, x).sum(0)):
        assert isinstance(y, csvi.Tensor)
    y = uf(a, x)
    np.testing.assert_allclose(y.numpy(), uf(a, b), rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, numerical_grad(lambda v: uf(a, v).sum(), b), rtol=1e-6)


def test_array_priority_makes_reflected_ops_tensors():
    a = np.arange(6.0).reshape(2, 3)
    x = csvi.tensor(np.ones(3), requires_grad=True)
    for y in (a * x, a + x, a - x, a / x, a ** x, a @ x, np.float64(2.0) * x, x.numpy() @ x):
        assert isinstance(y, csvi.Tensor) and y.requires_grad


@pytest.mark.parametrize("uf", [np.sin, np.maximum, np.floor, np.arctan2, np.logaddexp],
                         ids=lambda u: u.__name__)
def test_unsupported_ufunc_names_it(uf):
    x = csvi.tensor([1.0, 2.0])
    args = (x,) * uf.nin
    with pytest.raises(TypeError, match=rf"numpy\.{uf.__name__}\b"):
        uf(*args)


def test_ufunc_methods_and_kwargs_unsupported():
    x = csvi.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="reduce"):
        np.add.reduce(x)
    with pytest.raises(TypeError, match="out"):
        np.exp(x, out=np.zeros(2))


@pytest.mark.parametrize("fn", [np.prod, np.sort, np.diff, np.argmax, np.linalg.inv],
                         ids=lambda f: f.__name__)
def test_unsupported_numpy_function_names_it_and_the_way_out(fn):
    with pytest.raises(TypeError, match=rf"numpy(\.linalg)?\.{fn.__name__} is not supported"
                                        r".*t\.numpy\(\)"):
        fn(csvi.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_reusing_a_tensor_from_a_freed_graph_raises():
    x = csvi.tensor(2.0, requires_grad=True)
    y = x * 2.0
    y.backward()
    with pytest.raises(RuntimeError, match="freed"):
        (y * 3.0 + x).backward()
    z = y.detach() * 3.0 + x  # as a constant it is fine
    z.backward()
    assert x.grad == 2.0 + 1.0
