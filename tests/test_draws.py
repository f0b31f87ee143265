"""Draw ops for composed families (csvi/distributions/draws.py,
src_c/draws.c): each against scipy.stats by a KS or chi-square test, their
shapes and broadcasting, reproducibility from the seed, fresh draws in a
compiled program, and refusal of parameters outside a sampler's domain."""
import numpy as np
import pytest
import scipy.stats as st

import csvi
from csvi.distributions import draws

N = 20000


@pytest.fixture(autouse=True)
def seeded():
    csvi.set_rng_seed(1)


@pytest.mark.parametrize("draw, ref", [
    (draws.standard_normal, st.norm()),
    (draws.standard_uniform, st.uniform()),
    (draws.standard_exponential, st.expon()),
    (draws.standard_cauchy, st.cauchy()),
])
def test_standard_noise_follows_its_law(draw, ref):
    x = draw((N,))
    assert x.shape == (N,) and not x.requires_grad
    assert st.kstest(x.numpy(), ref.cdf).pvalue > 1e-3


def test_uniform_noise_is_in_the_open_interval():
    u = draws.standard_uniform((4, 50000)).numpy()
    assert u.min() > 0.0 and u.max() < 1.0


def chisquare_pvalue(samples, pmf, support):
    """Chi-square over the values expected at least 5 times, the rest pooled
    (into the last bin when they are expected fewer than 5 times)."""
    support = np.asarray(support)
    expected = pmf(support) * samples.size
    support, expected = support[expected >= 5], expected[expected >= 5]
    counts = np.array([(samples == k).sum() for k in support], dtype=float)
    rest_counts, rest_expected = samples.size - counts.sum(), samples.size - expected.sum()
    if rest_expected >= 5:
        counts, expected = np.append(counts, rest_counts), np.append(expected, rest_expected)
    else:
        counts[-1] += rest_counts
        expected[-1] += rest_expected
    return st.chisquare(counts, expected).pvalue


@pytest.mark.parametrize("n, p", [(10, 0.3), (1, 0.9), (40, 0.05), (1000, 0.5)])
def test_binomial_follows_scipy(n, p):
    x = draws.binomial(n, p, (N,)).numpy()
    assert np.all((x >= 0) & (x <= n))
    assert chisquare_pvalue(x, st.binom(n, p).pmf, np.arange(n + 1)) > 1e-3


def test_binomial_broadcasts_its_parameters():
    n = np.array([[0.0], [5.0], [20.0]])
    p = np.array([0.0, 0.5, 1.0])
    x = draws.binomial(n, p, (2000, 3, 3)).numpy()
    assert x.shape == (2000, 3, 3)
    np.testing.assert_array_equal(x[:, 0, :], 0)
    np.testing.assert_array_equal(x[:, :, 0], 0)
    np.testing.assert_array_equal(x[:, :, 2], np.broadcast_to(n[:, 0], (2000, 3)))
    np.testing.assert_allclose(x[:, 2, 1].mean(), 10.0, atol=0.3)


@pytest.mark.parametrize("loc, conc", [(0.0, 0.5), (1.0, 4.0), (-2.5, 60.0)])
def test_vonmises_follows_scipy(loc, conc):
    x = draws.vonmises(loc, conc, (N,)).numpy()
    assert np.all(np.abs(x) <= np.pi)
    # the angle relative to loc, wrapped into [-pi, pi), has scipy's vonmises(conc) law
    rel = np.mod(x - loc + np.pi, 2 * np.pi) - np.pi
    assert st.kstest(rel, st.vonmises(conc).cdf).pvalue > 1e-3


def test_multinomial_counts_follow_the_law():
    probs = np.array([0.1, 0.0, 0.6, 0.3])
    x = draws.multinomial(12, probs, (N, 4)).numpy()
    assert x.shape == (N, 4)
    np.testing.assert_array_equal(x.sum(-1), 12)
    np.testing.assert_array_equal(x[:, 1], 0)
    # each category's count is Binomial(12, p_k)
    for k in (0, 2, 3):
        assert chisquare_pvalue(x[:, k], st.binom(12, probs[k]).pmf, np.arange(13)) > 1e-3
    # and the pairs covary as -n p_j p_k
    cov = np.cov(x[:, [0, 2, 3]].T)
    np.testing.assert_allclose(cov[0, 1], -12 * 0.1 * 0.6, atol=0.05)


def test_multinomial_broadcasts_counts_and_unnormalized_probs():
    total = np.array([3.0, 7.0])
    probs = np.array([[2.0, 2.0], [1.0, 3.0]])  # rows need not sum to 1
    x = draws.multinomial(total[:, None], probs, (5000, 2, 2, 2)).numpy()
    np.testing.assert_array_equal(x.sum(-1), np.broadcast_to(total[:, None], (5000, 2, 2)))
    np.testing.assert_allclose(x[:, 1, 1, 1].mean(), 7 * 0.75, atol=0.1)
    np.testing.assert_allclose(x[:, 0, 0, 0].mean(), 3 * 0.5, atol=0.1)


def test_draws_are_reproducible_from_the_seed():
    csvi.set_rng_seed(7)
    a = [draws.standard_normal((3,)).numpy(), draws.binomial(5, 0.5, (3,)).numpy(),
         draws.vonmises(0.0, 2.0, (3,)).numpy(), draws.multinomial(4, [0.5, 0.5], (3, 2)).numpy()]
    csvi.set_rng_seed(7)
    b = [draws.standard_normal((3,)).numpy(), draws.binomial(5, 0.5, (3,)).numpy(),
         draws.vonmises(0.0, 2.0, (3,)).numpy(), draws.multinomial(4, [0.5, 0.5], (3, 2)).numpy()]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("call, op", [
    (lambda: draws.binomial(2.5, 0.5, (3,)), "DRAW_BINOMIAL"),
    (lambda: draws.binomial(-1.0, 0.5, (3,)), "DRAW_BINOMIAL"),
    (lambda: draws.binomial(4.0, np.nan, (3,)), "DRAW_BINOMIAL"),
    (lambda: draws.binomial(4.0, 1.5, (3,)), "DRAW_BINOMIAL"),
    (lambda: draws.vonmises(0.0, -1.0, (3,)), "DRAW_VONMISES"),
    (lambda: draws.vonmises(np.inf, 1.0, (3,)), "DRAW_VONMISES"),
    (lambda: draws.multinomial(3.0, [0.0, 0.0], (2,)), "DRAW_MULTINOMIAL"),
    (lambda: draws.multinomial(3.0, [0.5, -0.1], (2,)), "DRAW_MULTINOMIAL"),
])
def test_parameters_outside_the_domain_are_refused(call, op):
    with pytest.raises(ValueError, match=op):
        call()


def test_multinomial_needs_a_category_dim():
    with pytest.raises(ValueError, match="category dim"):
        draws.multinomial(3, 0.5, ())


def test_compiled_program_redraws_noise_every_step():
    """A guide whose only randomness is a DRAW_NOISE op: a compiled run's loss
    changes from step to step, and equals the eager run's from the same seed."""
    import csvi.distributions as dist
    from csvi.infer import SVI, Trace_ELBO
    from csvi.optim import Adam

    def model():
        csvi.sample("x", dist.Normal(0.0, 1.0))

    def guide():
        loc = csvi.param("loc", csvi.tensor(0.3))
        noise = draws.standard_cauchy(())
        csvi.sample("x", dist.Delta(loc + 0.1 * noise))

    losses = {}
    for compile in (False, True):
        csvi.clear_param_store()
        csvi.set_rng_seed(3)
        svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
        losses[compile] = svi.run(20, compile=compile).losses
    assert len(set(losses[True].tolist())) == 20
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-12)
