"""NumPy functions on csvi Tensors (through __array_function__): values equal
NumPy's, gradients match finite differences, arguments csvi does not
implement are refused by name, and the new ops replay in a compiled loop."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from gradcheck import assert_grads_match

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
B3 = RNG.standard_normal((2, 3, 4))


def same(out, expected):
    """`out` is a Tensor whose value is NumPy's `expected` (shape and values)."""
    assert isinstance(out, csvi.Tensor)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-13, atol=1e-13)


# (name, function of one array, input): each is called on the NumPy array and
# on a Tensor; the values must agree and the Tensor's gradient must match
# central differences.
CASES = [
    ("squeeze", lambda a: np.squeeze(a), A.reshape(3, 1, 4, 1)),
    ("squeeze_axis", lambda a: np.squeeze(a, axis=(1, -1)), A.reshape(3, 1, 4, 1)),
    ("expand_dims", lambda a: np.expand_dims(a, 1), A),
    ("expand_dims_tuple", lambda a: np.expand_dims(a, (0, -1)), A),
    ("reshape", lambda a: np.reshape(a, (2, -1)), A),
    ("reshape_kw", lambda a: np.reshape(a, shape=(4, 3)), A),
    ("sum_axis", lambda a: np.sum(a, axis=1), B3),
    ("sum_axes_keepdims", lambda a: np.sum(a, axis=(0, 2), keepdims=True), B3),
    ("mean_axis", lambda a: np.mean(a, axis=-1), B3),
    ("var", lambda a: np.var(a), A),
    ("var_axis_ddof", lambda a: np.var(a, axis=0, ddof=1), A),
    ("var_correction", lambda a: np.var(a, axis=1, correction=1), A),
    ("std_axis", lambda a: np.std(a, axis=(0, 1), keepdims=True), B3),
    ("concatenate", lambda a: np.concatenate([a, 2.0 * np.ones((3, 2))], axis=1), A),
    ("stack", lambda a: np.stack([a, a[::-1]], axis=-1), A),
    ("where", lambda a: np.where(A > 0, a, 0.5 * a), A),
    ("clip", lambda a: np.clip(a, -0.5, 0.7), A),
    ("clip_kw", lambda a: np.clip(a, max=0.3), A),
    ("clip_array_bounds", lambda a: np.clip(a, np.full(4, -0.4), 0.6), A),
    ("diag_extract", lambda a: np.diag(a), A),
    ("diag_extract_k", lambda a: np.diag(a, k=1), A),
    ("diag_extract_neg_k", lambda a: np.diag(a, -2), A),
    ("diag_build", lambda a: np.diag(a, 1), A[0]),
    ("tril", lambda a: np.tril(a), A),
    ("tril_k", lambda a: np.tril(a, -1), B3),
    ("triu_k", lambda a: np.triu(a, 1), A),
    ("cumsum", lambda a: np.cumsum(a), A),
    ("cumsum_axis0", lambda a: np.cumsum(a, axis=0), B3),
    ("cumsum_axis1", lambda a: np.cumsum(a, axis=1), B3),
    ("cumprod", lambda a: np.cumprod(a, axis=-1), A),
    ("cumprod_flat", lambda a: np.cumprod(a), A[:2]),
    ("max", lambda a: np.max(a), A),
    ("max_axis", lambda a: np.max(a, axis=1), B3),
    ("amax_keepdims", lambda a: np.amax(a, axis=(0, 2), keepdims=True), B3),
    ("min_axis", lambda a: np.min(a, axis=0), A),
    ("amin", lambda a: np.amin(a, axis=-1), B3),
    ("pad", lambda a: np.pad(a, 1), A),
    ("pad_constant", lambda a: np.pad(a, ((0, 1), (2, 0)), constant_values=3.5), A),
    ("pad_edge", lambda a: np.pad(a, (1, 2), mode="edge"), A),
    ("pad_reflect", lambda a: np.pad(a, ((1, 1), (0, 2)), mode="reflect"), A),
    ("pad_wrap", lambda a: np.pad(a, 2, mode="wrap"), A[0]),
    ("pad_symmetric", lambda a: np.pad(a, 1, mode="symmetric"), B3),
    ("transpose", lambda a: np.transpose(a, (2, 0, 1)), B3),
    ("broadcast_to", lambda a: np.broadcast_to(a, (2, 3, 4)), A),
    ("dot_matvec", lambda a: np.dot(a, np.arange(4.0)), A),
    ("dot_vecvec", lambda a: np.dot(a[0], a[1]), A),
]


@pytest.mark.parametrize("fn, x", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_value_and_gradient(fn, x):
    same(fn(csvi.tensor(x)), fn(x))
    assert_grads_match(fn, [x])


def test_shape_ndim_size():
    t = csvi.tensor(B3)
    assert np.shape(t) == (2, 3, 4) and np.ndim(t) == 3 and np.size(t) == 24
    assert np.size(t, 1) == 3


EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,jk->bik", [(2, 3, 4), (4, 5)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->i", [(4,), (4,)]),
    ("ij->ji", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii->i", [(3, 3)]),
    ("ii->", [(3, 3)]),
    ("iij->ji", [(3, 3, 2)]),
    ("ij,ij->ij", [(1, 4), (3, 4)]),
    ("ij,jk->ik", [(3, 1), (4, 2)]),
    ("...i,...i->...", [(2, 3, 4), (3, 4)]),
    ("...ij,...jk->...ik", [(5, 3, 4), (4, 2)]),
    ("ni,nij->nj", [(5, 3), (5, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("i,ij,j->", [(3,), (3, 4), (4,)]),
    ("ab,cd,bd->ac", [(2, 3), (4, 5), (3, 5)]),
    (" i j , j k -> k i ", [(3, 4), (4, 2)]),
]


@pytest.mark.parametrize("spec, shapes", EINSUM, ids=[e[0].replace(" ", "") for e in EINSUM])
def test_einsum(spec, shapes):
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal(s) for s in shapes]
    same(np.einsum(spec, *[csvi.tensor(x) for x in xs]), np.einsum(spec, *xs))
    same(csvi.einsum(spec, *xs[:-1], csvi.tensor(xs[-1])), np.einsum(spec, *xs))
    assert_grads_match(lambda *ts: np.einsum(spec, *ts), xs)


@pytest.mark.parametrize("spec, shapes, match", [
    ("ij,jk", [(2, 2), (2, 2)], "explicit form"),
    ("ij,jk,kl,lm->im", [(2, 2)] * 4, "1 to 3 operands"),
    ("ij,jk->ik", [(2, 3), (4, 2)], "'j' has sizes 3 and 4"),
    ("ijk->i", [(2, 3)], "shape \\(2, 3\\)"),
    ("...i->i", [(2, 3)], "'...'"),
    ("ij->ii", [(2, 3)], "distinct letters"),
    ("ij->k", [(2, 3)], "appear in the inputs"),
    ("i1->i", [(2, 3)], "ASCII letters"),
    ("ij,j->i", [(2, 3)], "names 2 operands, got 1"),
])
def test_einsum_errors(spec, shapes, match):
    with pytest.raises(ValueError, match=match):
        np.einsum(spec, *[csvi.tensor(np.ones(s)) for s in shapes])


def test_einsum_refuses_other_forms_and_options():
    x = csvi.tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match="subscripts-string"):
        csvi.einsum(x, [0, 1], [1])
    with pytest.raises(TypeError, match="optimize"):
        np.einsum("ij->i", x, optimize=True)


def test_max_min_split_the_gradient_among_ties():
    x = csvi.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    (np.max(x, axis=1) * np.array([1.0, 3.0])).sum().backward()
    np.testing.assert_allclose(x.grad, [[0.0, 0.5, 0.5], [1.0, 1.0, 1.0]])
    y = csvi.tensor([4.0, -1.0, -1.0, 0.0], requires_grad=True)
    np.min(y).backward()
    np.testing.assert_allclose(y.grad, [0.0, 0.5, 0.5, 0.0])


def test_max_min_propagate_nan_and_infinities():
    x = np.array([[1.0, np.nan, 3.0], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0]])
    for fn in (np.max, np.min):
        same(fn(csvi.tensor(x), axis=1), fn(x, axis=1))
        same(fn(csvi.tensor(x), axis=0), fn(x, axis=0))
    with pytest.raises(ValueError, match="axis 1 of size 0"):
        np.max(csvi.tensor(np.ones((2, 0))), axis=1)
    same(np.max(csvi.tensor(np.ones((0, 2))), axis=1), np.zeros(0))


def test_cumprod_gradient_with_zeros_and_negatives():
    for x in ([2.0, 0.0, -3.0, 1.5], [0.0, 0.0, 2.0, -1.0], [-1.0, 2.0, 0.0],
              [[0.0, -2.0], [3.0, 0.0], [-0.5, 4.0]]):
        x = np.array(x)
        same(np.cumprod(csvi.tensor(x), axis=0), np.cumprod(x, axis=0))
        assert_grads_match(lambda t: np.cumprod(t, axis=0), [x])


def test_cumsum_adds_in_numpys_order():
    x = np.random.default_rng(2).standard_normal(1000) * 1e3
    np.testing.assert_array_equal(np.cumsum(csvi.tensor(x)).numpy(), np.cumsum(x))


def test_squeeze_of_a_dim_that_is_not_one_raises():
    with pytest.raises(ValueError, match="axis 0 of shape \\(3, 4\\) has size 3"):
        np.squeeze(csvi.tensor(A), axis=0)


@pytest.mark.parametrize("call, match", [
    (lambda t: np.sum(t, dtype=np.float32), "numpy.sum .* dtype"),
    (lambda t: np.mean(t, out=np.zeros(())), "numpy.mean .* out"),
    (lambda t: np.max(t, initial=0.0), "numpy.max .* initial"),
    (lambda t: np.min(t, where=np.ones((3, 4), bool)), "numpy.min .* where"),
    (lambda t: np.std(t, mean=np.zeros(())), "numpy.std .* mean"),
    (lambda t: np.cumsum(t, dtype=np.float32), "numpy.cumsum .* dtype"),
    (lambda t: np.reshape(t, (4, 3), order="F"), "numpy.reshape .* order"),
    (lambda t: np.concatenate([t, t], dtype=np.float32), "numpy.concatenate .* dtype"),
    (lambda t: np.pad(t, 1, mode="constant", end_values=2), "numpy.pad .* end_values"),
    (lambda t: np.clip(t, 0, 1, out=np.zeros((3, 4))), "numpy.clip .* out"),
    (lambda t: np.where(t > 0), "data-dependent shape"),
    (lambda t: np.pad(t, 1, mode="mean"), "mode 'mean' is not supported"),
    (lambda t: np.var(t, axis=1, ddof=4), "no degrees of freedom with ddof=4"),
    (lambda t: np.dot(t.reshape(1, 3, 4), t.T), "more than 2 dims"),
    (lambda t: np.broadcast_to(t, (4, 4)), "cannot be broadcast to shape \\(4, 4\\)"),
    (lambda t: np.diag(t.reshape(1, 3, 4)), "1-d or 2-d"),
    (lambda t: np.tril(t[0]), "at least 2 dims"),
])
def test_unsupported_arguments_are_refused_by_name(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call(csvi.tensor(A))


# ---- the new ops in a compiled run --------------------------------------------------

def scan_model(data):
    z = csvi.sample("z", dist.Normal(np.zeros(4), 1.0).to_event(1))
    s = np.cumsum(z) + 0.1 * np.cumprod(z[:3]).sum() + np.max(np.einsum("i,i->i", z, z))
    s = s + np.min(np.tril(z[:, None] * z[None, :] + 1.0))
    csvi.sample("obs", dist.Normal(s, 1.0).to_event(1), obs=data)


def scan_guide(data):
    loc = csvi.param("loc", np.zeros(4))
    scale = csvi.param("scale", np.ones(4), constraint=constraints.positive)
    csvi.sample("z", dist.Normal(loc, scale).to_event(1))


@pytest.mark.parametrize("particles", [1, 3])
def test_new_ops_replay_in_a_compiled_run_as_eager(particles):
    data = np.array([0.5, -1.0, 2.0, 0.3])

    def fit(compiled):
        csvi.clear_param_store()
        csvi.set_rng_seed(5)
        svi = SVI(scan_model, scan_guide, Adam({"lr": 0.02}), Trace_ELBO(num_particles=particles))
        if compiled:
            program = svi.compile(data)
            assert {"CUMSUM", "CUMPROD", "MAX", "MIN"} <= set(program._tape.op_names())
            return program.run(40)
        return np.array([svi.step(data) for _ in range(40)])

    compiled = fit(True)
    eager = fit(False)
    if particles == 1:
        np.testing.assert_array_equal(compiled, eager)
    else:
        np.testing.assert_allclose(compiled, eager, rtol=1e-10)
