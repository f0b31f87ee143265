"""TransformedDistribution: densities against scipy and against csvi's own
families, shapes when transforms widen or change the event, the sampler by
KS tests, rsample's pathwise gradients against finite differences (the same
noise each evaluation, by reseeding), and a compiled SVI run against eager."""
import numpy as np
import pytest
from scipy import special, stats

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.distributions import TransformedDistribution
from csvi.distributions import transforms as T
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from gradcheck import assert_grads_match

RNG = np.random.default_rng(11)


def _v(t):
    return np.asarray(t.numpy() if isinstance(t, csvi.Tensor) else t, dtype=np.float64)


# ---- densities -----------------------------------------------------------------------------

def test_lognormal_as_exp_of_normal_matches_scipy_and_csvis_lognormal():
    loc = RNG.normal(size=(3, 1))
    scale = np.exp(RNG.normal(size=4))
    d = TransformedDistribution(dist.Normal(loc, scale), [T.ExpTransform()])
    assert d.batch_shape == (3, 4) and d.event_shape == ()
    assert d.support is constraints.positive and d.has_rsample
    y = np.exp(RNG.normal(size=(2, 3, 4)))
    lp = _v(d.log_prob(y))
    np.testing.assert_allclose(lp, stats.lognorm.logpdf(y, scale, scale=np.exp(loc)), rtol=1e-12)
    np.testing.assert_allclose(lp, _v(dist.LogNormal(loc, scale).log_prob(y)), rtol=1e-12)


def test_logit_normal_through_sigmoid_matches_the_change_of_variables():
    loc, scale = np.array([-1.0, 0.0, 2.0]), np.array([0.5, 1.0, 2.0])
    d = TransformedDistribution(dist.Normal(loc, scale), T.SigmoidTransform())
    y = RNG.uniform(0.01, 0.99, size=(5, 3))
    expected = stats.norm.logpdf(special.logit(y), loc, scale) - np.log(y) - np.log1p(-y)
    np.testing.assert_allclose(_v(d.log_prob(y)), expected, rtol=1e-10)
    assert d.support is constraints.unit_interval


def test_affine_of_a_normal_is_a_normal():
    loc, scale = np.array([0.3, -1.0]), np.array([1.5, 0.2])
    a, b = np.array([2.0, -1.0]), np.array([-3.0, 0.5])
    d = TransformedDistribution(dist.Normal(loc, scale), [T.AffineTransform(a, b)])
    y = RNG.normal(size=(6, 2)) * 3
    np.testing.assert_allclose(_v(d.log_prob(y)),
                               stats.norm.logpdf(y, a + b * loc, np.abs(b) * scale), rtol=1e-12)
    csvi.set_rng_seed(3)
    draws = _v(d.sample((20000,)))
    for k in range(2):
        p = stats.kstest(draws[:, k], stats.norm(a[k] + b[k] * loc[k], abs(b[k]) * scale[k]).cdf).pvalue
        assert p > 1e-3, (k, p)


def test_a_chain_of_transforms_and_the_inverse_path():
    """exp, then affine, then power: log_prob at a fresh value (inverses) and
    at the distribution's own draw (cached intermediates) agree with scipy."""
    transforms = [T.ExpTransform(), T.AffineTransform(0.0, 3.0), T.PowerTransform(0.5)]
    d = TransformedDistribution(dist.Normal(0.2, 0.7), transforms)
    # y = sqrt(3 exp(x)) is lognormal with log-location (log 3 + 0.2) / 2 and scale 0.35
    ref = stats.lognorm(0.35, scale=np.exp((np.log(3.0) + 0.2) / 2))
    y = ref.rvs(size=7, random_state=1)
    np.testing.assert_allclose(_v(d.log_prob(y)), ref.logpdf(y), rtol=1e-11)
    csvi.set_rng_seed(0)
    s = d.sample((5,))
    np.testing.assert_allclose(_v(d.log_prob(s)), ref.logpdf(_v(s)), rtol=1e-11)


def test_own_draw_uses_the_cached_base_value():
    """tanh(x) rounds to 1 for x > 19; the cached draw keeps log_prob exact
    where inverting the value could not."""
    base = dist.Normal(25.0, 1.0)
    d = TransformedDistribution(base, [T.TanhTransform()])
    csvi.set_rng_seed(1)
    y = d.sample((4,))
    assert np.all(_v(y) == 1.0)
    x = d._cache[1][0]
    expected = _v(base.log_prob(x)) - 2 * (np.log(2) - _v(x) - np.logaddexp(0, -2 * _v(x)))
    np.testing.assert_allclose(_v(d.log_prob(y)), expected, rtol=1e-14)
    # an equal value that is not the draw goes through the (clamped) inverse
    assert np.all(np.isfinite(_v(d.log_prob(_v(y).copy()))))
    assert not np.allclose(_v(d.log_prob(_v(y).copy())), expected)


# ---- shapes ----------------------------------------------------------------------------------

def test_stick_breaking_reads_the_base_batch_dim_as_the_event():
    loc = RNG.normal(size=(2, 3))
    d = TransformedDistribution(dist.Normal(loc, 1.0), [T.StickBreakingTransform()])
    assert d.batch_shape == (2,) and d.event_shape == (4,)
    assert d.support is constraints.simplex
    csvi.set_rng_seed(0)
    y = d.sample((5,))
    assert y.shape == (5, 2, 4) and constraints.simplex.check(y)
    t = T.StickBreakingTransform()
    x = _v(t.inv(y))
    expected = stats.norm.logpdf(x, loc).sum(-1) - _v(t.log_abs_det_jacobian(x, y))
    np.testing.assert_allclose(_v(d.log_prob(_v(y).copy())), expected, rtol=1e-10)
    np.testing.assert_allclose(_v(d.log_prob(y)), expected, rtol=1e-10)


def test_corr_cholesky_changes_the_rank():
    d = TransformedDistribution(dist.Normal(np.zeros((4, 3)), 1.0), T.CorrCholeskyTransform())
    assert d.batch_shape == (4,) and d.event_shape == (3, 3)
    assert d.support is constraints.corr_cholesky
    csvi.set_rng_seed(2)
    y = d.sample((2,))
    assert y.shape == (2, 4, 3, 3) and constraints.corr_cholesky.check(y)
    x = _v(T.CorrCholeskyTransform().inv(y))
    expected = (stats.norm.logpdf(x).sum(-1)
                - _v(T.CorrCholeskyTransform().log_abs_det_jacobian(x, y)))
    assert d.log_prob(y).shape == (2, 4)
    np.testing.assert_allclose(_v(d.log_prob(_v(y).copy())), expected, rtol=1e-9)


def test_a_transform_parameter_broadcasts_the_base():
    d = TransformedDistribution(dist.Normal(0.0, 1.0), [T.AffineTransform(np.arange(3.0), 2.0)])
    assert d.batch_shape == (3,) and d.base_dist.batch_shape == (3,)
    assert d.sample((2,)).shape == (2, 3)


def test_an_event_dim_transform_sums_the_base_batch():
    d = TransformedDistribution(dist.Normal(np.zeros(3), 1.0),
                                [T.AffineTransform(1.0, 2.0, event_dim=1)])
    assert d.batch_shape == () and d.event_shape == (3,)
    y = RNG.normal(size=(2, 3))
    np.testing.assert_allclose(_v(d.log_prob(y)),
                               stats.norm.logpdf(y, 1.0, 2.0).sum(-1), rtol=1e-12)
    assert d.support.event_dim == 1


def test_expand_to_event_and_mask():
    d = TransformedDistribution(dist.Normal(np.zeros(2), 1.0), [T.ExpTransform()])
    e = d.expand((3, 2))
    assert isinstance(e, TransformedDistribution) and e.batch_shape == (3, 2)
    y = np.exp(RNG.normal(size=(3, 2)))
    np.testing.assert_allclose(_v(e.log_prob(y)), stats.lognorm.logpdf(y, 1.0), rtol=1e-12)
    ind = d.to_event(1)
    assert ind.event_shape == (2,) and ind.sample((4,)).shape == (4, 2)
    np.testing.assert_allclose(_v(ind.log_prob(y)), stats.lognorm.logpdf(y, 1.0).sum(-1),
                               rtol=1e-12)
    m = d.mask(np.array([True, False]))
    np.testing.assert_allclose(_v(m.log_prob(y))[:, 1], 0.0)
    assert m.sample().shape == (2,)
    with pytest.raises(ValueError):
        d.expand((3,))


def test_no_transforms_is_the_base():
    d = TransformedDistribution(dist.Normal(np.zeros(2), 1.0), [])
    assert d.batch_shape == (2,) and d.support is constraints.real
    np.testing.assert_allclose(_v(d.log_prob(np.zeros(2))), stats.norm.logpdf(0.0))


def test_moments_are_not_implemented_and_errors_name_the_argument():
    d = TransformedDistribution(dist.Normal(0.0, 1.0), [T.ExpTransform()])
    with pytest.raises(NotImplementedError):
        d.mean
    with pytest.raises(NotImplementedError):
        d.variance
    with pytest.raises(TypeError, match="base_distribution"):
        TransformedDistribution("normal", [T.ExpTransform()])
    with pytest.raises(TypeError, match="transforms"):
        TransformedDistribution(dist.Normal(0.0, 1.0), [np.exp])
    with pytest.raises(ValueError, match="1 dims"):
        TransformedDistribution(dist.Normal(0.0, 1.0), [T.StickBreakingTransform()])
    with pytest.raises(ValueError, match="support"):
        d.log_prob(-1.0)
    no_rs = TransformedDistribution(dist.Poisson(3.0), [T.AffineTransform(0.0, 2.0)])
    assert not no_rs.has_rsample
    with pytest.raises(NotImplementedError):
        no_rs.rsample()


# ---- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("transforms", [
    [T.ExpTransform()],
    [T.TanhTransform(), T.AffineTransform(1.0, 2.0)],
    [T.CorrCholeskyTransform()],
], ids=["exp", "tanh_affine", "corr_cholesky"])
def test_rsample_and_log_prob_gradients_match_finite_differences(transforms):
    shape = (3,) if isinstance(transforms[0], T.CorrCholeskyTransform) else (2,)

    def draw(loc, scale):
        csvi.set_rng_seed(5)              # the same noise at every evaluation
        return TransformedDistribution(dist.Normal(loc, scale), transforms).rsample((2,))

    def density(loc, scale):
        d = TransformedDistribution(dist.Normal(loc, scale), transforms)
        csvi.set_rng_seed(5)
        return d.log_prob(d.rsample((2,)))

    loc0, scale0 = RNG.normal(size=shape) * 0.5, np.exp(RNG.normal(size=shape) * 0.3)
    assert_grads_match(draw, [loc0, scale0], rtol=1e-6)
    assert_grads_match(density, [loc0, scale0], rtol=1e-6)


# ---- compiled == eager -----------------------------------------------------------------------

def _model(data):
    rate = csvi.sample("rate", dist.Gamma(2.0, 1.0))
    with csvi.plate("data", len(data)):
        csvi.sample("obs", dist.Exponential(rate), obs=data)


def _guide(data):
    loc = csvi.param("loc", 0.0)
    scale = csvi.param("scale", 0.5, constraint=constraints.positive)
    csvi.sample("rate", TransformedDistribution(
        dist.Normal(loc, scale), [T.AffineTransform(0.1, 0.5), T.ExpTransform()]))


def _run(compiled, steps=40):
    csvi.clear_param_store()
    csvi.set_rng_seed(9)
    data = np.array([0.5, 1.2, 0.3, 2.0, 0.8])
    svi = SVI(_model, _guide, Adam({"lr": 0.05}), Trace_ELBO())
    losses = svi.compile(data).run(steps) if compiled else [svi.step(data) for _ in range(steps)]
    store = csvi.get_param_store()
    return np.asarray(losses), {n: store.unconstrained(n).copy() for n in store.names()}


def test_compiled_svi_with_a_transformed_guide_equals_eager():
    eager_losses, eager_params = _run(False)
    losses, params = _run(True)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12)
    for name in eager_params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=1e-12)
    assert not np.allclose(eager_params["loc"], 0.0)      # the run moved the params
    csvi.clear_param_store()


def test_expand_checks_its_shape():
    d = TransformedDistribution(dist.Normal(0.0, 1.0), [T.ExpTransform()])
    with pytest.raises(TypeError, match="TransformedDistribution.expand: batch_shape"):
        d.expand("3")
