"""Continuous families: Normal, LogNormal, HalfNormal, HalfCauchy, Exponential,
Uniform, Gamma, Beta.  All have a reparameterized sampler (`rsample`); Gamma
and Beta differentiate theirs implicitly through the Gamma CDF (see
src_c/dist_gamma_grad.c).  Argument names and semantics are Pyro's.
"""
import math

import numpy as np

from csvi import _core, constraints
from csvi.distributions.family import Family
from csvi.distributions.util import apply, astensor, broadcast_args, expand_to, full

_OP = _core.OPCODES
OP_NORMAL_LP, OP_NORMAL_RS = _OP["NORMAL_LP"], _OP["NORMAL_RS"]
OP_LOGNORMAL_LP, OP_LOGNORMAL_RS = _OP["LOGNORMAL_LP"], _OP["LOGNORMAL_RS"]
OP_HALFNORMAL_LP, OP_HALFNORMAL_RS = _OP["HALFNORMAL_LP"], _OP["HALFNORMAL_RS"]
OP_HALFCAUCHY_LP, OP_HALFCAUCHY_RS = _OP["HALFCAUCHY_LP"], _OP["HALFCAUCHY_RS"]
OP_EXPONENTIAL_LP, OP_EXPONENTIAL_RS = _OP["EXPONENTIAL_LP"], _OP["EXPONENTIAL_RS"]
OP_UNIFORM_LP, OP_UNIFORM_RS = _OP["UNIFORM_LP"], _OP["UNIFORM_RS"]
OP_GAMMA_LP, OP_GAMMA_RS = _OP["GAMMA_LP"], _OP["GAMMA_RS"]
OP_BETA_LP, OP_BETA_RS = _OP["BETA_LP"], _OP["BETA_RS"]
OP_STANDARD_GAMMA_GRAD = _OP["STANDARD_GAMMA_GRAD"]

_LOG_2PI_E = math.log(2.0 * math.pi * math.e)
_real = constraints.real
_positive = constraints.positive
_HALF_MAX = float(np.finfo(np.float64).max) / 2
_half_width = constraints._Interval(0.0, _HALF_MAX, lower_open=True)


class Normal(Family):
    """Normal(loc, scale): the Gaussian with mean loc and standard deviation scale."""

    arg_constraints = {"loc": _real, "scale": _positive}
    support = _real
    has_rsample = True
    _lp_op, _rs_op = OP_NORMAL_LP, OP_NORMAL_RS

    def __init__(self, loc=0.0, scale=1.0, validate_args=None):
        self._set_params(validate_args, ("loc", "scale"), loc, scale)

    @property
    def mean(self):
        return expand_to(self.loc, self._batch_shape)

    @property
    def mode(self):
        return self.mean

    @property
    def variance(self):
        return expand_to(self.scale ** 2, self._batch_shape)

    def entropy(self):
        return expand_to(0.5 * _LOG_2PI_E + _core.log(self.scale), self._batch_shape)

    def cdf(self, value):
        return _core.ndtr((self._as_value(value, "cdf") - self.loc) / self.scale)

    def icdf(self, value):
        return self.loc + self.scale * _core.ndtri(self._as_probability(value))


class LogNormal(Family):
    """LogNormal(loc, scale): exp of Normal(loc, scale)."""

    arg_constraints = {"loc": _real, "scale": _positive}
    support = _positive
    has_rsample = True
    _lp_op, _rs_op = OP_LOGNORMAL_LP, OP_LOGNORMAL_RS

    def __init__(self, loc=0.0, scale=1.0, validate_args=None):
        self._set_params(validate_args, ("loc", "scale"), loc, scale)

    @property
    def mean(self):
        return expand_to(_core.exp(self.loc + 0.5 * self.scale ** 2), self._batch_shape)

    @property
    def mode(self):
        return expand_to(_core.exp(self.loc - self.scale ** 2), self._batch_shape)

    @property
    def variance(self):
        s2 = self.scale ** 2
        return expand_to(_core.expm1(s2) * _core.exp(2.0 * self.loc + s2), self._batch_shape)

    def entropy(self):
        return expand_to(0.5 * _LOG_2PI_E + _core.log(self.scale) + self.loc, self._batch_shape)

    def cdf(self, value):
        return _core.ndtr((_core.log(self._as_value(value, "cdf")) - self.loc) / self.scale)

    def icdf(self, value):
        return _core.exp(self.loc + self.scale * _core.ndtri(self._as_probability(value)))


class HalfNormal(Family):
    """HalfNormal(scale): |Normal(0, scale)| on [0, inf)."""

    arg_constraints = {"scale": _positive}
    support = constraints.nonnegative
    has_rsample = True
    _lp_op, _rs_op = OP_HALFNORMAL_LP, OP_HALFNORMAL_RS

    def __init__(self, scale=1.0, validate_args=None):
        self._set_params(validate_args, ("scale",), scale)

    @property
    def mean(self):
        return self.scale * math.sqrt(2.0 / math.pi)

    @property
    def mode(self):
        return full(self._batch_shape, 0.0)

    @property
    def variance(self):
        return self.scale ** 2 * (1.0 - 2.0 / math.pi)

    def entropy(self):
        return 0.5 * _LOG_2PI_E - math.log(2.0) + _core.log(self.scale)

    def cdf(self, value):
        return _core.erf(self._as_value(value, "cdf") / self.scale * math.sqrt(0.5))

    def icdf(self, value):
        return self.scale * _core.ndtri(0.5 + 0.5 * self._as_probability(value))


class HalfCauchy(Family):
    """HalfCauchy(scale): |Cauchy(0, scale)| on [0, inf); no finite moments."""

    arg_constraints = {"scale": _positive}
    support = constraints.nonnegative
    has_rsample = True
    _lp_op, _rs_op = OP_HALFCAUCHY_LP, OP_HALFCAUCHY_RS

    def __init__(self, scale=1.0, validate_args=None):
        self._set_params(validate_args, ("scale",), scale)

    @property
    def mean(self):
        return full(self._batch_shape, np.inf)

    @property
    def mode(self):
        return full(self._batch_shape, 0.0)

    @property
    def variance(self):
        return full(self._batch_shape, np.inf)

    def entropy(self):
        return math.log(2.0 * math.pi) + _core.log(self.scale)

    def cdf(self, value):
        return (2.0 / math.pi) * _core.arctan(self._as_value(value, "cdf") / self.scale)

    def icdf(self, value):
        return self.scale * _core.tan((0.5 * math.pi) * self._as_probability(value))


class Exponential(Family):
    """Exponential(rate): density rate * exp(-rate x) on [0, inf)."""

    arg_constraints = {"rate": _positive}
    support = constraints.nonnegative
    has_rsample = True
    _lp_op, _rs_op = OP_EXPONENTIAL_LP, OP_EXPONENTIAL_RS

    def __init__(self, rate=1.0, validate_args=None):
        self._set_params(validate_args, ("rate",), rate)

    @property
    def mean(self):
        return 1.0 / self.rate

    @property
    def mode(self):
        return full(self._batch_shape, 0.0)

    @property
    def variance(self):
        return self.rate ** -2.0

    def entropy(self):
        return 1.0 - _core.log(self.rate)

    def cdf(self, value):
        return -_core.expm1(-self.rate * self._as_value(value, "cdf"))

    def icdf(self, value):
        return -_core.log1p(-self._as_probability(value)) / self.rate


class Uniform(Family):
    """Uniform(low, high): flat density 1/(high - low) on [low, high)."""

    arg_constraints = {"low": constraints.finite, "high": constraints.finite}
    has_rsample = True
    _lp_op, _rs_op = OP_UNIFORM_LP, OP_UNIFORM_RS

    def __init__(self, low=0.0, high=1.0, validate_args=None):
        self._set_params(validate_args, ("low", "high"), low, high)
        if self._validate:
            # high - low, the width every draw and density uses, must be > 0 and
            # finite: half of it never overflows, so check that
            lo, hi = _core.value_of(self.low), _core.value_of(self.high)
            if lo.ndim == 0 and hi.ndim == 0:
                k = -1 if 0.0 < float(hi) * 0.5 - float(lo) * 0.5 <= _HALF_MAX else 0
            else:
                k = _half_width.first_violation(np.subtract(hi * 0.5, lo * 0.5))
            if k >= 0:
                shape = self._batch_shape
                lo, hi = np.broadcast_to(lo, shape).flat[k], np.broadcast_to(hi, shape).flat[k]
                where = f" at index {tuple(int(i) for i in np.unravel_index(k, shape))}" \
                    if shape else ""
                raise ValueError(
                    f"Uniform: high must be greater than low, with high - low finite; got "
                    f"low={float(lo)!r} and high={float(hi)!r}{where} "
                    f"(high - low = {float(hi) - float(lo)!r})")

    @property
    def support(self):
        support = self.__dict__.get("_support")
        if support is None:
            lo, hi = _core.value_of(self.low), _core.value_of(self.high)
            # scalar bounds: the one-pass C check; arrays: an elementwise NumPy check
            if lo.ndim == 0 and hi.ndim == 0:
                support = constraints.interval(float(lo), float(hi))
            else:
                support = constraints.interval(self.low, self.high)
            self._support = support
        return support

    @property
    def mean(self):
        return expand_to((self.low + self.high) * 0.5, self._batch_shape)

    @property
    def mode(self):
        return full(self._batch_shape, np.nan)

    @property
    def variance(self):
        return expand_to((self.high - self.low) ** 2 / 12.0, self._batch_shape)

    def entropy(self):
        return expand_to(_core.log(self.high - self.low), self._batch_shape)

    def cdf(self, value):
        x = self._as_value(value, "cdf")
        return _core.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)

    def icdf(self, value):
        return self.low + self._as_probability(value) * (self.high - self.low)


class Gamma(Family):
    """Gamma(concentration, rate): density b^a x^(a-1) e^(-b x) / Gamma(a) on (0, inf)."""

    arg_constraints = {"concentration": _positive, "rate": _positive}
    support = _positive
    has_rsample = True
    _lp_op, _rs_op = OP_GAMMA_LP, OP_GAMMA_RS

    def __init__(self, concentration, rate=1.0, validate_args=None):
        self._set_params(validate_args, ("concentration", "rate"), concentration, rate)

    @property
    def mean(self):
        return expand_to(self.concentration / self.rate, self._batch_shape)

    @property
    def mode(self):
        return expand_to(_core.clip(self.concentration - 1.0, 0.0) / self.rate, self._batch_shape)

    @property
    def variance(self):
        return expand_to(self.concentration / self.rate ** 2, self._batch_shape)

    def entropy(self):
        a = self.concentration
        return expand_to(a - _core.log(self.rate) + _core.lgamma(a)
                         + (1.0 - a) * _core.digamma(a), self._batch_shape)


class Beta(Family):
    """Beta(concentration1, concentration0): density x^(a-1) (1-x)^(b-1) / B(a, b)."""

    arg_constraints = {"concentration1": _positive, "concentration0": _positive}
    support = constraints.unit_interval
    has_rsample = True
    _lp_op, _rs_op = OP_BETA_LP, OP_BETA_RS

    def __init__(self, concentration1, concentration0, validate_args=None):
        self._set_params(validate_args, ("concentration1", "concentration0"), concentration1,
                         concentration0)

    @property
    def mean(self):
        a, b = self.concentration1, self.concentration0
        return expand_to(a / (a + b), self._batch_shape)

    @property
    def variance(self):
        a, b = self.concentration1, self.concentration0
        total = a + b
        return expand_to(a * b / (total ** 2 * (total + 1.0)), self._batch_shape)

    @property
    def mode(self):
        """(a-1)/(a+b-2) with each of a-1, b-1 clipped at 0, so NaN for
        a = b = 1; where both are < 1 (modes at 0 and at 1), 1 as torch."""
        a, b = self.concentration1, self.concentration0
        a1, b1 = _core.clip(a - 1.0, 0.0), _core.clip(b - 1.0, 0.0)
        both_below_one = (a < 1.0) * (b < 1.0)
        return expand_to(_core.where(both_below_one, 1.0, a1 / (a1 + b1)), self._batch_shape)

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        total = a + b
        return expand_to(_core.betaln(a, b) - (a - 1.0) * _core.digamma(a)
                         - (b - 1.0) * _core.digamma(b) + (total - 2.0) * _core.digamma(total),
                         self._batch_shape)


def _standard_gamma_grad(x, concentration):
    """dx/dconcentration of a Gamma(concentration, 1) draw x at fixed CDF (no
    gradient of its own); the implicit reparameterization behind Gamma.rsample."""
    x, a = astensor(x), astensor(concentration)
    shape = broadcast_args("_standard_gamma_grad", ("x", "concentration"), (x.shape, a.shape))
    return apply(OP_STANDARD_GAMMA_GRAD, (x, a), shape, False)
