"""Count families on {0, 1, 2, ...}: Binomial, BetaBinomial (bounded by
total_count), NegativeBinomial, GammaPoisson (Poisson-Gamma mixtures) and
Geometric.

Each log_prob composes tape ops (lgamma, betaln, xlogy, softplus, ...), so
it has gradients in the continuous parameters and replays in a compiled
program.  Draws are recorded draw ops: NumPy's binomial sampler, Poisson of
a Gamma draw, Binomial of a Beta draw, and Geometric by inverting its CDF at
an exponential draw.  probs/logits are taken as Bernoulli takes them
(discrete._take_probs_or_logits): exactly one is given and kept, the other
derived on demand.
"""
import numpy as np

from csvi import _core, constraints
from csvi.distributions import draws
from csvi.distributions.continuous import Beta, Gamma
from csvi.distributions.discrete import _LOGITS, BinaryProbs, Poisson, _take_probs_or_logits
from csvi.distributions.composed import ComposedFamily
from csvi.distributions.kl import register_kl
from csvi.distributions.util import astensor, broadcast_args, broadcast_shapes, expand_to, full
from csvi.distributions.validation import as_real, bad_arg

Tensor = _core.Tensor
softplus = _core.softplus

_positive = constraints.positive
# Geometric's probs: a success must be possible
_probs_positive = constraints._Interval(0.0, 1.0, lower_open=True)


class _UpToTotalCount:
    """support {0, ..., total_count}, made on first use (Binomial, BetaBinomial)."""

    @property
    def support(self):
        support = self.__dict__.get("_support")
        if support is None:
            support = self._support = _count_support(self.total_count)
        return support


def _count_support(n):
    """{0, ..., n} for a total_count Tensor n."""
    arr = _core.value_of(n)
    return constraints.integer_interval(0, float(arr) if arr.ndim == 0 else n)


def _log_binomial_coefficient(n, k):
    """log(n choose k)."""
    return _core.lgamma(n + 1.0) - _core.lgamma(k + 1.0) - _core.lgamma(n - k + 1.0)


def _enumerate_counts(dist, expand):
    """0, ..., total_count along a new leftmost dim (a homogeneous
    total_count only, as torch)."""
    n = _core.value_of(dist.total_count)
    top = float(n.max()) if n.size else 0.0
    if n.size and float(n.min()) != top:
        raise NotImplementedError(f"{type(dist).__name__}.enumerate_support: total_count "
                                  "differs across the batch (inhomogeneous total_count is "
                                  "not supported)")
    values = np.arange(top + 1.0).reshape((-1,) + (1,) * len(dist.batch_shape))
    if expand:
        values = np.broadcast_to(values, values.shape[:1] + dist.batch_shape)
    return astensor(np.ascontiguousarray(values))


class _BinaryWeights(BinaryProbs, ComposedFamily):
    """A success probability given as probs or logits (kept as `_param`)
    and the pieces the families build from it."""

    _named_params = False

    def _take_weights(self, probs, logits, validate_args, total_count=None):
        """Keep probs or logits, and total_count when given (checked against
        arg_constraints["total_count"]); the batch shape is their broadcast."""
        self._param = p = _take_probs_or_logits(self, probs, logits, validate_args)
        if total_count is None:
            return
        name = type(self).__name__
        n = total_count if type(total_count) is Tensor else as_real(total_count, name,
                                                                    "total_count")
        declared = self.arg_constraints["total_count"]
        if self._validate and declared.first_violation(n) >= 0:
            raise bad_arg(name, "total_count", n, declared)
        self.total_count = n
        if n.shape != p.shape:
            self._batch_shape = broadcast_args(
                name, ("total_count", "logits" if self._iattr is _LOGITS else "probs"),
                [n.shape, p.shape])


    def _minus_log_q(self):
        """-log(1 - p): the exponential rate of failures."""
        p = self._param
        return softplus(p) if self._iattr is _LOGITS else -_core.log1p(-p)

    def _odds(self):
        """p / (1 - p)."""
        p = self._param
        return _core.exp(p) if self._iattr is _LOGITS else p / (1.0 - p)


class Binomial(_UpToTotalCount, _BinaryWeights):
    """Binomial(total_count=1, probs=None, logits=None): successes in
    total_count trials, each a success with probability probs
    (= sigmoid(logits)); total_count may be an array of whole numbers."""

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        self._take_weights(probs, logits, validate_args, total_count)

    def _log_prob(self, value):
        n, p = self.total_count, self._param
        if self._iattr is _LOGITS:
            # k log p + (n - k) log(1 - p) = k * logit - n * softplus(logit)
            weights = value * p - n * softplus(p)
        else:
            weights = _core.xlogy(value, p) + _core.xlog1py(n - value, -p)
        return _log_binomial_coefficient(n, value) + weights

    def _draw(self, shape, reparameterized):
        return draws.binomial(self.total_count, self.probs, shape)

    def enumerate_support(self, expand=True):
        return _enumerate_counts(self, expand)

    def entropy(self):
        """-sum_k P(k) log P(k) over the enumerated support."""
        lp = self.log_prob(self.enumerate_support(False))
        return -_core.sum(_core.exp(lp) * lp, 0)

    @property
    def mean(self):
        return expand_to(self.total_count * self.probs, self._batch_shape)

    @property
    def mode(self):
        """floor((n + 1) p), at most n (the larger mode where two tie, as torch)."""
        n = self.total_count
        top = ((n + 1.0) * self.probs).long().float()
        return expand_to(_core.where(top > n, n, top), self._batch_shape)

    @property
    def variance(self):
        p = self.probs
        return expand_to(self.total_count * p * (1.0 - p), self._batch_shape)


class NegativeBinomial(_BinaryWeights):
    """NegativeBinomial(total_count, probs=None, logits=None): successes
    before total_count failures (total_count >= 0 need not be whole), each
    trial a success with probability probs (= sigmoid(logits))."""

    arg_constraints = {"total_count": constraints.nonnegative,
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        self._take_weights(probs, logits, validate_args, total_count)

    def _log_prob(self, value):
        r, p = self.total_count, self._param
        if self._iattr is _LOGITS:
            weights = -r * softplus(p) - value * softplus(-p)
        else:
            weights = _core.xlog1py(r, -p) + _core.xlogy(value, p)
        total = r + value
        # lgamma(r + k) - lgamma(k + 1) - lgamma(r); 0 where r = k = 0 (a point mass at 0)
        coef = _core.lgamma(total) - _core.lgamma(value + 1.0) - _core.lgamma(r)
        return _core.where(total > 0.0, coef, 0.0) + weights

    def _draw(self, shape, reparameterized):
        # Poisson(lambda), lambda ~ Gamma(total_count, rate=(1 - p) / p)
        gamma = Gamma(expand_to(self.total_count, self._batch_shape), 1.0, validate_args=False)
        rate = gamma.sample(shape[:len(shape) - len(self._batch_shape)]) * self._odds()
        return Poisson(rate, validate_args=False).sample()

    @property
    def mean(self):
        return expand_to(self.total_count * self._odds(), self._batch_shape)

    @property
    def mode(self):
        """floor((total_count - 1) p / (1 - p)), at least 0."""
        return expand_to(_core.relu((self.total_count - 1.0) * self._odds()).long().float(),
                         self._batch_shape)

    @property
    def variance(self):
        return expand_to(self.total_count * self._odds() * (1.0 + self._odds()),
                         self._batch_shape)


class Geometric(_BinaryWeights):
    """Geometric(probs=None, logits=None): failures before the first success
    in trials that succeed with probability probs in (0, 1] (= sigmoid(logits))."""

    arg_constraints = {"probs": _probs_positive, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._take_weights(probs, logits, validate_args)

    def _log_prob(self, value):
        p = self._param
        if self._iattr is _LOGITS:
            return -value * softplus(p) - softplus(-p)
        return _core.xlog1py(value, -p) + _core.log(p)

    def _draw(self, shape, reparameterized):
        # P(X >= k) = (1 - p)^k: X = floor(E / -log(1 - p)), E ~ Exponential(1)
        return (draws.standard_exponential(shape) / self._minus_log_q()).long()

    def entropy(self):
        """(-p log p - (1 - p) log(1 - p)) / p."""
        p = self._param
        if self._iattr is _LOGITS:
            q = _core.sigmoid(-p)
            return softplus(-p) + q * softplus(p) / (1.0 - q)
        return -(_core.xlogy(p, p) + _core.xlog1py(1.0 - p, -p)) / p

    @property
    def mean(self):
        return expand_to(1.0 / self.probs - 1.0, self._batch_shape)

    @property
    def mode(self):
        return full(self._batch_shape, 0.0)

    @property
    def variance(self):
        p = self.probs
        return expand_to((1.0 / p - 1.0) / p, self._batch_shape)


class GammaPoisson(ComposedFamily):
    """GammaPoisson(concentration, rate): Poisson counts whose rate is
    Gamma(concentration, rate) distributed (a negative binomial with
    total_count = concentration and probs = 1 / (1 + rate))."""

    arg_constraints = {"concentration": _positive, "rate": _positive}
    support = constraints.nonnegative_integer

    def __init__(self, concentration, rate, validate_args=None):
        self._set_params(validate_args, ("concentration", "rate"), concentration, rate)

    def _log_prob(self, value):
        a, b = self.concentration, self.rate
        total = a + value
        return (_core.lgamma(total) - _core.lgamma(value + 1.0) - _core.lgamma(a)
                + a * _core.log(b) - total * _core.log1p(b))

    def _draw(self, shape, reparameterized):
        gamma = Gamma(self.concentration, self.rate, validate_args=False)
        if gamma.batch_shape != self._batch_shape:
            gamma = gamma.expand(self._batch_shape)
        rate = gamma.sample(shape[:len(shape) - len(self._batch_shape)])
        return Poisson(rate, validate_args=False).sample()

    @property
    def mean(self):
        return expand_to(self.concentration / self.rate, self._batch_shape)

    @property
    def variance(self):
        b = self.rate
        return expand_to(self.concentration * (1.0 + b) / (b * b), self._batch_shape)


class BetaBinomial(_UpToTotalCount, ComposedFamily):
    """BetaBinomial(concentration1, concentration0, total_count=1): Binomial
    counts whose probs is Beta(concentration1, concentration0) distributed."""

    arg_constraints = {"concentration1": _positive, "concentration0": _positive,
                       "total_count": constraints.nonnegative_integer}
    has_enumerate_support = True

    def __init__(self, concentration1, concentration0, total_count=1, validate_args=None):
        self._set_params(validate_args, ("concentration1", "concentration0", "total_count"),
                         concentration1, concentration0, total_count)

    def _log_prob(self, value):
        a, b, n = self.concentration1, self.concentration0, self.total_count
        return (_log_binomial_coefficient(n, value)
                + _core.betaln(value + a, n - value + b) - _core.betaln(a, b))

    def _draw(self, shape, reparameterized):
        beta = Beta(self.concentration1, self.concentration0, validate_args=False)
        if beta.batch_shape != self._batch_shape:
            beta = beta.expand(self._batch_shape)
        probs = beta.sample(shape[:len(shape) - len(self._batch_shape)])
        return draws.binomial(self.total_count, probs, shape)

    def enumerate_support(self, expand=True):
        return _enumerate_counts(self, expand)

    @property
    def mean(self):
        a, b = self.concentration1, self.concentration0
        return expand_to(self.total_count * a / (a + b), self._batch_shape)

    @property
    def variance(self):
        a, b, n = self.concentration1, self.concentration0, self.total_count
        total = a + b
        return expand_to(n * a * b * (total + n) / (total * total * (total + 1.0)),
                         self._batch_shape)


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p, q):
    """n [a log(a/b) + (1-a) log((1-a)/(1-b))] for one total_count n."""
    n = _core.value_of(p.total_count)
    if n.shape != _core.value_of(q.total_count).shape or np.any(
            n != _core.value_of(q.total_count)):
        raise NotImplementedError("kl_divergence(Binomial, Binomial): the two total_counts "
                                  "differ (KL is infinite or undefined)")
    a, b = p.probs, q.probs
    kl = (_core.xlogy(a, a) - _core.xlogy(a, b)
          + _core.xlog1py(1.0 - a, -a) - _core.xlog1py(1.0 - a, -b))
    return expand_to(p.total_count * kl, broadcast_shapes(p.batch_shape, q.batch_shape))


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p, q):
    """-H(p) - E_p[k] log(1 - b) - log b, with E_p[k] = (1 - a) / a."""
    a = p.probs
    return -p.entropy() + q._minus_log_q() * (1.0 - a) / a - _core.log(q.probs)
