"""PSIS: importance log weights against the exact evidence of a conjugate
model, k-hat of a near-exact and a mismatched guide, the generalized Pareto
fit against scipy's distribution, and equality with ArviZ's `psislw`."""
import math

import numpy as np
import pytest
from scipy import stats

import conjugate as cj
import csvi
import csvi.distributions as dist
from csvi.infer import (SVI, Trace_ELBO, importance_log_weights, khat_threshold,
                        pareto_smooth, psis_diagnostic)
from csvi.infer.autoguide import AutoNormal
from csvi.infer.psis import fit_generalized_pareto, tail_length
from csvi.optim import Adam

POST_MEAN, POST_SD = cj.normal_normal_posterior(cj.NN_DATA)


def log_evidence(x):
    """log p(x) of the Normal-Normal model: x ~ N(M0 1, SIGMA^2 I + S0^2 1 1^T)."""
    n = len(x)
    cov = cj.SIGMA ** 2 * np.eye(n) + cj.S0 ** 2 * np.ones((n, n))
    return stats.multivariate_normal(np.full(n, cj.M0), cov).logpdf(x)


def normal_guide(loc, scale):
    def guide(x):
        csvi.sample("z", dist.Normal(loc, scale))
    return guide


def unplated_model(x):
    """The same model with its data dim not declared by a plate: it cannot
    run vectorized over particles."""
    z = csvi.sample("z", dist.Normal(cj.M0, cj.S0))
    csvi.sample("x", dist.Normal(z * np.ones(len(x)), cj.SIGMA).to_event(1), obs=x)


@pytest.mark.filterwarnings("ignore:the model and guide could not run vectorized")
@pytest.mark.parametrize("model,vectorize", [(cj.normal_normal, None), (cj.normal_normal, True),
                                             (cj.normal_normal, False),
                                             (unplated_model, None), (unplated_model, False)])
def test_log_weights_of_the_exact_posterior_are_the_log_evidence(fresh_store, model, vectorize):
    lw = importance_log_weights(model, normal_guide(POST_MEAN, POST_SD), cj.NN_DATA,
                                num_particles=50, vectorize=vectorize)
    assert lw.shape == (50,)
    np.testing.assert_allclose(lw, log_evidence(cj.NN_DATA), rtol=1e-12)


@pytest.mark.parametrize("vectorize", [True, False])
def test_log_weights_match_their_draws(fresh_store, vectorize):
    """log p(x, z_s) - log q(z_s) by scipy from the returned draws z_s."""
    m, s = POST_MEAN + 0.3, 0.8 * POST_SD
    lw, samples = importance_log_weights(cj.normal_normal, normal_guide(m, s), cj.NN_DATA,
                                         num_particles=40, vectorize=vectorize,
                                         return_samples=True)
    z = samples["z"]
    assert z.shape == (40,) and len(set(z.tolist())) == 40
    expected = (stats.norm(cj.M0, cj.S0).logpdf(z)
                + stats.norm(z[:, None], cj.SIGMA).logpdf(cj.NN_DATA).sum(axis=1)
                - stats.norm(m, s).logpdf(z))
    np.testing.assert_allclose(lw, expected, rtol=1e-10)


def test_draws_of_an_autoguide_keep_their_site_shapes(fresh_store):
    guide = AutoNormal(cj.hierarchical)
    for vectorize in (True, False):
        lw, samples = importance_log_weights(cj.hierarchical, guide, cj.H_DATA, num_particles=6,
                                             vectorize=vectorize, return_samples=True)
        assert lw.shape == (6,)
        assert samples["mu"].shape == (6,) and samples["z"].shape == (6, len(cj.H_DATA))


def test_unplated_model_refuses_a_forced_vectorized_run_and_warns_on_the_fallback(fresh_store):
    with pytest.warns(UserWarning, match="once per particle"):
        importance_log_weights(unplated_model, normal_guide(POST_MEAN, POST_SD), cj.NN_DATA,
                               num_particles=50)
    with pytest.raises(ValueError):
        importance_log_weights(unplated_model, normal_guide(POST_MEAN, POST_SD), cj.NN_DATA,
                               num_particles=50, vectorize=True)


def test_log_weights_estimate_the_evidence_and_bound_it_below(fresh_store):
    """With a wider guide: mean(lw) (the ELBO) < log p(x), and log-mean-exp(lw)
    (the importance-sampling estimate) is close to it."""
    lw = importance_log_weights(cj.normal_normal, normal_guide(POST_MEAN + 0.2, 1.5 * POST_SD),
                                cj.NN_DATA, num_particles=20000)
    evidence = log_evidence(cj.NN_DATA)
    assert lw.mean() < evidence
    assert abs(np.logaddexp.reduce(lw) - math.log(lw.size) - evidence) < 0.01
    # the ELBO of a Normal guide in closed form: E_q[log p(x, z)] + entropy
    m, s = POST_MEAN + 0.2, 1.5 * POST_SD
    expected = (stats.norm(cj.M0, cj.S0).logpdf(m) - s ** 2 / (2 * cj.S0 ** 2)
                + np.sum(stats.norm(m, cj.SIGMA).logpdf(cj.NN_DATA))
                - len(cj.NN_DATA) * s ** 2 / (2 * cj.SIGMA ** 2)
                + stats.norm(m, s).entropy())
    assert abs(lw.mean() - expected) < 4 * lw.std() / math.sqrt(lw.size)


@pytest.mark.parametrize("seed", range(3))
def test_khat_separates_a_near_exact_guide_from_a_mismatched_one(fresh_store, seed):
    csvi.set_rng_seed(seed)
    good = psis_diagnostic(cj.normal_normal, normal_guide(POST_MEAN, 1.2 * POST_SD), cj.NN_DATA,
                           num_particles=10000)
    bad = psis_diagnostic(cj.normal_normal, normal_guide(POST_MEAN + 3 * POST_SD, POST_SD / 3),
                          cj.NN_DATA, num_particles=10000, max_simultaneous_particles=2500)
    assert good < 0.5
    assert bad > 0.7


def test_khat_of_a_fitted_autoguide_is_good(fresh_store):
    guide = AutoNormal(cj.normal_normal)
    svi = SVI(cj.normal_normal, guide, Adam({"lr": 0.05}), Trace_ELBO())
    svi.run(3000, cj.NN_DATA, compile=True, progress_bar=False)
    assert psis_diagnostic(cj.normal_normal, guide, cj.NN_DATA, num_particles=4000) < 0.5


def test_psis_diagnostic_checks_its_arguments(fresh_store):
    guide = normal_guide(POST_MEAN, POST_SD)
    with pytest.raises(ValueError, match="max_simultaneous_particles"):
        psis_diagnostic(cj.normal_normal, guide, cj.NN_DATA, num_particles=100,
                        max_simultaneous_particles=30)
    with pytest.raises(ValueError, match="num_particles"):
        psis_diagnostic(cj.normal_normal, guide, cj.NN_DATA, num_particles=1)
    with pytest.raises(ValueError, match="num_particles"):
        importance_log_weights(cj.normal_normal, guide, cj.NN_DATA, num_particles=0)
    with pytest.raises(ValueError, match="vectorize"):
        importance_log_weights(cj.normal_normal, guide, cj.NN_DATA, vectorize="yes")


@pytest.mark.parametrize("k", [-0.2, 0.3, 0.8])
def test_generalized_pareto_fit_recovers_scipys_shape(k):
    x = stats.genpareto(c=k, scale=2.0).rvs(size=20000, random_state=np.random.default_rng(1))
    k_hat, sigma_hat = fit_generalized_pareto(x)
    n, prior = x.size, 10
    assert abs(k_hat - (n * k + prior * 0.5) / (n + prior)) < 0.05
    assert abs(sigma_hat / 2.0 - 1) < 0.05


def test_smoothing_keeps_the_body_caps_the_tail_and_normalizes():
    lw = np.log(np.abs(np.random.default_rng(2).standard_t(2, size=4000)))
    smoothed, k = pareto_smooth(lw)
    assert np.isclose(np.logaddexp.reduce(smoothed), 0.0)
    body = np.argsort(lw)[:-tail_length(lw.size)]
    shift = smoothed[body[0]] - lw[body[0]]
    np.testing.assert_allclose(smoothed[body], lw[body] + shift, rtol=1e-12, atol=1e-12)
    assert smoothed.max() <= lw.max() + shift + 1e-12
    order = np.argsort(lw)  # the tail keeps the raw weights' order
    assert np.all(np.diff(smoothed[order[-tail_length(lw.size):]]) >= 0)
    assert 0.3 < k < 0.7  # weights |t(2)|: tail shape 1/2


def test_tail_length_and_threshold():
    assert tail_length(100) == 20 and tail_length(10000) == 300
    assert khat_threshold(100) == pytest.approx(0.5)
    assert khat_threshold(1000) == pytest.approx(1 - 1 / 3)
    assert khat_threshold(10 ** 6) == 0.7


def test_pareto_smooth_checks_its_input():
    with pytest.raises(ValueError, match="NaN"):
        pareto_smooth([0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="at least 2"):
        pareto_smooth([1.0])
    with pytest.warns(RuntimeWarning, match="tail"):
        assert pareto_smooth(np.zeros(10))[1] == math.inf


@pytest.mark.parametrize("draws", [
    lambda rng: rng.normal(size=1000), lambda rng: rng.standard_t(3, size=4000),
    lambda rng: rng.gamma(2.0, size=200), lambda rng: 3 * rng.standard_t(1.5, size=5000)])
def test_equals_arviz_psislw(draws):
    az = pytest.importorskip("arviz")
    lw = draws(np.random.default_rng(7))
    smoothed, k = pareto_smooth(lw)
    az_smoothed, az_k = az.psislw(lw.copy())
    assert k == pytest.approx(float(az_k), rel=1e-10)
    np.testing.assert_allclose(smoothed, np.asarray(az_smoothed), rtol=1e-10, atol=1e-12)


def test_khat_equals_arviz_on_the_guides_log_weights(fresh_store):
    az = pytest.importorskip("arviz")
    for guide in (normal_guide(POST_MEAN, 1.2 * POST_SD),
                  normal_guide(POST_MEAN + 3 * POST_SD, POST_SD / 3)):
        csvi.set_rng_seed(4)
        k = psis_diagnostic(cj.normal_normal, guide, cj.NN_DATA, num_particles=3000)
        csvi.set_rng_seed(4)
        lw = importance_log_weights(cj.normal_normal, guide, cj.NN_DATA, num_particles=3000)
        assert k == pytest.approx(float(az.psislw(lw)[1]), rel=1e-10)
