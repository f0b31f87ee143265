"""kl_divergence: every registered rule against a Monte Carlo estimate of
E_p[log p(x) - log q(x)] and, where torch has the pair, against torch's value
(skipped without torch); gradients in both sides' parameters against finite
differences; the wrappers' rules (Independent, Expanded, Masked, Delta) as
Pyro; infinite KLs where p leaves q's support; a compiled program with KLs
equal to the eager one; and the error for an unregistered pair.

PAIRS has one line per rule: a new rule is tested by adding a line."""
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.distributions import kl_divergence
from gradcheck import assert_grads_match


@dataclass
class Pair:
    """KL(p || q) for p = P(*p_params), q = Q(*q_params); `kw` names the
    parameters when they are passed by keyword (probs/logits)."""
    name: str
    P: object
    p_params: tuple
    Q: object
    q_params: tuple
    p_kw: tuple = ()
    q_kw: tuple = ()

    def __str__(self):
        return self.name

    def build(self, p_params=None, q_params=None):
        pp = self.p_params if p_params is None else p_params
        qp = self.q_params if q_params is None else q_params
        p = self.P(**dict(zip(self.p_kw, pp))) if self.p_kw else self.P(*pp)
        q = self.Q(**dict(zip(self.q_kw, qp))) if self.q_kw else self.Q(*qp)
        return p, q


A3 = np.array([0.7, 1.5, 3.0])
B3 = np.array([2.0, 0.8, 1.2])
LOC3 = np.array([-1.0, 0.3, 1.2])
UNIT3 = np.array([0.2, 0.5, 0.9])
PROBS = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
LOGITS = np.array([[0.5, -1.0, 0.2], [2.0, 0.0, -0.5]])

PAIRS = [
    Pair("Normal-Normal", dist.Normal, (LOC3, B3), dist.Normal, (0.5, A3)),
    Pair("LogNormal-LogNormal", dist.LogNormal, (LOC3, B3 / 2), dist.LogNormal, (0.5, A3)),
    Pair("HalfNormal-HalfNormal", dist.HalfNormal, (B3,), dist.HalfNormal, (A3,)),
    Pair("Uniform-Uniform", dist.Uniform, (LOC3, LOC3 + 1.0), dist.Uniform, (-2.0, 3.0)),
    Pair("Uniform-Normal", dist.Uniform, (LOC3, LOC3 + A3), dist.Normal, (0.2, B3)),
    Pair("Exponential-Exponential", dist.Exponential, (A3,), dist.Exponential, (B3,)),
    Pair("Gamma-Gamma", dist.Gamma, (A3, B3), dist.Gamma, (B3, 1.3)),
    Pair("Gamma-Exponential", dist.Gamma, (A3, B3), dist.Exponential, (B3,)),
    Pair("Exponential-Gamma", dist.Exponential, (A3,), dist.Gamma, (B3, A3)),
    Pair("Exponential-Normal", dist.Exponential, (A3,), dist.Normal, (LOC3, B3)),
    Pair("Gamma-Normal", dist.Gamma, (A3, B3), dist.Normal, (LOC3, B3)),
    Pair("Poisson-Poisson", dist.Poisson, (A3 * 2,), dist.Poisson, (B3,)),
    Pair("Beta-Beta", dist.Beta, (A3, B3), dist.Beta, (B3, 1.3)),
    Pair("Beta-Uniform", dist.Beta, (A3, B3), dist.Uniform, (-0.5, np.array([1.2, 2.0, 1.5]))),
    Pair("Bernoulli-Bernoulli", dist.Bernoulli, (UNIT3,), dist.Bernoulli, (UNIT3[::-1],)),
    Pair("Bernoulli(logits)-Bernoulli", dist.Bernoulli, (LOC3,), dist.Bernoulli, (UNIT3,),
         p_kw=("logits",)),
    Pair("Bernoulli-Poisson", dist.Bernoulli, (UNIT3,), dist.Poisson, (A3,)),
    Pair("Categorical-Categorical", dist.Categorical, (PROBS,), dist.Categorical, (PROBS[::-1],)),
    Pair("Categorical(logits)-Categorical(logits)", dist.Categorical, (LOGITS,),
         dist.Categorical, (LOGITS[::-1] * 0.5,), p_kw=("logits",), q_kw=("logits",)),
]
IDS = [p.name for p in PAIRS]


def _np(t):
    return np.asarray(t.numpy() if isinstance(t, csvi.Tensor) else t, dtype=np.float64)


def _monte_carlo(p, q, n=200000, seed=0):
    """The mean of log p(x) - log q(x) over n draws of p, and its standard error."""
    csvi.set_rng_seed(seed)
    x = p.sample((n,))
    diff = _np(p.log_prob(x)) - _np(q.log_prob(x))
    return diff.mean(0), diff.std(0) / np.sqrt(n)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_kl_matches_monte_carlo(pair):
    p, q = pair.build()
    kl = kl_divergence(p, q)
    batch = np.broadcast_shapes(p.batch_shape, q.batch_shape)
    assert kl.shape == batch
    mc, se = _monte_carlo(p, q)
    assert np.all(np.isfinite(_np(kl))) and np.all(_np(kl) >= -1e-12)
    np.testing.assert_array_less(np.abs(_np(kl) - mc), 5.0 * se + 1e-9)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_kl_matches_torch(pair):
    torch = pytest.importorskip("torch")
    p, q = pair.build()

    def to_torch(cls, params, kw):
        cls = getattr(torch.distributions, cls.__name__)
        params = [torch.tensor(np.array(a, dtype=np.float64)) for a in params]
        return cls(**dict(zip(kw, params))) if kw else cls(*params)

    tp, tq = to_torch(pair.P, pair.p_params, pair.p_kw), to_torch(pair.Q, pair.q_params, pair.q_kw)
    try:
        ref = torch.distributions.kl_divergence(tp, tq).numpy()
    except NotImplementedError:
        pytest.skip(f"torch has no rule for {pair.name}")
    np.testing.assert_allclose(_np(kl_divergence(p, q)), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_kl_gradients_match_finite_differences(pair):
    n_p = len(pair.p_params)
    # Uniform bounds stay bounds only for p inside q: differentiate q's side there
    params = pair.p_params + tuple(np.asarray(a, dtype=np.float64) for a in pair.q_params)
    if pair.P is dist.Uniform or pair.Q is dist.Uniform:
        wrt = [i for i, a in enumerate(params) if np.ndim(a) or i < n_p]
    else:
        wrt = None
    assert_grads_match(lambda *a: kl_divergence(*pair.build(a[:n_p], a[n_p:])), params,
                       wrt=wrt, rtol=1e-5, atol=1e-7)


# ---- infinite KLs --------------------------------------------------------------------

INFINITE = [
    (dist.Normal(LOC3, 1.0), dist.Exponential(2.0)),
    (dist.Normal(LOC3, 1.0), dist.Gamma(2.0, 1.0)),
    (dist.Normal(LOC3, 1.0), dist.Beta(2.0, 1.0)),
    (dist.Normal(LOC3, 1.0), dist.Uniform(-1.0, 1.0)),
    (dist.Exponential(A3), dist.Beta(2.0, 1.0)),
    (dist.Exponential(A3), dist.Uniform(0.0, 5.0)),
    (dist.Gamma(A3, 1.0), dist.Beta(2.0, 1.0)),
    (dist.Gamma(A3, 1.0), dist.Uniform(0.0, 5.0)),
    (dist.Poisson(A3), dist.Bernoulli(0.5)),
]


@pytest.mark.parametrize("p, q", INFINITE, ids=lambda d: type(d).__name__)
def test_p_outside_the_support_of_q_gives_inf(p, q):
    kl = kl_divergence(p, q)
    assert kl.shape == (3,) and np.all(_np(kl) == np.inf)


def test_partial_support_overlap_gives_inf_where_it_misses():
    kl = _np(kl_divergence(dist.Uniform(np.array([0.0, -2.0]), 1.0), dist.Uniform(-1.0, 2.0)))
    assert kl[1] == np.inf and kl[0] == pytest.approx(np.log(3.0))
    kl = _np(kl_divergence(dist.Beta(2.0, 2.0), dist.Uniform(np.array([0.0, 0.1]), 1.0)))
    assert kl[1] == np.inf and kl[0] == pytest.approx(-st.beta(2, 2).entropy())
    kl = _np(kl_divergence(dist.Bernoulli(np.array([0.3, 0.0, 1.0])),
                           dist.Bernoulli(np.array([0.0, 0.0, 0.4]))))
    assert kl[0] == np.inf and kl[1] == 0.0 and kl[2] == pytest.approx(-np.log(0.4))
    kl = _np(kl_divergence(dist.Categorical(np.array([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]])),
                           dist.Categorical(np.array([0.5, 0.5, 0.0]))))
    assert kl[0] == 0.0 and kl[1] == np.inf


# ---- wrappers -----------------------------------------------------------------------

def test_independent_independent_sums_the_shared_dims():
    p = dist.Normal(np.zeros((2, 3)), B3)
    q = dist.Normal(LOC3, A3)
    base = _np(kl_divergence(p, q))
    kl = kl_divergence(p.to_event(1), q.to_event(1))
    assert kl.shape == (2,)
    np.testing.assert_allclose(_np(kl), base.sum(-1), rtol=1e-12)
    mc, se = _monte_carlo(p.to_event(1), q.expand((2, 3)).to_event(1))
    np.testing.assert_array_less(np.abs(_np(kl) - mc), 5.0 * se)
    # unequal reinterpreted dims: the rest stays reinterpreted on its side
    deep = dist.Normal(np.zeros((2, 3)), 1.0).to_event(2)
    with pytest.raises(NotImplementedError, match="Independent and Normal"):
        kl_divergence(deep, q.expand((2, 3)).to_event(1))
    np.testing.assert_allclose(
        _np(kl_divergence(deep, dist.Normal(np.ones((2, 3)), 2.0).to_event(2))),
        _np(kl_divergence(dist.Normal(0.0, 1.0), dist.Normal(1.0, 2.0))) * 6, rtol=1e-12)


def test_expanded_uses_the_bases_rule():
    p = dist.Gamma(A3, 2.0).expand((4, 3))
    q = dist.Gamma(1.5, B3)
    kl = kl_divergence(p, q)
    assert kl.shape == (4, 3)
    np.testing.assert_allclose(_np(kl), np.broadcast_to(
        _np(kl_divergence(dist.Gamma(A3, 2.0), q)), (4, 3)), rtol=1e-12)
    both = kl_divergence(dist.Normal(0.0, 1.0).expand((2,)), dist.Normal(1.0, 2.0).expand((5, 2)))
    assert both.shape == (5, 2)
    assert kl_divergence(dist.Normal(LOC3, 1.0), dist.Normal(0.0, 1.0).expand((3,))).shape == (3,)
    mc, se = _monte_carlo(p, q)
    np.testing.assert_array_less(np.abs(_np(kl) - mc), 5.0 * se)
    # Independent over Expanded: the base rule, expanded, then summed
    ind = kl_divergence(dist.Normal(0.0, 1.0).expand((3,)).to_event(1), dist.Normal(LOC3, A3)
                        .to_event(1))
    np.testing.assert_allclose(_np(ind), _np(kl_divergence(dist.Normal(0.0, 1.0),
                                                           dist.Normal(LOC3, A3))).sum())


def test_masked_masked_as_pyro():
    p, q = dist.Normal(LOC3, B3), dist.Normal(0.0, 1.0)
    base = _np(kl_divergence(p, q))
    m1, m2 = np.array([True, False, True]), np.array([True, True, False])
    np.testing.assert_allclose(_np(kl_divergence(p.mask(m1), q.mask(m2))), base * [1, 0, 0])
    np.testing.assert_allclose(_np(kl_divergence(p.mask(True), q.mask(m2))), base * [1, 1, 0])
    np.testing.assert_allclose(_np(kl_divergence(p.mask(m1), q.mask(True))), base * [1, 0, 1])
    np.testing.assert_allclose(_np(kl_divergence(p.mask(True), q.mask(True))), base)
    assert np.all(_np(kl_divergence(p.mask(False), q.mask(m2))) == 0.0)
    assert kl_divergence(p.mask(False), q.mask(True)).shape == (3,)
    # a mask wider than the batch widens the KL
    wide = kl_divergence(p.mask(np.ones((2, 1), bool)), q.mask(True))
    np.testing.assert_allclose(_np(wide), np.broadcast_to(base, (2, 3)))
    with pytest.raises(NotImplementedError, match="MaskedDistribution and Normal"):
        kl_divergence(p.mask(m1), q)
    # no gradient through the masked-out elements
    loc = csvi.tensor(LOC3, requires_grad=True)
    kl_divergence(dist.Normal(loc, B3).mask(m1), q.mask(True)).sum().backward()
    assert loc.grad[1] == 0.0 and loc.grad[0] != 0.0


def test_delta_against_anything_is_minus_log_q_at_the_point():
    v = np.array([0.3, 1.2, 2.5])
    kl = kl_divergence(dist.Delta(v), dist.Gamma(A3, B3))
    np.testing.assert_allclose(_np(kl), -st.gamma(A3, scale=1 / B3).logpdf(v), rtol=1e-12)
    kl = kl_divergence(dist.Delta(v, event_dim=1), dist.Normal(0.0, 2.0).expand((3,)).to_event(1))
    np.testing.assert_allclose(_np(kl), -st.norm(0, 2).logpdf(v).sum(), rtol=1e-12)
    vt = csvi.tensor(v, requires_grad=True)
    kl_divergence(dist.Delta(vt), dist.Normal(0.0, 2.0)).sum().backward()
    np.testing.assert_allclose(vt.grad, v / 4.0, rtol=1e-12)


def test_unregistered_pair_names_both_types():
    with pytest.raises(NotImplementedError, match="no rule registered for Normal and Poisson"):
        kl_divergence(dist.Normal(0.0, 1.0), dist.Poisson(1.0))
    with pytest.raises(NotImplementedError, match="HalfCauchy and HalfCauchy"):
        kl_divergence(dist.HalfCauchy(1.0), dist.HalfCauchy(2.0))


# ---- compiled ------------------------------------------------------------------------

def _kl_model():
    """A model whose log-density is minus a sum of KLs in its params: the
    rules replayed by a compiled program."""
    pos = constraints.positive
    a = csvi.param("a", A3, constraint=pos)
    b = csvi.param("b", B3, constraint=pos)
    loc = csvi.param("loc", LOC3)
    u = csvi.param("u", UNIT3, constraint=constraints.unit_interval)
    logits = csvi.param("logits", LOGITS)
    kl = (kl_divergence(dist.Normal(loc, a), dist.Normal(0.0, 1.0)).sum()
          + kl_divergence(dist.Gamma(a, b), dist.Gamma(2.0, 1.0)).sum()
          + kl_divergence(dist.Beta(a, b), dist.Beta(1.5, 1.5)).sum()
          + kl_divergence(dist.Exponential(b), dist.Gamma(2.0, a)).sum()
          + kl_divergence(dist.Bernoulli(u), dist.Bernoulli(0.5)).sum()
          + kl_divergence(dist.Categorical(logits=logits), dist.Categorical(PROBS)).sum()
          + kl_divergence(dist.LogNormal(loc, b).to_event(1), dist.LogNormal(0.0, a).to_event(1)))
    csvi.factor("kl", -kl)


def _run(compiled, steps=30):
    from csvi.infer import SVI, Trace_ELBO
    from csvi.optim import Adam
    csvi.clear_param_store()
    csvi.set_rng_seed(0)
    svi = SVI(_kl_model, lambda: None, Adam({"lr": 0.05}), Trace_ELBO())
    losses = svi.compile().run(steps) if compiled else np.array([svi.step() for _ in range(steps)])
    store = csvi.get_param_store()
    return np.asarray(losses), {n: store.unconstrained(n).copy() for n in store.names()}


def test_kls_in_a_compiled_program_equal_eager():
    eager_losses, eager_params = _run(False)
    losses, params = _run(True)
    assert eager_losses[-1] < eager_losses[0]  # the KLs shrink: gradients flow
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12, atol=0)
    for name in eager_params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=1e-12, atol=0)
