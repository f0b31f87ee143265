"""The kernels' fast paths for common shapes (issue 14's speed work) against
independent references: each fast path's values against NumPy/SciPy, its
gradients against finite differences, and where the general path can be
reached with the same numbers, the two against each other.

Covered: Adam's branch-free update (raw gradients vs the blocked path with
clip_args / weight decay / maximize), the binary ops' row form (a row or
column vector against a matrix), WHERE's flat form, SOLVE_TRIANGULAR with one
right-hand side (a vector solve instead of dtrsm), matmul_nt with one row
(a mat-vec), v @ B with B wider than 64 columns (A^T v without dgemm) and the
Normal log-density's flat form (also with one loc and one scale)."""
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

import csvi
import csvi.optim as optim
from csvi import _core
from gradcheck import assert_grads_match

# ---- Adam ----------------------------------------------------------------------------


def _adam_reference(p, grads, lr, betas, eps, weight_decay=0.0, amsgrad=False,
                    maximize=False):
    """torch.optim.Adam's algorithm box, step by step, in NumPy."""
    b1, b2 = betas
    m = v = vmax = 0.0
    for t, g in enumerate(grads, 1):
        g = (-g if maximize else g) + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vv = v
        if amsgrad:
            vmax = np.maximum(vmax, v)
            vv = vmax
        p = p - lr / (1 - b1 ** t) * m / (np.sqrt(vv) / np.sqrt(1 - b2 ** t) + eps)
    return p


def _run_adam(args, p0, grads, clip_args=None):
    opt = optim.Adam(dict(args), clip_args=clip_args)
    p = p0.copy()
    for g in grads:
        opt.step([("w", p, g)])
    return p


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("n", [3, 512, 1301])  # below, at and across the 512-element blocks
def test_adam_raw_gradient_path_equals_the_blocked_path(n, amsgrad):
    rng = np.random.default_rng(n)
    p0 = rng.normal(size=n)
    grads = [rng.normal(scale=2.0, size=n) for _ in range(6)]
    args = {"lr": 0.05, "betas": (0.8, 0.95), "amsgrad": amsgrad}
    raw = _run_adam(args, p0, grads)
    # a clip value no gradient reaches: the same numbers through the blocked path
    blocked = _run_adam(args, p0, grads, clip_args={"clip_value": 1e300})
    np.testing.assert_array_equal(raw, blocked)
    np.testing.assert_allclose(raw, _adam_reference(p0, grads, 0.05, (0.8, 0.95), 1e-8,
                                                    amsgrad=amsgrad), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("extra", [{"weight_decay": 0.3}, {"maximize": True},
                                   {"weight_decay": 0.1, "amsgrad": True, "maximize": True}])
def test_adam_blocked_path_matches_the_reference_across_blocks(extra):
    rng = np.random.default_rng(5)
    p0 = rng.normal(size=1100)
    grads = [rng.normal(size=1100) for _ in range(5)]
    args = {"lr": 0.01, "betas": (0.9, 0.99), **extra}
    np.testing.assert_allclose(_run_adam(args, p0, grads),
                               _adam_reference(p0, grads, 0.01, (0.9, 0.99), 1e-8, **extra),
                               rtol=1e-12, atol=1e-14)


# ---- binary ops: a row or column vector against a matrix ------------------------------

_BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
    "pow": (lambda a, b: a ** b, np.power),
}

# (shape of a, shape of b): the output is a matrix, one side walks along rows or is
# one number per row
_ROW_SHAPES = [((7, 1), (7, 9)), ((7, 9), (7, 1)), ((9,), (7, 9)), ((7, 9), (1, 9)),
               ((1, 9), (7, 1)), ((7, 1), (1, 9)), ((2, 7, 1), (7, 9))]


@pytest.mark.parametrize("op", sorted(_BINARY))
@pytest.mark.parametrize("sa, sb", _ROW_SHAPES, ids=str)
def test_binary_row_form_values_and_gradients(op, sa, sb):
    fn, ref = _BINARY[op]
    rng = np.random.default_rng(3)
    a = rng.uniform(0.5, 2.0, sa)
    b = rng.uniform(0.5, 2.0, sb)
    out = fn(csvi.tensor(a), csvi.tensor(b))
    np.testing.assert_allclose(out.numpy(), ref(a, b), rtol=1e-14)
    assert_grads_match(fn, [a, b])


def test_binary_row_form_gradient_of_one_number_per_row_is_each_rows_sum():
    rng = np.random.default_rng(4)
    scale = csvi.tensor(rng.normal(size=(40, 1)), requires_grad=True)
    mat = csvi.tensor(rng.normal(size=(40, 300)), requires_grad=True)
    g = rng.normal(size=(40, 300))
    ((scale * mat) * g).sum().backward()
    np.testing.assert_allclose(scale.grad, (g * mat.numpy()).sum(1, keepdims=True),
                               rtol=1e-12)
    np.testing.assert_allclose(mat.grad, g * scale.numpy(), rtol=1e-15)


# ---- WHERE -----------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["x_or_number", "number_or_x", "x_or_y", "numbers"])
def test_where_flat_form_values_and_gradients(form):
    rng = np.random.default_rng(6)
    mask = np.tril(np.ones((12, 12)), -1) != 0
    x, y = rng.normal(size=(12, 12)), rng.normal(size=(12, 12))
    fns = {"x_or_number": (lambda x, y: csvi.where(mask, x, 0.0) + y, np.where(mask, x, 0.0) + y),
           "number_or_x": (lambda x, y: csvi.where(mask, 2.5, y) * x, np.where(mask, 2.5, y) * x),
           "x_or_y": (lambda x, y: csvi.where(mask, x, y), np.where(mask, x, y)),
           "numbers": (lambda x, y: csvi.where(mask, x[0, 0], y[1, 1]) + x - y,
                       np.where(mask, x[0, 0], y[1, 1]) + x - y)}
    fn, expected = fns[form]
    np.testing.assert_array_equal(fn(csvi.tensor(x), csvi.tensor(y)).numpy(), expected)
    assert_grads_match(fn, [x, y])


# ---- SOLVE_TRIANGULAR with one right-hand side ------------------------------------------

def _triangular(rng, n, lower):
    t = rng.normal(size=(n, n)) * 0.3 + np.diag(rng.uniform(1.0, 2.0, n))
    return np.tril(t) if lower else np.triu(t)


@pytest.mark.parametrize("unit", [False, True])
@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("upper", [False, True])
def test_solve_triangular_one_rhs_values_and_gradients(upper, left, trans, unit):
    rng = np.random.default_rng(int(upper) + 2 * left + 4 * trans + 8 * unit)
    n = 9
    t = _triangular(rng, n, not upper)
    b = rng.normal(size=(n, 1) if left else (1, n))
    kw = dict(upper=upper, left=left, transpose=trans, unitriangular=unit)
    x = csvi.linalg.solve_triangular(csvi.tensor(t), csvi.tensor(b), **kw).numpy()
    # scipy solves op(t) x = b from the left; a right solve x op(t) = b is op(t)^T x^T = b^T
    tt = t.copy()
    if unit:
        np.fill_diagonal(tt, 1.0)
    expected = (scipy.linalg.solve_triangular(tt, b, lower=not upper, trans=int(trans))
                if left else
                scipy.linalg.solve_triangular(tt, b.T, lower=not upper, trans=int(not trans)).T)
    np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-13)
    # the vector solve against dtrsm's: the same column inside a two-column solve
    wide = np.concatenate([b, rng.normal(size=b.shape)], axis=1 if left else 0)
    x2 = csvi.linalg.solve_triangular(csvi.tensor(t), csvi.tensor(wide), **kw).numpy()
    np.testing.assert_allclose(x, x2[:, :1] if left else x2[:1], rtol=1e-12, atol=1e-13)
    # gradients: only the triangle of t is read (and not its diagonal when unit)
    mask = (np.triu(np.ones((n, n)), int(unit)) if upper
            else np.tril(np.ones((n, n)), -int(unit)))

    def fn(t, b):
        return csvi.linalg.solve_triangular(t * mask + (np.eye(n) if unit else 0.0), b, **kw)

    assert_grads_match(fn, [t, b])


def test_multivariate_normal_log_prob_one_point_matches_scipy_with_gradients():
    rng = np.random.default_rng(8)
    d = 70
    L = np.tril(rng.normal(size=(d, d)) * 0.2) + np.diag(rng.uniform(0.5, 1.5, d))
    loc, x = rng.normal(size=d), rng.normal(size=d)
    lp = csvi.distributions.MultivariateNormal(loc, scale_tril=L).log_prob(x)
    assert lp.numpy() == pytest.approx(
        scipy.stats.multivariate_normal(loc, L @ L.T).logpdf(x), rel=1e-11)
    assert_grads_match(
        lambda loc, L, x: csvi.distributions.MultivariateNormal(
            loc, scale_tril=csvi.tril(L) + np.diag(np.full(d, 2.0))).log_prob(x),
        [loc, L, x], rtol=1e-5, atol=1e-6)


# ---- products with one vector side -------------------------------------------------------

@pytest.mark.parametrize("m", [3, 100])
def test_matmul_nt_one_row_values_and_gradients(m):
    rng = np.random.default_rng(m)
    a, b = rng.normal(size=(1, 11)), rng.normal(size=(m, 11))
    np.testing.assert_allclose(_core.matmul_nt(csvi.tensor(a), csvi.tensor(b)).numpy(),
                               a @ b.T, rtol=1e-13, atol=1e-14)
    assert_grads_match(_core.matmul_nt, [a, b])


@pytest.mark.parametrize("cols", [64, 65, 200, 256])
def test_vector_times_wide_matrix_values_and_gradients(cols):
    rng = np.random.default_rng(cols)
    v, B = rng.normal(size=(130,)), rng.normal(size=(130, cols))
    np.testing.assert_allclose((csvi.tensor(v) @ csvi.tensor(B)).numpy(), v @ B, rtol=1e-12)
    assert_grads_match(lambda v, B: v @ B, [v, B])
    # and B^T v through a column: the gradient of v in M @ v with M (cols, 130)
    assert_grads_match(lambda M, v: M @ v, [B.T.copy(), v])


# ---- Normal log-density: the flat form -----------------------------------------------

@pytest.mark.parametrize("loc_shape, scale_shape", [((50,), ()), ((), ()), ((50,), (50,)),
                                                    ((), (50,))], ids=str)
def test_normal_log_prob_flat_form_values_and_gradients(loc_shape, scale_shape):
    rng = np.random.default_rng(9)
    x = rng.normal(size=50)
    loc = rng.normal(size=loc_shape)
    scale = rng.uniform(0.5, 2.0, scale_shape)
    lp = csvi.distributions.Normal(loc, scale).log_prob(x)
    np.testing.assert_allclose(lp.numpy(), scipy.stats.norm(loc, scale).logpdf(x), rtol=1e-13)
    assert_grads_match(lambda x, loc, scale: csvi.distributions.Normal(loc, scale).log_prob(x),
                       [x, loc, scale])


@pytest.mark.parametrize("scale", [1.0, 0.5, 8.0, 2.0 ** -1000, 2.0 ** 1000, 3.0, 0.1],
                         ids=str)
def test_normal_log_prob_one_scale_flat_form(scale):
    # a power-of-two scale multiplies by its reciprocal instead of dividing
    # (dist_normal.c, reciprocal_exact): the premise, d / s == d * (1 / s)
    # bit for bit for such s down to subnormal d, and the values against SciPy
    rng = np.random.default_rng(13)
    with np.errstate(over="ignore"):  # 1e300 * 2^1000: infinite data too
        x = np.concatenate([rng.normal(size=200), [1e300, -1e300, 5e-324, 1e-310, 0.0]]) * scale
    x[:50] *= 2.0 ** -1040
    if np.log2(scale) % 1 == 0:
        d = np.concatenate([x, x - 0.7 * scale, rng.normal(size=1000) * 2.0 ** -1060])
        np.testing.assert_array_equal(d / scale, d * (1.0 / scale))
    for loc in (np.float64(0.7 * scale), np.full(x.size, -0.3 * scale)):
        lp = csvi.distributions.Normal(loc, scale).log_prob(x).numpy()
        with np.errstate(over="ignore"):
            np.testing.assert_allclose(lp, scipy.stats.norm(loc, scale).logpdf(x), rtol=1e-13)


def test_normal_log_prob_with_one_loc_and_one_scale_sums_their_gradients():
    # a latent vector under one prior: loc's and scale's gradients are sums over
    # the vector (in registers), also when loc and scale are one tensor
    rng = np.random.default_rng(12)
    x, g = rng.normal(size=300), rng.normal(size=300)
    loc, scale = csvi.tensor(0.3, requires_grad=True), csvi.tensor(1.4, requires_grad=True)
    (csvi.distributions.Normal(loc, scale).log_prob(x) * g).sum().backward()
    z = (x - 0.3) / 1.4
    np.testing.assert_allclose(loc.grad, np.sum(g * z / 1.4), rtol=1e-12)
    np.testing.assert_allclose(scale.grad, np.sum(g * (z * z - 1) / 1.4), rtol=1e-12)
    assert_grads_match(lambda x, p: csvi.distributions.Normal(p, p).log_prob(x),
                       [rng.normal(size=40), np.array(1.3)])


def test_normal_log_prob_of_its_own_loc_accumulates_both_gradients():
    # value and loc one tensor: the flat VJP must not treat them as two buffers
    rng = np.random.default_rng(10)
    z, s = rng.normal(size=20), rng.uniform(0.5, 2.0, 20)
    assert_grads_match(lambda z, s: csvi.distributions.Normal(z, s).log_prob(z * 1.5), [z, s])
    t = csvi.tensor(z, requires_grad=True)
    csvi.distributions.Normal(t, s).log_prob(t).sum().backward()
    np.testing.assert_array_equal(t.grad, np.zeros(20))


# ---- GATHER's VJP: runs of equal indices ----------------------------------------------

@pytest.mark.parametrize("index", [np.repeat(np.arange(6), 4), np.array([3, 3, 0, 5, 5, 5, 3, 1]),
                                   np.array([2])], ids=["sorted runs", "mixed", "one"])
def test_gather_gradient_adds_every_use_of_an_index(index):
    rng = np.random.default_rng(11)
    x = rng.normal(size=6)
    g = rng.normal(size=index.size)
    t = csvi.tensor(x, requires_grad=True)
    (t[index] * g).sum().backward()
    expected = np.zeros(6)
    np.add.at(expected, index, g)
    np.testing.assert_allclose(t.grad, expected, rtol=1e-15, atol=0)
    assert_grads_match(lambda x: x[index], [x])


@pytest.mark.parametrize("shape", [(300, 784), (5, 7)])
@pytest.mark.parametrize("mean", [False, True])
def test_sum_over_rows_gradient_spreads_each_rows_number(shape, mean):
    """SUM's VJP when a matrix's rows reduce to a vector (a per-image
    log-density summed over its pixels): the row form (over csvi's pool from
    65,536 elements) against NumPy's broadcast, exactly, and against the
    general loop's bits (the same sum over the leading axis of the
    transpose)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape[0])
    t = csvi.tensor(x, requires_grad=True)
    ((t.mean(-1) if mean else t.sum(-1)) * w).sum().backward()
    scale = 1.0 / shape[1] if mean else 1.0
    np.testing.assert_array_equal(t.grad, np.broadcast_to((scale * w)[:, None], shape))
    u = csvi.tensor(np.ascontiguousarray(x.T), requires_grad=True)
    ((u.mean(0) if mean else u.sum(0)) * w).sum().backward()
    np.testing.assert_array_equal(t.grad, u.grad.T)


# ---- the compiled loop's gradient check ------------------------------------------------

@pytest.mark.parametrize("bad", [0, 5, 6])  # in a group of four and in the tail of seven
def test_compiled_run_stops_on_a_non_finite_gradient_and_keeps_the_params(bad):
    mask = np.ones(7)
    mask[bad] = 0.0

    def model():
        w = csvi.param("w", np.ones(7))
        csvi.factor("f", csvi.sum(csvi.sqrt(w * mask)))  # finite, but d/dw sqrt(0) = inf

    def guide():
        pass

    csvi.clear_param_store()
    svi = csvi.infer.SVI(model, guide, optim.Adam({"lr": 0.1}), csvi.infer.Trace_ELBO())
    compiled = svi.compile()
    before = csvi.get_param_store()["w"].numpy().copy()
    with pytest.raises(ValueError, match="gradient of param 'w' is not finite"):
        compiled.run(3)
    np.testing.assert_array_equal(csvi.get_param_store()["w"].numpy(), before)
