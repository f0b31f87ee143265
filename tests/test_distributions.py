"""Distributions: log_prob against scipy.stats, gradients against central
finite differences, samplers against analytic moments and KS / chi-square
tests, the implicit Gamma gradient against scipy's Gamma quantile, argument
validation, wrappers and reproducibility."""
import math
import re

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import csvi
import csvi.distributions as dist
from csvi.distributions.continuous import _standard_gamma_grad
from gradcheck import numerical_grad

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ---- the family table --------------------------------------------------------

def _real(rng, shape):
    return rng.normal(0.0, 2.0, shape)


def _pos(rng, shape):
    return rng.uniform(0.3, 3.0, shape)


def _unit(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def _low(rng, shape):
    return rng.uniform(-3.0, -1.0, shape)


def _high(rng, shape):
    return rng.uniform(1.0, 3.0, shape)


def _inside(rng, shape):
    return rng.uniform(-0.9, 0.9, shape)


def _bits(rng, shape):
    return rng.integers(0, 2, shape).astype(float)


def _counts(rng, shape):
    return rng.integers(0, 8, shape).astype(float)


class Family:
    """A distribution family: how to build it, draw valid parameters and
    values, and its scipy reference log-density."""

    def __init__(self, name, make, params, value, ref, discrete=False):
        self.name = name
        self.make = make
        self.params = params          # {name: generator(rng, shape)}
        self.value = value
        self.ref = ref
        self.discrete = discrete

    def __repr__(self):
        return self.name


def _log_bernoulli_logits(x, logits):
    return x * sp.log_expit(logits) + (1.0 - x) * sp.log_expit(-logits)


FAMILIES = [
    Family("Normal", dist.Normal, {"loc": _real, "scale": _pos}, _real,
           lambda x, loc, scale: st.norm.logpdf(x, loc, scale)),
    Family("LogNormal", dist.LogNormal, {"loc": _real, "scale": _pos}, _pos,
           lambda x, loc, scale: st.lognorm.logpdf(x, scale, scale=np.exp(loc))),
    Family("HalfNormal", dist.HalfNormal, {"scale": _pos}, _pos,
           lambda x, scale: st.halfnorm.logpdf(x, scale=scale)),
    Family("HalfCauchy", dist.HalfCauchy, {"scale": _pos}, _pos,
           lambda x, scale: st.halfcauchy.logpdf(x, scale=scale)),
    Family("Exponential", dist.Exponential, {"rate": _pos}, _pos,
           lambda x, rate: st.expon.logpdf(x, scale=1.0 / rate)),
    Family("Uniform", dist.Uniform, {"low": _low, "high": _high}, _inside,
           lambda x, low, high: st.uniform.logpdf(x, low, high - low)),
    Family("Gamma", dist.Gamma, {"concentration": _pos, "rate": _pos}, _pos,
           lambda x, concentration, rate: st.gamma.logpdf(x, concentration, scale=1.0 / rate)),
    Family("Beta", dist.Beta, {"concentration1": _pos, "concentration0": _pos}, _unit,
           lambda x, concentration1, concentration0: st.beta.logpdf(x, concentration1,
                                                                    concentration0)),
    Family("Bernoulli(probs)", lambda probs: dist.Bernoulli(probs=probs), {"probs": _unit},
           _bits, lambda x, probs: st.bernoulli.logpmf(x, probs), discrete=True),
    Family("Bernoulli(logits)", lambda logits: dist.Bernoulli(logits=logits),
           {"logits": _real}, _bits, _log_bernoulli_logits, discrete=True),
    Family("Poisson", dist.Poisson, {"rate": _pos}, _counts,
           lambda x, rate: st.poisson.logpmf(x, rate), discrete=True),
]


def _draw_case(family, shapes, seed):
    """Parameters and a value of the given (mutually broadcastable) shapes."""
    rng = np.random.default_rng(seed)
    (vshape, *pshapes) = shapes.input_shapes
    params = {k: gen(rng, s) for (k, gen), s in zip(family.params.items(), pshapes)}
    return family.value(rng, vshape), params, shapes.result_shape


def _shapes(family):
    return mutually_broadcastable_shapes(num_shapes=1 + len(family.params), max_dims=3,
                                         max_side=3)


# ---- log_prob against scipy ---------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@SETTINGS
@given(data=hst.data(), seed=hst.integers(0, 2 ** 31))
def test_log_prob_matches_scipy(family, data, seed):
    value, params, shape = _draw_case(family, data.draw(_shapes(family)), seed)
    lp = family.make(**params).log_prob(value)
    assert isinstance(lp, csvi.Tensor)
    assert lp.shape == shape
    np.testing.assert_allclose(lp.numpy(), family.ref(value, **params), rtol=1e-10, atol=1e-12)


def _categorical_case(data, seed, logits):
    shapes = data.draw(mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    vshape, bshape = shapes.input_shapes
    K = data.draw(hst.integers(1, 5))
    rng = np.random.default_rng(seed)
    param = rng.normal(0, 2, bshape + (K,)) if logits else rng.uniform(0.1, 2.0, bshape + (K,))
    value = rng.integers(0, K, vshape).astype(float)
    return value, param, shapes.result_shape, K


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@SETTINGS
@given(data=hst.data(), seed=hst.integers(0, 2 ** 31))
def test_categorical_log_prob_matches_scipy(logits, data, seed):
    value, param, shape, K = _categorical_case(data, seed, logits)
    d = dist.Categorical(logits=param) if logits else dist.Categorical(probs=param)
    p = sp.softmax(param, -1) if logits else param / param.sum(-1, keepdims=True)
    onehot = np.eye(K)[value.astype(int)]
    ref = st.multinomial.logpmf(onehot, 1, p)
    lp = d.log_prob(value)
    assert lp.shape == shape
    np.testing.assert_allclose(lp.numpy(), np.broadcast_to(ref, shape), rtol=1e-10, atol=1e-12)


def test_log_prob_at_support_edges_is_finite_or_minus_inf():
    assert dist.Poisson(0.0).log_prob(0.0).item() == 0.0
    assert dist.Poisson(0.0).log_prob(2.0).item() == -np.inf
    assert dist.Bernoulli(0.0).log_prob(0.0).item() == 0.0
    assert dist.Bernoulli(1.0).log_prob(1.0).item() == 0.0
    assert dist.Beta(1.0, 1.0).log_prob(np.array([0.0, 1.0])).numpy().tolist() == [0.0, 0.0]
    np.testing.assert_allclose(dist.Gamma(1.0, 2.0).log_prob(1e-300).item(), math.log(2.0))
    # stable far in the tails
    lp = dist.Bernoulli(logits=np.array([-800.0, 800.0])).log_prob(np.array([1.0, 0.0]))
    np.testing.assert_allclose(lp.numpy(), [-800.0, -800.0])
    lp = dist.Bernoulli(logits=np.array([-800.0, 800.0])).log_prob(np.array([0.0, 1.0]))
    assert np.all(lp.numpy() == 0.0)
    np.testing.assert_allclose(dist.HalfCauchy(1.0).log_prob(1e200).item(),
                               math.log(2 / math.pi) - 400 * math.log(10), rtol=1e-12)


def test_delta_log_prob():
    v = np.array([[1.0, 2.0], [3.0, 4.0]])
    d = dist.Delta(v, log_density=np.array([0.5, -1.0]), event_dim=1)
    assert d.batch_shape == (2,) and d.event_shape == (2,)
    lp = d.log_prob(np.array([[1.0, 2.0], [3.0, 5.0]])).numpy()
    assert lp.tolist() == [0.5, -np.inf]
    lp0 = dist.Delta(v, 0.25).log_prob(np.array([[1.0, 0.0], [3.0, 4.0]])).numpy()
    assert lp0.tolist() == [[0.25, -np.inf], [0.25, 0.25]]
    ld = csvi.tensor(np.array([0.5, -1.0]), requires_grad=True)
    dist.Delta(v, ld, event_dim=1).log_prob(v).sum().backward()
    np.testing.assert_array_equal(ld.grad, [1.0, 1.0])


# ---- gradients against finite differences ---------------------------------------

def _check_grads(make, value, params, shape, seed, value_grad):
    """Gradient of sum(w * log_prob) w.r.t. value and every parameter (of
    broadcasting shapes) against central differences of our own log_prob."""
    w = np.random.default_rng(seed + 1).normal(size=shape)
    tensors = {k: csvi.tensor(v, requires_grad=True) for k, v in params.items()}
    vt = csvi.tensor(value, requires_grad=value_grad)
    (make(**tensors).log_prob(vt) * w).sum().backward()

    def f(x, k=None):
        """sum(w * log_prob) with parameter k (None: the value) at x."""
        if k is None:
            return float(np.sum(w * make(**params).log_prob(x).numpy()))
        return float(np.sum(w * make(**{**params, k: x}).log_prob(value).numpy()))

    for k, t in tensors.items():
        assert t.grad.shape == params[k].shape
        np.testing.assert_allclose(t.grad, numerical_grad(lambda x: f(x, k), params[k], relative=True),
                                   rtol=1e-5, atol=1e-6, err_msg=f"d/d{k}")
    if value_grad:
        assert vt.grad.shape == value.shape
        np.testing.assert_allclose(vt.grad, numerical_grad(f, value, relative=True),
                                   rtol=1e-5, atol=1e-6, err_msg="d/dvalue")


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@SETTINGS
@given(data=hst.data(), seed=hst.integers(0, 2 ** 31))
def test_log_prob_gradients_match_finite_differences(family, data, seed):
    value, params, shape = _draw_case(family, data.draw(_shapes(family)), seed)
    _check_grads(family.make, value, params, shape, seed, value_grad=not family.discrete)


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@SETTINGS
@given(data=hst.data(), seed=hst.integers(0, 2 ** 31))
def test_categorical_gradients_match_finite_differences(logits, data, seed):
    value, param, shape, _ = _categorical_case(data, seed, logits)
    make = (lambda p: dist.Categorical(logits=p)) if logits else (lambda p: dist.Categorical(p))
    _check_grads(make, value, {"p": param}, shape, seed, value_grad=False)


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize("vshape, pshape", [
    ((5, 1, 1), (1, 4, 5)),    # an HMM's transition rows, each read once per next state
    ((3, 1, 1), (1, 2, 5)),    # normalized once, but fewer reads than params: no log table
    ((2, 1, 1), (1, 300, 3)),  # more rows than a kernel call normalizes up front
])
def test_categorical_rows_read_many_times_match_scipy_and_finite_differences(logits, vshape,
                                                                            pshape):
    rng = np.random.default_rng(7)
    K = pshape[-1]
    param = rng.normal(0, 2, pshape) if logits else rng.uniform(0.1, 2.0, pshape)
    value = rng.integers(0, K, vshape).astype(float)
    make = (lambda p: dist.Categorical(logits=p)) if logits else (lambda p: dist.Categorical(p))
    p = sp.softmax(param, -1) if logits else param / param.sum(-1, keepdims=True)
    shape = np.broadcast_shapes(vshape, pshape[:-1])
    ref = np.log(np.take_along_axis(np.broadcast_to(p, shape + (K,)),
                                    np.broadcast_to(value, shape)[..., None].astype(int), -1))
    np.testing.assert_allclose(make(param).log_prob(value).numpy(), ref[..., 0], rtol=1e-12)
    _check_grads(make, value, {"p": param}, shape, 3, value_grad=False)


def test_discrete_value_gradients_are_the_formula_derivative():
    # Bernoulli/Poisson log_prob are smooth in the value's continuous extension
    x = csvi.tensor(np.array([0.0, 1.0]), requires_grad=True)
    dist.Bernoulli(0.2).log_prob(x).sum().backward()
    np.testing.assert_allclose(x.grad, [math.log(0.2 / 0.8)] * 2)
    x = csvi.tensor(np.array([0.0, 3.0]), requires_grad=True)
    dist.Poisson(2.0).log_prob(x).sum().backward()
    np.testing.assert_allclose(x.grad, math.log(2.0) - sp.digamma(np.array([1.0, 4.0])))


# ---- samplers: moments, KS and chi-square ---------------------------------------

N = 20000

CONTINUOUS = [
    (lambda: dist.Normal(np.array([0.0, 5.0]), np.array([1.0, 0.1])),
     [st.norm(0, 1), st.norm(5, 0.1)]),
    (lambda: dist.LogNormal(np.array([0.0, -1.0]), np.array([0.5, 1.2])),
     [st.lognorm(0.5, scale=1.0), st.lognorm(1.2, scale=math.exp(-1.0))]),
    (lambda: dist.HalfNormal(np.array([1.0, 3.0])),
     [st.halfnorm(scale=1.0), st.halfnorm(scale=3.0)]),
    (lambda: dist.HalfCauchy(np.array([1.0, 0.2])),
     [st.halfcauchy(scale=1.0), st.halfcauchy(scale=0.2)]),
    (lambda: dist.Exponential(np.array([1.0, 4.0])),
     [st.expon(scale=1.0), st.expon(scale=0.25)]),
    (lambda: dist.Uniform(np.array([-1.0, 2.0]), np.array([1.0, 2.5])),
     [st.uniform(-1, 2), st.uniform(2, 0.5)]),
    (lambda: dist.Gamma(np.array([0.3, 1.0, 7.5]), np.array([1.0, 2.0, 0.5])),
     [st.gamma(0.3), st.gamma(1.0, scale=0.5), st.gamma(7.5, scale=2.0)]),
    (lambda: dist.Beta(np.array([0.3, 2.0, 0.1]), np.array([0.5, 5.0, 0.2])),
     [st.beta(0.3, 0.5), st.beta(2.0, 5.0), st.beta(0.1, 0.2)]),
]


@pytest.mark.parametrize("method", ["sample", "rsample"])
@pytest.mark.parametrize("case", range(len(CONTINUOUS)),
                         ids=[c[1][0].dist.name for c in CONTINUOUS])
def test_continuous_samplers(case, method):
    make, refs = CONTINUOUS[case]
    csvi.set_rng_seed(1234 + case)
    d = make()
    x = getattr(d, method)((N,))
    assert x.shape == (N,) + d.batch_shape
    x = x.numpy()
    mean, var = d.mean.numpy(), d.variance.numpy()
    for j, ref in enumerate(refs):
        col = x[:, j]
        assert np.all(np.isfinite(col))
        assert st.kstest(col, ref.cdf).pvalue > 1e-3
        np.testing.assert_allclose(mean[j], ref.mean(), rtol=1e-12)
        np.testing.assert_allclose(var[j], ref.var(), rtol=1e-12)
        if np.isfinite(ref.var()):
            se = math.sqrt(ref.var() / N)
            assert abs(col.mean() - ref.mean()) < 5 * se
            # the variance of the sample variance needs the 4th moment
            m4 = ref.moment(4) - 4 * ref.mean() * ref.moment(3) \
                + 6 * ref.mean() ** 2 * ref.moment(2) - 3 * ref.mean() ** 4
            assert abs(col.var() - ref.var()) < 5 * math.sqrt((m4 - ref.var() ** 2) / N)


@pytest.mark.parametrize("method", ["sample", "rsample"])
def test_beta_sampler_with_tiny_concentrations(method):
    """Beta(0.02, 0.03) puts 13% of its mass within 1e-16 of 1, where float64
    has no numbers, so bin the draws instead of a KS test: a chi-square test
    over bins from 1e-100 to 1 - 1e-10 (the last bin takes the rest)."""
    csvi.set_rng_seed(77)
    x = getattr(dist.Beta(0.02, 0.03), method)((N,)).numpy()
    assert np.all((x > 0) & (x < 1))
    cuts = np.array([1e-100, 1e-30, 1e-10, 1e-5, 0.01, 0.1, 0.5, 0.9, 0.99, 1 - 1e-5, 1 - 1e-10])
    counts = np.bincount(np.searchsorted(cuts, x), minlength=cuts.size + 1)
    probs = np.diff(np.concatenate([[0.0], st.beta(0.02, 0.03).cdf(cuts), [1.0]]))
    assert st.chisquare(counts, probs * N).pvalue > 1e-3


def _chi2_pvalue(samples, probs):
    counts = np.bincount(samples.astype(int), minlength=len(probs))[:len(probs)]
    assert counts.sum() == samples.size
    return st.chisquare(counts, probs * samples.size).pvalue


@pytest.mark.parametrize("logits", [False, True])
def test_bernoulli_sampler(logits):
    csvi.set_rng_seed(5)
    p = np.array([0.1, 0.5, 0.97])
    d = dist.Bernoulli(logits=sp.logit(p)) if logits else dist.Bernoulli(p)
    x = d.sample((N,)).numpy()
    assert x.shape == (N, 3) and set(np.unique(x)) <= {0.0, 1.0}
    for j in range(3):
        assert _chi2_pvalue(x[:, j], np.array([1 - p[j], p[j]])) > 1e-3
    np.testing.assert_allclose(d.mean.numpy(), p, rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), p * (1 - p), rtol=1e-12)


@pytest.mark.parametrize("logits", [False, True])
def test_categorical_sampler(logits):
    csvi.set_rng_seed(6)
    w = np.array([[1.0, 2.0, 0.0, 5.0], [0.5, 0.5, 0.5, 0.5]])
    with np.errstate(divide="ignore"):
        d = dist.Categorical(logits=np.log(w)) if logits else dist.Categorical(probs=w)
    x = d.sample((N,)).numpy()
    assert x.shape == (N, 2)
    for j in range(2):
        col = x[:, j]
        assert np.all(w[j][col.astype(int)] > 0)  # never a zero-probability category
        nz = w[j] > 0
        counts = np.bincount(col.astype(int), minlength=4)[nz]
        assert st.chisquare(counts, w[j][nz] / w[j].sum() * N).pvalue > 1e-3


def test_poisson_sampler():
    csvi.set_rng_seed(8)
    rates = np.array([0.0, 0.7, 12.0, 300.0])
    d = dist.Poisson(rates)
    x = d.sample((N,)).numpy()
    assert np.all(x[:, 0] == 0) and np.all(x == np.floor(x))
    for j in (1, 2):
        K = int(rates[j] * 3 + 10)
        probs = st.poisson.pmf(np.arange(K), rates[j])
        probs[-1] += st.poisson.sf(K - 1, rates[j])
        col = np.minimum(x[:, j], K - 1)
        keep = probs * N >= 5  # chi-square needs enough expected counts per bin
        counts = np.bincount(col.astype(int), minlength=K)
        tail = counts[~keep].sum(), probs[~keep].sum()
        obs = np.append(counts[keep], tail[0])
        exp = np.append(probs[keep], tail[1]) * N
        assert st.chisquare(obs[exp > 0], exp[exp > 0]).pvalue > 1e-3
    assert abs(x[:, 3].mean() - 300.0) < 5 * math.sqrt(300.0 / N)
    np.testing.assert_array_equal(d.mean.numpy(), rates)


def test_delta_rsample_passes_gradient_to_v():
    v = csvi.tensor(np.array([1.0, -2.0]), requires_grad=True)
    d = dist.Delta(v)
    z = d.rsample((3,))
    assert z.shape == (3, 2)
    np.testing.assert_array_equal(z.numpy(), np.tile([1.0, -2.0], (3, 1)))
    (z * np.arange(6.0).reshape(3, 2)).sum().backward()
    np.testing.assert_array_equal(v.grad, [0 + 2 + 4, 1 + 3 + 5])
    assert dist.Delta(v).sample().shape == (2,)


# ---- reparameterized gradients --------------------------------------------------

PATHWISE = [
    (dist.Normal, {"loc": np.array([0.3, -1.0]), "scale": np.array([[0.5], [2.0]])}),
    (dist.LogNormal, {"loc": np.array([0.3, -1.0]), "scale": np.array([0.5, 0.8])}),
    (dist.HalfNormal, {"scale": np.array([0.5, 2.0, 1.0])}),
    (dist.HalfCauchy, {"scale": np.array([0.5, 2.0])}),
    (dist.Exponential, {"rate": np.array([[0.5, 2.0, 3.0]])}),
    (dist.Uniform, {"low": np.array([-1.0, 0.5]), "high": np.array([2.0, 0.75])}),
]


@pytest.mark.parametrize("make,params", PATHWISE, ids=[m.__name__ for m, _ in PATHWISE])
def test_rsample_pathwise_gradient_matches_common_random_numbers(make, params):
    """d/dtheta of sum(w * z^2) with z = rsample(theta), against central
    differences that redraw with the same seed (common random numbers)."""
    seed = 99
    shape = (4,) + np.broadcast_shapes(*[p.shape for p in params.values()])
    w = np.random.default_rng(0).normal(size=shape)
    tensors = {k: csvi.tensor(v, requires_grad=True) for k, v in params.items()}
    csvi.set_rng_seed(seed)
    z = make(**tensors).rsample((4,))
    assert z.shape == shape
    (z * z * w).sum().backward()

    def f(x, k):
        csvi.set_rng_seed(seed)
        zz = make(**{**params, k: x}).rsample((4,)).numpy()
        return float(np.sum(w * zz * zz))

    for k, t in tensors.items():
        np.testing.assert_allclose(t.grad, numerical_grad(lambda x: f(x, k), params[k], relative=True),
                                   rtol=1e-6, atol=1e-8)


def test_gamma_rsample_rate_gradient_matches_common_random_numbers():
    seed = 3
    rate = np.array([0.5, 2.0, 7.0])
    csvi.set_rng_seed(seed)
    r = csvi.tensor(rate, requires_grad=True)
    dist.Gamma(np.array([0.4, 2.0, 9.0]), r).rsample((5,)).sum().backward()

    def f(x):
        csvi.set_rng_seed(seed)
        return float(dist.Gamma(np.array([0.4, 2.0, 9.0]), x).rsample((5,)).numpy().sum())

    np.testing.assert_allclose(r.grad, numerical_grad(f, rate, relative=True), rtol=1e-6)


ALPHAS = np.geomspace(0.05, 1e3, 40)
US = np.concatenate([[1e-6, 1e-4, 1e-2], np.linspace(0.05, 0.95, 10), [0.99, 1 - 1e-4, 1 - 1e-6]])


def test_implicit_gamma_gradient_matches_quantile_differences():
    """dz/dalpha at fixed CDF u is d/dalpha gammaincinv(alpha, u)."""
    A, U = np.meshgrid(ALPHAS, US, indexing="ij")
    X = sp.gammaincinv(A, U)
    g = _standard_gamma_grad(X, A).numpy()
    h = 1e-5 * A
    fd = (sp.gammaincinv(A + h, U) - sp.gammaincinv(A - h, U)) / (2 * h)
    assert np.all(np.isfinite(g)) and np.all(g > 0)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_implicit_gamma_gradient_is_finite_at_extremes():
    a = np.array([1e-3, 1e-3, 0.05, 0.05, 1e4, 1e4, 1e6, 1e6, 2.0])
    x = np.array([1e-300, 50.0, 1e-200, 80.0, 9000.0, 11000.0, 1e6, 1.01e6, 1e-320])
    g = _standard_gamma_grad(x, a).numpy()
    assert np.all(np.isfinite(g)) and np.all(g >= 0)
    # for large alpha, x = alpha + sqrt(alpha) eps and dx/dalpha -> 1 + eps / (2 sqrt(alpha))
    np.testing.assert_allclose(g[6], 1.0, atol=1e-3)


def test_gamma_rsample_uses_the_implicit_gradient():
    csvi.set_rng_seed(11)
    alpha = csvi.tensor(np.array([0.2, 1.0, 40.0]), requires_grad=True)
    z = dist.Gamma(alpha, 1.0).rsample((6,))
    z.sum().backward()
    expected = _standard_gamma_grad(z.numpy(), alpha.numpy()).numpy().sum(0)
    np.testing.assert_allclose(alpha.grad, expected, rtol=1e-12)


def _per_sample_grads(make, params, n, fn):
    """Per-draw d fn(z)/d param: every parameter is expanded to n independent
    copies, so element i of its gradient belongs to draw i alone."""
    tensors = {k: csvi.tensor(np.full(n, v), requires_grad=True) for k, v in params.items()}
    z = make(**tensors).rsample()
    fn(z).sum().backward()
    return {k: t.grad for k, t in tensors.items()}


def _assert_mc(samples, expected, what):
    se = samples.std() / math.sqrt(samples.size)
    assert abs(samples.mean() - expected) < 5 * se + 1e-12, \
        f"{what}: {samples.mean()} vs {expected} (se {se})"


@pytest.mark.parametrize("alpha", [0.05, 0.5, 1.0, 3.0, 30.0, 500.0])
def test_gamma_rsample_gradient_of_moments(alpha):
    """d/dalpha E[z] = 1/rate, d/dalpha E[z^2] = (2 alpha + 1)/rate^2,
    d/drate E[z] = -alpha/rate^2, as Monte Carlo means of pathwise gradients."""
    csvi.set_rng_seed(int(alpha * 100))
    rate = 2.0
    g1 = _per_sample_grads(dist.Gamma, {"concentration": alpha, "rate": rate}, N, lambda z: z)
    _assert_mc(g1["concentration"], 1.0 / rate, "dE[z]/dalpha")
    _assert_mc(g1["rate"], -alpha / rate ** 2, "dE[z]/drate")
    g2 = _per_sample_grads(dist.Gamma, {"concentration": alpha, "rate": rate}, N,
                           lambda z: z * z)
    _assert_mc(g2["concentration"], (2 * alpha + 1) / rate ** 2, "dE[z^2]/dalpha")


@pytest.mark.parametrize("a,b", [(0.1, 0.2), (0.5, 2.0), (3.0, 4.0), (50.0, 20.0)])
def test_beta_rsample_gradient_of_moments(a, b):
    csvi.set_rng_seed(int(a * 10 + b))

    def m1(a, b):
        return a / (a + b)

    def m2(a, b):
        return a * (a + 1) / ((a + b) * (a + b + 1))

    for fn, moment in ((lambda z: z, m1), (lambda z: z * z, m2)):
        g = _per_sample_grads(dist.Beta, {"concentration1": a, "concentration0": b}, N, fn)
        h = 1e-6
        _assert_mc(g["concentration1"], (moment(a + h, b) - moment(a - h, b)) / (2 * h),
                   f"d/dc1 E[{moment.__name__}]")
        _assert_mc(g["concentration0"], (moment(a, b + h) - moment(a, b - h)) / (2 * h),
                   f"d/dc0 E[{moment.__name__}]")


def test_tiny_concentrations_give_finite_draws_and_gradients():
    csvi.set_rng_seed(21)
    a = csvi.tensor(np.array([1e-3, 0.01, 0.02]), requires_grad=True)
    b = csvi.tensor(np.array([1e-3, 0.03, 5.0]), requires_grad=True)
    z = dist.Beta(a, b).rsample((2000,))
    x = z.numpy()
    assert np.all((x > 0) & (x < 1))
    dist.Beta(a, b).log_prob(z).sum()  # stays finite: draws are kept inside (0, 1)
    z.sum().backward()
    assert np.all(np.isfinite(a.grad)) and np.all(np.isfinite(b.grad))
    g = csvi.tensor(np.array([1e-3, 1e4]), requires_grad=True)
    zg = dist.Gamma(g, 1.0).rsample((500,))
    assert np.all(zg.numpy() > 0)
    zg.sum().backward()
    assert np.all(np.isfinite(g.grad))


def test_rsample_is_not_available_for_discrete_families():
    for d in (dist.Bernoulli(0.5), dist.Categorical(np.ones(3)), dist.Poisson(1.0)):
        assert not d.has_rsample
        with pytest.raises(NotImplementedError, match=type(d).__name__):
            d.rsample()
        assert d().shape == ()  # __call__ samples


def test_sample_records_no_gradient():
    loc = csvi.tensor(0.0, requires_grad=True)
    assert not dist.Normal(loc, 1.0).sample().requires_grad
    assert dist.Normal(loc, 1.0).rsample().requires_grad


# ---- validation -----------------------------------------------------------------

@pytest.mark.parametrize("make,message", [
    (lambda: dist.Normal(0.0, -1.0), "Normal: scale must be a number > 0, got -1.0"),
    (lambda: dist.Normal(np.nan, 1.0), "Normal: loc must be .*got nan"),
    (lambda: dist.Normal(0.0, np.array([1.0, 2.0, -3.0])),
     r"Normal: scale must be a number > 0, got -3.0 at index 2 of an array of shape \(3,\)"),
    (lambda: dist.LogNormal(0.0, np.array([[1.0], [0.0]])),
     r"LogNormal: scale .* got 0.0 at index \(1, 0\)"),
    (lambda: dist.HalfNormal(-2.0), "HalfNormal: scale must be a number > 0, got -2.0"),
    (lambda: dist.HalfCauchy(0.0), "HalfCauchy: scale must be a number > 0, got 0.0"),
    (lambda: dist.Exponential(-0.5), "Exponential: rate must be a number > 0, got -0.5"),
    (lambda: dist.Uniform(1.0, 0.5), "Uniform: high must be greater than low, with high - "
                                     r"low finite; got low=1.0 and high=0.5 \(high - low = -0.5\)"),
    (lambda: dist.Uniform(-np.inf, 0.5), "Uniform: low must be a finite number, got -inf"),
    (lambda: dist.Gamma(0.0, 1.0), "Gamma: concentration must be a number > 0, got 0.0"),
    (lambda: dist.Gamma(1.0, -1.0), "Gamma: rate must be a number > 0, got -1.0"),
    (lambda: dist.Beta(1.0, -1.0), "Beta: concentration0 must be a number > 0, got -1.0"),
    (lambda: dist.Beta(np.nan, 1.0), "Beta: concentration1 must be a number > 0, got nan"),
    (lambda: dist.Bernoulli(1.5), "Bernoulli: probs must be a number >= 0 and <= 1, got 1.5"),
    (lambda: dist.Bernoulli(logits=np.nan), "Bernoulli: logits .* got nan"),
    (lambda: dist.Bernoulli(), "Bernoulli: pass exactly one of probs or logits, got neither"),
    (lambda: dist.Bernoulli(0.5, 0.0), "Bernoulli: pass exactly one of probs or logits, got both"),
    (lambda: dist.Categorical(), "Categorical: pass exactly one of probs or logits"),
    (lambda: dist.Categorical(np.array([0.5, -0.1])),
     r"Categorical: probs must be a vector .* finite numbers >= 0 with a positive sum, "
     r"got \[0.5, -0.1\]"),
    (lambda: dist.Categorical(np.array([[1.0, 1.0], [0.0, 0.0]])),
     r"Categorical: probs must be .* positive sum, got \[0.0, 0.0\] at batch index \(1,\)"),
    (lambda: dist.Categorical(logits=np.array([0.0, np.nan])), r"Categorical: logits .* got \[0.0, nan\]"),
    (lambda: dist.Categorical(logits=np.full(3, -np.inf)),
     r"Categorical: logits must be .* at least one > -inf, got \[-inf, -inf, -inf\]"),
    (lambda: dist.Categorical(np.float64(1.0)), "Categorical: probs must be a vector"),
    (lambda: dist.Categorical(np.float64(1.0), validate_args=False),
     "Categorical: probs must have a last dim"),
    (lambda: dist.Poisson(-1.0), "Poisson: rate must be a finite number >= 0, got -1.0"),
    (lambda: dist.Delta(0.0, np.nan), "Delta: log_density .* got nan"),
    (lambda: dist.Delta(0.0, event_dim=1), "Delta: event_dim must be between 0 and"),
    (lambda: dist.Delta(0.0, event_dim=-1), "Delta: event_dim must be an integer >= 0"),
    (lambda: dist.Normal(np.zeros(3), np.ones(4)),
     r"Normal: the shapes of loc \(3,\), scale \(4,\) cannot be broadcast"),
    (lambda: dist.Beta(np.ones((2, 3)), np.ones(2)),
     r"Beta: the shapes of concentration1 \(2, 3\), concentration0 \(2,\) cannot be broadcast"),
])
def test_invalid_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("d,value,message", [
    (dist.Exponential(1.0), -1.0,
     r"Exponential.log_prob: value must be in the support \(a number >= 0\), got -1.0"),
    (dist.Normal(0.0, 1.0), np.array([0.0, np.nan]), r"Normal.log_prob: .* got nan at index 1"),
    (dist.Beta(2.0, 2.0), 1.5, r"Beta.log_prob: .*<= 1.*got 1.5"),
    (dist.Gamma(2.0, 2.0), 0.0, r"Gamma.log_prob: .*> 0.*got 0.0"),
    (dist.Bernoulli(0.5), 0.5, r"Bernoulli.log_prob: value must be in the support "
                               r"\(an integer >= 0 and <= 1\), got 0.5"),
    (dist.Categorical(np.ones(3)), 3.0, r"Categorical.log_prob: .*<= 2\), got 3.0"),
    (dist.Poisson(2.0), np.array([1.0, 2.5]), r"Poisson.log_prob: .*got 2.5 at index 1"),
    (dist.Uniform(0.0, np.array([1.0, 2.0])), np.array([0.5, 2.5]),
     r"Uniform.log_prob: .*got 2.5 at index 1"),
    (dist.HalfNormal(1.0), -0.1, r"HalfNormal.log_prob: .*got -0.1"),
])
def test_values_outside_the_support_raise(d, value, message):
    with pytest.raises(ValueError, match=message):
        d.log_prob(value)


def test_value_shape_must_broadcast():
    with pytest.raises(ValueError, match=r"Normal.log_prob: a value of shape \(4,\) cannot be "
                                         r"broadcast with batch_shape \(3,\)"):
        dist.Normal(np.zeros(3), 1.0).log_prob(np.zeros(4))


def test_validation_can_be_turned_off():
    assert dist.is_validation_enabled()
    with dist.validation_enabled(False):
        assert not dist.is_validation_enabled()
        assert dist.Exponential(1.0).log_prob(-1.0).item() == -np.inf
        dist.Bernoulli(1.5)
    assert dist.is_validation_enabled()
    assert dist.Exponential(1.0, validate_args=False).log_prob(-1.0).item() == -np.inf
    dist.enable_validation(False)
    try:
        dist.Normal(0.0, -1.0)
    finally:
        dist.enable_validation(True)
    with pytest.raises(ValueError):
        dist.Normal(0.0, -1.0)
    with dist.validation_enabled(False):
        with pytest.raises(ValueError, match="Normal: scale"):
            dist.Normal(0.0, -1.0, validate_args=True)


def test_categorical_index_out_of_range_without_validation_is_an_error():
    with pytest.raises(IndexError):
        dist.Categorical(np.ones(3), validate_args=False).log_prob(5.0)


# ---- wrappers and shapes ----------------------------------------------------------

def test_expand():
    d = dist.Normal(np.array([0.0, 1.0, 2.0]), 1.0).expand((2, 3))
    assert isinstance(d, dist.ExpandedDistribution)
    assert d.batch_shape == (2, 3) and d.event_shape == ()
    assert d.sample((5,)).shape == (5, 2, 3) and d.shape((5,)) == (5, 2, 3)
    lp = d.log_prob(0.5)
    assert lp.shape == (2, 3)
    np.testing.assert_allclose(lp.numpy()[1], st.norm.logpdf(0.5, [0, 1, 2]))
    np.testing.assert_allclose(d.mean.numpy(), [[0, 1, 2]] * 2)
    loc = csvi.tensor(0.0, requires_grad=True)
    dist.Normal(loc, 1.0).expand([4]).log_prob(np.zeros(1)).sum().backward()
    assert loc.grad == 0.0 and dist.Normal(0.0, 1.0).expand([4]).log_prob(0.0).shape == (4,)
    with pytest.raises(ValueError, match=r"Normal.expand: batch_shape \(3,\) cannot be "
                                         r"expanded to \(4,\)"):
        dist.Normal(np.zeros(3), 1.0).expand((4,))
    d1 = dist.Normal(np.zeros(3), 1.0)
    assert d1.expand((3,)) is d1
    assert d1.expand_by([5, 2]).batch_shape == (5, 2, 3)


def test_zero_size_shapes():
    assert dist.Normal(np.zeros((0, 3)), 1.0).log_prob(0.0).shape == (0, 3)
    assert dist.Normal(0.0, 1.0).sample(0).shape == (0,)
    assert dist.Gamma(np.ones(0), 1.0).rsample((2,)).shape == (2, 0)
    assert dist.Categorical(np.ones((0, 3))).sample((2,)).shape == (2, 0)
    loc = csvi.tensor(np.zeros(0), requires_grad=True)
    dist.Normal(loc, 1.0).log_prob(np.zeros((5, 0))).sum().backward()
    assert loc.grad.shape == (0,)


def test_user_subclass_uses_pyro_constructor():
    class Flat(dist.Distribution):
        support = csvi.constraints.real

        def log_prob(self, value):
            return csvi.tensor(np.zeros(np.broadcast_shapes(np.shape(value), self.batch_shape)))

    d = Flat(batch_shape=(3,), validate_args=False)
    assert d.batch_shape == (3,) and d.event_shape == () and not d._validate
    assert d.to_event(1).log_prob(np.zeros(3)).shape == ()


def test_to_event():
    base = dist.Normal(np.zeros((2, 3)), 1.0)
    d = base.to_event(1)
    assert isinstance(d, dist.Independent)
    assert d.batch_shape == (2,) and d.event_shape == (3,) and d.event_dim == 1
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(d.log_prob(x).numpy(), base.log_prob(x).numpy().sum(-1))
    assert d.rsample((4,)).shape == (4, 2, 3)
    full = base.to_event()
    assert full.batch_shape == () and full.event_shape == (2, 3)
    np.testing.assert_allclose(full.log_prob(x).item(), base.log_prob(x).numpy().sum())
    assert base.to_event(0) is base
    assert dist.Normal(0.0, 1.0).expand([4]).to_event(1).log_prob(np.zeros(4)).shape == ()
    with pytest.raises(ValueError, match="Independent: reinterpreted_batch_ndims"):
        base.to_event(3)
    assert d.support.event_dim == 1 and d.has_rsample


def test_mask():
    loc = csvi.tensor(np.zeros(3), requires_grad=True)
    m = np.array([True, False, True])
    d = dist.Normal(loc, 1.0).mask(m)
    lp = d.log_prob(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(lp.numpy(), [st.norm.logpdf(1.0), 0.0, st.norm.logpdf(3.0)])
    lp.sum().backward()
    np.testing.assert_array_equal(loc.grad, [1.0, 0.0, 3.0])
    # a masked-out element with an infinite log-density gives 0 and no NaN gradient
    p = csvi.tensor(np.array([0.0, 0.5]), requires_grad=True)
    lp = dist.Bernoulli(p).mask(np.array([False, True])).log_prob(np.array([1.0, 1.0]))
    np.testing.assert_allclose(lp.numpy(), [0.0, math.log(0.5)])
    lp.sum().backward()
    np.testing.assert_array_equal(p.grad, [0.0, 2.0])
    assert dist.Normal(0.0, 1.0).mask(False).log_prob(np.zeros(2)).numpy().tolist() == [0, 0]
    np.testing.assert_allclose(dist.Normal(0.0, 1.0).mask(True).log_prob(0.0).item(),
                               st.norm.logpdf(0.0))
    d = dist.Normal(np.zeros(3), 1.0).mask(np.ones((2, 1), bool))
    assert d.batch_shape == (2, 3) and d.log_prob(0.0).shape == (2, 3)
    with pytest.raises(ValueError, match=r"Normal.mask: a mask of shape \(2,\)"):
        dist.Normal(np.zeros(3), 1.0).mask(np.ones(2, bool))


def test_enumerate_support():
    d = dist.Bernoulli(np.array([0.2, 0.7]))
    assert d.enumerate_support().numpy().tolist() == [[0, 0], [1, 1]]
    assert d.enumerate_support(expand=False).shape == (2, 1)
    c = dist.Categorical(np.ones((2, 3)))
    assert c.enumerate_support().numpy().tolist() == [[0, 0], [1, 1], [2, 2]]
    np.testing.assert_allclose(c.log_prob(c.enumerate_support()).numpy(),
                               np.full((3, 2), -math.log(3)))
    e = dist.Bernoulli(0.3).expand([4])
    assert e.enumerate_support().shape == (2, 4)
    assert e.enumerate_support(expand=False).shape == (2, 1)


def test_parameter_views_and_moments():
    b = dist.Bernoulli(logits=np.array([0.0, 2.0]))
    np.testing.assert_allclose(b.probs.numpy(), sp.expit([0.0, 2.0]))
    np.testing.assert_allclose(dist.Bernoulli(np.array([0.25])).logits.numpy(), sp.logit(0.25))
    c = dist.Categorical(np.array([1.0, 3.0]))
    np.testing.assert_allclose(c.probs.numpy(), [0.25, 0.75])
    np.testing.assert_allclose(c.logits.numpy(), np.log([0.25, 0.75]))
    cl = dist.Categorical(logits=np.array([0.0, math.log(3.0)]))
    np.testing.assert_allclose(cl.probs.numpy(), [0.25, 0.75])
    assert np.isnan(c.mean.numpy()) and np.isinf(dist.HalfCauchy(1.0).variance.numpy())
    np.testing.assert_allclose(dist.Gamma(3.0, 2.0).stddev.item(), math.sqrt(0.75))
    assert dist.Delta(np.ones(2)).variance.numpy().tolist() == [0.0, 0.0]
    assert dist.Normal(0.0, 1.0).support is csvi.constraints.real
    assert dist.Categorical(np.ones(4)).support.upper == 3
    assert dist.Bernoulli(0.5).is_discrete and not dist.Gamma(1.0, 1.0).is_discrete


def test_gradients_reach_tensor_params_through_moments():
    a = csvi.tensor(2.0, requires_grad=True)
    b = csvi.tensor(3.0, requires_grad=True)
    dist.Gamma(a, b).mean.backward()
    np.testing.assert_allclose([a.grad, b.grad], [1 / 3, -2 / 9])


# ---- reproducibility ---------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: dist.Normal(np.zeros(3), 1.0),
    lambda: dist.Gamma(np.array([0.3, 3.0]), 1.0),
    lambda: dist.Beta(0.5, 0.5),
    lambda: dist.Categorical(np.ones(5)),
    lambda: dist.Poisson(4.0),
    lambda: dist.Bernoulli(0.3),
    lambda: dist.HalfCauchy(1.0),
])
def test_same_seed_same_samples(make):
    csvi.set_rng_seed(42)
    a = make().sample((50,)).numpy()
    r = make().rsample((3,)).numpy() if make().has_rsample else None
    csvi.set_rng_seed(42)
    b = make().sample((50,)).numpy()
    np.testing.assert_array_equal(a, b)
    if r is not None:
        np.testing.assert_array_equal(r, make().rsample((3,)).numpy())
    csvi.set_rng_seed(43)
    assert not np.array_equal(a, make().sample((50,)).numpy())


def test_bernoulli_logits_log_prob_is_exact_at_extreme_logits():
    """The vectorized equal-shape path must not lose digits or make NaN at any logit."""
    from scipy.special import log_expit

    logits = np.concatenate([np.linspace(-800, 800, 20001), -np.logspace(-300, 3, 500),
                             np.logspace(-300, 3, 500), [0.0, -0.0, np.inf, -np.inf]])
    for x in (0.0, 1.0):
        lp = dist.Bernoulli(logits=logits).log_prob(np.full(logits.shape, x)).numpy()
        ref = log_expit(logits) if x == 1.0 else log_expit(-logits)
        np.testing.assert_array_equal(np.isfinite(lp), np.isfinite(ref))
        finite = np.isfinite(ref)
        np.testing.assert_allclose(lp[finite], ref[finite], rtol=1e-14, atol=0)
        assert np.all(lp[~finite] == ref[~finite])


def test_no_scipy_special_and_blas_only_for_a_matrix_product(tmp_path):
    """csvi never imports scipy.special (its special functions are C) and
    imports scipy.linalg (~0.15 s) at the first matrix-matrix product."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, sys, numpy as np, csvi, csvi.distributions as dist\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith(('scipy.special', 'scipy.linalg')))\n"
        "a = np.arange(6.0).reshape(2, 3); b = np.arange(210.0).reshape(3, 70)\n"
        "matvec = (csvi.as_tensor(a) @ np.ones(3)).numpy().tolist()\n"
        "before = loaded()\n"
        "out = [before, dist.Gamma(2.5, 3.0).log_prob(1.5).item(),\n"
        "    dist.Poisson(4.0).log_prob(3.0).item(), dist.Beta(2.0, 5.0).log_prob(0.25).item(),\n"
        "    matvec, loaded(), (csvi.as_tensor(a) @ b).numpy().tolist(),\n"
        "    'scipy.linalg.cython_blas' in loaded()]\n"
        "print(json.dumps(out))\n"
    )
    # the csvi under test, wherever it is installed
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(csvi.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    before, gamma, poisson, beta, matvec, after, matmat, blas_loaded = json.loads(out.stdout)
    assert before == [] and after == []
    np.testing.assert_allclose(gamma, st.gamma(2.5, scale=1 / 3.0).logpdf(1.5), rtol=1e-12)
    np.testing.assert_allclose(poisson, st.poisson(4.0).logpmf(3), rtol=1e-12)
    np.testing.assert_allclose(beta, st.beta(2.0, 5.0).logpdf(0.25), rtol=1e-12)
    assert matvec == [3.0, 12.0]
    a, b = np.arange(6.0).reshape(2, 3), np.arange(210.0).reshape(3, 70)
    np.testing.assert_allclose(matmat, a @ b, rtol=1e-14)
    assert blas_loaded


# ---- one validation path: every argument against its declared constraint -----------

_VALID = [
    (dist.Normal, {"loc": 0.5, "scale": 2.0}),
    (dist.LogNormal, {"loc": 0.5, "scale": 2.0}),
    (dist.HalfNormal, {"scale": 2.0}),
    (dist.HalfCauchy, {"scale": 2.0}),
    (dist.Exponential, {"rate": 2.0}),
    (dist.Uniform, {"low": -1.0, "high": 2.0}),
    (dist.Gamma, {"concentration": 2.0, "rate": 3.0}),
    (dist.Beta, {"concentration1": 2.0, "concentration0": 3.0}),
    (dist.Bernoulli, {"probs": 0.3}),
    (dist.Bernoulli, {"logits": 0.3}),
    (dist.Categorical, {"probs": np.array([0.2, 0.8])}),
    (dist.Categorical, {"logits": np.array([0.2, 0.8])}),
    (dist.Poisson, {"rate": 2.0}),
    (dist.Delta, {"v": 1.0, "log_density": 0.5}),
    (dist.Unit, {"log_factor": -1.0}),
]
_ARG_CASES = [(cls, kw, arg) for cls, kw in _VALID for arg in kw
              if arg in cls.arg_constraints]


@pytest.mark.parametrize("cls,kwargs,arg", _ARG_CASES,
                         ids=[f"{c.__name__}.{a}" for c, _, a in _ARG_CASES])
def test_each_argument_is_checked_against_its_declared_constraint(cls, kwargs, arg):
    """The error for a NaN argument quotes the constraint the family declares
    (Poisson used to check one constraint and declare another)."""
    constraint = cls.arg_constraints[arg]
    bad = np.full(np.shape(kwargs[arg]), np.nan)
    assert not constraint.check(bad)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: {arg} must be "
                                         rf"{re.escape(constraint.describe())}, got"):
        cls(**{**kwargs, arg: bad})
    cls(**kwargs, validate_args=True)  # the valid arguments pass the same checks


def test_poisson_declares_the_constraint_it_checks():
    rate = dist.Poisson.arg_constraints["rate"]
    assert rate.check(0.0) and rate.check(1e300)
    assert not rate.check(np.inf) and not rate.check(-1e-300)


# ---- Poisson at large rates -----------------------------------------------------------

def _poisson_logpmf_mp(k, rate):
    import mpmath
    with mpmath.workdps(60):
        k, r = mpmath.mpf(k), mpmath.mpf(rate)
        return float(k * mpmath.log(r) - r - mpmath.loggamma(k + 1))


@pytest.mark.parametrize("rate", [1e15, 3.7e16, 1e18, 5e19])
def test_poisson_log_prob_keeps_its_digits_at_large_rates(rate):
    """x log r - r - lgamma(x + 1) cancels every digit near x = r ~ 1e15; the
    saddle-point form keeps them (reference: 60-digit mpmath)."""
    sd = math.sqrt(rate)
    ks = np.floor(np.array([rate, rate - 3 * sd, rate + 0.5 * sd, 0.5 * rate, 7.0]))
    got = dist.Poisson(rate).log_prob(ks).numpy()
    want = np.array([_poisson_logpmf_mp(k, rate) for k in ks])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-12)


def test_poisson_log_prob_at_moderate_rates_matches_scipy():
    rates = np.array([1e-3, 0.4, 3.0, 17.5, 250.0, 1e4])
    ks = np.arange(0.0, 60.0)[:, None]
    np.testing.assert_allclose(dist.Poisson(rates).log_prob(ks).numpy(),
                               st.poisson.logpmf(ks, rates), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rate", [1e19, 4e20])
def test_poisson_sampler_beyond_numpys_bound(rate):
    """NumPy's sampler stops at ~9.2e18 (it used to wrap to -9.2e18 here)."""
    csvi.set_rng_seed(12)
    x = dist.Poisson(np.array([rate, 9.2e18])).sample((4000,)).numpy()
    assert np.all(x >= 0) and np.all(x == np.floor(x))
    sd = math.sqrt(rate)
    assert abs(x[:, 0].mean() - rate) < 5 * sd / math.sqrt(4000)
    assert abs(x[:, 0].std() / sd - 1.0) < 0.06
    assert abs(x[:, 1].mean() - 9.2e18) < 5 * math.sqrt(9.2e18) / math.sqrt(4000)


# ---- Pyro's module paths and test fakes -----------------------------------------------

def test_pyro_module_paths():
    import csvi.distributions.constraints as by_import
    from csvi.distributions import constraints as by_from
    assert by_import is by_from and by_from.positive is csvi.constraints.positive
    assert by_from.simplex is csvi.constraints.simplex
    try:
        csvi.enable_validation(False)
        assert not dist.is_validation_enabled()
        dist.Normal(0.0, -1.0)
    finally:
        csvi.enable_validation(True)
    assert dist.is_validation_enabled()


def test_nonreparameterized_fakes_sample_without_rsample():
    from csvi.distributions.testing import fakes
    csvi.set_rng_seed(5)
    for cls, args, ref in [(fakes.NonreparameterizedBeta, (2.0, 3.0), st.beta(2.0, 3.0)),
                           (fakes.NonreparameterizedGamma, (2.0, 3.0), st.gamma(2.0, scale=1 / 3)),
                           (fakes.NonreparameterizedNormal, (1.0, 2.0), st.norm(1.0, 2.0))]:
        d = cls(*args)
        assert not d.has_rsample
        with pytest.raises(NotImplementedError):
            d.rsample()
        assert st.kstest(d.sample((2000,)).numpy(), ref.cdf).pvalue > 1e-3
        np.testing.assert_allclose(d.log_prob(0.5).item(), ref.logpdf(0.5), rtol=1e-12)


def test_nonreparameterized_beta_fits_the_conjugate_posterior(fresh_store):
    """Pyro's SVI Part III: the coin with a score-function guide.  Six heads in
    ten flips under a Beta(10, 10) prior: the posterior is Beta(16, 14)."""
    from csvi.distributions.testing import fakes
    from csvi.infer import SVI, Trace_ELBO
    from csvi.optim import Adam

    data = np.array([1.0] * 6 + [0.0] * 4)

    def model(data):
        f = csvi.sample("latent_fairness", dist.Beta(10.0, 10.0))
        with csvi.plate("data", len(data)):
            csvi.sample("obs", dist.Bernoulli(f), obs=data)

    def guide(data):
        a = csvi.param("alpha_q", 15.0, constraint=csvi.constraints.positive)
        b = csvi.param("beta_q", 15.0, constraint=csvi.constraints.positive)
        csvi.sample("latent_fairness", fakes.NonreparameterizedBeta(a, b))

    csvi.set_rng_seed(1)
    svi = SVI(model, guide, Adam({"lr": 0.003}), loss=Trace_ELBO(num_particles=8))
    svi.run(20000, data, compile=True)
    a, b = fresh_store["alpha_q"].item(), fresh_store["beta_q"].item()
    mean, sd = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert abs(mean - 16 / 30) < 0.02
    assert abs(sd / math.sqrt(16 * 14 / (30 ** 2 * 31)) - 1.0) < 0.1


# ---- no import cycles among the distribution modules ----------------------------------

def test_distribution_modules_import_without_cycles():
    """Every import (also one inside a function) between csvi.distributions
    modules points one way."""
    import ast
    import pathlib

    root = pathlib.Path(dist.__file__).parent
    graph = {}
    for path in root.rglob("*.py"):
        mod = "csvi." + ".".join(path.relative_to(root.parent).with_suffix("").parts)
        mod = mod.removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[mod] = deps
    graph.pop("csvi.distributions")  # the package re-exports; its modules never import it

    def visit(mod, stack):
        assert mod not in stack, f"import cycle: {' -> '.join(stack + [mod])}"
        for dep in graph.get(mod, ()):
            if dep in graph and dep != mod:
                visit(dep, stack + [mod])

    for mod in graph:
        visit(mod, [])
