"""MixtureSameFamily: log_prob against a brute-force sum over scipy
components, the sampler by KS / chi-square tests, moments by the laws of
total expectation and variance, shapes and errors as torch's, gradients
against finite differences, and compiled SVI equal to eager."""
import numpy as np
import pytest
from scipy import special, stats

import csvi
import csvi.distributions as dist
from csvi.distributions import constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from gradcheck import assert_grads_match

W = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])      # batch (2,), K = 3
LOC = np.array([[-2.0, 0.0, 3.0], [1.0, -1.0, 0.5]])
SCALE = np.array([[1.0, 0.5, 2.0], [0.3, 1.5, 1.0]])
RATE = np.array([[0.5, 4.0, 12.0], [2.0, 7.0, 1.0]])


def normal_mixture(w=W, loc=LOC, scale=SCALE, **kw):
    return dist.MixtureSameFamily(dist.Categorical(w), dist.Normal(loc, scale), **kw)


def poisson_mixture(w=W, rate=RATE):
    return dist.MixtureSameFamily(dist.Categorical(w), dist.Poisson(rate))


def brute_force(w, pdfs):
    """log sum_k w_k pdf_k(x): w (..., K), pdfs (..., K) broadcast."""
    w = w / w.sum(-1, keepdims=True)
    return np.log(np.sum(w * pdfs, -1))


def test_normal_mixture_log_prob_matches_a_brute_force_sum_over_broadcast_shapes():
    x = np.random.default_rng(0).normal(size=(4, 1)) * 3.0   # sample (4,), batch broadcast
    m = normal_mixture()
    assert m.batch_shape == (2,) and m.event_shape == ()
    expected = brute_force(W, stats.norm(LOC, SCALE).pdf(x[..., None]))
    np.testing.assert_allclose(m.log_prob(x).numpy(), expected, rtol=1e-12)
    assert m.log_prob(x).shape == (4, 2)


def test_poisson_mixture_log_prob_matches_a_brute_force_sum():
    x = np.arange(20.0).reshape(10, 2)
    expected = brute_force(W, stats.poisson(RATE).pmf(x[..., None]))
    np.testing.assert_allclose(poisson_mixture().log_prob(x).numpy(), expected, rtol=1e-12)


def test_logits_mixture_and_a_mixture_batch_smaller_than_the_components():
    logits = np.array([0.3, -1.0, 2.0])                   # one mixture for both batch rows
    m = dist.MixtureSameFamily(dist.Categorical(logits=logits), dist.Normal(LOC, SCALE))
    x = np.array([0.7, -1.2])
    expected = brute_force(special.softmax(logits), stats.norm(LOC, SCALE).pdf(x[:, None]))
    np.testing.assert_allclose(m.log_prob(x).numpy(), expected, rtol=1e-12)


def test_a_mixture_batch_larger_than_the_components_broadcasts_them():
    m = dist.MixtureSameFamily(dist.Categorical(W), dist.Normal(LOC[0], SCALE[0]))
    assert m.batch_shape == (2,)
    x = np.array([0.4, 2.0])
    expected = brute_force(W, stats.norm(LOC[0], SCALE[0]).pdf(x[:, None]))
    np.testing.assert_allclose(m.log_prob(x).numpy(), expected, rtol=1e-12)
    assert m.sample((5,)).shape == (5, 2)
    np.testing.assert_allclose(m.mean.numpy(), (W * LOC[0]).sum(-1), rtol=1e-12)


def test_mixture_of_vector_components_has_their_event_shape():
    loc = np.random.default_rng(1).normal(size=(2, 3, 4))
    comp = dist.Normal(loc, 0.7).to_event(1)
    m = dist.MixtureSameFamily(dist.Categorical(W), comp)
    assert m.batch_shape == (2,) and m.event_shape == (4,)
    x = np.random.default_rng(2).normal(size=(5, 2, 4))
    pdfs = np.exp(stats.norm(loc, 0.7).logpdf(x[:, :, None, :]).sum(-1))
    np.testing.assert_allclose(m.log_prob(x).numpy(), brute_force(W, pdfs), rtol=1e-10)
    assert m.sample((7,)).shape == (7, 2, 4)
    assert m.mean.shape == (2, 4) and m.variance.shape == (2, 4)
    np.testing.assert_allclose(m.mean.numpy(), np.einsum("bk,bke->be", W, loc), rtol=1e-12)


def test_moments_follow_the_laws_of_total_expectation_and_variance():
    m = normal_mixture()
    mean = (W * LOC).sum(-1)
    var = (W * (SCALE ** 2 + LOC ** 2)).sum(-1) - mean ** 2
    np.testing.assert_allclose(m.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(m.variance.numpy(), var, rtol=1e-12)
    p = poisson_mixture()
    np.testing.assert_allclose(p.variance.numpy(),
                               (W * (RATE + RATE ** 2)).sum(-1) - ((W * RATE).sum(-1)) ** 2,
                               rtol=1e-12)


def mixture_cdf(x, w, loc, scale):
    return np.sum(w * stats.norm(loc, scale).cdf(np.asarray(x)[..., None]), -1)


def test_normal_mixture_sampler_passes_a_ks_test_and_a_wrong_mixture_fails_it():
    csvi.set_rng_seed(0)
    draws = normal_mixture().sample((20000,)).numpy()
    assert draws.shape == (20000, 2)
    for b in range(2):
        cdf = lambda x, b=b: mixture_cdf(x, W[b], LOC[b], SCALE[b])
        assert stats.kstest(draws[:, b], cdf).pvalue > 1e-3
    wrong = lambda x: mixture_cdf(x, np.array([0.25, 0.3, 0.45]), LOC[0], SCALE[0])
    assert stats.kstest(draws[:, 0], wrong).pvalue < 1e-3


def test_poisson_mixture_sampler_passes_a_chi_square_test():
    csvi.set_rng_seed(1)
    draws = poisson_mixture().sample((20000,)).numpy()
    for b in range(2):
        top = 25
        observed = np.bincount(np.minimum(draws[:, b], top).astype(int), minlength=top + 1)
        pmf = (W[b] * stats.poisson(RATE[b]).pmf(np.arange(top)[:, None])).sum(-1)
        expected = np.append(pmf, 1.0 - pmf.sum()) * len(draws)
        assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_gradients_reach_the_mixture_weights_and_the_components():
    x = np.array([[0.3, -1.0], [2.5, 0.1]])

    def lp(logits, loc, scale):
        return dist.MixtureSameFamily(dist.Categorical(logits=logits),
                                      dist.Normal(loc, scale)).log_prob(x)

    assert_grads_match(lp, [np.log(W), LOC, SCALE])


def test_support_validation_names_the_mixture():
    with pytest.raises(ValueError, match=r"MixtureSameFamily.log_prob: value must be in the "
                                         r"support .*integer"):
        poisson_mixture().log_prob(np.array([1.5, 2.0]))
    lo = np.array([0.0, 1.0, 2.0])
    m = dist.MixtureSameFamily(dist.Categorical(np.ones(3)), dist.Uniform(lo, lo + 4.0))
    m.log_prob(2.5)
    with pytest.raises(ValueError, match="MixtureSameFamily.log_prob"):
        m.log_prob(4.5)  # outside the first component's support
    with pytest.raises(ValueError, match=r"MixtureSameFamily.log_prob: a value of shape \(2, 3\)"):
        dist.MixtureSameFamily(dist.Categorical(np.ones((2, 3))),
                               dist.Uniform(lo, lo + 4.0)).log_prob(np.ones((2, 3)))
    assert m.support.event_dim == 0 and not m.support.is_discrete
    assert poisson_mixture().support.is_discrete


@pytest.mark.parametrize("make, match", [
    (lambda: dist.MixtureSameFamily(dist.Normal(0.0, 1.0), dist.Normal(LOC, SCALE)),
     "mixture_distribution must be a Categorical, got Normal"),
    (lambda: dist.MixtureSameFamily(dist.Categorical(W), "normal"),
     "component_distribution must be a csvi Distribution, got str"),
    (lambda: dist.MixtureSameFamily(dist.Categorical(np.ones(4)), dist.Normal(LOC, SCALE)),
     r"mixture_distribution has 4 components but component_distribution.batch_shape\[-1\] "
     r"is 3"),
    (lambda: dist.MixtureSameFamily(dist.Categorical(np.ones((5, 3))), dist.Normal(LOC, SCALE)),
     r"mixture_distribution.batch_shape \(5,\) cannot be broadcast"),
    (lambda: dist.MixtureSameFamily(dist.Categorical(np.ones(1)), dist.Normal(0.0, 1.0)),
     "must have a batch dim of components"),
])
def test_mismatched_shapes_are_errors_naming_the_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_expand_to_event_and_mask_wrap_the_mixture():
    m = normal_mixture()
    e = m.expand((3, 2))
    assert e.batch_shape == (3, 2) and e.sample().shape == (3, 2)
    np.testing.assert_allclose(e.log_prob(0.5).numpy(),
                               np.broadcast_to(m.log_prob(0.5).numpy(), (3, 2)))
    i = m.to_event(1)
    assert i.event_shape == (2,)
    np.testing.assert_allclose(i.log_prob(np.array([0.5, 1.0])).item(),
                               m.log_prob(np.array([0.5, 1.0])).numpy().sum())
    masked = m.mask(np.array([True, False])).log_prob(np.array([0.5, 1.0])).numpy()
    assert masked[1] == 0.0 and masked[0] == m.log_prob(np.array([0.5, 1.0])).numpy()[0]
    assert not m.has_rsample
    with pytest.raises(NotImplementedError):
        m.rsample()


def mixture_model(data):
    logits = csvi.param("logits", np.zeros(3))
    loc = csvi.param("loc", np.array([-1.0, 0.0, 1.0]))
    scale = csvi.param("scale", np.ones(3), constraint=constraints.positive)
    with csvi.plate("data", len(data)):
        csvi.sample("x", dist.MixtureSameFamily(dist.Categorical(logits=logits),
                                                dist.Normal(loc, scale)), obs=data)


def latent_mixture_model(data):
    z = csvi.sample("z", dist.MixtureSameFamily(dist.Categorical(np.ones(2)),
                                                dist.Poisson(np.array([1.0, 6.0]))))
    csvi.sample("x", dist.Normal(z, 1.0), obs=data)


def latent_mixture_guide(data):
    rate = csvi.param("rate", np.array([2.0, 3.0]), constraint=constraints.positive)
    w = csvi.param("w", np.ones(2) / 2, constraint=constraints.simplex)
    csvi.sample("z", dist.MixtureSameFamily(dist.Categorical(w), dist.Poisson(rate)))


def fit(model, guide, data, compiled, particles=1, steps=40):
    csvi.clear_param_store()
    csvi.set_rng_seed(7)
    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO(num_particles=particles))
    losses = svi.compile(data).run(steps) if compiled else np.array(
        [svi.step(data) for _ in range(steps)])
    store = csvi.get_param_store()
    return np.asarray(losses), {n: store.unconstrained(n).copy() for n in store.names()}


@pytest.mark.parametrize("model, guide, data", [
    (mixture_model, lambda data: None, np.random.default_rng(3).normal(size=50) * 2.0),
    (latent_mixture_model, latent_mixture_guide, 4.0),
])
@pytest.mark.parametrize("particles", [1, 3])
def test_compiled_svi_equals_eager(model, guide, data, particles):
    # with particles, only the order of summing their gradients differs
    rtol = 1e-12 if particles == 1 else 1e-10
    eager_losses, eager_params = fit(model, guide, data, False, particles)
    losses, params = fit(model, guide, data, True, particles)
    np.testing.assert_allclose(losses, eager_losses, rtol=rtol, atol=0)
    assert params.keys() == eager_params.keys()
    for name in params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=rtol, atol=1e-14)
    assert not np.allclose(eager_losses[:5], eager_losses[0])  # the params did move
