"""The Distribution interface of every family and wrapper: shapes, moments,
entropy, mode, cdf/icdf against scipy.stats (and torch where scipy has no
counterpart, skipped without torch), their gradients against finite
differences, enumerate_support's shapes, the wrappers' interplay with all of
these, and argument validation.

The table CASES has one line per family (and parameterization): a new family
is tested by adding a line."""
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import scipy.stats as st

import csvi
import csvi.distributions as dist
from gradcheck import assert_grads_match


@dataclass
class Case:
    """`make(*params)` builds the family from `params` (arrays whose shapes
    broadcast to `batch`); `scipy(*params)` is the frozen scipy.stats
    reference with the same broadcast (None: `ref` gives moments instead);
    `values` lie in the support, broadcastable with the batch; `bad` are
    (argument index, bad value, argument name) triples; `constant_entropy`
    the indices of the params the entropy does not depend on;
    `finite_moments` False where mean or variance is inf or NaN."""
    name: str
    make: object
    params: tuple
    scipy: object = None
    ref: dict = field(default_factory=dict)
    values: object = None
    entropy: bool = True
    cdf: bool = False
    icdf: bool = False
    enumerate: bool = False
    bad: tuple = ()
    constant_entropy: tuple = ()
    finite_moments: bool = True

    def __str__(self):
        return self.name


RNG = np.random.default_rng(0)
POS_3x1 = RNG.uniform(0.5, 3.0, (3, 1))
POS_4 = RNG.uniform(0.5, 3.0, 4)
REAL_3x1 = RNG.normal(0.0, 1.5, (3, 1))
UNIT_3x4 = RNG.uniform(0.05, 0.95, (3, 4))
PROBS_2x3x4 = RNG.uniform(0.1, 1.0, (2, 3, 4))
LOGITS_2x3x4 = RNG.normal(0.0, 2.0, (2, 3, 4))


def _categorical_ref(p):
    p = p / p.sum(-1, keepdims=True)
    return {"entropy": st.entropy(p, axis=-1), "mean": np.full(p.shape[:-1], np.nan),
            "variance": np.full(p.shape[:-1], np.nan)}


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


CASES = [
    Case("Normal", dist.Normal, (REAL_3x1, POS_4), lambda m, s: st.norm(m, s),
         values=RNG.normal(0.0, 2.0, 4), cdf=True, icdf=True, constant_entropy=(0,),
         bad=((1, 0.0, "scale"), (1, -1.0, "scale"), (0, np.nan, "loc"))),
    Case("LogNormal", dist.LogNormal, (REAL_3x1, POS_4),
         lambda m, s: st.lognorm(s, scale=np.exp(m)), values=RNG.uniform(0.1, 4.0, 4),
         cdf=True, icdf=True,
         bad=((1, -1.0, "scale"),)),
    Case("HalfNormal", dist.HalfNormal, (POS_3x1,), lambda s: st.halfnorm(scale=s),
         values=RNG.uniform(0.0, 3.0, 4), cdf=True, icdf=True, bad=((0, 0.0, "scale"),)),
    Case("HalfCauchy", dist.HalfCauchy, (POS_3x1,), lambda s: st.halfcauchy(scale=s),
         values=RNG.uniform(0.0, 3.0, 4), cdf=True, icdf=True, finite_moments=False,
         bad=((0, -2.0, "scale"),)),
    Case("Exponential", dist.Exponential, (POS_3x1,), lambda r: st.expon(scale=1.0 / r),
         values=RNG.uniform(0.0, 3.0, 4), cdf=True, icdf=True, bad=((0, 0.0, "rate"),)),
    Case("Uniform", dist.Uniform, (-POS_3x1, POS_4), lambda a, b: st.uniform(a, b - a),
         values=RNG.uniform(-0.4, 0.4, 4), cdf=True, icdf=True,
         bad=((0, np.inf, "low"), (1, np.nan, "high"))),
    Case("Gamma", dist.Gamma, (POS_3x1, POS_4), lambda a, b: st.gamma(a, scale=1.0 / b),
         bad=((0, 0.0, "concentration"), (1, -1.0, "rate"))),
    Case("Beta", dist.Beta, (POS_3x1, POS_4), lambda a, b: st.beta(a, b),
         bad=((0, -1.0, "concentration1"), (1, 0.0, "concentration0"))),
    Case("Bernoulli(probs)", lambda p: dist.Bernoulli(probs=p), (UNIT_3x4,),
         lambda p: st.bernoulli(p), values=np.array([0.0, 1.0, 1.0, 0.0]), enumerate=True,
         bad=((0, 1.5, "probs"), (0, -0.1, "probs"))),
    Case("Bernoulli(logits)", lambda x: dist.Bernoulli(logits=x), (REAL_3x1,),
         lambda x: st.bernoulli(1.0 / (1.0 + np.exp(-x))), enumerate=True,
         bad=((0, np.nan, "logits"),)),
    Case("Categorical(probs)", lambda p: dist.Categorical(probs=p), (PROBS_2x3x4,),
         ref=_categorical_ref(PROBS_2x3x4), enumerate=True, finite_moments=False,
         bad=((0, np.array([0.5, -0.1]), "probs"), (0, np.zeros(3), "probs"))),
    Case("Categorical(logits)", lambda x: dist.Categorical(logits=x), (LOGITS_2x3x4,),
         ref=_categorical_ref(_softmax(LOGITS_2x3x4)), enumerate=True, finite_moments=False,
         bad=((0, np.array([0.0, np.inf]), "logits"),)),
    Case("Poisson", dist.Poisson, (POS_3x1 * 3,), lambda r: st.poisson(r), entropy=False,
         bad=((0, -1.0, "rate"), (0, np.inf, "rate"))),
    # the composed families
    Case("Cauchy", dist.Cauchy, (REAL_3x1, POS_4), lambda m, s: st.cauchy(m, s),
         ref={"variance": np.full((3, 4), np.inf)},  # torch's (scipy's is NaN)
         constant_entropy=(0,), finite_moments=False, bad=((1, 0.0, "scale"),)),
    Case("Laplace", dist.Laplace, (REAL_3x1, POS_4), lambda m, s: st.laplace(m, s),
         constant_entropy=(0,), bad=((1, 0.0, "scale"),)),
    Case("Gumbel", dist.Gumbel, (REAL_3x1, POS_4), lambda m, s: st.gumbel_r(m, s),
         constant_entropy=(0,), bad=((1, 0.0, "scale"),)),
    Case("StudentT", dist.StudentT, (POS_3x1 + 2.5, REAL_3x1, POS_4),
         lambda df, m, s: st.t(df, m, s), constant_entropy=(1,), bad=((0, 0.0, "df"),)),
    Case("Chi2", dist.Chi2, (POS_3x1,), lambda df: st.chi2(df), bad=((0, 0.0, "df"),)),
    Case("InverseGamma", dist.InverseGamma, (POS_3x1 + 2.5, POS_4),
         lambda a, b: st.invgamma(a, scale=b), bad=((0, 0.0, "concentration"),)),
    Case("Weibull", dist.Weibull, (POS_3x1, POS_4 + 1.0),
         lambda s, k: st.weibull_min(k, scale=s), bad=((0, 0.0, "scale"),)),
    Case("Pareto", dist.Pareto, (POS_3x1, POS_4 + 2.5),
         lambda s, a: st.pareto(a, scale=s), bad=((0, 0.0, "scale"),)),
]
IDS = [c.name for c in CASES]


def _np(t):
    return np.asarray(t.numpy() if isinstance(t, csvi.Tensor) else t, dtype=np.float64)


def _reference(case, what):
    if what in case.ref:
        return case.ref[what]
    frozen = case.scipy(*case.params)
    return {"mean": frozen.mean, "variance": frozen.var, "entropy": frozen.entropy}[what]()


# ---- shapes and moments --------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shapes(case):
    d = case.make(*case.params)
    if case.name.startswith("Categorical"):  # the categories are the last dim
        batch = case.params[0].shape[:-1]
    else:
        batch = np.broadcast_shapes(*[np.shape(p) for p in case.params])
    assert d.batch_shape == batch and d.event_shape == ()
    assert d.sample().shape == batch and d.sample((5,)).shape == (5,) + batch
    assert d.shape((2, 1)) == (2, 1) + batch
    assert d.has_rsample == (d.support.is_discrete is False)
    assert d.has_enumerate_support == case.enumerate


@pytest.mark.parametrize("what", ["mean", "variance", "entropy"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_moments_match_scipy(case, what):
    d = case.make(*case.params)
    if what == "entropy" and not case.entropy:
        with pytest.raises(NotImplementedError, match=case.name):
            d.entropy()
        return
    got = d.entropy() if what == "entropy" else getattr(d, what)
    expected = np.broadcast_to(_reference(case, what), d.batch_shape)
    assert got.shape == d.batch_shape
    np.testing.assert_allclose(_np(got), expected, rtol=1e-10, atol=1e-12)
    if what == "variance":
        np.testing.assert_allclose(_np(d.stddev), np.sqrt(expected), rtol=1e-10)
    if what == "entropy":
        np.testing.assert_allclose(_np(d.perplexity()), np.exp(expected), rtol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mode_matches_torch(case):
    torch = pytest.importorskip("torch")
    d = case.make(*case.params)
    name = case.name.split("(")[0]
    kind = case.name[len(name) + 1:-1] if "(" in case.name else None
    args = [torch.tensor(np.asarray(p, dtype=np.float64)) for p in case.params]
    ref = getattr(torch.distributions, name)(**{kind: args[0]}) if kind else \
        getattr(torch.distributions, name)(*args)
    got = _np(d.mode)
    assert got.shape == d.batch_shape
    np.testing.assert_allclose(got, np.broadcast_to(ref.mode.double().numpy(), got.shape),
                               rtol=1e-12, equal_nan=True)


def test_beta_mode_edge_cases_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([0.5, 0.5, 0.3, 1.0, 2.0, 1.0, 0.4])
    b = np.array([0.5, 0.3, 0.5, 1.0, 3.0, 2.0, 1.0])
    ref = torch.distributions.Beta(torch.tensor(a), torch.tensor(b)).mode.numpy()
    np.testing.assert_allclose(_np(dist.Beta(a, b).mode), ref, equal_nan=True)


def test_categorical_mode_takes_the_first_of_tied_categories():
    d = dist.Categorical(np.array([[1.0, 3.0, 3.0], [5.0, 1.0, 5.0], [1.0, 1.0, 2.0]]))
    assert d.mode.numpy().tolist() == [1, 0, 2]


@pytest.mark.parametrize("case", [c for c in CASES if c.cdf or c.icdf], ids=str)
def test_cdf_and_icdf_match_scipy(case):
    d = case.make(*case.params)
    frozen = case.scipy(*case.params)
    if case.cdf:
        got = d.cdf(case.values)
        np.testing.assert_allclose(_np(got), frozen.cdf(case.values), rtol=1e-10, atol=1e-14)
    else:
        with pytest.raises(NotImplementedError):
            d.cdf(case.values)
    q = np.array([0.0, 0.1, 0.5, 0.97])
    if case.icdf:
        np.testing.assert_allclose(_np(d.icdf(q)), frozen.ppf(q), rtol=1e-10)
        with pytest.raises(ValueError, match=f"{case.name}.icdf: value must be a probability"):
            d.icdf(1.5)
    outside = {"Normal": np.nan, "Uniform": 9.0}.get(case.name, -1.0)
    with pytest.raises(ValueError, match=f"{case.name}.cdf: value must be in the support"):
        d.cdf(outside)


def test_families_without_cdf_raise():
    for d in [dist.Gamma(2.0, 1.0), dist.Beta(2.0, 1.0), dist.Bernoulli(0.3),
              dist.Poisson(2.0)]:
        with pytest.raises(NotImplementedError, match=f"{type(d).__name__}.cdf"):
            d.cdf(0.5)
        with pytest.raises(NotImplementedError, match=f"{type(d).__name__}.icdf"):
            d.icdf(0.5)


# ---- gradients -------------------------------------------------------------------------

@pytest.mark.parametrize("case", [c for c in CASES if c.entropy], ids=str)
def test_entropy_gradient_matches_finite_differences(case):
    wrt = [i for i in range(len(case.params)) if i not in case.constant_entropy]
    assert_grads_match(lambda *p: case.make(*p).entropy(), case.params, wrt=wrt)


@pytest.mark.parametrize("case", [c for c in CASES if c.cdf or c.icdf], ids=str)
def test_cdf_and_icdf_gradients_match_finite_differences(case):
    if case.cdf:
        assert_grads_match(lambda x, *p: case.make(*p).cdf(x),
                           (case.values,) + case.params, rtol=1e-5, atol=1e-8)
    if case.icdf:
        assert_grads_match(lambda q, *p: case.make(*p).icdf(q),
                           (np.array([0.1, 0.5, 0.9, 0.3]),) + case.params, rtol=1e-5)


def test_moment_gradients_match_finite_differences():
    assert_grads_match(lambda m, s: dist.LogNormal(m, s).variance, (REAL_3x1 / 4, POS_4 / 4))
    assert_grads_match(lambda a, b: dist.Beta(a, b).variance, (POS_3x1, POS_4))
    assert_grads_match(lambda a, b: dist.Gamma(a, b).mode, (POS_3x1 + 1.0, POS_4))


# ---- enumerate_support -------------------------------------------------------------

@pytest.mark.parametrize("case", [c for c in CASES if c.enumerate], ids=str)
def test_enumerate_support_shapes(case):
    d = case.make(*case.params)
    batch = d.batch_shape
    k = 2 if case.name.startswith("Bernoulli") else case.params[0].shape[-1]
    full = d.enumerate_support()
    assert full.shape == (k,) + batch
    np.testing.assert_array_equal(_np(full), np.broadcast_to(
        np.arange(k.__float__()).reshape((k,) + (1,) * len(batch)), (k,) + batch))
    assert d.enumerate_support(expand=False).shape == (k,) + (1,) * len(batch)
    # log_prob over the enumerated support sums to 1 in every batch element
    np.testing.assert_allclose(np.exp(_np(d.log_prob(full))).sum(0), 1.0, rtol=1e-12)
    # the wrappers keep Pyro's shapes
    e = d.expand((2,) + batch)
    assert e.enumerate_support().shape == (k, 2) + batch
    assert e.enumerate_support(expand=False).shape == (k, 1) + (1,) * len(batch)
    m = d.mask(np.ones((5,) + (1,) * len(batch), bool))
    assert m.has_enumerate_support and m.enumerate_support().shape == (k, 5) + batch
    i = d.to_event(1)
    assert not i.has_enumerate_support
    with pytest.raises(NotImplementedError, match="Independent"):
        i.enumerate_support()


def test_families_with_infinite_support_do_not_enumerate():
    for d in [dist.Poisson(2.0), dist.Normal(0.0, 1.0), dist.Delta(1.0)]:
        assert not d.has_enumerate_support
        with pytest.raises(NotImplementedError, match=type(d).__name__):
            d.enumerate_support()


# ---- the wrappers ------------------------------------------------------------------

def test_independent_sums_entropy_over_reinterpreted_dims_and_keeps_moments():
    base = dist.Gamma(POS_3x1, POS_4)
    d = base.to_event(1)
    assert d.batch_shape == (3,) and d.event_shape == (4,)
    np.testing.assert_allclose(_np(d.entropy()), _np(base.entropy()).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(_np(base.to_event(2).entropy()), _np(base.entropy()).sum())
    for what in ["mean", "variance", "mode", "stddev"]:
        np.testing.assert_array_equal(_np(getattr(d, what)), _np(getattr(base, what)))
    assert d.has_rsample and not d.has_enumerate_support


def test_expanded_expands_entropy_mode_and_moments():
    base = dist.Beta(POS_4, 2.0)
    d = base.expand((3, 4))
    assert isinstance(d, dist.ExpandedDistribution)
    for what in ["mean", "variance", "mode", "stddev"]:
        np.testing.assert_array_equal(_np(getattr(d, what)),
                                      np.broadcast_to(_np(getattr(base, what)), (3, 4)))
    np.testing.assert_array_equal(_np(d.entropy()), np.broadcast_to(_np(base.entropy()), (3, 4)))
    # the expanded entropy has the gradient of the sum over the copies
    a = csvi.tensor(POS_4, requires_grad=True)
    dist.Beta(a, 2.0).expand((3, 4)).entropy().sum().backward()
    b = csvi.tensor(POS_4, requires_grad=True)
    dist.Beta(b, 2.0).entropy().sum().backward()
    np.testing.assert_allclose(a.grad, 3 * b.grad, rtol=1e-12)
    assert d.to_event(1).entropy().shape == (3,)


def test_masked_as_pyro():
    base = dist.Normal(REAL_3x1, 1.0)
    d = base.mask(np.array([True, False, True, True]))
    assert d.batch_shape == (3, 4)
    np.testing.assert_array_equal(_np(d.mean), np.broadcast_to(REAL_3x1, (3, 4)))
    np.testing.assert_array_equal(_np(d.variance), np.ones((3, 4)))
    with pytest.raises(NotImplementedError, match="MaskedDistribution"):
        d.entropy()
    with pytest.raises(NotImplementedError, match="MaskedDistribution"):
        d.mode
    assert d.has_rsample and d.support is base.support


def test_unimplemented_interface_names_the_family():
    class Flat(dist.Distribution):
        support = csvi.constraints.real

    d = Flat(batch_shape=(2,))
    for fn in [lambda: d.mean, lambda: d.variance, lambda: d.mode, d.entropy,
               lambda: d.cdf(0.0), lambda: d.icdf(0.5), d.enumerate_support]:
        with pytest.raises(NotImplementedError, match="Flat"):
            fn()
    for d in [dist.Poisson(1.0), dist.Delta(1.0), dist.Empirical(np.zeros(2), np.zeros(2))]:
        with pytest.raises(NotImplementedError, match=type(d).__name__):
            d.entropy()


# ---- validation -------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_bad_argument_is_an_error_naming_family_and_argument(case):
    family = case.name.split("(")[0]
    for index, value, arg in case.bad:
        params = list(case.params)
        params[index] = value
        with pytest.raises(ValueError, match=rf"^{family}: {arg} must be"):
            case.make(*params)
        params[index] = "x"
        with pytest.raises(TypeError, match=rf"^{family}: {arg} must be"):
            case.make(*params)
    assert case.bad, "every family declares at least one bad argument"


def test_validation_gaps_filled():
    with pytest.raises(ValueError, match=r"Uniform: high must be greater than low"):
        dist.Uniform(np.zeros(2), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"Categorical.log_prob: a value of shape \(3,\)"):
        dist.Categorical(np.ones((2, 3))).log_prob(np.zeros(3))
    with pytest.raises(ValueError, match=r"Categorical: probs must have a last dim"):
        dist.Categorical(np.ones((2, 0)))
    with pytest.raises(TypeError, match="Empirical: samples must be"):
        dist.Empirical("abc", np.zeros(3))
    with pytest.raises(ValueError, match="Empirical: log_weights must be"):
        dist.Empirical(np.zeros(3), np.array([0.0, np.nan, 0.0]))
    with pytest.raises(TypeError, match="Empirical.log_prob: value must be"):
        dist.Empirical(np.zeros(3), np.zeros(3)).log_prob("a")
    with pytest.raises(ValueError, match=r"Delta: log_density must be"):
        dist.Delta(1.0, log_density=math.nan)


# ---- compiled ------------------------------------------------------------------------

def _interface_model():
    """A log-density made of every family's entropy, cdf, icdf and finite
    moments in params: replayed by a compiled program."""
    terms = []
    for case in CASES:
        params = [csvi.param(f"{case.name}.{i}", p) for i, p in enumerate(case.params)]
        d = case.make(*params)
        if case.entropy:
            terms.append(d.entropy())
        if case.cdf:
            terms.append(d.cdf(case.values))
        if case.icdf:
            terms.append(d.icdf(np.array([0.2, 0.7])[:, None, None]))
        if case.finite_moments:
            terms += [d.mean, d.variance]
    csvi.factor("interface", sum(t.sum() for t in terms))


def _run(compiled, steps=10):
    from csvi.infer import SVI, Trace_ELBO
    from csvi.optim import Adam
    csvi.clear_param_store()
    csvi.set_rng_seed(0)
    svi = SVI(_interface_model, lambda: None, Adam({"lr": 1e-3}), Trace_ELBO())
    losses = svi.compile().run(steps) if compiled else np.array([svi.step() for _ in range(steps)])
    store = csvi.get_param_store()
    return np.asarray(losses), {n: store.unconstrained(n).copy() for n in store.names()}


def test_interface_in_a_compiled_program_equals_eager():
    eager_losses, eager_params = _run(False)
    losses, params = _run(True)
    assert len(eager_params) == sum(len(c.params) for c in CASES)
    assert not np.allclose(eager_params["Gamma.0"], POS_3x1)  # gradients reached the params
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12, atol=0)
    for name in eager_params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=1e-12, atol=0)
