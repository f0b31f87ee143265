"""KL(p || q) rules among csvi's own families and wrappers, registered in the
kl_divergence registry (kl.py) when the package is imported.

Each rule composes tape ops, so a KL is differentiable in both sides'
parameters and replays in a compiled program.  The formulas and the pairs
are torch's (and, for Delta, Independent and MaskedDistribution, Pyro's);
pairs whose supports make the KL infinite (p puts mass where q has none)
give inf, as torch does.  ExpandedDistribution is csvi's own: Pyro expands a
family into the same family, so a rule for the bases, expanded, is what a
Pyro user gets.
"""
import numpy as np

from csvi import _core
from csvi.distributions.continuous import (
    Beta, Exponential, Gamma, HalfNormal, LogNormal, Normal, Uniform,
)
from csvi.distributions.delta import Delta
from csvi.distributions.discrete import Bernoulli, Categorical, Poisson
from csvi.distributions.distribution import (
    Distribution, ExpandedDistribution, Independent, MaskedDistribution,
)
from csvi.distributions.kl import kl_divergence, register_kl
from csvi.distributions.util import broadcast_shapes, expand_to, full

_log, _where = _core.log, _core.where


def _batch(p, q):
    return broadcast_shapes(p.batch_shape, q.batch_shape)


def _infinite(p, q):
    """inf over the broadcast batch: p has mass where q has none."""
    return full(_batch(p, q), np.inf)


# ---- location-scale -----------------------------------------------------------

def _kl_gaussian(p_loc, p_scale, q_loc, q_scale):
    var_ratio = (p_scale / q_scale) ** 2
    t1 = ((p_loc - q_loc) / q_scale) ** 2
    return 0.5 * (var_ratio + t1 - 1.0 - _log(var_ratio))


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    return expand_to(_kl_gaussian(p.loc, p.scale, q.loc, q.scale), _batch(p, q))


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p, q):
    # KL is invariant under the shared bijection exp
    return expand_to(_kl_gaussian(p.loc, p.scale, q.loc, q.scale), _batch(p, q))


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    return expand_to(0.5 * (var_ratio - 1.0 - _log(var_ratio)), _batch(p, q))


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    kl = _log((q.high - q.low) / (p.high - p.low))
    outside = (q.low > p.low) + (q.high < p.high)
    return expand_to(_where(outside, np.inf, kl), _batch(p, q))


@register_kl(Uniform, Normal)
def _kl_uniform_normal(p, q):
    width = p.high - p.low
    t1 = _log(np.sqrt(2.0 * np.pi) * q.scale / width)
    t2 = (p.low ** 2 + p.low * p.high + p.high ** 2) / 3.0 \
        - q.loc * (p.low + p.high) + q.loc ** 2
    return expand_to(t1 + 0.5 * t2 / q.scale ** 2, _batch(p, q))


# ---- positive -------------------------------------------------------------------

@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    rate_ratio = q.rate / p.rate
    return expand_to(rate_ratio - 1.0 - _log(rate_ratio), _batch(p, q))


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    pa, pb, qa, qb = p.concentration, p.rate, q.concentration, q.rate
    kl = (qa * _log(pb / qb) + _core.lgamma(qa) - _core.lgamma(pa)
          + (pa - qa) * _core.digamma(pa) + (qb - pb) * (pa / pb))
    return expand_to(kl, _batch(p, q))


@register_kl(Gamma, Exponential)
def _kl_gamma_exponential(p, q):
    # Exponential(rate) is Gamma(1, rate)
    pa, pb, qb = p.concentration, p.rate, q.rate
    kl = (_log(pb / qb) - _core.lgamma(pa) + (pa - 1.0) * _core.digamma(pa)
          + (qb - pb) * (pa / pb))
    return expand_to(kl, _batch(p, q))


@register_kl(Exponential, Gamma)
def _kl_exponential_gamma(p, q):
    pb, qa, qb = p.rate, q.concentration, q.rate
    # E_p[log x] = digamma(1) - log(rate) = -euler_gamma - log(rate)
    kl = qa * _log(pb / qb) + _core.lgamma(qa) + (qa - 1.0) * np.euler_gamma + (qb - pb) / pb
    return expand_to(kl, _batch(p, q))


@register_kl(Exponential, Normal)
def _kl_exponential_normal(p, q):
    # E[x] = 1/rate, E[x^2] = 2/rate^2 under p; minus p's entropy 1 - log(rate)
    rate, var = p.rate, q.scale ** 2
    cross = 0.5 * _log(2.0 * np.pi * var) + (2.0 / rate ** 2 - 2.0 * q.loc / rate
                                             + q.loc ** 2) / (2.0 * var)
    return expand_to(cross - 1.0 + _log(rate), _batch(p, q))


@register_kl(Gamma, Normal)
def _kl_gamma_normal(p, q):
    a, b, var = p.concentration, p.rate, q.scale ** 2
    second_moment = a * (a + 1.0) / b ** 2
    cross = 0.5 * _log(2.0 * np.pi * var) + (second_moment - 2.0 * q.loc * a / b
                                             + q.loc ** 2) / (2.0 * var)
    return expand_to(cross - p.entropy(), _batch(p, q))


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    pr, qr = p.rate, q.rate
    return expand_to(_core.xlogy(pr, pr) - _core.xlogy(pr, qr) - pr + qr, _batch(p, q))


# ---- the unit interval ------------------------------------------------------------

@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    pa, pb, qa, qb = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    p_total = pa + pb
    kl = (_core.betaln(qa, qb) - _core.betaln(pa, pb) + (pa - qa) * _core.digamma(pa)
          + (pb - qb) * _core.digamma(pb) + (qa + qb - p_total) * _core.digamma(p_total))
    return expand_to(kl, _batch(p, q))


@register_kl(Beta, Uniform)
def _kl_beta_uniform(p, q):
    kl = _log(q.high - q.low) - p.entropy()
    outside = (q.low > 0.0) + (q.high < 1.0)
    return expand_to(_where(outside, np.inf, kl), _batch(p, q))


# ---- discrete ---------------------------------------------------------------------

@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    # p log(p/q) + (1-p) log((1-p)/(1-q)) in logits: log p = -softplus(-logits)
    pp, pl, ql = p.probs, p.logits, q.logits
    sp = _core.softplus
    t1 = pp * (sp(-ql) - sp(-pl))
    t0 = (1.0 - pp) * (sp(ql) - sp(pl))
    t1 = _where(pp == 0.0, 0.0, _where(q.probs == 0.0, np.inf, t1))
    t0 = _where(pp == 1.0, 0.0, _where(q.probs == 1.0, np.inf, t0))
    return expand_to(t1 + t0, _batch(p, q))


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    pp, qp = p.probs, q.probs
    t = _where(pp == 0.0, 0.0, _where(qp == 0.0, np.inf, pp * (p.logits - q.logits)))
    return expand_to(_core.sum(t, -1), _batch(p, q))


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p, q):
    # -H(p) - E_p[log q(x)]: log q(0) = -rate, log q(1) = log(rate) - rate
    return expand_to(-p.entropy() - p.probs * _log(q.rate) + q.rate, _batch(p, q))


# ---- supports that p leaves: infinite -----------------------------------------------

for _p, _q in [(Normal, Exponential), (Normal, Gamma), (Normal, Beta), (Normal, Uniform),
               (Exponential, Beta), (Exponential, Uniform), (Gamma, Beta), (Gamma, Uniform),
               (Poisson, Bernoulli)]:
    register_kl(_p, _q)(_infinite)


# ---- wrappers -----------------------------------------------------------------------

@register_kl(Delta, Distribution)
def _kl_delta(p, q):
    return -q.log_prob(p.v)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    """The KL of the bases, summed over the dims both reinterpret; the rest of
    either side's reinterpreted dims stay reinterpreted (as Pyro)."""
    shared = min(p.reinterpreted_batch_ndims, q.reinterpreted_batch_ndims)
    p_rest = p.reinterpreted_batch_ndims - shared
    q_rest = q.reinterpreted_batch_ndims - shared
    kl = kl_divergence(Independent(p.base_dist, p_rest) if p_rest else p.base_dist,
                       Independent(q.base_dist, q_rest) if q_rest else q.base_dist)
    return _core.sum(kl, tuple(range(-shared, 0))) if shared else kl


def _kl_expanded(p, q):
    """The KL of the unexpanded distributions, broadcast to the expanded batch."""
    base_p = p.base_dist if isinstance(p, ExpandedDistribution) else p
    base_q = q.base_dist if isinstance(q, ExpandedDistribution) else q
    return expand_to(kl_divergence(base_p, base_q), _batch(p, q))


register_kl(ExpandedDistribution, Distribution)(_kl_expanded)
register_kl(Distribution, ExpandedDistribution)(_kl_expanded)
register_kl(ExpandedDistribution, ExpandedDistribution)(_kl_expanded)


@register_kl(MaskedDistribution, MaskedDistribution)
def _kl_masked_masked(p, q):
    """The bases' KL where both masks are True, 0 elsewhere (as Pyro)."""
    pm, qm = p._mask, q._mask
    if pm is False or qm is False:
        return full(_batch(p, q), 0.0)
    kl = kl_divergence(p.base_dist, q.base_dist)
    if pm is True and qm is True:
        return kl
    mask = qm if pm is True else pm if qm is True else pm * qm
    return _where(mask, expand_to(kl, broadcast_shapes(_batch(p, q), mask.shape)), 0.0)
