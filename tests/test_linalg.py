"""Dense linear-algebra ops (csvi.linalg): values against NumPy/SciPy over
batch shapes, VJPs against finite differences, the triangle each op reads,
bad input, NumPy's functions and torch's methods on Tensors, and compiled
replay."""
import numpy as np
import pytest
import scipy.linalg

import csvi
import csvi.distributions as dist
from csvi import linalg
from csvi.infer import Trace_ELBO
from csvi.optim import Adam
from compiled_check import assert_compiled_matches_eager
from gradcheck import assert_grads_match

RNG = np.random.default_rng(7)


def spd(batch, n, rng=RNG):
    m = rng.standard_normal(batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


def tri(batch, n, lower=True, rng=RNG):
    """A well-conditioned triangular matrix with garbage in the other triangle
    (which the ops must not read)."""
    m = rng.standard_normal(batch + (n, n))
    m[..., np.arange(n), np.arange(n)] = rng.uniform(1.0, 2.0, batch + (n,)) * rng.choice(
        [-1.0, 1.0], batch + (n,))
    return m


def sym(a):
    return (a + csvi.transpose(a, tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2))) * 0.5


def mask_tri(a, lower):
    return np.tril(a) if lower else np.triu(a)


# ---- values ---------------------------------------------------------------

@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
@pytest.mark.parametrize("n", [1, 4, 9])
def test_cholesky_matches_numpy_and_reads_the_lower_triangle(batch, n):
    a = spd(batch, n)
    garbage = a + np.triu(RNG.standard_normal(batch + (n, n)), 1)  # upper triangle ignored
    L = linalg.cholesky(garbage).numpy()
    np.testing.assert_allclose(L, np.linalg.cholesky(a), rtol=1e-12, atol=1e-12)
    assert np.all(np.triu(L, 1) == 0.0)


CASES = [(upper, left, trans, unit) for upper in (False, True) for left in (True, False)
         for trans in (False, True) for unit in (False, True)]


@pytest.mark.parametrize("upper,left,trans,unit", CASES)
def test_solve_triangular_matches_scipy(upper, left, trans, unit):
    n, k = 5, 3
    a = tri((2, 1), n)
    b = RNG.standard_normal((3,) + ((n, k) if left else (k, n)))
    x = linalg.solve_triangular(a, b, upper=upper, left=left, unitriangular=unit,
                                transpose=trans).numpy()
    assert x.shape == (2, 3) + b.shape[1:]
    for i in range(2):
        for j in range(3):
            t = mask_tri(a[i, 0], not upper)
            if unit:
                np.fill_diagonal(t, 1.0)
            op = t.T if trans else t
            want = np.linalg.solve(op, b[j]) if left else np.linalg.solve(op.T, b[j].T).T
            np.testing.assert_allclose(x[i, j], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_matches_scipy_cho_solve(upper):
    a = spd((2, 1), 4)
    L = np.linalg.cholesky(a)
    factor = np.swapaxes(L, -1, -2) if upper else L
    b = RNG.standard_normal((3, 4, 2))
    x = linalg.cholesky_solve(b, factor + RNG.standard_normal(factor.shape) * (
        np.tril(np.ones((4, 4)), -1) if upper else np.triu(np.ones((4, 4)), 1)),
        upper=upper).numpy()
    assert x.shape == (2, 3, 4, 2)
    for i in range(2):
        for j in range(3):
            want = scipy.linalg.cho_solve((factor[i, 0], not upper), b[j])
            np.testing.assert_allclose(x[i, j], want, rtol=1e-10, atol=1e-12)


def test_tri_logdet_is_half_the_logdet_of_the_cholesky_product():
    a = spd((2, 3), 6)
    got = linalg.tri_logdet(np.linalg.cholesky(a)).numpy()
    np.testing.assert_allclose(2 * got, np.linalg.slogdet(a)[1], rtol=1e-12)
    t = tri((4,), 5)  # signs and the other triangle ignored
    np.testing.assert_allclose(linalg.tri_logdet(t).numpy(),
                               np.log(np.abs(np.diagonal(t, 0, -2, -1))).sum(-1), rtol=1e-12)


@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
def test_tril_triu_diagonal_diag_embed_match_numpy(k):
    a = RNG.standard_normal((2, 4, 5))
    np.testing.assert_array_equal(linalg.tril(a, k).numpy(), np.tril(a, k))
    np.testing.assert_array_equal(linalg.triu(a, k).numpy(), np.triu(a, k))
    np.testing.assert_array_equal(linalg.diagonal(a, k).numpy(), np.diagonal(a, k, -2, -1))
    v = RNG.standard_normal((3, 4))
    np.testing.assert_array_equal(linalg.diag_embed(v, k).numpy(),
                                  np.stack([np.diag(row, k) for row in v]))


def test_diagonal_of_other_dims_as_torch():
    a = RNG.standard_normal((3, 4, 5))
    for off, d1, d2 in [(0, 0, 1), (1, 0, 2), (-1, 2, 0), (0, -1, -3)]:
        np.testing.assert_array_equal(linalg.diagonal(a, off, d1, d2).numpy(),
                                      np.diagonal(a, off, d1, d2))


def test_empty_matrices():
    assert linalg.cholesky(np.zeros((3, 0, 0))).shape == (3, 0, 0)
    assert linalg.solve_triangular(np.eye(2), np.zeros((2, 0)), upper=False).shape == (2, 0)
    np.testing.assert_array_equal(linalg.tri_logdet(np.zeros((2, 0, 0))).numpy(), [0.0, 0.0])
    assert linalg.diagonal(np.zeros((3, 0))).shape == (0,)
    assert linalg.diag_embed(np.zeros((2, 0)), 1).shape == (2, 1, 1)


# ---- gradients ------------------------------------------------------------

@pytest.mark.parametrize("batch", [(), (2,)])
def test_cholesky_gradient(batch):
    a = spd(batch, 4)
    assert_grads_match(lambda x: linalg.cholesky(sym(x)), [a])


@pytest.mark.parametrize("upper,left,trans,unit", CASES)
def test_solve_triangular_gradient_with_broadcast_batch(upper, left, trans, unit):
    n, k = 3, 2
    a = tri((2, 1), n)
    b = RNG.standard_normal((3,) + ((n, k) if left else (k, n)))
    grads = assert_grads_match(
        lambda x, y: linalg.solve_triangular(x, y, upper=upper, left=left, unitriangular=unit,
                                             transpose=trans), [a, b])
    unread = np.tril(np.ones((n, n)), -1) if upper else np.triu(np.ones((n, n)), 1)
    if unit:
        unread = unread + np.eye(n)
    assert np.all(grads[0][..., unread == 1] == 0.0)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_gradient(upper):
    L = np.linalg.cholesky(spd((2,), 3))
    f = np.ascontiguousarray(np.swapaxes(L, -1, -2)) if upper else L
    b = RNG.standard_normal((3, 1, 3, 2))
    assert_grads_match(lambda x, y: linalg.cholesky_solve(x, y, upper=upper), [b, f])


def test_cholesky_solve_gradient_equals_that_of_the_inverse_through_the_factor():
    # d/dL of sum(W * (L L^T)^-1 b) by the composed route: solve_triangular twice
    L = np.linalg.cholesky(spd((), 4))
    b = RNG.standard_normal((4, 3))
    w = RNG.standard_normal((4, 3))

    def composed(l):
        y = linalg.solve_triangular(l, b, upper=False)
        return (linalg.solve_triangular(l, y, upper=False, transpose=True) * w).sum()

    l1 = csvi.tensor(L, requires_grad=True)
    (linalg.cholesky_solve(b, linalg.tril(l1)) * w).sum().backward()
    l2 = csvi.tensor(L, requires_grad=True)
    composed(l2).backward()
    np.testing.assert_allclose(l1.grad, l2.grad, rtol=1e-10, atol=1e-12)


def test_tri_logdet_tril_diagonal_diag_embed_gradients():
    a = tri((2,), 4)
    assert_grads_match(linalg.tri_logdet, [a])
    assert_grads_match(lambda x: linalg.tril(x, -1), [a])
    assert_grads_match(lambda x: linalg.triu(x, 1), [a])
    assert_grads_match(lambda x: linalg.diagonal(x, 1, 0, 2), [RNG.standard_normal((3, 2, 4))])
    assert_grads_match(lambda v: linalg.diag_embed(v, -1), [RNG.standard_normal((2, 3))])


def test_batched_matmul_broadcasts_batch_dims_with_gradients():
    a = RNG.standard_normal((2, 1, 3, 4))
    b = RNG.standard_normal((5, 4, 2))
    np.testing.assert_allclose(linalg.matmul(a, b).numpy(), a @ b, rtol=1e-12)
    assert_grads_match(linalg.matmul, [a, b])


# ---- bad input --------------------------------------------------------------

def test_not_positive_definite_names_the_matrix():
    a = spd((3,), 3)
    a[1] = -a[1]
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(1,\).*\(3, 3, 3\).*not "
                       "positive definite"):
        linalg.cholesky(a)
    with pytest.raises(ValueError, match=r"matrix of shape \(2, 2\) is not positive definite"):
        linalg.cholesky(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="not positive definite"):
        linalg.cholesky(np.array([[np.nan, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize("call,message", [
    (lambda: linalg.cholesky(np.ones((2, 3))), r"square matrix .* got shape \(2, 3\)"),
    (lambda: linalg.cholesky(np.ones(3)), r"square matrix .* got shape \(3,\)"),
    (lambda: linalg.solve_triangular(np.eye(3), np.ones((2, 1)), upper=False),
     r"b must be \(\.\.\., n, k\) for a of shape \(3, 3\).*got shape \(2, 1\)"),
    (lambda: linalg.solve_triangular(np.eye(3), np.ones((3, 2)), upper=False, left=False),
     r"b must be \(\.\.\., k, n\)"),
    (lambda: linalg.solve_triangular(np.ones((2, 3, 3)), np.ones((4, 3, 1)), upper=True),
     r"batch dims of a \(2, 3, 3\) and b \(4, 3, 1\)"),
    (lambda: linalg.solve_triangular(np.zeros((2, 2)), np.ones((2, 1)), upper=True),
     "singular"),
    (lambda: linalg.cholesky_solve(np.ones(3), np.eye(3)), r"b must be \(\.\.\., n, k\)"),
    (lambda: linalg.cholesky_solve(np.ones((3, 1)), np.diag([1.0, 0.0, 1.0])), "singular"),
    (lambda: linalg.tri_logdet(np.ones((2, 3))), "square"),
    (lambda: linalg.tril(np.ones(3)), "at least 2 dims"),
    (lambda: linalg.diagonal(np.ones((3, 3)), 0, 0, 0), "must differ"),
    (lambda: linalg.diagonal(np.ones((3, 3)), 0, 0, 2), "out of range"),
    (lambda: linalg.diag_embed(1.0), "at least 1 dim"),
])
def test_bad_input_raises_naming_function_and_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_solve_triangular_requires_upper_as_torch():
    with pytest.raises(TypeError, match="upper"):
        linalg.solve_triangular(np.eye(2), np.ones((2, 1)))


# ---- NumPy functions and torch methods on Tensors -----------------------------

def test_numpy_functions_on_tensors_record_the_ops():
    a = spd((2,), 3)
    t = csvi.tensor(a, requires_grad=True)
    L = np.linalg.cholesky(t)
    assert isinstance(L, csvi.Tensor)
    np.testing.assert_allclose(L.numpy(), np.linalg.cholesky(a), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.cholesky(t, upper=True).numpy(),
                               np.linalg.cholesky(a, upper=True), rtol=1e-12)
    np.testing.assert_array_equal(np.diagonal(t, 1, 1, 2).numpy(), np.diagonal(a, 1, 1, 2))
    np.testing.assert_array_equal(np.diagonal(t).numpy(), np.diagonal(a))
    np.testing.assert_array_equal(np.triu(t, -1).numpy(), np.triu(a, -1))
    np.sum(np.diagonal(L, 0, -2, -1)).backward()
    assert t.grad.shape == a.shape


def test_torch_matrix_methods():
    a = RNG.standard_normal((2, 3, 4))
    t = csvi.tensor(a)
    np.testing.assert_array_equal(t.mT.numpy(), np.swapaxes(a, -1, -2))
    np.testing.assert_array_equal(t.tril(1).numpy(), np.tril(a, 1))
    np.testing.assert_array_equal(t.triu(diagonal=1).numpy(), np.triu(a, 1))
    np.testing.assert_array_equal(t.diagonal().numpy(), np.diagonal(a))  # dims 0, 1 as torch
    np.testing.assert_array_equal(t.diagonal(dim1=-2, dim2=-1).numpy(),
                                  np.diagonal(a, 0, -2, -1))
    np.testing.assert_array_equal(csvi.tensor(a[0, 0]).diag_embed().numpy(), np.diag(a[0, 0]))


# ---- compiled replay ----------------------------------------------------------

def _model():
    m = csvi.param("m", np.array([[1.0, 0.2, 0.0], [0.3, 1.1, 0.0], [0.1, -0.2, 0.9]]))
    z = csvi.sample("z", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
    L = linalg.cholesky(m @ m.T + np.eye(3))
    x = linalg.solve_triangular(L, csvi.reshape(z, (3, 1)), upper=False)
    y = linalg.cholesky_solve(x, linalg.tril(L))
    csvi.factor("f", -(x * x).sum() - linalg.tri_logdet(L) + linalg.diagonal(
        linalg.diag_embed(y[:, 0])).sum() * 0.1)


def _guide():
    loc = csvi.param("loc", np.zeros(3))
    csvi.sample("z", dist.Normal(loc, 1.0).to_event(1))


@pytest.mark.parametrize("particles", [1, 3])
def test_compiled_run_equals_eager_run(particles):
    assert_compiled_matches_eager(_model, lambda: _guide, lambda: Adam({"lr": 0.05}),
                                  lambda: Trace_ELBO(num_particles=particles), steps=15,
                                  rtol=1e-12 if particles == 1 else 1e-9)
