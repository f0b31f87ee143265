"""Discrete families: Bernoulli, Categorical, Poisson.  None has a
reparameterized sampler; log_prob is differentiable in the parameters (and
for Bernoulli and Poisson in the value's continuous extension).  Values and
draws are float64 arrays of whole numbers.
"""
import numpy as np

from csvi import _core, constraints
from csvi.distributions import distribution as _d
from csvi.distributions.distribution import (
    Family, astensor, bad_arg, expand_to, full,
)

_OP = _core.OPCODES
OP_BERNOULLI_LP, OP_BERNOULLI_RS = _OP["BERNOULLI_LP"], _OP["BERNOULLI_RS"]
OP_CATEGORICAL_LP, OP_CATEGORICAL_RS = _OP["CATEGORICAL_LP"], _OP["CATEGORICAL_RS"]
OP_POISSON_LP, OP_POISSON_RS = _OP["POISSON_LP"], _OP["POISSON_RS"]

# iattr[0] of the Bernoulli and Categorical ops: which parameterization
_PROBS, _LOGITS = (0,), (1,)


def _one_of_error(name, probs):
    got = "both" if probs is not None else "neither"
    return ValueError(f"{name}: pass exactly one of probs or logits, got {got}")


class _Bounds(constraints.Constraint):
    """lo (<|<=) x (<|<=) hi with a wording of our own for error messages."""

    def __init__(self, lo, hi, lo_open, hi_open, words):
        self.args = (lo, hi, lo_open, hi_open)
        self.words = words

    def first_violation(self, value):
        return _core.first_outside(value, *self.args)

    def describe(self):
        return self.words


_unit = constraints.unit_interval
_real = constraints.real
_nonneg_finite = _Bounds(0.0, np.inf, False, True, "a finite number >= 0")
_logit = _Bounds(-np.inf, np.inf, False, True, "a number < inf (not NaN)")


class Bernoulli(Family):
    """Bernoulli(probs=None, logits=None): 1 with probability probs
    (= sigmoid(logits)), else 0."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True
    _lp_op, _rs_op = OP_BERNOULLI_LP, OP_BERNOULLI_RS

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise _one_of_error("Bernoulli", probs)
        self._validate = v = _d._validation if validate_args is None else validate_args
        if logits is None:
            self._param = p = astensor(probs)
            self._params = (p,)
            self._iattr = _PROBS
            if v and _unit.first_violation(p) >= 0:
                raise bad_arg("Bernoulli", "probs", p, _unit)
        else:
            self._param = p = astensor(logits)
            self._params = (p,)
            self._iattr = _LOGITS
            if v and _real.first_violation(p) >= 0:
                raise bad_arg("Bernoulli", "logits", p, _real)
        self._batch_shape = p.shape

    @property
    def probs(self):
        return _core.sigmoid(self._param) if self._iattr is _LOGITS else self._param

    @property
    def logits(self):
        if self._iattr is _LOGITS:
            return self._param
        p = self._param
        return _core.log(p) - _core.log1p(-p)

    def enumerate_support(self, expand=True):
        values = np.arange(2.0).reshape((2,) + (1,) * len(self._batch_shape))
        if expand:
            values = np.broadcast_to(values, (2,) + self._batch_shape)
        return astensor(np.ascontiguousarray(values))

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        p = self.probs
        return p * (1.0 - p)


class Categorical(Family):
    """Categorical(probs=None, logits=None) over {0, ..., K-1}, K the size of
    the last dim.  probs are normalized along it (they need not sum to 1);
    logits are normalized by their logsumexp."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True
    _lp_op, _rs_op = OP_CATEGORICAL_LP, OP_CATEGORICAL_RS

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise _one_of_error("Categorical", probs)
        name = "probs" if logits is None else "logits"
        self._param = p = astensor(probs if logits is None else logits)
        self._params = (p,)
        self._iattr = _PROBS if logits is None else _LOGITS
        shape = p.shape
        if len(shape) == 0 or shape[-1] == 0:
            raise ValueError(f"Categorical: {name} must have a last dim of categories "
                             f"(size >= 1), got shape {shape}")
        self._num_categories = shape[-1]
        self._batch_shape = shape[:-1]
        self._validate = v = _d._validation if validate_args is None else validate_args
        if v:
            arr = _core.value_of(p)
            if logits is None:
                if _nonneg_finite.first_violation(p) >= 0:
                    raise bad_arg("Categorical", "probs", p, _nonneg_finite)
                empty = arr.sum(-1) <= 0.0
                what = "a positive sum"
            else:
                if _logit.first_violation(p) >= 0:
                    raise bad_arg("Categorical", "logits", p, _logit)
                empty = arr.max(-1) == -np.inf
                what = "at least one logit > -inf"
            if empty.any():
                row = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(empty)[0]),
                                                             empty.shape))
                raise ValueError(f"Categorical: each row of {name} (along the last dim) "
                                 f"must have {what}, got {arr[row].tolist()} at batch "
                                 f"index {row}")

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
    def variance(self):
        return full(self._batch_shape, np.nan)


class Poisson(Family):
    """Poisson(rate) over {0, 1, 2, ...}; rate 0 is a point mass at 0."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer
    _lp_op, _rs_op = OP_POISSON_LP, OP_POISSON_RS

    def __init__(self, rate, validate_args=None):
        self.rate = rate = astensor(rate)
        self._params = (rate,)
        self._batch_shape = rate.shape
        self._validate = v = _d._validation if validate_args is None else validate_args
        if v and _nonneg_finite.first_violation(rate) >= 0:
            raise bad_arg("Poisson", "rate", rate, _nonneg_finite)

    @property
    def mean(self):
        return expand_to(self.rate, self._batch_shape)

    @property
    def variance(self):
        return expand_to(self.rate, self._batch_shape)
