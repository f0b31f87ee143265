"""Counts over K categories: Multinomial(total_count, probs=None, logits=None)
and OneHotCategorical(probs=None, logits=None), its total_count = 1 case.

Both hold a Categorical for the weights (it normalizes probs, or logits by
their logsumexp, and owns the probs/logits properties), so the two
parameterizations have one implementation.  A value is a vector of counts
along the last dim (event_shape (K,)).  log_prob composes tape ops, so it has
gradients in the weights and replays in a compiled program; draws are
recorded draw ops, which a compiled loop redraws each step.
"""
import math

import numpy as np

from csvi import _core, constraints
from csvi.distributions.counts import Binomial
from csvi.distributions.discrete import _PROBS, Categorical
from csvi.distributions.distribution import Distribution
from csvi.distributions.draws import multinomial as _draw_multinomial
from csvi.distributions.kl import register_kl
from csvi.distributions.util import astensor
from csvi.distributions.validation import as_count, as_real, bad_arg, validate_default

# the most negative float: p * logit stays 0 where p is 0 and the logit -inf
_LOWEST = float(np.finfo(np.float64).min)


class _CountVector(constraints.Constraint):
    """Vectors (along the last dim) of whole numbers >= 0 summing to `total`:
    Multinomial's support; with total 1, one-hot vectors."""

    event_dim = 1
    is_discrete = True

    def __init__(self, total):
        self.total = total

    def first_violation(self, value):
        arr = _core.value_of(value)
        if arr.ndim == 0:
            return 0
        bad = _core.first_outside(arr, 0.0, float(self.total), False, False, True)
        if bad >= 0 or arr.size == 0:
            return bad
        sums = arr.sum(-1)
        if (sums == self.total).all():
            return -1
        return int(np.argmax(sums.reshape(-1) != self.total)) * arr.shape[-1]

    def describe(self):
        if self.total == 1:
            return "a one-hot vector (along the last dim: one 1, the rest 0)"
        return (f"a vector (along the last dim) of whole numbers >= 0 summing to "
                f"total_count = {self.total}")

    def __repr__(self):
        return f"constraints.multinomial({self.total})"


def _weights(owner, probs, logits, validate_args):
    """A Categorical over the last dim of exactly one of probs and logits,
    with argument errors naming `owner` rather than Categorical."""
    if (probs is None) == (logits is None):
        got = "both" if probs is not None else "neither"
        raise ValueError(f"{owner}: pass exactly one of probs or logits, got {got}")
    name = "probs" if logits is None else "logits"
    w = as_real(probs if logits is None else logits, owner, name)
    if w.ndim == 0 or w.shape[-1] == 0:
        raise ValueError(f"{owner}: {name} must have a last dim of categories (size >= 1), "
                         f"got shape {w.shape}")
    validate = validate_default(validate_args)
    declared = Categorical.arg_constraints[name]
    if validate and declared.first_violation(w) >= 0:
        raise bad_arg(owner, name, w, declared)
    cat = Categorical(w, None, False) if logits is None else Categorical(None, w, False)
    cat._validate = validate
    return cat


class _CategoryCounts(Distribution):
    """What Multinomial and OneHotCategorical share: the Categorical, the
    shapes, the weights' properties and the moments."""

    arg_constraints = Categorical.arg_constraints
    total_count = 1

    def _set_weights(self, probs, logits, validate_args):
        self._categorical = cat = _weights(type(self).__name__, probs, logits, validate_args)
        self._validate = cat._validate
        self._batch_shape = cat.batch_shape
        self._event_shape = (cat._num_categories,)
        self._support = _CountVector(self.total_count)

    @property
    def support(self):
        return self._support

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical._param.shape

    @property
    def mean(self):
        return self._expanded(self.probs * float(self.total_count))

    @property
    def variance(self):
        p = self.probs
        return self._expanded(float(self.total_count) * p * (1.0 - p))

    def _expanded(self, x):
        shape = self._batch_shape + self._event_shape
        return x if x.shape == shape else _core.broadcast_to(x, shape)

    def _checked(self, value):
        """A log_prob value as a Tensor: its shape checked first, then its
        support (as ComposedFamily checks them)."""
        value = as_real(value, f"{type(self).__name__}.log_prob", "value")
        self._value_shape(value.shape)
        return self._as_value(value)

    def _category_entropy(self):
        """-sum p log p over the categories (0 log 0 = 0)."""
        cat = self._categorical
        if cat._iattr is _PROBS:
            p = cat.probs
            return -_core.sum(_core.xlogy(p, p), -1)
        return -_core.sum(cat.probs * _core.clip(cat.logits, _LOWEST), -1)

    def _log_weights_dot(self, value):
        """sum over categories of value * log(p), 0 where value and p are 0."""
        cat = self._categorical
        if cat._iattr is _PROBS:
            return _core.sum(_core.xlogy(value, cat.probs), -1)
        return _core.sum(_core.where(value > 0.0, value * cat.logits, 0.0), -1)


class Multinomial(_CategoryCounts):
    """Multinomial(total_count=1, probs=None, logits=None): counts of
    `total_count` independent draws from the categories along the last dim
    of probs (normalized, they need not sum to 1) or logits."""

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        self.total_count = as_count(total_count, "Multinomial", "total_count")
        self._log_factorial_n = math.lgamma(self.total_count + 1.0)
        self._set_weights(probs, logits, validate_args)

    def log_prob(self, value):
        value = self._checked(value)
        # log n! - sum log x_k!  (n = the sum of a value in the support)
        log_coef = self._log_factorial_n - _core.sum(_core.lgamma(value + 1.0), -1)
        return log_coef + self._log_weights_dot(value)

    def _draw(self, shape, reparameterized):
        return _draw_multinomial(self.total_count, self.probs, shape)

    def entropy(self):
        """n H(p) - log n! + sum_k E[log x_k!], each x_k ~ Binomial(n, p_k)
        (the expectation summed over x_k = 2..n, where log x_k! > 0)."""
        n = self.total_count
        h = self._category_entropy()
        if n < 2:
            return h * float(n)
        x = np.arange(2.0, n + 1.0).reshape((-1,) + (1,) * (len(self._batch_shape) + 1))
        log_fact = astensor(np.array([math.lgamma(k + 1.0) for k in x.flat]).reshape(x.shape))
        pmf = _core.exp(Binomial(n, probs=self.probs, validate_args=False).log_prob(x))
        expected = _core.sum(_core.sum(pmf * log_fact, 0), -1)
        return h * float(n) - math.lgamma(n + 1.0) + expected


class OneHotCategorical(_CategoryCounts):
    """OneHotCategorical(probs=None, logits=None): a Categorical draw as a
    one-hot vector along the last dim."""

    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._set_weights(probs, logits, validate_args)
        self._codes = None

    def _category_codes(self):
        """0, 1, ..., K-1 as a constant Tensor (made once)."""
        if self._codes is None:
            self._codes = astensor(np.arange(float(self._event_shape[0])))
        return self._codes

    def log_prob(self, value):
        value = self._checked(value)
        # the index of each one-hot row, then Categorical's fused log-density
        index = _core.matmul(value, self._category_codes())
        return self._categorical.log_prob(index)

    def _draw(self, shape, reparameterized):
        index = self._categorical._draw(shape[:-1], False)
        return _core.equal(_core.expand_dims(index, -1), self._category_codes())

    def entropy(self):
        """-sum p log p over the categories (0 log 0 = 0)."""
        return self._category_entropy()

    def enumerate_support(self, expand=True):
        K = self._event_shape[0]
        values = np.eye(K).reshape((K,) + (1,) * len(self._batch_shape) + (K,))
        if expand:
            values = np.broadcast_to(values, (K,) + self._batch_shape + (K,))
        return astensor(np.ascontiguousarray(values))


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_one_hot_one_hot(p, q):
    """sum_k p_k (log p_k - log q_k), 0 where p_k is 0."""
    a = p.probs
    terms = _core.where(a > 0.0, a * (p.logits - q.logits), 0.0)
    return _core.sum(terms, -1)
