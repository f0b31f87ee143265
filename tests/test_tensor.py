"""The Tensor type's API and autodiff semantics: construction, conversion,
backward on the default tape, detach, tape growth, and NumPy interop."""
import operator
import pickle

import numpy as np
import pytest

import csvi
from csvi import _core
from gradcheck import assert_grads_match, numerical_grad


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
    with pytest.raises(ValueError, match="at most 16"):
        csvi.tensor(np.ones((1,) * 17), requires_grad=True) * 2.0


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


# ---- torch-style methods ------------------------------------------------------------

X3 = np.arange(1.0, 7.0).reshape(2, 1, 3) / 3.0


def test_squeeze_and_unsqueeze_follow_torch():
    t = csvi.tensor(X3)
    assert t.squeeze(1).shape == (2, 3) and t.squeeze(-2).shape == (2, 3)
    assert t.squeeze(0).shape == (2, 1, 3)  # not size 1: a no-op, as torch
    assert t.squeeze().shape == (2, 3) and t.squeeze((0, 1)).shape == (2, 3)
    assert t.unsqueeze(0).shape == (1, 2, 1, 3) and t.unsqueeze(-1).shape == (2, 1, 3, 1)
    assert t.unsqueeze(3).shape == (2, 1, 3, 1)
    with pytest.raises(ValueError, match="out of range"):
        t.unsqueeze(5)
    np.testing.assert_array_equal(t.unsqueeze(2).numpy(), X3[:, :, None, :])


def test_view_reshape_t_and_T():
    t = csvi.tensor(X3)
    np.testing.assert_array_equal(t.view(3, 2).numpy(), X3.reshape(3, 2))
    np.testing.assert_array_equal(t.view((-1,)).numpy(), X3.reshape(-1))
    np.testing.assert_array_equal(t.reshape(6).numpy(), X3.reshape(6))
    m = t.view(2, 3)
    np.testing.assert_array_equal(m.t().numpy(), X3.reshape(2, 3).T)
    np.testing.assert_array_equal(m.T.numpy(), X3.reshape(2, 3).T)
    v = csvi.tensor([1.0, 2.0])
    assert v.t() is v
    with pytest.raises(ValueError, match="at most 2 dims"):
        t.t()


def test_sum_and_mean_take_torch_dims():
    t = csvi.tensor(X3)
    np.testing.assert_allclose(t.sum(2).numpy(), X3.sum(2))
    np.testing.assert_allclose(t.sum(dim=0, keepdim=True).numpy(), X3.sum(0, keepdims=True))
    np.testing.assert_allclose(t.mean(-1).numpy(), X3.mean(-1))
    np.testing.assert_allclose(t.mean(dim=(0, 2)).numpy(), X3.mean((0, 2)))
    with pytest.raises(TypeError, match="not both"):
        t.sum(0, dim=1)
    with pytest.raises(TypeError, match="not both"):
        t.mean(0, keepdims=True, keepdim=True)


def test_expand_follows_torch():
    t = csvi.tensor(X3)
    e = t.expand(4, -1, 5, -1)
    assert e.shape == (4, 2, 5, 3)
    np.testing.assert_array_equal(e.numpy(), np.broadcast_to(X3, (4, 2, 5, 3)))
    assert t.expand(2, 1, 3) is t and t.expand((2, 4, 3)).shape == (2, 4, 3)
    for sizes, match in [((3, 1, 3), "dim 0 of size 2"), ((-1, 3), "2 sizes"),
                         ((-1, 2, 1, 3), "new leading dim 0")]:
        with pytest.raises(ValueError, match=match):
            t.expand(*sizes)


@pytest.mark.parametrize("name, fn", [
    ("squeeze", lambda u: u.squeeze(1)),
    ("unsqueeze", lambda u: u.unsqueeze(-1)),
    ("view", lambda u: u.view(3, 2)),
    ("sum", lambda u: u.sum(2)),
    ("mean", lambda u: u.mean(0)),
    ("expand", lambda u: u.expand(4, -1, 5, -1)),
    ("pow", lambda u: u.pow(3)),
    ("pow_tensor", lambda u: u.pow(u)),
    ("clone", lambda u: u.clone() * u),
    ("cumsum", lambda u: u.cumsum(2)),
    ("cumprod", lambda u: u.cumprod(dim=-1)),
    ("abs", lambda u: (u - 1.0).abs()),
    ("sqrt", lambda u: u.sqrt()),
    ("exp", lambda u: u.exp()),
    ("log", lambda u: u.log()),
    ("t", lambda u: u.view(2, 3).t()),
    ("T", lambda u: u.view(2, 3).T),
], ids=lambda v: v if isinstance(v, str) else "")
def test_torch_style_methods_are_differentiated(name, fn):
    assert_grads_match(fn, [X3])


def test_torch_style_method_values():
    t = csvi.tensor(X3)
    for got, want in [(t.pow(3), X3 ** 3), (t.cumsum(2), np.cumsum(X3, 2)),
                      (t.cumprod(dim=0), np.cumprod(X3, 0)), (t.cumsum(), np.cumsum(X3)),
                      (t.clone(), X3), ((t - 1.0).abs(), np.abs(X3 - 1.0)),
                      (t.sqrt(), np.sqrt(X3)), (t.exp(), np.exp(X3)), (t.log(), np.log(X3))]:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-15)


def test_long_float_item_and_new_tensors():
    y = csvi.tensor([-1.7, 0.2, 2.9], requires_grad=True)
    k = y.long()
    assert not k.requires_grad and k.dtype == np.int64 and k.long() is k
    assert k.tolist() == [-1, 0, 2] and k.numpy().dtype == np.int64
    assert k[2].item() == 2 and isinstance(k[2].item(), int) and int(k[0]) == -1
    assert isinstance(float(k[2]), float) and repr(k) == "tensor([-1,  0,  2])"
    f = k.float()
    assert f.dtype == np.float64 and f.tolist() == [-1.0, 0.0, 2.0] and y.float() is y
    np.testing.assert_array_equal(np.arange(10.0)[k], [9.0, 0.0, 2.0])
    assert isinstance(y.sum().item(), float)
    z = y.new_zeros(2, 3)
    assert z.shape == (2, 3) and not z.requires_grad and z.numpy().sum() == 0.0
    assert y.new_ones((4,)).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="nonnegative ints"):
        y.new_zeros(2, -1)
    d = (y * 2.0).detach()
    assert not d.requires_grad and d.numpy().tolist() == [-3.4, 0.4, 5.8]


def test_equality_comparisons_are_elementwise_masks():
    a = csvi.tensor([1.0, 2.0, np.nan, 4.0], requires_grad=True)
    b = np.array([1.0, 0.0, np.nan, 4.0])
    assert (a == b).tolist() == [1.0, 0.0, 0.0, 1.0]
    assert (a != b).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert (b == a).tolist() == [1.0, 0.0, 0.0, 1.0]  # NumPy hands over to the tensor
    assert (a == 2).tolist() == [0.0, 1.0, 0.0, 0.0]
    np.testing.assert_array_equal(a[a == 4.0].numpy(), [4.0])
    assert (a > 1.5).tolist() == [0.0, 1.0, 0.0, 1.0] and (a <= 1.0).tolist()[0] == 1.0
    # other objects compare by identity, so containers keep working
    assert (a == None) is False and (a != "x") is True  # noqa: E711
    assert a in [a] and {a: 1}[a] == 1
    (a * (a == b)).sum().backward()  # the mask cuts no gradient of a
    np.testing.assert_array_equal(a.grad, [1.0, 0.0, 0.0, 1.0])


def test_format_of_zero_d_tensors():
    t = csvi.tensor(1.23456, requires_grad=True)
    assert format(t, ".3f") == "1.235" and f"{t * 2:.2e}" == "2.47e+00" and f"{t}" == "1.23456"
    assert f"{csvi.tensor(3.0).long():d}" == "3"
    v = csvi.tensor([1.0, 2.0])
    assert f"{v}" == repr(v)
    with pytest.raises(TypeError, match="0-d tensor, got shape \\(2,\\)"):
        format(v, ".3f")


def test_format_is_allowed_while_compiling():
    t = _core.Tape(record_all=True)
    t.freezing = True
    with _core.recording(t):
        x = csvi.tensor(1.5, requires_grad=True) * 2.0
        assert f"{x:.1f}" == "3.0"
        with pytest.raises(RuntimeError, match="compiled"):
            x.item()


# ---- tensor indices among other indices -----------------------------------------

IDX = np.array([[2, 0], [1, 2]])
KEYS = {
    "alone": lambda i: i,
    "first_then_int": lambda i: (i, 1),
    "first_then_slice": lambda i: (i, slice(1, None)),
    "after_slice": lambda i: (slice(None), i),
    "after_ellipsis": lambda i: (Ellipsis, i),
    "int_then": lambda i: (0, i),
    "int_slice_then": lambda i: (1, slice(None), i),
    "then_none": lambda i: (i, None),
    "none_then": lambda i: (None, i),
    "slices_around": lambda i: (slice(0, 2), i, slice(None, None, -1)),
    "then_ellipsis_int": lambda i: (i, Ellipsis, 0),
    "int_ellipsis_then": lambda i: (2, Ellipsis, i),
}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_tensor_index_among_basic_indices_matches_numpy(name):
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    key = KEYS[name]
    expected = x[key(IDX)]
    got = csvi.tensor(x)[key(csvi.tensor(IDX))]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.numpy(), expected)
    assert_grads_match(lambda u: u[key(csvi.tensor(IDX))], [x])


def test_tensor_index_errors_name_the_problem():
    t = csvi.tensor(np.ones((3, 3)))
    i = csvi.tensor([0.0, 1.0])
    with pytest.raises(TypeError, match="bool"):
        t[i, True]
    with pytest.raises(TypeError, match="mask tensor must be the only index"):
        t[t[0] > 0, 0]
    with pytest.raises(IndexError):
        t[i, 0, 0]


def test_categorical_draws_are_integers_that_index_numpy_arrays_and_tensors():
    import csvi.distributions as dist
    csvi.set_rng_seed(0)
    d = dist.Categorical(probs=np.array([0.2, 0.3, 0.5]))
    k, ks = d.sample(), d.sample((6,))
    assert isinstance(k.item(), int) and k.dtype == np.int64
    locs = np.array([-1.0, 0.0, 1.0])
    assert locs[k] == locs[k.item()]
    np.testing.assert_array_equal(locs[ks], locs[ks.numpy()])
    lt = csvi.tensor(locs, requires_grad=True)
    np.testing.assert_array_equal(lt[ks].numpy(), locs[ks.numpy()])
    lt[ks].sum().backward()
    np.testing.assert_array_equal(lt.grad, np.bincount(ks.numpy(), minlength=3))
    assert d.enumerate_support().dtype == np.int64
    assert dist.Bernoulli(0.5).sample().dtype == np.float64  # as torch: only Categorical is long
