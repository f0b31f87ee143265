"""The composed continuous families (Cauchy, Laplace, Logistic, Gumbel,
StudentT, VonMises, InverseGamma, Chi2, Weibull, Pareto; Dirichlet in
test_dist_dirichlet.py): densities, moments and entropies against
scipy.stats over broadcast shapes, samplers by KS tests that a wrong scale
fails, pathwise gradients against finite differences with common random
numbers (or, where the gradient is implicit through Gamma, against a closed
form by Monte Carlo), KL rules against Monte Carlo, argument checks, and
each family inside a compiled SVI program against eager steps."""
import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi import _core, constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from gradcheck import assert_grads_match


@dataclass
class Case:
    make: object          # params -> csvi distribution
    ref: object           # params -> frozen scipy distribution
    params: tuple         # broadcast against each other: batch (3, 4) or (3, 1)
    values: np.ndarray    # shape (4,), inside the support for every batch element
    names: tuple          # the argument names, in order
    positive: tuple = ()  # names of the arguments that must be > 0
    ks: tuple = ()        # scalar params for the sampler's KS test
    scale_arg: int = -1   # which ks param is a scale (the KS test must fail when it is off)
    rsample: bool = True


COL = np.array([[-1.0], [0.0], [2.0]])
SCALES = np.array([0.5, 1.0, 1.5, 3.0])
REAL_X = np.array([-3.0, -0.4, 0.7, 4.0])
POS_X = np.array([0.6, 0.9, 1.5, 4.0])

CASES = {
    "Cauchy": Case(dist.Cauchy, lambda l, s: st.cauchy(l, s), (COL, SCALES), REAL_X,
                   ("loc", "scale"), ("scale",), (0.5, 2.0)),
    "Laplace": Case(dist.Laplace, lambda l, s: st.laplace(l, s), (COL, SCALES), REAL_X,
                    ("loc", "scale"), ("scale",), (0.5, 2.0)),
    "Logistic": Case(dist.Logistic, lambda l, s: st.logistic(l, s), (COL, SCALES), REAL_X,
                     ("loc", "scale"), ("scale",), (0.5, 2.0)),
    "Gumbel": Case(dist.Gumbel, lambda l, s: st.gumbel_r(l, s), (COL, SCALES), REAL_X,
                   ("loc", "scale"), ("scale",), (0.5, 2.0)),
    "StudentT": Case(dist.StudentT, lambda d, l, s: st.t(d, l, s),
                     (np.array([[0.8], [1.5], [3.0], [7.0]]), np.array([0.0, 1.0, -2.0]), 2.0),
                     np.array([-3.0, 0.4, 5.0]), ("df", "loc", "scale"), ("df", "scale"),
                     (4.0, 0.5, 2.0)),
    "VonMises": Case(dist.VonMises, lambda l, k: st.vonmises(k, l), (COL, np.array(
        [0.3, 1.0, 2.5, 40.0])), np.array([-3.0, -0.4, 0.7, 3.1]), ("loc", "concentration"),
        ("concentration",), (0.5, 2.0), scale_arg=1, rsample=False),
    "InverseGamma": Case(dist.InverseGamma, lambda a, b: st.invgamma(a, scale=b),
                         (np.array([[0.5], [1.5], [2.5], [4.0]]), np.array([0.5, 2.0, 3.0])),
                         np.array([0.3, 1.5, 4.0]), ("concentration", "rate"),
                         ("concentration", "rate"), (3.0, 2.0)),
    "Chi2": Case(dist.Chi2, lambda d: st.chi2(d), (np.array([[0.5], [2.0], [5.0]]),), POS_X,
                 ("df",), ("df",), (3.0,)),
    "Weibull": Case(dist.Weibull, lambda s, k: st.weibull_min(k, scale=s), (COL + 2.0, SCALES),
                    POS_X, ("scale", "concentration"), ("scale", "concentration"), (1.5, 2.0),
                    scale_arg=0),
    "Pareto": Case(dist.Pareto, lambda s, a: st.pareto(a, scale=s),
                   (np.array([[0.1], [0.2], [0.5]]), np.array([0.5, 1.0, 2.5, 4.0])), POS_X,
                   ("scale", "alpha"), ("scale", "alpha"), (0.5, 3.0), scale_arg=0),
}
NAMES = sorted(CASES)


def batch_of(case):
    return np.broadcast_shapes(*[np.shape(p) for p in case.params])


# ---- densities and moments against scipy -----------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_log_prob_matches_scipy_over_broadcast_shapes(name):
    case = CASES[name]
    d = case.make(*case.params)
    assert d.batch_shape == batch_of(case) and d.event_shape == ()
    lp = d.log_prob(case.values)
    ref = case.ref(*case.params).logpdf(case.values)
    assert lp.shape == ref.shape
    np.testing.assert_allclose(lp.numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_mean_variance_entropy_match_scipy(name):
    case = CASES[name]
    d, ref = case.make(*case.params), case.ref(*case.params)
    shape = batch_of(case)
    mean, var = d.mean, d.variance
    assert mean.shape == shape and var.shape == shape
    if name == "Cauchy":  # no moments: torch's NaN mean and infinite variance
        assert np.isnan(mean.numpy()).all() and np.isposinf(var.numpy()).all()
    elif name == "VonMises":  # the circular moments
        k = np.broadcast_to(case.params[1], shape)
        np.testing.assert_allclose(mean.numpy(), np.broadcast_to(case.params[0], shape))
        np.testing.assert_allclose(var.numpy(), 1.0 - sp.i1(k) / sp.i0(k), rtol=1e-12)
    else:
        with np.errstate(all="ignore"):
            ref_mean = ref.mean()
            if name == "StudentT":  # torch: NaN where df <= 1 (scipy says inf)
                ref_mean = np.where(np.broadcast_to(case.params[0], shape) > 1, ref_mean, np.nan)
            np.testing.assert_allclose(mean.numpy(), ref_mean, rtol=1e-10)
            np.testing.assert_allclose(var.numpy(), ref.var(), rtol=1e-10)
    entropy = d.entropy()
    assert entropy.shape == shape
    np.testing.assert_allclose(entropy.numpy(), ref.entropy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_mode_is_where_scipys_density_peaks(name):
    case = CASES[name]
    mode = case.make(*case.params).mode.numpy()
    assert mode.shape == batch_of(case)
    ref = case.ref(*case.params)
    delta = 1e-3 * np.maximum(1.0, np.abs(mode))
    with np.errstate(all="ignore"):
        peak = ref.logpdf(mode)
        for side in (-1.0, 1.0):
            assert np.all(peak >= ref.logpdf(mode + side * delta)), (mode, side)


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_gradients_match_finite_differences(name):
    case = CASES[name]
    values = case.values + 0.01  # off any kink (Laplace at x = loc)
    # central differences lose digits in proportion to the density's size
    size = np.abs(case.make(*case.params).log_prob(values).numpy()).max()
    assert_grads_match(lambda x, *p: case.make(*p).log_prob(x), [values, *case.params],
                       rtol=1e-5, atol=1e-7 * max(1.0, size))


CDF = ("Gumbel", "Laplace", "Logistic", "Pareto", "Weibull")
ICDF = CDF + ("Cauchy",)
PROBS = np.array([0.02, 0.3, 0.6, 0.97])


@pytest.mark.parametrize("name", CDF)
def test_cdf_matches_scipy_and_finite_differences(name):
    case = CASES[name]
    values = case.values + 0.01  # off Laplace's kink at loc
    cdf = case.make(*case.params).cdf(values)
    np.testing.assert_allclose(cdf.numpy(), case.ref(*case.params).cdf(values), rtol=1e-12,
                               atol=1e-15)
    assert_grads_match(lambda x, *p: case.make(*p).cdf(x), [values, *case.params])


@pytest.mark.parametrize("name", ICDF)
def test_icdf_matches_scipy_and_inverts_cdf(name):
    case = CASES[name]
    d = case.make(*case.params)
    x = d.icdf(PROBS)
    np.testing.assert_allclose(x.numpy(), case.ref(*case.params).ppf(PROBS), rtol=1e-12)
    assert_grads_match(lambda q, *p: case.make(*p).icdf(q), [PROBS, *case.params])
    if name in CDF:
        np.testing.assert_allclose(d.cdf(x).numpy(), np.broadcast_to(PROBS, x.shape), rtol=1e-12)
    with pytest.raises(ValueError, match=f"{name}.icdf: value must be a probability"):
        d.icdf(1.5)


def test_cdf_checks_the_support_and_the_others_have_none():
    with pytest.raises(ValueError, match="Weibull.cdf: value must be in the support"):
        dist.Weibull(1.0, 2.0).cdf(-1.0)
    with pytest.raises(ValueError, match="Pareto.cdf: value must be in the support"):
        dist.Pareto(1.0, 2.0).cdf(0.5)
    for name in sorted(set(NAMES) - set(CDF)):
        with pytest.raises(NotImplementedError, match=f"{name}.cdf"):
            CASES[name].make(*CASES[name].ks).cdf(0.5)


# ---- samplers ------------------------------------------------------------------------

def _wrapped(x, loc):
    """Angles moved into [loc - pi, loc + pi), scipy's vonmises support."""
    return loc + np.mod(x - loc + np.pi, 2.0 * np.pi) - np.pi


@pytest.mark.parametrize("name", NAMES)
def test_sampler_passes_ks_and_a_wrong_scale_fails(name, fresh_store):
    case = CASES[name]
    d = case.make(*case.ks)
    x = d.sample((10000,)).numpy()
    assert x.shape == (10000,)
    if name == "VonMises":
        x = _wrapped(x, case.ks[0])
    assert st.kstest(x, case.ref(*case.ks).cdf).pvalue > 1e-3
    wrong = list(case.ks)
    wrong[case.scale_arg] *= 1.25
    assert st.kstest(x, case.ref(*wrong).cdf).pvalue < 1e-4
    if case.rsample:
        y = d.rsample((10000,)).numpy()
        assert st.kstest(y, case.ref(*case.ks).cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_sample_shapes_and_batch_draws(name, fresh_store):
    case = CASES[name]
    d = case.make(*case.params)
    batch = batch_of(case)
    x = d.sample((5, 2))
    assert x.shape == (5, 2) + batch and not x.requires_grad
    assert np.isfinite(x.numpy()).all()
    assert d.support.check(x)
    # each batch element draws from its own parameters: compare per element (first column)
    x = d.sample((4000,)).numpy()
    params = [np.broadcast_to(p, batch) for p in case.params]
    for i in range(batch[0]):
        ref = case.ref(*[p[i, 0] for p in params])
        xi = _wrapped(x[:, i, 0], params[0][i, 0]) if name == "VonMises" else x[:, i, 0]
        assert st.kstest(xi, ref.cdf).pvalue > 1e-4


def test_has_rsample_flags():
    for name in NAMES:
        d = CASES[name].make(*CASES[name].ks)
        assert d.has_rsample == CASES[name].rsample, name
    with pytest.raises(NotImplementedError, match="VonMises"):
        dist.VonMises(0.0, 1.0).rsample()


# ---- pathwise gradients --------------------------------------------------------------

EXPLICIT = {  # families whose noise does not depend on the parameters
    "Cauchy": (0, 1), "Laplace": (0, 1), "Logistic": (0, 1), "Gumbel": (0, 1),
    "StudentT": (1, 2), "Weibull": (0, 1), "Pareto": (0, 1),
}


@pytest.mark.parametrize("name", sorted(EXPLICIT))
def test_rsample_gradient_matches_finite_differences_with_common_noise(name):
    """d/dtheta of a Monte Carlo average of f(x) at a fixed seed: the same
    noise at every perturbed theta, so the difference quotient is exact."""
    case = CASES[name]
    f = csvi.sigmoid if case.make(*case.ks).support is constraints.real else csvi.log

    def average(*params):
        csvi.set_rng_seed(11)
        return csvi.mean(f(case.make(*params).rsample((500,))))

    assert_grads_match(average, list(case.ks), wrt=EXPLICIT[name], rtol=1e-5, atol=1e-8)


def _mc_gradient(make, params, f, wrt, batches=8, n=25000):
    """Mean and standard error over batches of d/dparams[wrt] mean(f(x))."""
    grads = []
    for b in range(batches):
        csvi.set_rng_seed(100 + b)
        leaves = [csvi.tensor(p, requires_grad=True) for p in params]
        csvi.mean(f(make(*leaves).rsample((n,)))).backward()
        grads.append([leaves[i].grad for i in wrt])
    grads = np.array(grads, dtype=float)
    return grads.mean(0), grads.std(0, ddof=1) / math.sqrt(batches)


@pytest.mark.parametrize("name, params, f, wrt, exact", [
    # E[x^2] = scale^2 df / (df - 2): d/ddf = -2 scale^2 / (df - 2)^2
    ("StudentT", (6.0, 0.0, 1.5), lambda x: x * x, (0,), lambda d, l, s: [-2 * s * s / (d - 2) ** 2]),
    # E[x] = rate / (a - 1)
    ("InverseGamma", (4.0, 2.0), lambda x: x, (0, 1),
     lambda a, b: [-b / (a - 1) ** 2, 1 / (a - 1)]),
    # E[x] = df
    ("Chi2", (3.0,), lambda x: x, (0,), lambda d: [1.0]),
    # E[log x] = log scale - euler / k: d/dk = euler / k^2
    ("Weibull", (1.5, 2.0), csvi.log, (0, 1), lambda s, k: [1 / s, 0.5772156649015329 / k ** 2]),
])
def test_rsample_gradient_of_an_expectation_matches_its_closed_form(name, params, f, wrt, exact):
    mean, se = _mc_gradient(CASES[name].make, params, f, wrt)
    want = np.array(exact(*params))
    assert np.all(se < 0.05 * np.abs(want))  # precise enough to catch a wrong gradient
    assert np.all(np.abs(mean - want) < 4 * se + 1e-12), (mean, want, se)


# ---- KL divergence -------------------------------------------------------------------

KL_PAIRS = {
    "Cauchy": ((np.array([-1.0, 0.0, 2.0]), np.array([0.5, 1.0, 3.0])), (0.5, 1.5)),
    "Laplace": ((np.array([-1.0, 0.0, 2.0]), np.array([0.5, 1.0, 3.0])), (0.5, 1.5)),
    "Gumbel": ((np.array([-1.0, 0.0, 2.0]), np.array([0.5, 1.0, 3.0])), (0.5, 1.5)),
    "Pareto": ((np.array([1.0, 1.5, 2.0]), np.array([1.5, 3.0, 5.0])), (0.8, 2.0)),
}


@pytest.mark.parametrize("name", sorted(KL_PAIRS))
def test_kl_matches_monte_carlo(name, fresh_store):
    make = CASES[name].make
    p_params, q_params = KL_PAIRS[name]
    p, q = make(*p_params), make(*q_params)
    kl = dist.kl_divergence(p, q)
    assert kl.shape == (3,)
    x = p.sample((200000,))
    ratio = (p.log_prob(x) - q.log_prob(x)).numpy()
    mc, se = ratio.mean(0), ratio.std(0) / math.sqrt(len(ratio))
    assert np.all(np.abs(kl.numpy() - mc) < 5 * se + 1e-9), (kl.numpy(), mc, se)


def test_kl_gradients_match_finite_differences():
    for name in ("Cauchy", "Laplace", "Gumbel", "Pareto"):
        make = CASES[name].make
        (a, b), (c, d) = KL_PAIRS[name]
        assert_grads_match(lambda a, b, c, d: dist.kl_divergence(make(a, b), make(c, d)),
                           [a, b, c, d], rtol=1e-5, atol=1e-7)


def test_pareto_kl_is_infinite_where_p_reaches_below_q():
    kl = dist.kl_divergence(dist.Pareto(np.array([1.0, 3.0]), 2.0), dist.Pareto(2.0, 2.0))
    assert np.isposinf(kl.numpy()[0]) and np.isfinite(kl.numpy()[1])


# ---- argument and value checks --------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_name_the_family_and_argument(name):
    case = CASES[name]
    for k, arg in enumerate(case.names):
        args = list(case.ks)
        args[k] = "abc"
        with pytest.raises(TypeError, match=f"{name}: {arg} must be"):
            case.make(*args)
        if arg in case.positive:
            for bad in (0.0, -1.0, math.nan):
                args[k] = np.array([1.0, bad])
                with pytest.raises(ValueError, match=f"{name}: {arg} must be a number > 0"):
                    case.make(*args)
        args[k] = math.nan
        with pytest.raises(ValueError, match=f"{name}: {arg} must be"):
            case.make(*args)
    args = [np.ones(2)] + [np.ones(3)] * (len(case.ks) - 1) if len(case.ks) > 1 else None
    if args:
        with pytest.raises(ValueError, match=f"{name}: the shapes of"):
            case.make(*args)
    with pytest.raises(ValueError, match=f"{name}.log_prob: a value of shape"):
        case.make(*case.params).log_prob(np.ones((2, 7)))
    with csvi.distributions.validation_enabled(False):
        case.make(*[-1.0 for _ in case.ks])  # validation off: no check


@pytest.mark.parametrize("name, value", [
    ("InverseGamma", 0.0), ("Chi2", -1.0), ("Weibull", 0.0), ("Pareto", 0.4),
    ("Cauchy", math.nan), ("VonMises", math.nan)])
def test_values_outside_the_support_are_refused(name, value):
    d = CASES[name].make(*CASES[name].ks)
    with pytest.raises(ValueError, match=f"{name}.log_prob: value must be in the support"):
        d.log_prob(value)


def test_pareto_support_follows_its_scale():
    d = dist.Pareto(np.array([1.0, 2.0]), 3.0)
    d.log_prob(np.array([1.5, 2.5]))
    with pytest.raises(ValueError, match=r"Pareto.log_prob: value must be in the support \(a "
                                         r"number >= lower_bound \(bounds from the "
                                         r"distribution's parameters\)\), got 1.5 at index 1"):
        d.log_prob(np.array([1.5, 1.5]))
    assert dist.Pareto(2.0, 3.0).support.check(np.array([2.0, 5.0]))
    assert not dist.Pareto(2.0, 3.0).support.check(np.array([1.9]))


# ---- wrappers ------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_expand_to_event_and_mask(name, fresh_store):
    case = CASES[name]
    d = case.make(*case.params)
    batch = batch_of(case)
    lp = d.log_prob(case.values).numpy()
    big = d.expand((2,) + batch)
    assert big.batch_shape == (2,) + batch and big.sample().shape == (2,) + batch
    np.testing.assert_allclose(big.log_prob(case.values).numpy(), np.broadcast_to(lp, (2,) + lp.shape))
    ev = d.to_event(1)
    assert ev.batch_shape == batch[:1] and ev.event_shape == batch[1:]
    values = np.broadcast_to(case.values, lp.shape)
    np.testing.assert_allclose(ev.log_prob(values).numpy(), lp.sum(-1), rtol=1e-12)
    mask = np.arange(batch[0])[:, None] % 2 == 0
    np.testing.assert_allclose(d.mask(mask).log_prob(case.values).numpy(), np.where(mask, lp, 0.0))


# ---- the COS and SIN ops behind VonMises ------------------------------------------------

@pytest.mark.parametrize("op, ref", [("COS", np.cos), ("SIN", np.sin)])
def test_trig_ops_values_and_gradients(op, ref):
    code = _core.OPCODES[op]
    x = np.linspace(-7.0, 7.0, 23).reshape(23, 1) + np.zeros((1, 5))
    np.testing.assert_allclose(_core.unary(code, x).numpy(), ref(x), rtol=1e-15, atol=1e-15)
    assert_grads_match(lambda t: _core.unary(code, t), [np.linspace(-4.0, 4.0, 9)])
    # a large input runs over threads: each element as computed alone
    big = np.random.default_rng(0).uniform(-10, 10, 100000)
    out = _core.unary(code, big).numpy()
    np.testing.assert_array_equal(out[:1000], _core.unary(code, big[:1000]).numpy())
    np.testing.assert_allclose(out, ref(big), rtol=1e-15, atol=1e-15)


# ---- compiled programs ---------------------------------------------------------------

def _param(name, init, positive):
    return csvi.param(name, init, constraint=constraints.positive if positive else constraints.real)


# (prior args, guide's (init, positive) per arg, or a fixed float)
COMPILED = {
    "Cauchy": ((0.0, 2.0), [(0.5, False), (1.0, True)]),
    "Laplace": ((0.0, 2.0), [(0.5, False), (1.0, True)]),
    "Logistic": ((0.0, 2.0), [(0.5, False), (1.0, True)]),
    "Gumbel": ((0.0, 2.0), [(0.5, False), (1.0, True)]),
    "StudentT": ((3.0, 0.0, 2.0), [(4.0, True), (0.5, False), (1.0, True)]),
    "VonMises": ((0.0, 2.0), [(0.5, False), (1.0, True)]),
    "InverseGamma": ((3.0, 2.0), [(2.0, True), (1.0, True)]),
    "Chi2": ((3.0,), [(2.0, True)]),
    "Weibull": ((1.0, 2.0), [(1.5, True), (1.0, True)]),
    "Pareto": ((1.0, 2.0), [1.0, (3.0, True)]),
}


def _run(name, compiled, steps=25):
    make = CASES[name].make
    prior, spec = COMPILED[name]

    def model():
        z = csvi.sample("z", make(*prior))
        csvi.sample("obs", dist.Normal(z, 1.0), obs=np.array([0.8, 1.3]))

    def guide():
        args = [s if isinstance(s, float) else _param(f"p{i}", *s) for i, s in enumerate(spec)]
        csvi.sample("z", make(*args))

    csvi.clear_param_store()
    csvi.set_rng_seed(123)
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO(num_particles=2))
    losses = svi.compile().run(steps) if compiled else [svi.step() for _ in range(steps)]
    store = csvi.get_param_store()
    return np.array(losses), {n: store.unconstrained(n).copy() for n in store.names()}


@pytest.mark.parametrize("name", NAMES)
def test_compiled_svi_equals_eager(name):
    eager_losses, eager_params = _run(name, False)
    losses, params = _run(name, True)
    assert np.isfinite(losses).all()
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12, atol=0)
    assert params.keys() == eager_params.keys()
    for n in params:
        np.testing.assert_allclose(params[n], eager_params[n], rtol=1e-12, atol=0)
    csvi.clear_param_store()
