"""LKJCholesky: log_prob against densities derived independently (dim 2:
the correlation r has (r + 1) / 2 ~ Beta(c, c); dim 3: det(C)^(c-1) times the
Jacobian of C -> L, normalized by numerical integration), the onion sampler
by KS tests of each correlation's Beta marginal, the gradient in
concentration by finite differences, and compiled SVI against eager."""
import numpy as np
import pytest
from scipy import integrate, stats

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.distributions import LKJCholesky, TransformedDistribution
from csvi.distributions import transforms as T
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from gradcheck import assert_grads_match

RNG = np.random.default_rng(5)


def _v(t):
    return np.asarray(t.numpy() if isinstance(t, csvi.Tensor) else t, dtype=np.float64)


def _random_corr_cholesky(d, n):
    x = RNG.normal(size=(n, d * (d - 1) // 2))
    return _v(T.CorrCholeskyTransform()(x))


@pytest.mark.parametrize("conc", [0.5, 1.0, 3.7])
def test_dim2_density_is_that_of_a_scaled_beta(conc):
    r = RNG.uniform(-0.99, 0.99, size=20)
    L = np.zeros((20, 2, 2))
    L[:, 0, 0] = 1.0
    L[:, 1, 0] = r
    L[:, 1, 1] = np.sqrt(1 - r ** 2)
    expected = stats.beta.logpdf((r + 1) / 2, conc, conc) - np.log(2.0)
    np.testing.assert_allclose(_v(LKJCholesky(2, conc).log_prob(L)), expected, rtol=1e-10)


@pytest.mark.parametrize("conc", [0.8, 2.5])
def test_dim3_density_normalizes_over_the_free_entries(conc):
    """The LKJ density det(C)^(c-1) pulled back to L's strict lower entries
    (a, b, e) = (L10, L20, L21): det C = L11^2 L22^2 and |dC/dL| = L11, with
    L11 = sqrt(1 - a^2), L22 = sqrt(1 - b^2 - e^2); the normalizer is
    integrated numerically (the (b, e) disk in polar coordinates)."""
    za = integrate.quad(lambda a: (1 - a * a) ** (conc - 1) * np.sqrt(1 - a * a), -1, 1)[0]
    zbe = 2 * np.pi * integrate.quad(lambda rho: (1 - rho * rho) ** (conc - 1) * rho, 0, 1)[0]
    L = _random_corr_cholesky(3, 10)
    det_c = (L[:, 1, 1] * L[:, 2, 2]) ** 2
    expected = (conc - 1) * np.log(det_c) + np.log(L[:, 1, 1]) - np.log(za * zbe)
    np.testing.assert_allclose(_v(LKJCholesky(3, conc).log_prob(L)), expected, rtol=1e-9)


def test_dim5_matches_det_c_times_the_jacobian_up_to_a_constant():
    conc = 1.7
    L = _random_corr_cholesky(5, 8)
    diag = np.diagonal(L, 0, -2, -1)
    # det(C)^(c-1) |dC/dL| with |dC/dL| = prod_i L_ii^(d-1-i) (0-based i)
    unnormalized = (np.log(diag ** 2).sum(-1) * (conc - 1)
                    + (np.log(diag) * (4 - np.arange(5))).sum(-1))
    diff = _v(LKJCholesky(5, conc).log_prob(L)) - unnormalized
    np.testing.assert_allclose(diff, diff[0], rtol=1e-10)


def test_log_prob_broadcasts_concentration_with_values():
    conc = np.array([[0.5], [2.0]])
    L = _random_corr_cholesky(3, 4)
    d = LKJCholesky(3, conc)
    assert d.batch_shape == (2, 1) and d.event_shape == (3, 3)
    lp = _v(d.log_prob(L))
    assert lp.shape == (2, 4)
    for i, c in enumerate(conc[:, 0]):
        np.testing.assert_allclose(lp[i], _v(LKJCholesky(3, c).log_prob(L)), rtol=1e-13)


@pytest.mark.parametrize("d,conc", [(2, 0.7), (4, 1.0), (4, 3.0)])
def test_onion_sampler_has_the_beta_marginals(d, conc):
    """Every off-diagonal correlation C_ij has (C_ij + 1) / 2 ~
    Beta(c - 1 + d/2, c - 1 + d/2)."""
    csvi.set_rng_seed(17)
    L = _v(LKJCholesky(d, conc).sample((4000,)))
    assert constraints.corr_cholesky.check(L)
    C = L @ np.swapaxes(L, -1, -2)
    b = conc - 1 + d / 2
    for i, j in [(1, 0), (d - 1, 0), (d - 1, d - 2)]:
        p = stats.kstest((C[:, i, j] + 1) / 2, stats.beta(b, b).cdf).pvalue
        assert p > 1e-3, (i, j, p)


def test_sampler_shapes_and_batched_concentration():
    d = LKJCholesky(3, np.array([0.5, 50.0]))
    csvi.set_rng_seed(0)
    L = _v(d.sample((3000,)))
    assert L.shape == (3000, 2, 3, 3)
    # a large concentration keeps C near the identity; a small one does not
    off = np.abs((L @ np.swapaxes(L, -1, -2))[:, :, 1, 0])
    assert off[:, 1].mean() < 0.15 < off[:, 0].mean()
    # an expanded batch draws each member independently
    e = LKJCholesky(3, np.array([1.0])).expand((2,))
    s = _v(e.sample((5,)))
    assert s.shape == (5, 2, 3, 3) and not np.allclose(s[:, 0], s[:, 1])


def test_gradient_in_concentration():
    L = _random_corr_cholesky(4, 3)
    assert_grads_match(lambda c: LKJCholesky(4, c).log_prob(L), [np.array([0.7, 2.0, 5.0])])


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="LKJCholesky: dim"):
        LKJCholesky(1)
    with pytest.raises(TypeError, match="LKJCholesky: dim"):
        LKJCholesky(2.5)
    with pytest.raises(ValueError, match="LKJCholesky: concentration"):
        LKJCholesky(3, -1.0)
    with pytest.raises(ValueError, match="support"):
        LKJCholesky(2).log_prob(np.eye(2) * 2)
    assert not LKJCholesky(2).has_rsample
    with pytest.raises(NotImplementedError):
        LKJCholesky(2).rsample()


# ---- compiled == eager -----------------------------------------------------------------------

DATA = np.array([0.6, -0.3, 0.2])


def _model():
    L = csvi.sample("L", LKJCholesky(3, 2.0))
    rows, cols = np.tril_indices(3, -1)
    csvi.sample("obs", dist.Normal(L[rows, cols], 0.2).to_event(1), obs=DATA)


def _guide():
    loc = csvi.param("loc", np.zeros(3))
    scale = csvi.param("scale", np.full(3, 0.5), constraint=constraints.positive)
    csvi.sample("L", TransformedDistribution(dist.Normal(loc, scale), T.CorrCholeskyTransform()))


def _run(compiled, steps=30):
    csvi.clear_param_store()
    csvi.set_rng_seed(4)
    svi = SVI(_model, _guide, Adam({"lr": 0.05}), Trace_ELBO())
    losses = svi.compile().run(steps) if compiled else [svi.step() for _ in range(steps)]
    store = csvi.get_param_store()
    return np.asarray(losses), {n: store.unconstrained(n).copy() for n in store.names()}


def test_compiled_svi_with_an_lkj_prior_equals_eager():
    eager_losses, eager_params = _run(False)
    losses, params = _run(True)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12)
    for name in eager_params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=1e-12)
    assert not np.allclose(eager_params["loc"], 0.0)
    csvi.clear_param_store()


def _sampling_guide():
    conc = csvi.param("conc", 1.0, constraint=constraints.positive)
    csvi.sample("L", LKJCholesky(3, conc))


def test_compiled_lkj_draws_equal_eager_draws():
    """LKJCholesky drawn in a guide (a score-function site): the compiled loop
    redraws the onion method's Beta and normal draws in the eager order."""
    def run(compiled):
        csvi.clear_param_store()
        csvi.set_rng_seed(8)
        svi = SVI(_model, _sampling_guide, Adam({"lr": 0.05}), Trace_ELBO())
        return np.asarray(svi.compile().run(10) if compiled else [svi.step() for _ in range(10)])

    eager = run(False)
    np.testing.assert_allclose(run(True), eager, rtol=1e-12)
    assert np.unique(eager).size == eager.size          # a fresh draw each step
    csvi.clear_param_store()


def test_autonormal_fits_an_lkj_site_through_biject_to():
    """AutoNormal draws the site on R^3 and maps it by CorrCholeskyTransform;
    compiled and eager agree and the fit moves toward the data."""
    from csvi.infer.autoguide import AutoNormal

    def run(compiled):
        csvi.clear_param_store()
        csvi.set_rng_seed(2)
        guide = AutoNormal(_model)
        svi = SVI(_model, guide, Adam({"lr": 0.05}), Trace_ELBO())
        losses = svi.compile().run(150) if compiled else [svi.step() for _ in range(150)]
        return np.asarray(losses), _v(guide.median()["L"])

    eager, L = run(False)
    compiled, _ = run(True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-12)
    assert eager[-20:].mean() < eager[:10].mean() - 1.0
    assert constraints.corr_cholesky.check(L)
    assert abs(L[1, 0] - DATA[0]) < 0.2 and abs(L[2, 0] - DATA[1]) < 0.2
    csvi.clear_param_store()


def test_lkj_over_correlation_matrices():
    """LKJ is LKJCholesky through L -> L L^T: in dim 2 the same Beta density of
    r (the map's Jacobian is 1); in dim 4, det(C)^(c-1) up to a constant."""
    from csvi.distributions import LKJ
    conc = 1.6
    d2 = LKJ(2, conc)
    assert d2.support is constraints.corr_matrix and d2.event_shape == (2, 2)
    r = RNG.uniform(-0.95, 0.95, size=6)
    C = np.stack([np.stack([np.ones(6), r], -1), np.stack([r, np.ones(6)], -1)], -2)
    np.testing.assert_allclose(_v(d2.log_prob(C)),
                               stats.beta.logpdf((r + 1) / 2, conc, conc) - np.log(2.0), rtol=1e-10)
    L = _random_corr_cholesky(4, 6)
    C = L @ np.swapaxes(L, -1, -2)
    diff = _v(LKJ(4, conc).log_prob(C)) - (conc - 1) * np.linalg.slogdet(C)[1]
    np.testing.assert_allclose(diff, diff[0], rtol=1e-9)
    csvi.set_rng_seed(0)
    s = _v(LKJ(3, np.array([1.0, 2.0])).sample((5,)))
    assert s.shape == (5, 2, 3, 3) and constraints.corr_matrix.check(s)
    np.testing.assert_allclose(_v(LKJ(3, np.array([1.0, 2.0])).mean), np.broadcast_to(np.eye(3), (2, 3, 3)))
