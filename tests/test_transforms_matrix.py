"""Transforms onto matrices (CorrCholesky, LowerCholesky, SoftplusLowerCholesky)
and the matrix constraints: values against torch's transforms where torch has
them, log|det J| against a finite-difference Jacobian over the free
coordinates, tape gradients against central differences, round trips, and
each constraint's check against cases built by hand."""
import numpy as np
import pytest

import csvi
from csvi import constraints
from csvi import transforms as T

RNG = np.random.default_rng(7)


def _value(t):
    return np.asarray(csvi.Tensor.numpy(t) if isinstance(t, csvi.Tensor) else t, dtype=np.float64)


def _fd_jacobian(f, x, h=1e-6):
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += h
        xm.flat[i] -= h
        cols.append((f(xp).ravel() - f(xm).ravel()) / (2 * h))
    return np.stack(cols, axis=-1)


def _tape_grad(fn, x0):
    x = csvi.tensor(x0, requires_grad=True)
    fn(x).backward()
    return x.grad


def _fd_grad(f, x0, h=1e-6):
    return _fd_jacobian(lambda z: np.atleast_1d(f(z)), x0, h)[0].reshape(np.shape(x0))


def _lower(d):
    return np.tril_indices(d)


def _strict_lower(d):
    return np.tril_indices(d, -1)


# ---- CorrCholeskyTransform ---------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_corr_cholesky_lands_on_corr_cholesky_and_round_trips(d):
    t = T.CorrCholeskyTransform()
    n = d * (d - 1) // 2
    x = RNG.normal(scale=2.0, size=(4, n))
    y = _value(t(x))
    assert y.shape == (4, d, d) == t.forward_shape(x.shape)
    assert t.inverse_shape(y.shape) == x.shape
    assert constraints.corr_cholesky.check(y)
    np.testing.assert_allclose(np.einsum("bij,bij->bi", y, y), 1.0, rtol=1e-14)
    np.testing.assert_allclose(_value(t.inv(y)), x, rtol=1e-9, atol=1e-10)


def _corr_cholesky_reference(x, d):
    """torch's construction, written out entry by entry: z = tanh(x) row by
    row below the diagonal, y_ij = z_ij sqrt(1 - sum_{k<j} y_ik^2)."""
    z = np.zeros((d, d))
    z[np.tril_indices(d, -1)] = np.tanh(x)
    y = np.zeros((d, d))
    for i in range(d):
        for j in range(i + 1):
            rest = np.sqrt(1.0 - np.sum(y[i, :j] ** 2))
            y[i, j] = rest if j == i else z[i, j] * rest
    return y


def test_corr_cholesky_matches_the_construction():
    t = T.CorrCholeskyTransform()
    x = RNG.normal(size=(3, 2, 10))
    y = _value(t(x))
    for idx in np.ndindex(3, 2):
        np.testing.assert_allclose(y[idx], _corr_cholesky_reference(x[idx], 5), rtol=1e-13,
                                   atol=1e-15)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_corr_cholesky_log_det_matches_the_numerical_jacobian(d):
    t = T.CorrCholeskyTransform()
    rows, cols = _strict_lower(d)
    x = RNG.normal(size=d * (d - 1) // 2)
    jac = _fd_jacobian(lambda z: _value(t(z))[rows, cols], x)
    sign, logdet = np.linalg.slogdet(jac)
    assert sign != 0
    np.testing.assert_allclose(_value(t.log_abs_det_jacobian(x, t(x))), logdet, rtol=1e-7)


def test_corr_cholesky_is_finite_where_tanh_saturates():
    t = T.CorrCholeskyTransform()
    x = np.array([40.0, -40.0, 400.0, 3.0, -400.0, 0.5])
    y = _value(t(x))
    assert np.all(np.isfinite(y)) and np.all(np.diagonal(y) > 0)
    ldj = _value(t.log_abs_det_jacobian(x, y))
    assert np.isfinite(ldj) and ldj < -1000
    assert np.all(np.isfinite(_value(t.inv(y))))


def test_corr_cholesky_gradients_match_finite_differences():
    t = T.CorrCholeskyTransform()
    x0 = RNG.normal(size=(2, 6))
    w = RNG.normal(size=(2, 4, 4))
    v = RNG.normal(size=2)
    grad = _tape_grad(lambda x: csvi.sum(t(x) * w), x0)
    np.testing.assert_allclose(grad, _fd_grad(lambda z: np.sum(_value(t(z)) * w), x0),
                               rtol=1e-6, atol=1e-8)
    grad = _tape_grad(lambda x: csvi.sum(t.log_abs_det_jacobian(x, t(x)) * v), x0)
    np.testing.assert_allclose(
        grad, _fd_grad(lambda z: np.sum(_value(t.log_abs_det_jacobian(z, t(z))) * v), x0),
        rtol=1e-6, atol=1e-8)
    y0 = _value(t(x0))
    u = RNG.normal(size=(2, 6))
    # the inverse's gradient, along the manifold: perturb x, map to y, take the inverse
    grad = _tape_grad(lambda x: csvi.sum(t.inv(t(x)) * u), x0)
    np.testing.assert_allclose(grad, u, rtol=1e-6, atol=1e-8)
    assert np.allclose(_value(t.inv(y0)), x0)


def test_corr_cholesky_shape_errors():
    t = T.CorrCholeskyTransform()
    with pytest.raises(ValueError, match="not the strict lower triangle"):
        t(np.zeros(4))
    with pytest.raises(ValueError, match="CorrCholeskyTransform"):
        t(0.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., D, D\)"):
        t.inv(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="use .domain.event_dim"):
        t.event_dim
    assert (t.domain.event_dim, t.codomain.event_dim) == (1, 2)


def test_biject_to_corr_cholesky_and_a_compose_that_changes_rank():
    assert isinstance(T.biject_to(constraints.corr_cholesky), T.CorrCholeskyTransform)
    assert isinstance(T.transform_to(constraints.corr_cholesky), T.CorrCholeskyTransform)
    # an elementwise map in front is read over the vector; the whole maps 1 dim to 2
    c = T.ComposeTransform([T.AffineTransform(0.5, 2.0), T.CorrCholeskyTransform()])
    assert (c.domain.event_dim, c.codomain.event_dim) == (1, 2)
    x = RNG.normal(size=(3, 3))
    y = c(x)
    expected = 3 * np.log(2.0) + _value(T.CorrCholeskyTransform().log_abs_det_jacobian(
        0.5 + 2.0 * x, y))
    np.testing.assert_allclose(_value(c.log_abs_det_jacobian(x, y)), expected, rtol=1e-13)
    np.testing.assert_allclose(_value(c.inv(y)), x, rtol=1e-9)
    # the inverse reads 2 dims and writes 1
    assert (c.inv.domain.event_dim, c.inv.codomain.event_dim) == (2, 1)
    np.testing.assert_allclose(_value(c.inv.log_abs_det_jacobian(y, x)),
                               -_value(c.log_abs_det_jacobian(x, y)), rtol=1e-13)


# ---- LowerCholeskyTransform, SoftplusLowerCholeskyTransform ------------------------------

DIAG_MAPS = {
    "lower_cholesky": (T.LowerCholeskyTransform, constraints.lower_cholesky, np.exp),
    "softplus_lower_cholesky": (T.SoftplusLowerCholeskyTransform,
                                constraints.softplus_lower_cholesky, lambda v: np.logaddexp(0, v)),
}


@pytest.mark.parametrize("name", sorted(DIAG_MAPS))
def test_diagonal_maps_against_numpy(name):
    make, c, diag_map = DIAG_MAPS[name]
    t = make()
    x = RNG.normal(scale=3.0, size=(2, 4, 4))
    x[0, 1, 1] = 800.0                                        # exp would overflow off-diagonal
    x[0, 0, 3] = 800.0
    y = _value(t(x))
    expected = np.tril(x, -1)
    with np.errstate(over="ignore"):
        expected[..., range(4), range(4)] = diag_map(np.diagonal(x, 0, -2, -1))
    np.testing.assert_allclose(y, expected, rtol=1e-14)
    x[0, 1, 1] = 3.0
    y = _value(t(x))
    assert c.check(y)
    assert t.codomain is c
    # the inverse recovers the lower triangle; the upper one is dropped
    np.testing.assert_allclose(_value(t.inv(y)), np.tril(x), rtol=1e-12, atol=1e-14)
    assert T.transform_to(c).__class__ is make
    with pytest.raises(NotImplementedError):
        T.biject_to(c)


@pytest.mark.parametrize("name", sorted(DIAG_MAPS))
def test_diagonal_maps_log_det_and_gradients(name):
    make, _, _ = DIAG_MAPS[name]
    t = make()
    d = 3
    rows, cols = _lower(d)
    x0 = RNG.normal(size=(d, d))

    def on_lower(v):
        m = np.zeros((d, d))
        m[rows, cols] = v
        return _value(t(m))[rows, cols]

    sign, logdet = np.linalg.slogdet(_fd_jacobian(on_lower, x0[rows, cols]))
    np.testing.assert_allclose(_value(t.log_abs_det_jacobian(x0, t(x0))), logdet, rtol=1e-7)
    w = RNG.normal(size=(d, d))
    grad = _tape_grad(lambda x: csvi.sum(t(x) * w) + t.log_abs_det_jacobian(x, None), x0)
    expected = _fd_grad(lambda z: np.sum(_value(t(z)) * w)
                        + _value(t.log_abs_det_jacobian(z, None)), x0)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)
    assert np.all(grad[np.triu_indices(d, 1)] == 0)
    with pytest.raises(ValueError, match="square matrices"):
        t(np.zeros((2, 3)))


# ---- matrix and vector constraints -------------------------------------------------------

def _corr(d, rng):
    a = rng.normal(size=(d, 2 * d))
    cov = a @ a.T
    s = np.sqrt(np.diag(cov))
    return cov / np.outer(s, s)


# ---- UnitLowerCholeskyTransform (one op, UNIT_TRIL) -----------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (3, 2, 5, 5), (0, 0), (2, 0, 0)], ids=str)
def test_unit_lower_cholesky_against_numpy_round_trip_and_gradients(shape):
    t = T.UnitLowerCholeskyTransform()
    x = RNG.normal(size=shape)
    d = shape[-1]
    y = _value(t(x))
    np.testing.assert_array_equal(y, np.tril(x, -1) + np.eye(d))
    np.testing.assert_array_equal(_value(t.inv(y)), np.tril(x, -1))
    assert np.all(constraints.unit_lower_cholesky.check(y))
    assert _value(t.log_abs_det_jacobian(x, y)).shape == shape[:-2]
    if x.size:  # d/dx of sum(w * t(x)): w on the strict lower triangle, 0 elsewhere
        w = RNG.normal(size=shape)
        g = _tape_grad(lambda z: (t(z) * w).sum(), x)
        np.testing.assert_allclose(g, _fd_grad(lambda z: float((_value(t(z)) * w).sum()), x),
                                   atol=1e-8)
        np.testing.assert_array_equal(g, np.tril(w, -1))


def test_unit_lower_cholesky_refuses_non_square_input():
    with pytest.raises(ValueError, match=r"UnitLowerCholeskyTransform: expected \(\.\.\., D, D\)"
                                         r".*\(3, 4\)"):
        T.UnitLowerCholeskyTransform()(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"UnitLowerCholeskyTransform\.inv"):
        T.UnitLowerCholeskyTransform().inv(np.zeros(3))


def test_matrix_constraints_accept_and_refuse():
    corr = _corr(3, RNG)
    lc = np.linalg.cholesky(corr)
    cov = corr * 4.0
    cases = [
        # constraint, good values, bad values
        (constraints.lower_cholesky, [np.linalg.cholesky(cov)], [lc.T, -lc, np.full((3, 3), np.nan)]),
        (constraints.corr_cholesky, [lc], [np.linalg.cholesky(cov), lc.T]),
        (constraints.positive_definite, [cov, corr],
         [np.diag([1.0, -1.0, 1.0]), cov + np.triu(np.ones((3, 3)), 1)]),
        (constraints.positive_semidefinite, [np.diag([1.0, 0.0, 2.0])], [np.diag([1.0, -1e-3, 1.0])]),
        (constraints.corr_matrix, [corr], [cov, np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])]),
        (constraints.lower_triangular, [np.tril(RNG.normal(size=(3, 3)))], [np.ones((3, 3))]),
        (constraints.symmetric, [cov], [cov + np.triu(np.ones((3, 3)), 1)]),
        (constraints.ordered_vector, [np.array([-2.0, 0.0, 3.0])], [np.array([0.0, 0.0, 1.0]),
                                                                    np.array([1.0, np.nan, 2.0])]),
        (constraints.positive_ordered_vector, [np.array([0.5, 1.0, 3.0])], [np.array([-1.0, 1.0, 2.0])]),
    ]
    for c, good, bad in cases:
        for v in good:
            assert c.check(v), (c, v)
            assert c.first_violation(np.stack([v, v])) == -1
        for v in bad:
            assert not c.check(v), (c, v)
            k = c.first_violation(np.stack([good[0], v]))
            assert k >= good[0].size, (c, v, k)             # the second event is reported
        assert isinstance(c.describe(), str) and len(c.describe()) > 10
    assert constraints.lower_cholesky.event_dim == 2 and constraints.ordered_vector.event_dim == 1
    assert constraints.corr_cholesky.first_violation(np.zeros(3)) == 0   # not a matrix


def test_interval_constraints_with_array_bounds():
    c = constraints.integer_interval(0, np.array([3.0, 5.0]))
    assert c.first_violation(np.array([[1.0, 5.0], [3.0, 2.0]])) == -1
    assert c.first_violation(np.array([[1.0, 5.0], [4.0, 2.0]])) == 2
    assert c.first_violation(np.array([[1.0, 4.5], [3.0, 2.0]])) == 1
    assert c.is_discrete and "upper_bound" in c.describe()
    scale = csvi.tensor(np.array([1.0, 2.0]))
    g = constraints.greater_than_eq(scale)
    assert g.lower_bound is scale
    assert g.first_violation(np.array([1.0, 2.0])) == -1
    assert g.first_violation(np.array([[1.0, 2.0], [1.5, 1.5]])) == 3
    # a value broadcast against larger bounds: the index is into the value itself
    assert constraints.less_than(np.array([[1.0], [3.0]])).first_violation(np.array([0.0, 2.0])) == 1
    with pytest.raises(TypeError, match="lower_bound"):
        constraints.greater_than("a")


def test_biject_to_array_bounds():
    lo, hi = np.array([0.0, -1.0, 2.0]), np.array([1.0, 5.0, 2.5])
    for c in [constraints.interval(lo, hi), constraints.greater_than(lo), constraints.less_than(hi)]:
        t = T.biject_to(c)
        x = RNG.normal(scale=3.0, size=(4, 3))
        y = t(x)
        assert c.check(y), c
        np.testing.assert_allclose(_value(t.inv(y)), x, rtol=1e-8, atol=1e-9)
    # gradients reach Tensor bounds
    lo_t = csvi.tensor(lo, requires_grad=True)
    csvi.sum(T.biject_to(constraints.greater_than(lo_t))(np.zeros(3))).backward()
    np.testing.assert_allclose(lo_t.grad, np.ones(3))


# ---- transforms over dense linear algebra (csvi.linalg) ----------------------------------

def _lower_cholesky(shape, d):
    a = RNG.normal(size=shape + (d, d))
    return np.linalg.cholesky(a @ np.swapaxes(a, -1, -2) + d * np.eye(d))


def test_lower_cholesky_affine_against_numpy_and_scipy():
    from scipy import stats
    loc, L = RNG.normal(size=3), _lower_cholesky((), 3)
    t = T.LowerCholeskyAffine(loc, L)
    x = RNG.normal(size=(5, 3))
    y = _value(t(x))
    np.testing.assert_allclose(y, loc + x @ L.T, rtol=1e-13)
    np.testing.assert_allclose(_value(t.inv(y)), x, rtol=1e-10, atol=1e-12)
    ldj = _value(t.log_abs_det_jacobian(x, y))
    assert ldj.shape == (5,)
    np.testing.assert_allclose(ldj, np.linalg.slogdet(_fd_jacobian(lambda z: _value(t(z)), x[0]))[1],
                               rtol=1e-7)
    # a standard normal pushed through it is MVN(loc, L L^T)
    d = csvi.distributions.TransformedDistribution(csvi.distributions.Normal(np.zeros(3), 1.0), t)
    assert d.event_shape == (3,) and d.batch_shape == ()
    np.testing.assert_allclose(_value(d.log_prob(y)),
                               stats.multivariate_normal(loc, L @ L.T).logpdf(y), rtol=1e-11)


def test_lower_cholesky_affine_batched_and_gradients():
    from gradcheck import assert_grads_match
    loc, L = RNG.normal(size=(2, 1, 3)), _lower_cholesky((4,), 3)
    t = T.LowerCholeskyAffine(loc, L)
    x = RNG.normal(size=(3,))
    assert t.forward_shape(x.shape) == (2, 4, 3)
    y = _value(t(x))
    np.testing.assert_allclose(y, loc + np.einsum("bij,j->bi", L, x), rtol=1e-13)
    np.testing.assert_allclose(_value(t.inv(y)), np.broadcast_to(x, y.shape), rtol=1e-10)
    assert t.log_abs_det_jacobian(x, y).shape == (4,)

    def through(xv, locv, Lv):
        tt = T.LowerCholeskyAffine(locv, Lv)
        out = tt(xv)
        return out + tt.inv(out * 0.5) + csvi.expand_dims(tt.log_abs_det_jacobian(xv, out), -1)

    assert_grads_match(through, [RNG.normal(size=(2, 3)), RNG.normal(size=3), _lower_cholesky((), 3)],
                       rtol=1e-5)
    with pytest.raises(ValueError, match="LowerCholeskyAffine: loc and scale_tril"):
        T.LowerCholeskyAffine(np.zeros(2), np.eye(3))


def test_cholesky_transform_log_det_over_the_lower_triangle():
    t = T.CholeskyTransform()
    a = RNG.normal(size=(3, 6))
    x = a @ a.T
    rows, cols = _lower(3)

    def on_lower(v):
        m = np.zeros((3, 3))
        m[rows, cols] = v
        m = m + np.tril(m, -1).T
        return _value(t(m))[rows, cols]

    y = t(x)
    np.testing.assert_allclose(_value(y), np.linalg.cholesky(x), rtol=1e-12)
    np.testing.assert_allclose(_value(t.inv(y)), x, rtol=1e-12)
    logdet = np.linalg.slogdet(_fd_jacobian(on_lower, x[rows, cols]))[1]
    np.testing.assert_allclose(_value(t.log_abs_det_jacobian(x, y)), logdet, rtol=1e-6)


def test_corr_matrix_bijection_lands_round_trips_and_has_the_right_log_det():
    t = T.biject_to(constraints.corr_matrix)
    assert T.transform_to(constraints.corr_matrix).codomain.event_dim == 2
    assert (t.domain.event_dim, t.codomain.event_dim) == (1, 2)
    x = RNG.normal(size=(2, 6))
    c = _value(t(x))
    assert constraints.corr_matrix.check(c)
    np.testing.assert_allclose(_value(t.inv(c)), x, rtol=1e-8, atol=1e-10)
    rows, cols = _strict_lower(4)
    logdet = np.linalg.slogdet(_fd_jacobian(lambda z: _value(t(z))[rows, cols], x[0]))[1]
    np.testing.assert_allclose(_value(t.log_abs_det_jacobian(x, t(x)))[0], logdet, rtol=1e-6)


def test_transform_to_positive_definite():
    t = T.transform_to(constraints.positive_definite)
    x = RNG.normal(size=(3, 4, 4))
    y = _value(t(x))
    assert constraints.positive_definite.check(y)
    np.testing.assert_allclose(_value(t.inv(y)), np.tril(x), rtol=1e-9, atol=1e-12)
    with pytest.raises(NotImplementedError):
        T.biject_to(constraints.positive_definite)
    assert constraints.positive_semidefinite.check(_value(T.transform_to(
        constraints.positive_semidefinite)(x)))
