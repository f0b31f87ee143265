"""Draws for composed families, each recorded as one tape op (src_c/draws.c)
so that a compiled program redraws it every step from the run's generator.

Reparameterized samplers transform standard noise with differentiable ops
(Cauchy: loc + scale * standard_cauchy(shape)); the others draw with NumPy's
C samplers.  None of these carries a gradient.  Callers validate parameters
(families do when validation is on); a value outside a sampler's domain is a
ValueError here, never a hang or a silent NaN.
"""
from csvi import _core
from csvi.distributions.util import apply, astensor, expand_to

__all__ = [
    "binomial", "multinomial", "standard_cauchy", "standard_exponential", "standard_normal",
    "standard_uniform", "vonmises",
]

_OP = _core.OPCODES
OP_DRAW_NOISE = _OP["DRAW_NOISE"]
OP_DRAW_BINOMIAL = _OP["DRAW_BINOMIAL"]
OP_DRAW_VONMISES = _OP["DRAW_VONMISES"]
OP_DRAW_MULTINOMIAL = _OP["DRAW_MULTINOMIAL"]

_NORMAL, _UNIFORM, _EXPONENTIAL, _CAUCHY = (0,), (1,), (2,), (3,)


def standard_normal(shape):
    return apply(OP_DRAW_NOISE, (), tuple(shape), False, _NORMAL)


def standard_uniform(shape):
    """Uniform on the open interval (0, 1), so inverse CDFs stay finite."""
    return apply(OP_DRAW_NOISE, (), tuple(shape), False, _UNIFORM)


def standard_exponential(shape):
    return apply(OP_DRAW_NOISE, (), tuple(shape), False, _EXPONENTIAL)


def standard_cauchy(shape):
    return apply(OP_DRAW_NOISE, (), tuple(shape), False, _CAUCHY)


def binomial(total_count, probs, shape):
    """Binomial(total_count, probs) counts of `shape` (the parameters broadcast
    to it); total_count whole and >= 0, probs in [0, 1]."""
    return apply(OP_DRAW_BINOMIAL, (total_count, probs), tuple(shape), False)


def vonmises(loc, concentration, shape):
    """Von Mises angles in [-pi, pi] of `shape` (the parameters broadcast to it)."""
    return apply(OP_DRAW_VONMISES, (loc, concentration), tuple(shape), False)


def multinomial(total_count, probs, shape):
    """Multinomial counts of `shape` = batch + (K,): total_count broadcasts to
    the batch, probs (..., K) to `shape` (they need not sum to 1)."""
    shape = tuple(shape)
    if not shape:
        raise ValueError("multinomial: the draw's shape needs a category dim (K,)")
    probs = expand_to(astensor(probs), shape)
    total_count = expand_to(astensor(total_count), shape[:-1])
    return apply(OP_DRAW_MULTINOMIAL, (total_count, probs), shape, False)
