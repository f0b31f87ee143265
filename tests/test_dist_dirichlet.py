"""Dirichlet and NonreparameterizedDirichlet: density, moments and entropy
against scipy.stats.dirichlet over batch shapes, the sampler's Beta
marginals by KS tests, the implicit reparameterized gradient against the
closed-form gradients of E[x] and E[x^2], the KL rule against Monte Carlo
and finite differences, argument checks, compiled == eager, and the
score-function fake fitting a conjugate posterior."""
import math

import numpy as np
import pytest
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi.distributions.testing import fakes
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from gradcheck import assert_grads_match

ALPHA = np.array([[0.5, 1.0, 2.0], [3.0, 0.8, 6.0]])  # batch (2,), K = 3


def simplex_values(shape, seed=0):
    x = np.random.default_rng(seed).gamma(1.5, size=shape)
    return x / x.sum(-1, keepdims=True)


def test_shapes_and_log_prob_match_scipy_over_batches():
    d = dist.Dirichlet(ALPHA)
    assert d.batch_shape == (2,) and d.event_shape == (3,)
    assert d.support is csvi.constraints.simplex and d.has_rsample
    x = simplex_values((4, 1, 3))
    lp = d.log_prob(x)
    assert lp.shape == (4, 2)
    ref = [[st.dirichlet(ALPHA[j]).logpdf(x[i, 0]) for j in range(2)] for i in range(4)]
    np.testing.assert_allclose(lp.numpy(), ref, rtol=1e-11)


def test_mean_variance_entropy_match_scipy():
    d = dist.Dirichlet(ALPHA)
    for j in range(2):
        ref = st.dirichlet(ALPHA[j])
        np.testing.assert_allclose(d.mean.numpy()[j], ref.mean(), rtol=1e-12)
        np.testing.assert_allclose(d.variance.numpy()[j], ref.var(), rtol=1e-12)
        np.testing.assert_allclose(d.entropy().numpy()[j], ref.entropy(), rtol=1e-11)
    assert d.mean.shape == (2, 3) and d.entropy().shape == (2,)


def test_mode():
    alpha = np.array([[2.0, 3.0, 1.5], [0.5, 3.0, 2.0], [0.5, 0.9, 0.2]])
    mode = dist.Dirichlet(alpha).mode.numpy()
    np.testing.assert_allclose(mode[0], (alpha[0] - 1) / (alpha[0].sum() - 3), rtol=1e-12)
    np.testing.assert_allclose(mode[1], [0.0, 2 / 3, 1 / 3], rtol=1e-12)  # clipped, as torch
    np.testing.assert_array_equal(mode[2], [0.0, 1.0, 0.0])  # all below 1: the largest's corner
    # the interior mode is where the density peaks: scipy's density is lower nearby
    ref = st.dirichlet(alpha[0])
    for d in (np.array([1e-3, -1e-3, 0.0]), np.array([0.0, 1e-3, -1e-3])):
        assert ref.logpdf(mode[0]) > ref.logpdf(mode[0] + d)


def test_log_prob_and_entropy_gradients_match_finite_differences():
    x = simplex_values((4, 2, 3), seed=1)
    # (no concentration exactly 1: xlogy's gradient in x is 0 at x = 0, as torch's)
    assert_grads_match(lambda a, v: dist.Dirichlet(a).log_prob(v), [ALPHA + 0.01, x], wrt=[0])
    assert_grads_match(lambda a: dist.Dirichlet(a).entropy(), [ALPHA])


@pytest.mark.parametrize("sampler", ["sample", "rsample"])
def test_marginals_are_beta_and_a_wrong_concentration_fails(sampler, fresh_store):
    alpha = np.array([0.7, 2.0, 4.0])
    x = getattr(dist.Dirichlet(alpha), sampler)((10000,)).numpy()
    assert x.shape == (10000, 3)
    np.testing.assert_allclose(x.sum(-1), 1.0, rtol=1e-12)
    total = alpha.sum()
    for i, a in enumerate(alpha):
        assert st.kstest(x[:, i], st.beta(a, total - a).cdf).pvalue > 1e-3
        assert st.kstest(x[:, i], st.beta(1.25 * a, total - a).cdf).pvalue < 1e-4


def test_batched_draws_follow_each_rows_concentration(fresh_store):
    x = dist.Dirichlet(ALPHA).sample((5000, 1))
    assert x.shape == (5000, 1, 2, 3) and not x.requires_grad
    x = x.numpy()[:, 0]
    for j in range(2):
        total = ALPHA[j].sum()
        for i in range(3):
            assert st.kstest(x[:, j, i], st.beta(ALPHA[j, i], total - ALPHA[j, i]).cdf).pvalue > 1e-4


def test_tiny_concentrations_still_draw_points_of_the_simplex(fresh_store):
    x = dist.Dirichlet(np.full(3, 1e-3)).rsample((2000,)).numpy()
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x.sum(-1), 1.0, rtol=1e-12)


def _mc_gradient(alpha, f, batches=8, n=20000):
    grads = []
    for b in range(batches):
        csvi.set_rng_seed(200 + b)
        a = csvi.tensor(alpha, requires_grad=True)
        csvi.mean(csvi.sum(f(dist.Dirichlet(a).rsample((n,))), -1)).backward()
        grads.append(a.grad)
    grads = np.array(grads)
    return grads.mean(0), grads.std(0, ddof=1) / math.sqrt(batches)


def test_rsample_gradient_of_the_mean_is_that_of_alpha_over_its_sum():
    """The Gamma draws' implicit gradients, normalized: d/dalpha E[w . x] with
    E[x] = alpha / alpha0."""
    alpha, w = np.array([0.7, 2.0, 4.0]), np.array([1.0, -2.0, 0.5])
    total = alpha.sum()
    want = w / total - (w @ alpha) / total ** 2
    mean, se = _mc_gradient(alpha, lambda x: x * w)
    assert np.all(se < 0.05 * np.abs(want))
    assert np.all(np.abs(mean - want) < 4 * se), (mean, want, se)


def test_rsample_gradient_of_the_second_moment_matches_its_closed_form():
    """E[x_i^2] = alpha_i (alpha_i + 1) / (alpha0 (alpha0 + 1))."""
    alpha = np.array([0.7, 2.0, 4.0])

    def second_moment(a):
        t = a.sum()
        return np.sum(a * (a + 1) / (t * (t + 1)))

    eps = 1e-6
    want = np.array([(second_moment(alpha + eps * e) - second_moment(alpha - eps * e)) / (2 * eps)
                     for e in np.eye(3)])
    mean, se = _mc_gradient(alpha, lambda x: x * x)
    assert np.all(se < 0.05 * np.abs(want))
    assert np.all(np.abs(mean - want) < 4 * se), (mean, want, se)


def test_kl_matches_monte_carlo_and_finite_differences(fresh_store):
    p, q = dist.Dirichlet(ALPHA), dist.Dirichlet(np.array([1.0, 2.0, 0.7]))
    kl = dist.kl_divergence(p, q)
    assert kl.shape == (2,)
    x = p.sample((200000,))
    ratio = (p.log_prob(x) - q.log_prob(x)).numpy()
    mc, se = ratio.mean(0), ratio.std(0) / math.sqrt(len(ratio))
    assert np.all(np.abs(kl.numpy() - mc) < 5 * se), (kl.numpy(), mc, se)
    assert_grads_match(lambda a, b: dist.kl_divergence(dist.Dirichlet(a), dist.Dirichlet(b)),
                       [ALPHA, np.array([1.0, 2.0, 0.7])])
    assert np.allclose(dist.kl_divergence(p, p).numpy(), 0.0, atol=1e-12)


def test_bad_arguments_and_values_are_named():
    with pytest.raises(ValueError, match="Dirichlet: concentration must have at least one dim"):
        dist.Dirichlet(2.0)
    with pytest.raises(ValueError, match="Dirichlet: concentration must be a number > 0"):
        dist.Dirichlet(np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="Dirichlet: concentration must be"):
        dist.Dirichlet(np.array([1.0, math.nan]))
    with pytest.raises(TypeError, match="Dirichlet: concentration must be"):
        dist.Dirichlet("abc")
    d = dist.Dirichlet(ALPHA)
    with pytest.raises(ValueError, match="Dirichlet.log_prob: value must be in the support"):
        d.log_prob(np.array([0.5, 0.6, 0.1]))
    with pytest.raises(ValueError, match="Dirichlet.log_prob: a value of shape"):
        d.log_prob(np.array([0.5, 0.5]))


def test_expand_to_event_and_mask(fresh_store):
    d = dist.Dirichlet(ALPHA)
    x = simplex_values((2, 3), seed=3)
    lp = d.log_prob(x).numpy()
    big = d.expand((4, 2))
    assert big.batch_shape == (4, 2) and big.event_shape == (3,)
    assert big.sample().shape == (4, 2, 3) and big.mean.shape == (4, 2, 3)
    np.testing.assert_allclose(big.log_prob(x).numpy(), np.broadcast_to(lp, (4, 2)))
    ev = d.to_event(1)
    assert ev.batch_shape == () and ev.event_shape == (2, 3)
    np.testing.assert_allclose(ev.log_prob(x).item(), lp.sum(), rtol=1e-12)
    np.testing.assert_allclose(d.mask(np.array([True, False])).log_prob(x).numpy(), [lp[0], 0.0])


COUNTS = np.array([6, 3, 1])
DATA = np.repeat(np.arange(3), COUNTS).astype(float)


def model(data):
    probs = csvi.sample("probs", dist.Dirichlet(np.ones(3)))
    with csvi.plate("data", len(data)):
        csvi.sample("obs", dist.Categorical(probs), obs=data)


def guide_with(family):
    def guide(data):
        alpha = csvi.param("alpha", np.full(3, 3.0), constraint=csvi.constraints.positive)
        csvi.sample("probs", family(alpha))
    return guide


@pytest.mark.parametrize("family", [dist.Dirichlet, fakes.NonreparameterizedDirichlet])
def test_compiled_svi_equals_eager(family):
    results = []
    for compiled in (False, True):
        csvi.clear_param_store()
        csvi.set_rng_seed(3)
        svi = SVI(model, guide_with(family), Adam({"lr": 0.01}), Trace_ELBO(num_particles=2))
        losses = svi.compile(DATA).run(30) if compiled else [svi.step(DATA) for _ in range(30)]
        results.append((np.array(losses), csvi.get_param_store()["alpha"].numpy().copy()))
    csvi.clear_param_store()
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12, atol=0)


def test_nonreparameterized_dirichlet_samples_without_rsample(fresh_store):
    d = fakes.NonreparameterizedDirichlet(np.array([2.0, 3.0]))
    assert not d.has_rsample
    with pytest.raises(NotImplementedError):
        d.rsample()
    x = d.sample((2000,)).numpy()
    assert st.kstest(x[:, 0], st.beta(2.0, 3.0).cdf).pvalue > 1e-3
    np.testing.assert_allclose(d.log_prob(np.array([0.4, 0.6])).item(),
                               st.dirichlet([2.0, 3.0]).logpdf([0.4, 0.6]), rtol=1e-12)


@pytest.mark.parametrize("family, tol", [(dist.Dirichlet, 0.005),
                                         (fakes.NonreparameterizedDirichlet, 0.015)])
def test_guide_fits_the_conjugate_posterior(family, tol, fresh_store):
    """Categorical counts (6, 3, 1) under a flat Dirichlet prior: the
    posterior is Dirichlet(7, 4, 2); the fake reaches it through the
    score-function estimator, Dirichlet through its implicit rsample.  The
    fitted concentration is averaged over the last 5000 steps (the
    score-function iterates jitter)."""
    csvi.set_rng_seed(1)
    svi = SVI(model, guide_with(family), Adam({"lr": 0.003}), Trace_ELBO(num_particles=8))
    program = svi.compile(DATA)
    program.run(10000)
    iterates = []
    for _ in range(20):
        program.run(250)
        iterates.append(fresh_store["alpha"].numpy().copy())
    alpha = np.mean(iterates, 0)
    post = COUNTS + 1.0
    np.testing.assert_allclose(alpha / alpha.sum(), post / post.sum(), atol=tol)
    assert abs(alpha.sum() / post.sum() - 1.0) < 10 * tol
