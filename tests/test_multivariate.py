"""MultivariateNormal and LowRankMultivariateNormal: densities, moments and
entropies against scipy.stats.multivariate_normal over broadcast batch
shapes, samplers by moments and a KS test of their Mahalanobis distances,
gradients of log_prob and of rsample's pathwise draws against finite
differences, KL against its closed form and Monte Carlo, bad arguments, and
compiled == eager."""
import numpy as np
import pytest
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi import linalg
from csvi.distributions import LowRankMultivariateNormal, MultivariateNormal
from csvi.infer import Trace_ELBO, TraceMeanField_ELBO
from csvi.optim import Adam
from compiled_check import assert_compiled_matches_eager
from gradcheck import assert_grads_match

RNG = np.random.default_rng(11)
D = 3


def spd(batch=(), n=D, rng=RNG):
    m = rng.standard_normal(batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + 0.5 * np.eye(n)


def each(batch):
    return list(np.ndindex(*batch)) if batch else [()]


def bcast(x, batch, event_dims):
    return np.broadcast_to(x, batch + x.shape[x.ndim - event_dims:])


PARAMS = ["covariance_matrix", "precision_matrix", "scale_tril"]


def mvn_args(kind, cov):
    if kind == "covariance_matrix":
        return {kind: cov}
    if kind == "precision_matrix":
        return {kind: np.linalg.inv(cov)}
    return {kind: np.linalg.cholesky(cov)}


# ---- densities, moments, shapes ---------------------------------------------

@pytest.mark.parametrize("kind", PARAMS)
@pytest.mark.parametrize("loc_batch,mat_batch,value_batch", [
    ((), (), ()), ((), (), (5,)), ((2,), (), (4, 1)), ((2, 1), (3,), (2, 3)), ((), (3,), (4, 1)),
])
def test_mvn_log_prob_moments_entropy_match_scipy(kind, loc_batch, mat_batch, value_batch):
    loc = RNG.standard_normal(loc_batch + (D,))
    cov = spd(mat_batch)
    d = MultivariateNormal(loc, **mvn_args(kind, cov))
    batch = np.broadcast_shapes(loc_batch, mat_batch)
    assert d.batch_shape == batch and d.event_shape == (D,)
    x = RNG.standard_normal(value_batch + (D,))
    lp = d.log_prob(x).numpy()
    out = np.broadcast_shapes(value_batch, batch)
    assert lp.shape == out
    locs, covs, xs = bcast(loc, out, 1), bcast(cov, out, 2), bcast(x, out, 1)
    for i in each(out):
        assert lp[i] == pytest.approx(st.multivariate_normal(locs[i], covs[i]).logpdf(xs[i]),
                                      rel=1e-10)
    ent = d.entropy().numpy()
    assert ent.shape == batch
    covb = bcast(cov, batch, 2)
    for i in each(batch):
        want = st.multivariate_normal(np.zeros(D), covb[i]).entropy()
        assert ent[i] == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), bcast(loc, batch, 1))
    np.testing.assert_allclose(d.mode.numpy(), bcast(loc, batch, 1))
    np.testing.assert_allclose(d.variance.numpy(), np.diagonal(covb, 0, -2, -1), rtol=1e-10)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), covb, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d.precision_matrix.numpy(), np.linalg.inv(covb), rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(d.scale_tril.numpy(), np.linalg.cholesky(covb), rtol=1e-8,
                               atol=1e-12)


@pytest.mark.parametrize("loc_batch,w_batch,d_batch,value_batch", [
    ((), (), (), (6,)), ((2,), (), (), ()), ((2, 1), (3,), (1,), (4, 2, 3)), ((), (2,), (2,), ()),
])
def test_lowrank_log_prob_moments_entropy_match_scipy(loc_batch, w_batch, d_batch, value_batch):
    R = 2
    loc = RNG.standard_normal(loc_batch + (D,))
    W = RNG.standard_normal(w_batch + (D, R))
    diag = RNG.uniform(0.3, 2.0, d_batch + (D,))
    d = LowRankMultivariateNormal(loc, W, diag)
    batch = np.broadcast_shapes(loc_batch, w_batch, d_batch)
    assert d.batch_shape == batch and d.event_shape == (D,)
    cov = W @ np.swapaxes(W, -1, -2) + diag[..., None] * np.eye(D)
    x = RNG.standard_normal(value_batch + (D,))
    lp = d.log_prob(x).numpy()
    out = np.broadcast_shapes(value_batch, batch)
    assert lp.shape == out
    locs, covs, xs = bcast(loc, out, 1), bcast(cov, out, 2), bcast(x, out, 1)
    for i in each(out):
        assert lp[i] == pytest.approx(st.multivariate_normal(locs[i], covs[i]).logpdf(xs[i]),
                                      rel=1e-10)
    covb = bcast(cov, batch, 2)
    ent = d.entropy().numpy()
    for i in each(batch):
        assert ent[i] == pytest.approx(st.multivariate_normal(np.zeros(D), covb[i]).entropy(),
                                       rel=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), np.diagonal(covb, 0, -2, -1), rtol=1e-10)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), covb, rtol=1e-10)
    np.testing.assert_allclose(d.precision_matrix.numpy(), np.linalg.inv(covb), rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(d.scale_tril.numpy(), np.linalg.cholesky(covb), rtol=1e-8)
    assert d.cov_factor.shape == batch + (D, R) and d.cov_diag.shape == batch + (D,)


def test_shapes_expand_to_event_and_mask():
    loc = RNG.standard_normal((2, D))
    d = MultivariateNormal(loc, scale_tril=np.linalg.cholesky(spd()))
    assert d.sample().shape == (2, D) and d.rsample((4, 5)).shape == (4, 5, 2, D)
    e = d.expand((3, 2))
    assert type(e) is MultivariateNormal and e.batch_shape == (3, 2)
    assert e.sample((4,)).shape == (4, 3, 2, D) and e.log_prob(np.zeros(D)).shape == (3, 2)
    assert e.entropy().shape == (3, 2) and e.scale_tril.shape == (3, 2, D, D)
    np.testing.assert_allclose(e.log_prob(loc).numpy()[1], d.log_prob(loc).numpy())
    with pytest.raises(ValueError, match=r"batch_shape \(2,\) cannot be expanded to \(3,\)"):
        d.expand((3,))
    ind = d.to_event(1)
    assert ind.batch_shape == () and ind.event_shape == (2, D)
    assert ind.log_prob(loc).numpy() == pytest.approx(d.log_prob(loc).numpy().sum())
    masked = d.mask(np.array([True, False]))
    np.testing.assert_allclose(masked.log_prob(loc).numpy(), [d.log_prob(loc).numpy()[0], 0.0])
    low = LowRankMultivariateNormal(loc, np.ones((D, 1)), np.ones(D)).expand((4, 2))
    assert low.batch_shape == (4, 2) and low.rsample().shape == (4, 2, D)


# ---- samplers -------------------------------------------------------------------

def _check_draws(d, loc, cov, n=20000):
    """Sample mean within 4.5 standard errors, covariance within 0.05 relative
    to its scale, and Mahalanobis distances chi-square(D) by KS."""
    csvi.set_rng_seed(3)
    x = d.sample((n,)).numpy()
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - loc) < 4.5 * se)
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.all(np.abs(np.cov(x.T) - cov) < 0.05 * scale)
    diff = x - loc
    maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    assert st.kstest(maha, st.chi2(D).cdf).pvalue > 1e-3


@pytest.mark.parametrize("kind", PARAMS)
def test_mvn_sampler(kind):
    loc, cov = RNG.standard_normal(D), spd()
    _check_draws(MultivariateNormal(loc, **mvn_args(kind, cov)), loc, cov)


def test_batched_mvn_sampler_draws_each_batch_member_from_its_own_law():
    loc, cov = RNG.standard_normal((2, D)), spd((2,))
    csvi.set_rng_seed(4)
    x = MultivariateNormal(loc, cov).sample((20000,)).numpy()
    for b in range(2):
        diff = x[:, b] - loc[b]
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov[b]), diff)
        assert st.kstest(maha, st.chi2(D).cdf).pvalue > 1e-3


def test_lowrank_sampler():
    loc, W, diag = RNG.standard_normal(D), RNG.standard_normal((D, 2)), RNG.uniform(0.3, 1, D)
    _check_draws(LowRankMultivariateNormal(loc, W, diag), loc, W @ W.T + np.diag(diag))


def test_sampler_catches_a_wrong_covariance():
    # the check above can fail: draws from the right law checked against a wrong one
    loc, cov = np.zeros(D), spd()
    with pytest.raises(AssertionError):
        _check_draws(MultivariateNormal(loc, cov), loc, cov * 1.1)


def test_sample_has_no_gradient_and_rsample_has():
    loc = csvi.tensor(np.zeros(D), requires_grad=True)
    d = MultivariateNormal(loc, scale_tril=np.eye(D))
    assert not d.sample().requires_grad and d.rsample().requires_grad


# ---- gradients ------------------------------------------------------------------

def sym(m):
    return (m + m.mT) * 0.5


def test_mvn_log_prob_gradients():
    x = RNG.standard_normal((4, 2, D))
    loc = RNG.standard_normal((2, D))
    cov = spd((2,))
    L = np.linalg.cholesky(cov)
    # finite differences step off the lower triangle: validation off
    assert_grads_match(lambda l, s: MultivariateNormal(l, scale_tril=s, validate_args=False)
                       .log_prob(x), [loc, L])
    assert_grads_match(lambda l, s: MultivariateNormal(l, scale_tril=s, validate_args=False)
                       .log_prob(x), [loc, L[0]])  # one scale_tril for the batch
    assert_grads_match(lambda c: MultivariateNormal(loc, sym(c)).log_prob(x), [cov])
    assert_grads_match(lambda p: MultivariateNormal(loc, precision_matrix=sym(p)).log_prob(x),
                       [np.linalg.inv(cov)], rtol=1e-4)
    assert_grads_match(lambda v: MultivariateNormal(loc, cov).log_prob(v), [x])


def test_lowrank_log_prob_gradients():
    x = RNG.standard_normal((4, 1, D))
    loc, W, diag = RNG.standard_normal(D), RNG.standard_normal((2, D, 2)), RNG.uniform(.5, 1, D)
    assert_grads_match(lambda l, w, s: LowRankMultivariateNormal(l, w, s).log_prob(x),
                       [loc, W, diag])
    assert_grads_match(lambda l, w, s: LowRankMultivariateNormal(l, w, s).log_prob(x),
                       [loc, W[0], diag])


def _seeded_rsample(make, shape=(5,)):
    def f(*params):
        csvi.set_rng_seed(21)  # the same noise every call: the pathwise map
        return make(*params).rsample(shape)
    return f


def test_rsample_pathwise_gradients_match_finite_differences():
    loc, cov = RNG.standard_normal((2, D)), spd((2,))
    L = np.linalg.cholesky(cov)
    def mvn(l, s):
        return MultivariateNormal(l, scale_tril=s, validate_args=False)

    assert_grads_match(_seeded_rsample(mvn), [loc, L])
    assert_grads_match(_seeded_rsample(mvn), [loc[0], L[0]])
    assert_grads_match(_seeded_rsample(lambda c: MultivariateNormal(loc, sym(c))), [cov])
    W, diag = RNG.standard_normal((D, 2)), RNG.uniform(0.5, 1.0, D)
    assert_grads_match(_seeded_rsample(lambda l, w, s: LowRankMultivariateNormal(l, w, s)),
                       [loc, W, diag])
    assert_grads_match(_seeded_rsample(lambda w: LowRankMultivariateNormal(loc, w, diag)),
                       [np.stack([W, W + 0.1])])


def test_rsample_gradient_of_an_expectation_matches_its_closed_form():
    # E|x|^2 = |loc|^2 + |L|_F^2: d/dL = 2 L, d/dloc = 2 loc (Monte Carlo, 4 s.e.)
    loc, L = RNG.standard_normal(D), np.linalg.cholesky(spd())
    tl, ts = csvi.tensor(loc, requires_grad=True), csvi.tensor(L, requires_grad=True)
    csvi.set_rng_seed(8)
    x = MultivariateNormal(tl, scale_tril=ts).rsample((40000,))
    (csvi.sum(x * x) / 40000).backward()
    np.testing.assert_allclose(tl.grad, 2 * loc, atol=0.05)
    np.testing.assert_allclose(ts.grad, np.tril(2 * L), atol=0.05)


# ---- KL -------------------------------------------------------------------------

def _kl_closed_form(mp, cp, mq, cq):
    iq = np.linalg.inv(cq)
    m = mq - mp
    return 0.5 * (np.trace(iq @ cp) + m @ iq @ m - len(mp)
                  + np.linalg.slogdet(cq)[1] - np.linalg.slogdet(cp)[1])


def _make(kind, loc, cov, W=None, diag=None):
    if kind == "mvn":
        return MultivariateNormal(loc, cov)
    return LowRankMultivariateNormal(loc, W, diag)


@pytest.mark.parametrize("pk", ["mvn", "lowrank"])
@pytest.mark.parametrize("qk", ["mvn", "lowrank"])
def test_kl_matches_closed_form_and_monte_carlo(pk, qk):
    dists, covs, locs = [], [], []
    for kind in (pk, qk):
        loc = RNG.standard_normal((2, D))
        W, diag = RNG.standard_normal((2, D, 2)), RNG.uniform(0.5, 1.5, (2, D))
        cov = W @ np.swapaxes(W, -1, -2) + diag[..., None] * np.eye(D)
        dists.append(_make(kind, loc, cov, W, diag))
        covs.append(cov)
        locs.append(loc)
    p, q = dists
    kl = dist.kl_divergence(p, q).numpy()
    assert kl.shape == (2,)
    for b in range(2):
        assert kl[b] == pytest.approx(_kl_closed_form(locs[0][b], covs[0][b], locs[1][b],
                                                      covs[1][b]), rel=1e-10)
    csvi.set_rng_seed(9)
    x = p.sample((20000,))
    terms = (p.log_prob(x) - q.log_prob(x)).numpy()
    se = terms.std(0) / np.sqrt(len(terms))
    assert np.all(np.abs(terms.mean(0) - kl) < 4.5 * se)


def test_kl_broadcasts_batches_and_grads_flow():
    loc = csvi.tensor(np.zeros(D), requires_grad=True)
    p = MultivariateNormal(loc, scale_tril=np.eye(D))
    q = MultivariateNormal(np.ones((4, D)), spd((4,)))
    kl = dist.kl_divergence(p, q)
    assert kl.shape == (4,)
    kl.sum().backward()
    assert loc.grad.shape == (D,)
    assert dist.kl_divergence(p, p).numpy() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"different event shapes \(3,\) and \(2,\)"):
        dist.kl_divergence(p, MultivariateNormal(np.zeros(2), np.eye(2)))


# ---- bad arguments -------------------------------------------------------------

@pytest.mark.parametrize("call,message", [
    (lambda: MultivariateNormal(np.zeros(3)), "exactly one of .* got none"),
    (lambda: MultivariateNormal(np.zeros(3), np.eye(3), scale_tril=np.eye(3)),
     "got covariance_matrix and scale_tril"),
    (lambda: MultivariateNormal(0.0, np.eye(1)), r"loc must be at least one-dimensional"),
    (lambda: MultivariateNormal(np.zeros(3), np.eye(2)),
     r"covariance_matrix must be a square matrix .* D = 3 .* got shape \(2, 2\)"),
    (lambda: MultivariateNormal(np.zeros(3), scale_tril=np.ones((3, 2))),
     r"scale_tril must be a square matrix"),
    (lambda: MultivariateNormal(np.zeros((2, 3)), np.stack([np.eye(3)] * 4)),
     r"batch dims of loc \(2, 3\), covariance_matrix \(4, 3, 3\)"),
    (lambda: MultivariateNormal(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])),
     r"MultivariateNormal: covariance_matrix must be a symmetric positive-definite matrix"),
    (lambda: MultivariateNormal(np.zeros(2), precision_matrix=-np.eye(2)),
     r"precision_matrix must be a symmetric positive-definite matrix"),
    (lambda: MultivariateNormal(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]])),
     r"covariance_matrix must be a symmetric .* got \[1.0, 0.5\]"),
    (lambda: MultivariateNormal(np.zeros(2), scale_tril=np.array([[1.0, 0.5], [0.0, 1.0]])),
     r"scale_tril must be a lower-triangular matrix with a positive diagonal"),
    (lambda: MultivariateNormal(np.zeros(2), scale_tril=np.array([[1.0, 0.0], [0.3, -1.0]])),
     r"scale_tril must be a lower-triangular matrix with a positive diagonal"),
    (lambda: MultivariateNormal(np.array([np.nan, 0.0]), np.eye(2)), r"loc must be"),
    (lambda: MultivariateNormal(np.zeros(2), np.eye(2)).log_prob(np.zeros(3)),
     r"MultivariateNormal.log_prob: a value must be a vector of size 2 .* got shape \(3,\)"),
    (lambda: MultivariateNormal(np.zeros((2, 2)), np.eye(2)).log_prob(np.zeros((3, 2))),
     r"value of shape \(3, 2\) cannot be broadcast with batch_shape \(2,\)"),
    (lambda: LowRankMultivariateNormal(np.zeros(3), np.ones((2, 1)), np.ones(3)),
     r"cov_factor must be a matrix \(\.\.\., D, R\) with D = 3 .* got shape \(2, 1\)"),
    (lambda: LowRankMultivariateNormal(np.zeros(3), np.ones((3, 1)), np.ones(2)),
     r"cov_diag must be a vector \(\.\.\., D\) with D = 3"),
    (lambda: LowRankMultivariateNormal(np.zeros(3), np.ones((3, 1)), np.array([1.0, 0, 1])),
     r"LowRankMultivariateNormal: cov_diag must be"),
    (lambda: LowRankMultivariateNormal(np.zeros((2, 3)), np.ones((4, 3, 1)), np.ones(3)),
     r"batch dims of loc \(2, 3\), cov_factor \(4, 3, 1\), cov_diag \(3,\)"),
])
def test_bad_arguments_name_family_argument_and_shape(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_validation_off_skips_the_value_checks_but_not_positive_definiteness():
    d = MultivariateNormal(np.zeros(2), scale_tril=np.array([[1.0, 0.5], [0.0, 1.0]]),
                           validate_args=False)
    assert d.log_prob(np.zeros(2)).shape == ()
    with pytest.raises(ValueError, match=r"covariance_matrix must be positive definite; "
                       r"cholesky: the matrix of shape \(2, 2\)"):
        MultivariateNormal(np.zeros(2), -np.eye(2), validate_args=False)


# ---- in a compiled program ---------------------------------------------------------

OBS = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, 1.0]])


def model():
    z = csvi.sample("z", MultivariateNormal(np.zeros(D), spd(rng=np.random.default_rng(1))))
    with csvi.plate("data", 2):
        csvi.sample("obs", LowRankMultivariateNormal(z, np.ones((D, 1)) * 0.3, np.ones(D)),
                    obs=OBS)


def guide():
    loc = csvi.param("loc", np.zeros(D))
    raw = csvi.param("raw", np.zeros((D, D)))
    scale_tril = linalg.tril(raw, -1) + linalg.diag_embed(csvi.exp(linalg.diagonal(raw)))
    csvi.sample("z", MultivariateNormal(loc, scale_tril=scale_tril))


@pytest.mark.parametrize("elbo", [Trace_ELBO, TraceMeanField_ELBO])
@pytest.mark.parametrize("particles", [1, 3])
def test_compiled_run_equals_eager_run(elbo, particles):
    _, eager = assert_compiled_matches_eager(
        model, lambda: guide, lambda: Adam({"lr": 0.05}), lambda: elbo(num_particles=particles),
        rtol=1e-12 if particles == 1 else 1e-9, atol=1e-14)
    assert np.abs(eager["loc"]).max() > 0.1  # it trained


def test_mvn_benchmark_runs():
    """benchmarks/mvn.py's csvi case and table in-process, briefly (timings
    are never asserted; importing the peers here would cost seconds)."""
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import mvn
    finally:
        sys.path.pop(0)
    rows = mvn.child([4], 5, 1, ["csvi"])
    assert rows[0]["dim"] == 4 and rows[0]["csvi"] > 0
    assert "| 1 | 4 |" in mvn.table([("1", rows)], 5)
