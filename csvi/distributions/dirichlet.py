"""Dirichlet(concentration): the distribution on the probability simplex,
event_shape the last dim of concentration.

A draw normalizes independent Gamma(concentration, 1) draws; Gamma's
rsample carries the implicit gradient in concentration (through the Gamma
CDF, src_c/dist_gamma_grad.c), so the normalized draw is reparameterized
with no kernel of its own.  The density, moments, entropy and the
Dirichlet-Dirichlet KL compose lgamma/digamma/xlogy tape ops.
"""
import numpy as np

from csvi import _core, constraints
from csvi.distributions.composed import ComposedFamily
from csvi.distributions.continuous import Gamma
from csvi.distributions.kl import register_kl

__all__ = ["Dirichlet"]

lgamma, digamma = _core.lgamma, _core.digamma
_TINY = float(np.finfo(np.float64).tiny)


class Dirichlet(ComposedFamily):
    """Dirichlet(concentration): concentration of shape batch_shape + (K,), K >= 1."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        self._set_params(validate_args, ("concentration",), concentration)
        shape = self._batch_shape
        if not shape:
            raise ValueError("Dirichlet: concentration must have at least one dimension "
                             "(the K categories), got a number")
        self._batch_shape, self._event_shape = shape[:-1], shape[-1:]

    def _draw(self, shape, reparameterized):
        gamma = Gamma(self.concentration, 1.0, validate_args=False)
        # a tiny concentration may draw 0 in every category: keep the ratio defined
        g = _core.clip(gamma._draw(shape, reparameterized), _TINY)
        return g / _core.sum(g, -1, keepdims=True)

    def _log_prob(self, value):
        a = self.concentration
        return (_core.sum(_core.xlogy(a - 1.0, value), -1) + lgamma(_core.sum(a, -1))
                - _core.sum(lgamma(a), -1))

    @property
    def mean(self):
        a = self.concentration
        return a / _core.sum(a, -1, keepdims=True)

    @property
    def mode(self):
        """(alpha - 1) / (alpha0 - K) clipped at 0, as torch; a row whose
        concentrations are all below 1 peaks at the corner of its largest one."""
        a = self.concentration
        m = _core.clip(a - 1.0, 0.0)
        alpha = _core.value_of(a)
        corner = (alpha < 1.0).all(-1, keepdims=True)
        total = _core.sum(m, -1, keepdims=True) + corner.astype(float)  # never 0
        one_hot = alpha.argmax(-1)[..., None] == np.arange(alpha.shape[-1])
        return _core.where(corner, one_hot.astype(float), m / total)

    @property
    def variance(self):
        a = self.concentration
        a0 = _core.sum(a, -1, keepdims=True)
        return a * (a0 - a) / (a0 ** 2 * (a0 + 1.0))

    def entropy(self):
        a = self.concentration
        k = a.shape[-1]
        a0 = _core.sum(a, -1)
        return (_core.sum(lgamma(a), -1) - lgamma(a0) - (k - a0) * digamma(a0)
                - _core.sum((a - 1.0) * digamma(a), -1))


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    a, b = p.concentration, q.concentration
    a0 = _core.sum(a, -1)
    return (lgamma(a0) - lgamma(_core.sum(b, -1)) - _core.sum(lgamma(a) - lgamma(b), -1)
            + _core.sum((a - b) * (digamma(a) - digamma(_core.expand_dims(a0, -1))), -1))
