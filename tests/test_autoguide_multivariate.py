"""AutoMultivariateNormal, AutoLowRankMultivariateNormal and
AutoLaplaceApproximation against exact posteriors: Bayesian linear
regression with a correlated design (its Gaussian posterior, correlations
included) and a Gamma-Poisson rate (the Laplace approximation of its
posterior on the log scale, known in closed form)."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi.infer import SVI, Predictive, Trace_ELBO
from csvi.infer.autoguide import (
    AutoLaplaceApproximation, AutoLowRankMultivariateNormal, AutoMultivariateNormal,
)
from csvi.optim import Adam, ClippedAdam
from compiled_check import assert_compiled_matches_eager

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 2)) @ np.array([[1.0, 0.9], [0.0, 0.45]])  # correlated columns
Y = X @ np.array([0.7, -1.2]) + RNG.normal(size=30)
PRECISION = np.eye(2) + X.T @ X
COV = np.linalg.inv(PRECISION)
MEAN = COV @ X.T @ Y


def regression(x, y):
    w = csvi.sample("w", dist.Normal(np.zeros(2), 1.0).to_event(1))
    with csvi.plate("data", len(y)):
        csvi.sample("y", dist.Normal(x @ w, 1.0), obs=y)


def fit(guide, steps=4000):
    csvi.set_rng_seed(0)
    svi = SVI(regression, guide, ClippedAdam({"lr": 0.02, "lrd": 0.9993}),
              Trace_ELBO(num_particles=4))
    svi.run(steps, X, Y, compile=True)


def check_gaussian(loc, cov):
    sd = np.sqrt(np.diag(COV))
    assert np.all(np.abs(loc - MEAN) < 0.1 * sd), (loc, MEAN)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), sd, rtol=0.1)
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert corr == pytest.approx(COV[0, 1] / np.sqrt(COV[0, 0] * COV[1, 1]), abs=0.1)


def test_full_rank_guide_recovers_the_correlated_posterior(fresh_store):
    guide = AutoMultivariateNormal(regression)
    fit(guide)
    post = guide.get_posterior()
    assert isinstance(post, dist.MultivariateNormal)
    check_gaussian(post.loc.numpy(), post.covariance_matrix.numpy())
    # median and quantiles are the marginals' (the guide's loc and sds)
    sd = np.sqrt(np.diag(post.covariance_matrix.numpy()))
    np.testing.assert_allclose(guide.median()["w"].numpy(), post.loc.numpy(), rtol=1e-12)
    q = guide.quantiles([0.5, 0.8413447460685429])["w"].numpy()
    np.testing.assert_allclose(q[1] - q[0], sd, rtol=1e-6)
    names = sorted(csvi.get_param_store().keys())
    assert names == ["AutoMultivariateNormal.loc", "AutoMultivariateNormal.scale",
                     "AutoMultivariateNormal.scale_tril"]


def test_low_rank_guide_recovers_the_correlated_posterior(fresh_store):
    guide = AutoLowRankMultivariateNormal(regression, rank=1)
    fit(guide)
    post = guide.get_posterior()
    assert isinstance(post, dist.LowRankMultivariateNormal)
    check_gaussian(post.loc.numpy(), post.covariance_matrix.numpy())
    assert csvi.get_param_store()["AutoLowRankMultivariateNormal.cov_factor"].shape == (2, 1)


def test_predictive_draws_follow_the_guide(fresh_store):
    guide = AutoMultivariateNormal(regression)
    fit(guide, steps=1500)
    post = guide.get_posterior()
    draws = Predictive(regression, guide=guide, num_samples=4000, return_sites=["w"])(X, Y)["w"]
    assert draws.shape == (4000, 1, 2)  # Pyro's: a dim for the model's one plate
    draws = draws[:, 0]
    np.testing.assert_allclose(np.cov(draws.T), post.covariance_matrix.numpy(), rtol=0.1,
                               atol=0.002)


def test_laplace_approximation_matches_the_gaussian_posterior_exactly(fresh_store):
    guide = AutoLaplaceApproximation(regression)
    csvi.set_rng_seed(0)
    svi = SVI(regression, guide, Adam({"lr": 0.05}), Trace_ELBO())
    svi.run(3000, X, Y, compile=True)
    np.testing.assert_allclose(guide.median()["w"].numpy(), MEAN, atol=1e-4)
    gaussian = guide.laplace_approximation(X, Y)
    post = gaussian.get_posterior()
    np.testing.assert_allclose(post.covariance_matrix.numpy(), COV, rtol=1e-5, atol=1e-8)
    # the Gaussian guide's numbers are fixed, not trained
    before = sorted(csvi.get_param_store().keys())
    Predictive(regression, guide=gaussian, num_samples=10)(X, Y)
    assert sorted(csvi.get_param_store().keys()) == before


COUNTS = np.array([3.0, 5.0, 2.0, 4.0])
A, B = 2.0, 1.0


def rate_model(counts):
    rate = csvi.sample("rate", dist.Gamma(A, B))
    with csvi.plate("data", len(counts)):
        csvi.sample("obs", dist.Poisson(rate), obs=counts)


def test_laplace_works_in_unconstrained_space(fresh_store):
    """u = log rate has density ~ exp(alpha u - beta e^u): its mode is
    log(alpha / beta) and the Hessian there is alpha."""
    alpha, beta = A + COUNTS.sum(), B + len(COUNTS)
    guide = AutoLaplaceApproximation(rate_model)
    csvi.set_rng_seed(0)
    SVI(rate_model, guide, Adam({"lr": 0.05}), Trace_ELBO()).run(2000, COUNTS)
    np.testing.assert_allclose(guide.median()["rate"].numpy(), alpha / beta, rtol=1e-4)
    post = guide.laplace_approximation(COUNTS).get_posterior()
    np.testing.assert_allclose(post.covariance_matrix.numpy(), [[1 / alpha]], rtol=1e-5)


def test_laplace_before_fitting_and_bad_arguments(fresh_store):
    guide = AutoLaplaceApproximation(rate_model)
    with pytest.raises(Exception, match="fit|prototype|run"):
        guide.laplace_approximation(COUNTS)
    with pytest.raises(ValueError, match="rank"):
        AutoLowRankMultivariateNormal(rate_model, rank=0)
    with pytest.raises(ValueError, match="init_scale"):
        AutoMultivariateNormal(rate_model, init_scale=-1.0)


@pytest.mark.parametrize("guide_class", [AutoMultivariateNormal, AutoLowRankMultivariateNormal,
                                         AutoLaplaceApproximation])
def test_compiled_equals_eager(fresh_store, guide_class):
    assert_compiled_matches_eager(regression, lambda: guide_class(regression),
                                  lambda: Adam({"lr": 0.02}), Trace_ELBO, (X, Y), rtol=1e-10)


def test_matrix_constrained_params_save_and_load(fresh_store, tmp_path):
    """AutoMultivariateNormal's scale_tril (unit_lower_cholesky) and the other
    argument-free matrix and vector constraints round-trip through a file."""
    guide = AutoMultivariateNormal(regression)
    SVI(regression, guide, Adam({"lr": 0.05}), Trace_ELBO()).run(5, X, Y)
    store = csvi.get_param_store()
    csvi.param("L", np.array([[1.0, 0.0], [0.3, 2.0]]), constraint=dist.constraints.lower_cholesky)
    csvi.param("o", np.array([0.5, 1.0, 3.0]), constraint=dist.constraints.ordered_vector)
    before = {k: store[k].numpy().copy() for k in store.keys()}
    store.save(tmp_path / "params.npz")
    csvi.clear_param_store()
    store.load(tmp_path / "params.npz")
    for k, v in before.items():
        np.testing.assert_array_equal(store[k].numpy(), v)
    assert store.constraint("AutoMultivariateNormal.scale_tril") is \
        dist.constraints.unit_lower_cholesky
    assert store.constraint("o") is dist.constraints.ordered_vector
