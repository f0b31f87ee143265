"""The count families (Binomial, Multinomial, NegativeBinomial, GammaPoisson,
BetaBinomial, Geometric) and OneHotCategorical: log_prob against scipy.stats
pmfs over broadcast shapes, gradients against finite differences, samplers
by chi-square tests (which a wrong probability fails), moments and entropies
against scipy, enumerate_support as torch, validation errors, and each
family inside a compiled SVI program equal to eager."""
import numpy as np
import pytest
from scipy import special, stats

import csvi
import csvi.distributions as dist
from csvi.distributions import constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from gradcheck import assert_grads_match

RNG = np.random.default_rng(0)
N = np.array([[5.0], [12.0]])                 # total counts, shape (2, 1)
P = np.array([0.1, 0.55, 0.93])               # probs, shape (3,): batch (2, 3)
R = np.array([[0.7], [3.5]])                  # NegativeBinomial total_count (real)
A = np.array([[0.8], [4.0]])                  # concentrations / Gamma shapes
B = np.array([0.5, 2.0, 9.0])                 # rates / concentration0
PG = np.array([[0.1, 0.55, 1.0], [0.02, 0.3, 0.9]])   # Geometric probs, batch (2, 3)
PGL = np.minimum(PG, 0.97)                             # ... with finite logits
K5 = RNG.integers(0, 6, size=(4, 1, 3)).astype(float)   # value (4, 1, 3) -> (4, 2, 3)
K30 = RNG.integers(0, 30, size=(4, 1, 3)).astype(float)

# name: (distribution, scipy log-pmf of a value, a value)
SCALAR_CASES = {
    "Binomial-probs": (lambda: dist.Binomial(N, probs=P),
                       lambda k: stats.binom.logpmf(k, N, P), K5),
    "Binomial-logits": (lambda: dist.Binomial(N, logits=special.logit(P)),
                        lambda k: stats.binom.logpmf(k, N, P), K5),
    # torch's NegativeBinomial counts successes (prob p) before total_count failures
    "NegativeBinomial-probs": (lambda: dist.NegativeBinomial(R, probs=P),
                               lambda k: stats.nbinom.logpmf(k, R, 1.0 - P), K30),
    "NegativeBinomial-logits": (lambda: dist.NegativeBinomial(R, logits=special.logit(P)),
                                lambda k: stats.nbinom.logpmf(k, R, 1.0 - P), K30),
    "GammaPoisson": (lambda: dist.GammaPoisson(A, B),
                     lambda k: stats.nbinom.logpmf(k, A, B / (1.0 + B)), K30),
    "BetaBinomial": (lambda: dist.BetaBinomial(A, B, N),
                     lambda k: stats.betabinom.logpmf(k, N, A, B), K5),
    # torch's Geometric counts failures before the first success; scipy's counts trials
    "Geometric-probs": (lambda: dist.Geometric(PG),
                        lambda k: stats.geom.logpmf(k + 1.0, PG), K30),
    "Geometric-logits": (lambda: dist.Geometric(logits=special.logit(PGL)),
                         lambda k: stats.geom.logpmf(k + 1.0, PGL), K30),
}

W = np.array([[0.2, 0.3, 0.5, 0.0], [0.1, 0.1, 0.4, 0.4]])   # batch (2,), K = 4
COUNTS = np.array([[[1.0, 2.0, 4.0, 0.0]], [[0.0, 0.0, 3.0, 4.0]], [[2.0, 2.0, 2.0, 1.0]]])
with np.errstate(divide="ignore"):
    LOG_W = np.log(W)
ONE_HOT = np.eye(4)[[0, 2, 3, 1]].reshape(4, 1, 4)
VECTOR_CASES = {
    "Multinomial-probs": (lambda: dist.Multinomial(7, probs=W * 3.0),
                          lambda x: stats.multinomial.logpmf(x, 7, W), COUNTS),
    "Multinomial-logits": (lambda: dist.Multinomial(7, logits=LOG_W + 1.5),
                           lambda x: stats.multinomial.logpmf(x, 7, W), COUNTS),
    "OneHotCategorical-probs": (lambda: dist.OneHotCategorical(W * 2.0),
                                lambda x: stats.multinomial.logpmf(x, 1, W), ONE_HOT),
    "OneHotCategorical-logits": (lambda: dist.OneHotCategorical(logits=LOG_W),
                                 lambda x: stats.multinomial.logpmf(x, 1, W), ONE_HOT),
}
CASES = {**SCALAR_CASES, **VECTOR_CASES}


@pytest.mark.parametrize("case", sorted(CASES))
def test_log_prob_matches_scipy_over_broadcast_shapes(case):
    make, ref, value = CASES[case]
    d = make()
    lp = d.log_prob(value)
    expected = ref(value)
    assert lp.shape == expected.shape == value.shape[:1] + d.batch_shape
    np.testing.assert_allclose(lp.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_log_prob_at_the_edges_of_the_parameter_range():
    k = np.array([0.0, 1.0, 3.0])
    np.testing.assert_array_equal(dist.Binomial(3, probs=0.0).log_prob(k).numpy(),
                                  stats.binom.logpmf(k, 3, 0.0))
    np.testing.assert_array_equal(dist.Binomial(3, probs=1.0).log_prob(k).numpy(),
                                  stats.binom.logpmf(k, 3, 1.0))
    np.testing.assert_array_equal(dist.Geometric(1.0).log_prob(k).numpy(), [0.0, -np.inf,
                                                                            -np.inf])
    # total_count 0: a point mass at 0
    np.testing.assert_array_equal(dist.NegativeBinomial(0.0, probs=0.3).log_prob(k).numpy(),
                                  [0.0, -np.inf, -np.inf])
    np.testing.assert_array_equal(dist.NegativeBinomial(2.0, probs=0.0).log_prob(k).numpy(),
                                  stats.nbinom.logpmf(k, 2.0, 1.0))
    x = np.array([[3.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(dist.Multinomial(3, logits=np.array([0.0, -np.inf]))
                               .log_prob(x).numpy(), [0.0, -np.inf], atol=1e-14)
    np.testing.assert_allclose(dist.OneHotCategorical(logits=np.array([0.0, -np.inf]))
                               .log_prob(np.eye(2)).numpy(), [0.0, -np.inf], atol=1e-14)


# ---- gradients --------------------------------------------------------------------

GRAD_CASES = {
    "Binomial-probs": (lambda p: dist.Binomial(N, probs=p).log_prob(K5), [P]),
    "Binomial-logits": (lambda l: dist.Binomial(N, logits=l).log_prob(K5),
                        [special.logit(P)]),
    "NegativeBinomial-probs": (lambda r, p: dist.NegativeBinomial(r, probs=p).log_prob(K30),
                               [R, P]),
    "NegativeBinomial-logits": (lambda r, l: dist.NegativeBinomial(r, logits=l).log_prob(K30),
                                [R, special.logit(P)]),
    "GammaPoisson": (lambda a, b: dist.GammaPoisson(a, b).log_prob(K30), [A, B]),
    "BetaBinomial": (lambda a, b: dist.BetaBinomial(a, b, N).log_prob(K5), [A, B]),
    "Geometric-probs": (lambda p: dist.Geometric(p).log_prob(K30), [P]),
    "Geometric-logits": (lambda l: dist.Geometric(logits=l).log_prob(K30),
                         [special.logit(P)]),
    "Multinomial-probs": (lambda p: dist.Multinomial(7, probs=p).log_prob(COUNTS),
                          [W + 0.1]),
    "Multinomial-logits": (lambda l: dist.Multinomial(7, logits=l).log_prob(COUNTS),
                           [np.log(W + 0.1)]),
    "OneHotCategorical-logits": (lambda l: dist.OneHotCategorical(logits=l).log_prob(ONE_HOT),
                                 [np.log(W + 0.1)]),
    "OneHotCategorical-entropy": (lambda l: dist.OneHotCategorical(logits=l).entropy(),
                                  [np.log(W + 0.1)]),
    "Geometric-entropy": (lambda l: dist.Geometric(logits=l).entropy(), [special.logit(P)]),
    "Binomial-entropy": (lambda p: dist.Binomial(6, probs=p).entropy(), [P]),
    "Multinomial-entropy": (lambda l: dist.Multinomial(5, logits=l).entropy(),
                            [np.log(W + 0.1)]),
}


@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_gradients_match_finite_differences(case):
    fn, params = GRAD_CASES[case]
    assert_grads_match(fn, params, rtol=1e-5, atol=1e-7)


# ---- Bernoulli probs broadcast over more data (the per-state table path) ----------

PROBS_TABLE = np.array([[0.0, 0.2, 0.7, 1.0, 0.45]]).T.reshape(5, 1) * np.ones((1, 3))
PROBS_TABLE = PROBS_TABLE.reshape(5, 1, 3)          # 5 states x 3 tones
BITS = (RNG.random((4, 3)) < 0.5).astype(float)    # 4 data rows x 3 tones


def test_bernoulli_probs_broadcast_over_data_matches_scipy_with_edges():
    lp = dist.Bernoulli(PROBS_TABLE).log_prob(BITS)
    with np.errstate(divide="ignore"):
        expected = stats.bernoulli.logpmf(BITS, PROBS_TABLE)
    assert lp.shape == (5, 4, 3)
    np.testing.assert_allclose(lp.numpy(), expected, rtol=1e-13, atol=0)


def test_bernoulli_probs_broadcast_over_data_gradients_match_finite_differences():
    table = np.clip(PROBS_TABLE, 0.05, 0.95)  # inside (0, 1), where the gradient exists
    assert_grads_match(lambda p: dist.Bernoulli(p).log_prob(BITS), [table],
                       rtol=1e-6, atol=1e-8)
    # a value with a gradient too (the per-element path)
    assert_grads_match(lambda p, x: dist.Bernoulli(p, validate_args=False).log_prob(x),
                       [table, np.full((4, 3), 0.3)], rtol=1e-6, atol=1e-8)


# ---- samplers ----------------------------------------------------------------------

def chi_square_pvalue(draws, pmf):
    """p-value of the counts of whole-number `draws` against `pmf(k)`, bins
    with expected count < 5 pooled into one."""
    draws = np.asarray(draws).astype(np.int64)
    top = int(draws.max()) + 1
    support = np.arange(top)
    p = pmf(support)
    expected = p * len(draws)
    keep = expected >= 5.0
    observed = np.bincount(draws, minlength=top)
    obs = np.append(observed[keep], len(draws) - observed[keep].sum())
    exp = np.append(expected[keep], len(draws) - expected[keep].sum())
    if exp[-1] < 1e-9:
        obs, exp = obs[:-1], exp[:-1]
    return stats.chisquare(obs, exp).pvalue


# name: (distribution with batch (2,), pmf(k, b) of batch element b, a wrong pmf of element 0)
SAMPLER_CASES = {
    "Binomial": (lambda: dist.Binomial(np.array([10.0, 40.0]), probs=np.array([0.3, 0.8])),
                 lambda k, b: stats.binom.pmf(k, [10, 40][b], [0.3, 0.8][b]),
                 lambda k: stats.binom.pmf(k, 10, 0.33)),
    "Binomial-logits": (lambda: dist.Binomial(25, logits=np.array([-1.0, 2.0])),
                        lambda k, b: stats.binom.pmf(k, 25, special.expit([-1.0, 2.0][b])),
                        lambda k: stats.binom.pmf(k, 25, special.expit(-0.95))),
    "NegativeBinomial": (lambda: dist.NegativeBinomial(np.array([2.5, 10.0]),
                                                       probs=np.array([0.4, 0.7])),
                         lambda k, b: stats.nbinom.pmf(k, [2.5, 10.0][b], 1 - [0.4, 0.7][b]),
                         lambda k: stats.nbinom.pmf(k, 2.5, 0.57)),
    "GammaPoisson": (lambda: dist.GammaPoisson(np.array([1.5, 30.0]), np.array([0.3, 2.0])),
                     lambda k, b: stats.nbinom.pmf(k, [1.5, 30.0][b],
                                                   [0.3 / 1.3, 2.0 / 3.0][b]),
                     lambda k: stats.nbinom.pmf(k, 1.6, 0.3 / 1.3)),
    "BetaBinomial": (lambda: dist.BetaBinomial(np.array([0.7, 5.0]), np.array([1.3, 2.0]),
                                               np.array([12.0, 30.0])),
                     lambda k, b: stats.betabinom.pmf(k, [12, 30][b], [0.7, 5.0][b],
                                                      [1.3, 2.0][b]),
                     lambda k: stats.betabinom.pmf(k, 12, 0.75, 1.3)),
    "Geometric": (lambda: dist.Geometric(np.array([0.15, 0.8])),
                  lambda k, b: stats.geom.pmf(k + 1, [0.15, 0.8][b]),
                  lambda k: stats.geom.pmf(k + 1, 0.16)),
    "Geometric-logits": (lambda: dist.Geometric(logits=np.array([-3.0, 0.5])),
                         lambda k, b: stats.geom.pmf(k + 1, special.expit([-3.0, 0.5][b])),
                         lambda k: stats.geom.pmf(k + 1, special.expit(-2.9))),
}


@pytest.mark.parametrize("case", sorted(SAMPLER_CASES))
def test_sampler_passes_a_chi_square_test_that_a_wrong_pmf_fails(case):
    make, pmf, wrong = SAMPLER_CASES[case]
    csvi.set_rng_seed(0)
    d = make()
    draws = d.sample((20000,))
    assert draws.shape == (20000, 2)
    x = draws.numpy()
    assert np.all(x == np.round(x)) and np.all(x >= 0)
    for b in range(2):
        assert chi_square_pvalue(x[:, b], lambda k, b=b: pmf(k, b)) > 1e-3, b
    assert chi_square_pvalue(x[:, 0], wrong) < 1e-3
    np.testing.assert_allclose(d.log_prob(draws).numpy()[:5],
                               np.log([[pmf(k, b) for b, k in enumerate(row)]
                                       for row in x[:5].astype(int)]), rtol=1e-9)


def test_multinomial_sampler_marginals_are_binomials():
    csvi.set_rng_seed(1)
    p = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.45, 0.05]])
    draws = dist.Multinomial(9, probs=p).sample((20000,)).numpy()
    assert draws.shape == (20000, 2, 4)
    assert np.all(draws.sum(-1) == 9)
    for b in range(2):
        for k in range(4):
            assert chi_square_pvalue(draws[:, b, k],
                                     lambda j: stats.binom.pmf(j, 9, p[b, k])) > 1e-4
    assert chi_square_pvalue(draws[:, 0, 0], lambda j: stats.binom.pmf(j, 9, 0.11)) < 1e-3


@pytest.mark.parametrize("kw", [{"probs": W[1] * 5}, {"logits": np.log(W[1])}])
def test_one_hot_categorical_sampler_matches_the_probs(kw):
    csvi.set_rng_seed(2)
    draws = dist.OneHotCategorical(**kw).sample((3, 10000)).numpy()
    assert draws.shape == (3, 10000, 4)
    assert np.all(draws.sum(-1) == 1) and set(np.unique(draws)) == {0.0, 1.0}
    counts = draws.reshape(-1, 4).sum(0)
    assert stats.chisquare(counts, W[1] * 30000).pvalue > 1e-3
    assert stats.chisquare(counts, np.array([0.12, 0.1, 0.38, 0.4]) * 30000).pvalue < 1e-3


# ---- moments, entropy, enumerate_support ---------------------------------------------

MOMENT_CASES = {
    "Binomial": (lambda: dist.Binomial(N, probs=P), stats.binom(N, P)),
    "Binomial-logits": (lambda: dist.Binomial(N, logits=special.logit(P)), stats.binom(N, P)),
    "NegativeBinomial": (lambda: dist.NegativeBinomial(R, probs=P), stats.nbinom(R, 1 - P)),
    "NegativeBinomial-logits": (lambda: dist.NegativeBinomial(R, logits=special.logit(P)),
                                stats.nbinom(R, 1 - P)),
    "GammaPoisson": (lambda: dist.GammaPoisson(A, B), stats.nbinom(A, B / (1 + B))),
    "BetaBinomial": (lambda: dist.BetaBinomial(A, B, N), stats.betabinom(N, A, B)),
    "Geometric": (lambda: dist.Geometric(PGL), stats.geom(PGL, loc=-1)),
    "Geometric-logits": (lambda: dist.Geometric(logits=special.logit(PGL)),
                         stats.geom(PGL, loc=-1)),
}


@pytest.mark.parametrize("case", sorted(MOMENT_CASES))
def test_mean_and_variance_match_scipy(case):
    make, ref = MOMENT_CASES[case]
    d = make()
    mean, var = ref.stats(moments="mv")
    assert d.mean.shape == d.variance.shape == d.batch_shape == (2, 3)
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), var, rtol=1e-10)


def test_modes_are_the_pmf_maxima():
    k = np.arange(400.0)[:, None, None]
    for d, pmf in [(dist.Binomial(N, probs=P), stats.binom.pmf(k, N, P)),
                   (dist.Binomial(N, logits=special.logit(P)), stats.binom.pmf(k, N, P)),
                   (dist.NegativeBinomial(R, probs=P), stats.nbinom.pmf(k, R, 1 - P)),
                   (dist.NegativeBinomial(R, logits=special.logit(P)),
                    stats.nbinom.pmf(k, R, 1 - P)),
                   (dist.Geometric(PGL), stats.geom.pmf(k + 1, PGL))]:
        assert d.mode.shape == d.batch_shape
        np.testing.assert_array_equal(d.mode.numpy(), np.argmax(pmf, 0))
    # two modes tie at (n + 1) p = 3: the larger, as torch
    assert dist.Binomial(5, probs=0.5).mode.item() == 3.0
    oh = dist.OneHotCategorical(logits=np.array([[0.1, 2.0, 2.0], [3.0, -1.0, 0.0]]))
    np.testing.assert_array_equal(oh.mode.numpy(), [[0, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize("kw", [{"probs": W * 2}, {"logits": LOG_W - 1}])
def test_vector_family_moments_match_scipy(kw):
    for d, n in [(dist.Multinomial(6, **kw), 6), (dist.OneHotCategorical(**kw), 1)]:
        assert d.mean.shape == d.variance.shape == (2, 4)
        np.testing.assert_allclose(d.mean.numpy(), stats.multinomial.mean(n, W), atol=1e-14)
        cov = stats.multinomial.cov(n, W)
        np.testing.assert_allclose(d.variance.numpy(), np.diagonal(cov, 0, -2, -1), atol=1e-14)


def test_entropies_match_scipy():
    np.testing.assert_allclose(dist.Binomial(9, probs=P).entropy().numpy(),
                               stats.binom(9, P).entropy(), rtol=1e-10)
    np.testing.assert_allclose(dist.Binomial(9, logits=special.logit(P)).entropy().numpy(),
                               stats.binom(9, P).entropy(), rtol=1e-10)
    for d in [dist.Geometric(P), dist.Geometric(logits=special.logit(P))]:
        np.testing.assert_allclose(d.entropy().numpy(), stats.geom(P).entropy(), rtol=1e-10)
    np.testing.assert_allclose(dist.Geometric(1.0).entropy().item(), 0.0)
    for d in [dist.OneHotCategorical(W * 3), dist.OneHotCategorical(logits=LOG_W)]:
        np.testing.assert_allclose(d.entropy().numpy(), stats.entropy(W, axis=-1), rtol=1e-12)
    for n in (0, 1, 2, 9):
        for d in [dist.Multinomial(n, W * 3), dist.Multinomial(n, logits=LOG_W)]:
            assert d.entropy().shape == (2,)
            np.testing.assert_allclose(d.entropy().numpy(), stats.multinomial.entropy(n, W),
                                       rtol=1e-10, atol=1e-14)


def test_enumerate_support_shapes_and_values():
    d = dist.Binomial(4, probs=np.full((2, 3), 0.3))
    full = d.enumerate_support()
    assert full.shape == (5, 2, 3)
    np.testing.assert_array_equal(full.numpy()[:, 1, 2], np.arange(5.0))
    assert d.enumerate_support(expand=False).shape == (5, 1, 1)
    np.testing.assert_allclose(np.exp(d.log_prob(full).numpy()).sum(0), 1.0, rtol=1e-12)
    bb = dist.BetaBinomial(np.ones(3), 2.0, 6)
    assert bb.enumerate_support().shape == (7, 3)
    np.testing.assert_allclose(np.exp(bb.log_prob(bb.enumerate_support()).numpy()).sum(0),
                               1.0, rtol=1e-12)
    oh = dist.OneHotCategorical(np.ones((2, 3, 4)))
    values = oh.enumerate_support()
    assert values.shape == (4, 2, 3, 4)
    assert oh.enumerate_support(expand=False).shape == (4, 1, 1, 4)
    np.testing.assert_array_equal(values.numpy()[:, 1, 2], np.eye(4))
    for family in (dist.Binomial, dist.OneHotCategorical, dist.BetaBinomial):
        assert family.has_enumerate_support
    for family in (dist.Multinomial, dist.NegativeBinomial, dist.GammaPoisson, dist.Geometric):
        assert not family.has_enumerate_support
    with pytest.raises(NotImplementedError, match="Binomial.enumerate_support: total_count "
                                                  "differs"):
        dist.Binomial(np.array([2.0, 3.0]), probs=0.5).enumerate_support()
    with pytest.raises(NotImplementedError, match="BetaBinomial.enumerate_support"):
        dist.BetaBinomial(1.0, 1.0, np.array([2.0, 3.0])).enumerate_support()


def test_enumerate_support_agrees_with_torch():
    torch = pytest.importorskip("torch")
    td = torch.distributions
    cases = [(dist.Binomial(3, probs=np.full((2,), 0.4)),
              td.Binomial(3, probs=torch.full((2,), 0.4, dtype=torch.float64))),
             (dist.OneHotCategorical(np.ones((2, 3))),
              td.OneHotCategorical(torch.ones(2, 3, dtype=torch.float64)))]
    for ours, theirs in cases:
        for expand in (True, False):
            np.testing.assert_array_equal(ours.enumerate_support(expand).numpy(),
                                          theirs.enumerate_support(expand).numpy())


def test_shapes_supports_and_flags():
    for case in CASES:
        d = CASES[case][0]()
        assert not d.has_rsample and d.support.is_discrete, case
        with pytest.raises(NotImplementedError):
            d.rsample()
        assert d.sample((3,)).shape == (3,) + d.batch_shape + d.event_shape, case
    assert dist.Multinomial(5, probs=W).event_shape == (4,)
    assert dist.Multinomial(5, probs=W).batch_shape == (2,)
    assert dist.OneHotCategorical(W).event_shape == (4,)
    assert dist.Binomial(N, probs=P).support.first_violation(np.array([[5.0], [13.0]])) == 1
    assert dist.Binomial(10, probs=P).support.check(10.0)
    assert dist.NegativeBinomial(2.0, logits=0.0).support is constraints.nonnegative_integer
    e = dist.Geometric(P).expand((4, 3))
    assert e.batch_shape == (4, 3) and e.sample().shape == (4, 3)
    i = dist.Binomial(N, probs=P).to_event(2)
    assert i.event_shape == (2, 3)
    np.testing.assert_allclose(i.log_prob(K5).numpy(), stats.binom.logpmf(K5, N, P).sum((1, 2)))
    m = dist.Geometric(P).mask(np.array([True, False, True])).log_prob(2.0).numpy()
    assert m[1] == 0.0 and m[0] == stats.geom.logpmf(3, P[0])


def test_probs_and_logits_convert_both_ways():
    d = dist.Binomial(5, logits=special.logit(P))
    np.testing.assert_allclose(d.probs.numpy(), P, rtol=1e-12)
    np.testing.assert_allclose(dist.NegativeBinomial(2.0, probs=P).logits.numpy(),
                               special.logit(P), rtol=1e-12)
    m = dist.Multinomial(3, probs=W * 2)
    np.testing.assert_allclose(m.probs.numpy(), W, rtol=1e-12)
    np.testing.assert_allclose(m.logits.numpy(), LOG_W, rtol=1e-12)
    assert m.param_shape == (2, 4) and m.total_count == 3


# ---- validation ----------------------------------------------------------------------

BAD = [
    (lambda: dist.Binomial(5, probs=1.2), ValueError, "Binomial: probs must be"),
    (lambda: dist.Binomial(-1, probs=0.5), ValueError, "Binomial: total_count must be"),
    (lambda: dist.Binomial(2.5, probs=0.5), ValueError, "Binomial: total_count must be an "
                                                        "integer"),
    (lambda: dist.Binomial(5), ValueError, "Binomial: pass exactly one of probs or logits"),
    (lambda: dist.Binomial(np.ones(2), probs=np.ones(3) * 0.5), ValueError,
     r"Binomial: the shapes of total_count \(2,\), probs \(3,\) cannot be broadcast"),
    (lambda: dist.Binomial("ten", probs=0.5), TypeError, "Binomial: total_count must be"),
    (lambda: dist.Binomial(5, probs=0.5).log_prob(6.0), ValueError,
     r"Binomial.log_prob: value must be in the support \(an integer >= 0 and <= 5\)"),
    (lambda: dist.Binomial(N, probs=0.5).log_prob(np.array([[2.0], [13.0]])), ValueError,
     r"Binomial.log_prob: value must be in the support \(an integer >= 0 and <= upper_bound "
     r"\(bounds from the distribution's parameters\)\), got 13.0"),
    (lambda: dist.Binomial(N, probs=0.5).log_prob(np.ones((3, 2))), ValueError,
     r"Binomial.log_prob: a value of shape \(3, 2\) cannot be broadcast with batch_shape"),
    (lambda: dist.Binomial(N, probs=0.5).log_prob("two"), TypeError,
     "Binomial.log_prob: value must be"),
    (lambda: dist.NegativeBinomial(2.0, probs=1.0), ValueError,
     "NegativeBinomial: probs must be"),
    (lambda: dist.NegativeBinomial(-1.0, logits=0.5), ValueError,
     "NegativeBinomial: total_count must be"),
    (lambda: dist.NegativeBinomial(2.0, probs=0.5, logits=0.0), ValueError,
     "NegativeBinomial: pass exactly one of probs or logits, got both"),
    (lambda: dist.NegativeBinomial(2.0, probs=0.5).log_prob(1.5), ValueError,
     "NegativeBinomial.log_prob: value must be in the support"),
    (lambda: dist.GammaPoisson(0.0, 1.0), ValueError, "GammaPoisson: concentration must be"),
    (lambda: dist.GammaPoisson(1.0, np.array([1.0, -1.0])), ValueError,
     "GammaPoisson: rate must be .* at index 1"),
    (lambda: dist.GammaPoisson(1.0, 1.0).log_prob(-1.0), ValueError,
     "GammaPoisson.log_prob: value must be in the support"),
    (lambda: dist.BetaBinomial(1.0, -1.0, 3), ValueError, "BetaBinomial: concentration0"),
    (lambda: dist.BetaBinomial(1.0, 1.0, 3.5), ValueError, "BetaBinomial: total_count"),
    (lambda: dist.BetaBinomial(1.0, 1.0, 3).log_prob(4.0), ValueError,
     "BetaBinomial.log_prob: value must be in the support"),
    (lambda: dist.Geometric(0.0), ValueError, r"Geometric: probs must be a number > 0 and <= 1"),
    (lambda: dist.Geometric(logits=np.nan), ValueError, "Geometric: logits must be"),
    (lambda: dist.Geometric(0.5).log_prob(-1.0), ValueError,
     "Geometric.log_prob: value must be in the support"),
    (lambda: dist.Multinomial(3, probs=np.array([0.2, -0.1])), ValueError,
     "Multinomial: probs must be"),
    (lambda: dist.Multinomial(-2, probs=np.array([0.5, 0.5])), ValueError,
     "Multinomial: total_count must be an integer >= 0"),
    (lambda: dist.Multinomial(3, probs=0.5), ValueError,
     "Multinomial: probs must have a last dim of categories"),
    (lambda: dist.Multinomial(3, probs=np.ones(2)).log_prob(np.array([1.0, 1.0])), ValueError,
     r"Multinomial.log_prob: value must be in the support \(a vector .* summing to "
     r"total_count = 3\), got \[1.0, 1.0\]"),
    (lambda: dist.OneHotCategorical(probs=np.ones(2)).log_prob(np.array([1.0, 1.0])),
     ValueError, r"OneHotCategorical.log_prob: value must be in the support \(a one-hot"),
    (lambda: dist.OneHotCategorical(logits=np.array([np.inf, 0.0])), ValueError,
     "OneHotCategorical: logits must be"),
    (lambda: dist.OneHotCategorical(), ValueError,
     "OneHotCategorical: pass exactly one of probs or logits, got neither"),
    (lambda: dist.OneHotCategorical(np.ones(3)).log_prob(np.eye(4)), ValueError,
     "OneHotCategorical.log_prob: a value of shape"),
]


@pytest.mark.parametrize("k", range(len(BAD)))
def test_bad_arguments_and_values_are_errors_naming_the_family(k):
    make, error, match = BAD[k]
    with pytest.raises(error, match=match):
        make()


def test_validation_can_be_turned_off():
    with dist.validation_enabled(False):
        d = dist.Binomial(5, probs=0.5)
        assert np.isfinite(d.log_prob(2.5).item())
        assert dist.Geometric(0.5).log_prob(-1.0).item() > -np.inf


# ---- compiled programs ---------------------------------------------------------------

def pos(name, init):
    return csvi.param(name, init, constraint=constraints.positive)


def unit(name, init):
    return csvi.param(name, init, constraint=constraints.unit_interval)


# name: (prior, the guide's family from its params, how an observation depends on z)
LATENT = {
    "Binomial": (lambda: dist.Binomial(8, probs=0.4),
                 lambda: dist.Binomial(8, probs=unit("q", 0.5)), lambda z: z),
    "Binomial-logits": (lambda: dist.Binomial(np.full(2, 8.0), logits=0.0),
                        lambda: dist.Binomial(8, logits=csvi.param("q", np.zeros(2))),
                        lambda z: csvi.sum(z)),
    "NegativeBinomial": (lambda: dist.NegativeBinomial(3.0, probs=0.5),
                         lambda: dist.NegativeBinomial(pos("r", 2.0), logits=csvi.param("l", 0.0)),
                         lambda z: z),
    "GammaPoisson": (lambda: dist.GammaPoisson(2.0, 0.5),
                     lambda: dist.GammaPoisson(pos("a", 3.0), pos("b", 1.0)), lambda z: z),
    "BetaBinomial": (lambda: dist.BetaBinomial(2.0, 2.0, 6),
                     lambda: dist.BetaBinomial(pos("a", 1.0), pos("b", 1.0), 6), lambda z: z),
    "Geometric": (lambda: dist.Geometric(0.3), lambda: dist.Geometric(unit("q", 0.5)),
                  lambda z: z),
    "Multinomial": (lambda: dist.Multinomial(5, probs=np.ones(3)),
                    lambda: dist.Multinomial(5, probs=csvi.param(
                        "w", np.ones(3) / 3, constraint=constraints.simplex)),
                    lambda z: csvi.sum(z * np.array([0.0, 1.0, 2.0]))),
    "OneHotCategorical": (lambda: dist.OneHotCategorical(np.ones(3)),
                          lambda: dist.OneHotCategorical(logits=csvi.param("l", np.zeros(3))),
                          lambda z: csvi.sum(z * np.array([0.0, 2.0, 4.0]))),
}


def fit(case, compiled, particles=1, steps=30):
    prior, posterior, mean = LATENT[case]

    def model(x):
        z = csvi.sample("z", prior())
        csvi.sample("x", dist.Normal(mean(z), 1.0), obs=x)

    def guide(x):
        csvi.sample("z", posterior())

    csvi.clear_param_store()
    csvi.set_rng_seed(11)
    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO(num_particles=particles))
    losses = svi.compile(3.0).run(steps) if compiled else np.array(
        [svi.step(3.0) for _ in range(steps)])
    store = csvi.get_param_store()
    return np.asarray(losses), {n: store.unconstrained(n).copy() for n in store.names()}


@pytest.mark.parametrize("particles", [1, 3])
@pytest.mark.parametrize("case", sorted(LATENT))
def test_family_in_a_compiled_svi_program_equals_eager(case, particles):
    # with particles, only the order of summing their gradients differs
    rtol = 1e-12 if particles == 1 else 1e-10
    eager_losses, eager_params = fit(case, False, particles)
    losses, params = fit(case, True, particles)
    np.testing.assert_allclose(losses, eager_losses, rtol=rtol, atol=0)
    assert params.keys() == eager_params.keys()
    for name in params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=rtol, atol=1e-14)
    assert len(set(np.round(losses, 12))) > 1  # the draws and params changed step to step


# ---- KL divergence -------------------------------------------------------------------

KL_CASES = {
    "Binomial": (lambda: dist.Binomial(7, probs=np.array([0.2, 0.6])),
                 lambda: dist.Binomial(7, logits=np.array([0.4, -1.0]))),
    "Geometric": (lambda: dist.Geometric(np.array([0.3, 0.8])),
                  lambda: dist.Geometric(logits=np.array([-0.5, 0.2]))),
    "OneHotCategorical": (lambda: dist.OneHotCategorical(np.array([[0.2, 0.5, 0.3],
                                                                   [0.0, 0.4, 0.6]])),
                          lambda: dist.OneHotCategorical(logits=np.array([0.1, -0.3, 1.0]))),
}


@pytest.mark.parametrize("case", sorted(KL_CASES))
def test_kl_divergence_matches_a_monte_carlo_estimate(case):
    csvi.set_rng_seed(5)
    p, q = KL_CASES[case][0](), KL_CASES[case][1]()
    kl = dist.kl_divergence(p, q).numpy()
    x = p.sample((40000,))
    ratio = (p.log_prob(x) - q.log_prob(x)).numpy()
    stderr = ratio.std(0) / np.sqrt(len(ratio))
    assert kl.shape == ratio.shape[1:]
    assert np.all(np.abs(kl - ratio.mean(0)) < 4 * stderr + 1e-12), (kl, ratio.mean(0))


def test_kl_gradients_and_refusals():
    assert_grads_match(lambda a, b: dist.kl_divergence(dist.Geometric(a), dist.Geometric(b)),
                       [np.array([0.3, 0.7]), np.array([0.5, 0.2])])
    assert_grads_match(lambda a, b: dist.kl_divergence(dist.Binomial(4, probs=a),
                                                       dist.Binomial(4, probs=b)),
                       [np.array([0.3, 0.7]), np.array([0.5, 0.2])])
    assert_grads_match(lambda a, b: dist.kl_divergence(dist.OneHotCategorical(logits=a),
                                                       dist.OneHotCategorical(logits=b)),
                       [np.array([0.3, 0.7, -1.0]), np.array([0.5, 0.2, 0.0])])
    with pytest.raises(NotImplementedError, match="total_counts differ"):
        dist.kl_divergence(dist.Binomial(3, probs=0.5), dist.Binomial(4, probs=0.5))
    np.testing.assert_allclose(dist.kl_divergence(dist.Binomial(3, probs=0.5),
                                                  dist.Binomial(3, probs=0.5)).item(), 0.0)
