"""Discrete families: Bernoulli, Categorical, Poisson.  None has a
reparameterized sampler; log_prob is differentiable in the parameters (and
for Bernoulli and Poisson in the value's continuous extension).  Values and
draws are float64 arrays of whole numbers.
"""
import numpy as np

from csvi import _core, constraints
from csvi.distributions.family import Family
from csvi.distributions.util import astensor, expand_to, full

_OP = _core.OPCODES
OP_BERNOULLI_LP, OP_BERNOULLI_RS = _OP["BERNOULLI_LP"], _OP["BERNOULLI_RS"]
OP_CATEGORICAL_LP, OP_CATEGORICAL_RS = _OP["CATEGORICAL_LP"], _OP["CATEGORICAL_RS"]
OP_POISSON_LP, OP_POISSON_RS = _OP["POISSON_LP"], _OP["POISSON_RS"]

# iattr[0] of the Bernoulli and Categorical ops: which parameterization
_PROBS, _LOGITS = (0,), (1,)
_PROBS_ARG, _LOGITS_ARG = ("probs",), ("logits",)


def _take_probs_or_logits(dist, probs, logits, validate_args):
    """Set `dist`'s one parameter from exactly one of probs and logits (the
    other is derived on demand); returns it."""
    if (probs is None) == (logits is None):
        got = "both" if probs is not None else "neither"
        raise ValueError(f"{type(dist).__name__}: pass exactly one of probs or logits, "
                         f"got {got}")
    if logits is None:
        dist._set_params(validate_args, _PROBS_ARG, probs)
        dist._iattr = _PROBS
    else:
        dist._set_params(validate_args, _LOGITS_ARG, logits)
        dist._iattr = _LOGITS
    return dist._params[0]


class _CategoryWeights(constraints.Constraint):
    """Categorical's probs or logits along the last dim (the categories):
    each element within [lo, hi] (not NaN), and each row with some mass
    (`row_ok(row values)` along the last dim)."""

    event_dim = 1

    def __init__(self, lo, hi_open, row_ok, words):
        self.lo, self.hi_open, self.row_ok, self.words = lo, hi_open, row_ok, words

    def first_violation(self, value):
        arr = _core.value_of(value)
        if arr.ndim == 0:
            return 0
        bad = _core.first_outside(arr, self.lo, np.inf, False, self.hi_open)
        if bad >= 0 or arr.size == 0:
            return bad
        ok = self.row_ok(arr)
        if ok.all():
            return -1
        return int(np.flatnonzero(~ok.reshape(-1))[0]) * arr.shape[-1]

    def describe(self):
        return self.words


# Categorical normalizes its probs (they need not sum to 1) and its logits
_category_probs = _CategoryWeights(
    0.0, True, lambda a: a.sum(-1) > 0.0,
    "a vector (along the last dim, the categories) of finite numbers >= 0 with a positive sum")
_category_logits = _CategoryWeights(
    -np.inf, True, lambda a: a.max(-1) > -np.inf,
    "a vector (along the last dim, the categories) of numbers < inf, not NaN, at least one "
    "> -inf")


class BinaryProbs:
    """probs and logits of a family that keeps one success probability (as
    `_param`, logits when `_iattr` is _LOGITS), the other computed on use:
    Bernoulli, and the count families built on one probability."""

    @property
    def probs(self):
        return _core.sigmoid(self._param) if self._iattr is _LOGITS else self._param

    @property
    def logits(self):
        if self._iattr is _LOGITS:
            return self._param
        p = self._param
        return _core.log(p) - _core.log1p(-p)


class Bernoulli(BinaryProbs, Family):
    """Bernoulli(probs=None, logits=None): 1 with probability probs
    (= sigmoid(logits)), else 0."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True
    _named_params = False
    _lp_op, _rs_op = OP_BERNOULLI_LP, OP_BERNOULLI_RS

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._param = _take_probs_or_logits(self, probs, logits, validate_args)


    def enumerate_support(self, expand=True):
        values = np.arange(2.0).reshape((2,) + (1,) * len(self._batch_shape))
        if expand:
            values = np.broadcast_to(values, (2,) + self._batch_shape)
        return astensor(np.ascontiguousarray(values))

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        """1 where probs > 1/2, 0 where below, NaN at exactly 1/2 (as torch)."""
        x, half = self._param, (0.0 if self._iattr is _LOGITS else 0.5)
        return _core.where(x == half, np.nan, x > half)

    @property
    def variance(self):
        p = self.probs
        return p * (1.0 - p)

    def entropy(self):
        x = self._param
        if self._iattr is _LOGITS:
            return _core.sigmoid(x) * _core.softplus(-x) + _core.sigmoid(-x) * _core.softplus(x)
        return -(_core.xlogy(x, x) + _core.xlog1py(1.0 - x, -x))


class Categorical(Family):
    """Categorical(probs=None, logits=None) over {0, ..., K-1}, K the size of
    the last dim.  probs are normalized along it (they need not sum to 1);
    logits are normalized by their logsumexp."""

    arg_constraints = {"probs": _category_probs, "logits": _category_logits}
    has_enumerate_support = True
    _named_params = False
    _lp_op, _rs_op = OP_CATEGORICAL_LP, OP_CATEGORICAL_RS

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._param = p = _take_probs_or_logits(self, probs, logits, validate_args)
        if p.ndim == 0 or p.shape[-1] == 0:
            raise ValueError(f"Categorical: {'probs' if logits is None else 'logits'} must "
                             f"have a last dim of categories (size >= 1), got shape {p.shape}")
        self._num_categories = p.shape[-1]
        self._batch_shape = p.shape[:-1]

    @property
    def support(self):
        support = self.__dict__.get("_support")
        if support is None:
            support = self._support = constraints.integer_interval(0, self._num_categories - 1)
        return support

    @property
    def probs(self):
        p = self._param
        if self._iattr is _LOGITS:
            return _core.exp(p - _core.logsumexp(p, -1, True))
        return p / _core.sum(p, -1, True)

    @property
    def logits(self):
        p = self._param
        if self._iattr is _LOGITS:
            return p - _core.logsumexp(p, -1, True)
        return _core.log(p) - _core.log(_core.sum(p, -1, True))

    def enumerate_support(self, expand=True):
        K = self._num_categories
        values = np.arange(float(K)).reshape((K,) + (1,) * len(self._batch_shape))
        if expand:
            values = np.broadcast_to(values, (K,) + self._batch_shape)
        return _core.mark_integer(astensor(np.ascontiguousarray(values)))

    def _draw(self, shape, reparameterized):
        # integer Tensors (torch's long), so a draw indexes NumPy arrays too
        return _core.mark_integer(super()._draw(shape, reparameterized))

    @property
    def mean(self):
        return full(self._batch_shape, np.nan)

    @property
    def mode(self):
        """The most probable category (the first of equally probable ones)."""
        x = self._param
        is_max = x >= _core.amax(x, -1, True)
        first = is_max * (_core.cumsum(is_max, -1) == 1.0)
        return _core.mark_integer(_core.sum(first * np.arange(float(self._num_categories)), -1))

    @property
    def variance(self):
        return full(self._batch_shape, np.nan)

    def entropy(self):
        p = self.probs
        return -_core.sum(_core.xlogy(p, p), -1)


class Poisson(Family):
    """Poisson(rate) over {0, 1, 2, ...}; rate 0 is a point mass at 0."""

    arg_constraints = {"rate": constraints.half_open_interval(0.0, np.inf)}
    support = constraints.nonnegative_integer
    _lp_op, _rs_op = OP_POISSON_LP, OP_POISSON_RS

    def __init__(self, rate, validate_args=None):
        self._set_params(validate_args, ("rate",), rate)

    @property
    def mean(self):
        return expand_to(self.rate, self._batch_shape)

    @property
    def mode(self):
        return self.rate.long().float()

    @property
    def variance(self):
        return expand_to(self.rate, self._batch_shape)
