"""Families on the positive reals built from others: InverseGamma (1 / Gamma),
Chi2 (a Gamma), Weibull and Pareto (transforms of a standard exponential).

Their draws transform a Gamma rsample (implicit gradient) or a standard
exponential noise with differentiable ops, so the pathwise gradient is exact;
densities compose tape ops.  Argument names and parameterizations are
Pyro's: InverseGamma(concentration, rate), Chi2(df), Weibull(scale,
concentration), Pareto(scale, alpha).
"""
import math


from csvi import _core, constraints
from csvi.distributions import draws
from csvi.distributions.composed import ComposedFamily
from csvi.distributions.continuous import Gamma
from csvi.distributions.kl import register_kl
from csvi.distributions.util import astensor

__all__ = ["Chi2", "InverseGamma", "Pareto", "Weibull"]

_positive = constraints.positive
_EULER = 0.57721566490153286061

log, exp, lgamma, digamma = _core.log, _core.exp, _core.lgamma, _core.digamma


class InverseGamma(ComposedFamily):
    """InverseGamma(concentration, rate): 1 / X for X ~ Gamma(concentration, rate);
    density b^a x^(-a-1) e^(-b/x) / Gamma(a) on (0, inf)."""

    arg_constraints = {"concentration": _positive, "rate": _positive}
    support = _positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self._set_params(validate_args, ("concentration", "rate"), concentration, rate)

    def _draw(self, shape, reparameterized):
        gamma = Gamma(self.concentration, self.rate, validate_args=False)
        return 1.0 / gamma._draw(shape, reparameterized)

    def _log_prob(self, value):
        a, b = self.concentration, self.rate
        return a * log(b) - lgamma(a) - (a + 1.0) * log(value) - b / value

    @property
    def mean(self):
        a = self.concentration
        return self._batched(_core.where(a > 1.0, self.rate / (a - 1.0), math.inf))

    @property
    def mode(self):
        return self._batched(self.rate / (self.concentration + 1.0))

    @property
    def variance(self):
        a = self.concentration
        finite = self.rate ** 2 / ((a - 1.0) ** 2 * (a - 2.0))
        return self._batched(_core.where(a > 2.0, finite, math.inf))

    def entropy(self):
        a = self.concentration
        return self._batched(a + log(self.rate) + lgamma(a) - (1.0 + a) * digamma(a))


class Chi2(Gamma):
    """Chi2(df): the chi-squared distribution, Gamma(df / 2, 1 / 2): Gamma's
    kernels, moments and entropy (torch's Chi2 is a Gamma too)."""

    arg_constraints = {"df": _positive}

    def __init__(self, df, validate_args=None):
        self._set_params(validate_args, ("df",), df)
        self.concentration, self.rate = 0.5 * self.df, astensor(0.5)
        self._params = (self.concentration, self.rate)


class Weibull(ComposedFamily):
    """Weibull(scale, concentration): density (k/s) (x/s)^(k-1) e^(-(x/s)^k) on
    (0, inf), with s = scale and k = concentration."""

    arg_constraints = {"scale": _positive, "concentration": _positive}
    support = _positive
    has_rsample = True

    def __init__(self, scale, concentration, validate_args=None):
        self._set_params(validate_args, ("scale", "concentration"), scale, concentration)

    def _draw(self, shape, reparameterized):
        s, k = self._params if reparameterized else [p.detach() for p in self._params]
        return s * exp(log(draws.standard_exponential(shape)) / k)

    def _log_prob(self, value):
        k = self.concentration
        log_z = log(value / self.scale)
        return log(k / self.scale) + (k - 1.0) * log_z - exp(k * log_z)

    @property
    def mean(self):
        return self._batched(self.scale * exp(lgamma(1.0 + 1.0 / self.concentration)))

    @property
    def mode(self):
        k = self.concentration
        # 0 for concentration <= 1, where the density peaks at the origin; the
        # base kept positive there so that no branch's gradient is NaN
        peaked = k > 1.0
        base = _core.where(peaked, (k - 1.0) / k, 1.0)
        return self._batched(_core.where(peaked, self.scale * base ** (1.0 / k), 0.0))

    @property
    def variance(self):
        inv = 1.0 / self.concentration
        return self._batched(self.scale ** 2 * (exp(lgamma(1.0 + 2.0 * inv))
                                                - exp(2.0 * lgamma(1.0 + inv))))

    def cdf(self, value):
        x = self._as_value(value, "cdf") / self.scale
        return -_core.expm1(-exp(self.concentration * log(x)))

    def icdf(self, value):
        return self.scale * exp(log(-_core.log1p(-self._as_probability(value)))
                                / self.concentration)

    def entropy(self):
        inv = 1.0 / self.concentration
        return self._batched(_EULER * (1.0 - inv) + log(self.scale * inv) + 1.0)


class Pareto(ComposedFamily):
    """Pareto(scale, alpha): density alpha scale^alpha / x^(alpha+1) on [scale, inf)."""

    arg_constraints = {"scale": _positive, "alpha": _positive}
    has_rsample = True

    def __init__(self, scale, alpha, validate_args=None):
        self._set_params(validate_args, ("scale", "alpha"), scale, alpha)

    @property
    def support(self):
        support = self.__dict__.get("_support")
        if support is None:
            lower = _core.value_of(self.scale)
            # a single scale: the one-pass C check; an array: elementwise NumPy
            support = constraints.greater_than_eq(float(lower) if lower.ndim == 0
                                                  else self.scale)
            self._support = support
        return support

    def _draw(self, shape, reparameterized):
        s, a = self._params if reparameterized else [p.detach() for p in self._params]
        return s * exp(draws.standard_exponential(shape) / a)

    def _log_prob(self, value):
        a = self.alpha
        return log(a) + a * log(self.scale) - (a + 1.0) * log(value)

    @property
    def mean(self):
        a = _core.clip(self.alpha, 1.0)  # inf for alpha <= 1
        return self._batched(a * self.scale / (a - 1.0))

    @property
    def mode(self):
        return self._batched(self.scale)

    @property
    def variance(self):
        a = _core.clip(self.alpha, 2.0)  # inf for alpha <= 2
        return self._batched(self.scale ** 2 * a / ((a - 1.0) ** 2 * (a - 2.0)))

    def cdf(self, value):
        return -_core.expm1(self.alpha * log(self.scale / self._as_value(value, "cdf")))

    def icdf(self, value):
        return self.scale * exp(-_core.log1p(-self._as_probability(value)) / self.alpha)

    def entropy(self):
        return self._batched(log(self.scale / self.alpha) + (1.0 + 1.0 / self.alpha))


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p, q):
    ratio = q.alpha / p.alpha
    kl = q.alpha * log(p.scale / q.scale) - log(ratio) + ratio - 1.0
    # infinite where p puts mass below q's support
    return _core.where(p.scale < q.scale, math.inf, kl)
