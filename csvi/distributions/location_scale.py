"""Location-scale families on the real line: Cauchy, Laplace, Logistic, Gumbel
and StudentT, each `loc + scale * standard noise`.

A draw maps standard noise from csvi.distributions.draws through its inverse
CDF (or a ratio of draws) without gradient, then scales and shifts it, so
the pathwise gradient in loc and scale is exact; StudentT's gradient in df
comes implicitly from Gamma's rsample.  Densities compose tape ops in the
stable forms (log1p, softplus).  Argument names and parameterizations are
Pyro's (torch.distributions').
"""
import math

from csvi import _core, constraints
from csvi.distributions import draws
from csvi.distributions.composed import ComposedFamily
from csvi.distributions.continuous import Gamma
from csvi.distributions.kl import register_kl
from csvi.distributions.util import full

__all__ = ["Cauchy", "Gumbel", "Laplace", "Logistic", "StudentT"]

_real = constraints.real
_positive = constraints.positive
_EULER = 0.57721566490153286061
_LOG_PI = math.log(math.pi)

log, log1p, exp, softplus = _core.log, _core.log1p, _core.exp, _core.softplus
OP_SIN, OP_COS = _core.OPCODES["SIN"], _core.OPCODES["COS"]


class _LocScale(ComposedFamily):
    """Shared constructor and support of the (loc, scale) families."""

    arg_constraints = {"loc": _real, "scale": _positive}
    support = _real
    has_rsample = True

    def __init__(self, loc=0.0, scale=1.0, validate_args=None):
        self._set_params(validate_args, ("loc", "scale"), loc, scale)

    @property
    def mode(self):
        return self._batched(self.loc)

    def _draw(self, shape, reparameterized):
        z = self._standard(shape)
        if not reparameterized:
            return self.loc.detach() + self.scale.detach() * z
        return self.loc + self.scale * z


class Cauchy(_LocScale):
    """Cauchy(loc, scale): density 1 / (pi scale (1 + ((x - loc)/scale)^2));
    no finite moments (mean NaN, variance inf, as torch)."""

    def _standard(self, shape):
        return draws.standard_cauchy(shape)

    def _log_prob(self, value):
        z = (value - self.loc) / self.scale
        return -_LOG_PI - log(self.scale) - log1p(z * z)

    @property
    def mean(self):
        return full(self._batch_shape, math.nan)

    @property
    def variance(self):
        return full(self._batch_shape, math.inf)

    def icdf(self, value):
        """loc + scale tan(pi (p - 1/2)); (cdf needs an arctangent op)."""
        t = math.pi * (self._as_probability(value) - 0.5)
        return self.loc + self.scale * _core.unary(OP_SIN, t) / _core.unary(OP_COS, t)

    def entropy(self):
        return self._batched(math.log(4.0 * math.pi) + log(self.scale))


class Laplace(_LocScale):
    """Laplace(loc, scale): density exp(-|x - loc| / scale) / (2 scale)."""

    def _standard(self, shape):
        # inverse CDF of a uniform u in (0, 1): both branches finite
        u = draws.standard_uniform(shape)
        return _core.where(u < 0.5, log(2.0 * u), -log(2.0 - 2.0 * u))

    def _log_prob(self, value):
        return -log(2.0 * self.scale) - _core.abs_(value - self.loc) / self.scale

    @property
    def mean(self):
        return self._batched(self.loc)

    @property
    def variance(self):
        return self._batched(2.0 * self.scale ** 2)

    def cdf(self, value):
        z = (self._as_value(value, "cdf") - self.loc) / self.scale
        tail = 0.5 * exp(-_core.abs_(z))  # no overflow on either side
        return _core.where(z < 0.0, tail, 1.0 - tail)

    def icdf(self, value):
        d = self._as_probability(value) - 0.5
        side = _core.where(d < 0.0, -1.0, 1.0)
        return self.loc - self.scale * side * log1p(-2.0 * _core.abs_(d))

    def entropy(self):
        return self._batched(1.0 + log(2.0 * self.scale))


class Logistic(_LocScale):
    """Logistic(loc, scale): density e^-z / (scale (1 + e^-z)^2), z = (x - loc)/scale
    (pyro.distributions.Logistic)."""

    def _standard(self, shape):
        u = draws.standard_uniform(shape)
        return log(u) - log1p(-u)  # logit(u)

    def _log_prob(self, value):
        u = (self.loc - value) / self.scale  # -z: the fewest ops on value-sized data
        return u - 2.0 * softplus(u) - log(self.scale)

    @property
    def mean(self):
        return self._batched(self.loc)

    @property
    def variance(self):
        return self._batched(self.scale ** 2 * (math.pi ** 2 / 3.0))

    def cdf(self, value):
        return _core.sigmoid((self._as_value(value, "cdf") - self.loc) / self.scale)

    def icdf(self, value):
        return self.loc + self.scale * _core.logit(self._as_probability(value))

    def entropy(self):
        return self._batched(log(self.scale) + 2.0)


class Gumbel(_LocScale):
    """Gumbel(loc, scale): the type-I extreme value distribution, density
    exp(-(z + e^-z)) / scale with z = (x - loc)/scale."""

    def _standard(self, shape):
        return -log(draws.standard_exponential(shape))

    def _log_prob(self, value):
        u = (self.loc - value) / self.scale  # -z
        return u - exp(u) - log(self.scale)

    @property
    def mean(self):
        return self._batched(self.loc + self.scale * _EULER)

    @property
    def variance(self):
        return self._batched(self.scale ** 2 * (math.pi ** 2 / 6.0))

    def cdf(self, value):
        return exp(-exp((self.loc - self._as_value(value, "cdf")) / self.scale))

    def icdf(self, value):
        return self.loc - self.scale * log(-log(self._as_probability(value)))

    def entropy(self):
        return self._batched(log(self.scale) + (1.0 + _EULER))


class StudentT(ComposedFamily):
    """StudentT(df, loc, scale): Student's t with df degrees of freedom,
    shifted by loc and scaled by scale."""

    arg_constraints = {"df": _positive, "loc": _real, "scale": _positive}
    support = _real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self._set_params(validate_args, ("df", "loc", "scale"), df, loc, scale)

    def _draw(self, shape, reparameterized):
        df, loc, scale = self._params if reparameterized else [p.detach() for p in self._params]
        # Normal / sqrt(Chi2(df) / df), with Chi2(df) = 2 Gamma(df/2, 1): the
        # Gamma draw carries the implicit gradient in df
        g = Gamma(0.5 * df, 1.0, validate_args=False)._draw(shape, reparameterized)
        return loc + scale * draws.standard_normal(shape) * _core.sqrt(0.5 * df / g)

    def _log_prob(self, value):
        df = self.df
        y = (value - self.loc) / (self.scale * _core.sqrt(df))
        # log B(df/2, 1/2) = lgamma(df/2) + log sqrt(pi) - lgamma((df+1)/2)
        norm = log(self.scale) + 0.5 * log(df) + _core.betaln(0.5 * df, 0.5)
        return (-0.5 * (df + 1.0)) * log1p(y * y) - norm

    @property
    def mean(self):
        return self._batched(_core.where(self.df > 1.0, self.loc, math.nan))

    @property
    def mode(self):
        return self._batched(self.loc)

    @property
    def variance(self):
        df = self.df
        finite = self.scale ** 2 * df / (df - 2.0)
        return self._batched(_core.where(df > 2.0, finite,
                                         _core.where(df > 1.0, math.inf, math.nan)))

    def entropy(self):
        df = self.df
        half, half1 = 0.5 * df, 0.5 * (df + 1.0)
        return self._batched(log(self.scale)
                             + half1 * (_core.digamma(half1) - _core.digamma(half))
                             + 0.5 * log(df) + _core.betaln(half, 0.5))


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p, q):
    return log((p.scale + q.scale) ** 2 + (p.loc - q.loc) ** 2) - log(4.0 * p.scale * q.scale)


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    ratio = p.scale / q.scale
    dist = _core.abs_(p.loc - q.loc)
    return -log(ratio) + dist / q.scale + ratio * exp(-dist / p.scale) - 1.0


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p, q):
    ratio = p.scale / q.scale
    shift = (p.loc - q.loc) / q.scale
    return (-log(ratio) + shift + ratio * _EULER
            + exp(_core.lgamma(1.0 + ratio) - shift) - (1.0 + _EULER))
