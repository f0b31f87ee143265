"""VonMises(loc, concentration): the circular normal distribution on angles,
density exp(k cos(x - loc)) / (2 pi I0(k)).

The density composes tape ops (the COS op of src_c/continuous.def, and
i0e for the normalizer in a form that does not overflow for large k); the
sampler is NumPy's von Mises rejection sampler (draws.vonmises), with no
reparameterized gradient, as in torch.  mean and variance are the circular
ones (loc and 1 - I1(k)/I0(k)), as torch's.
"""
import math

from csvi import _core, constraints
from csvi.distributions import draws
from csvi.distributions.composed import ComposedFamily

__all__ = ["VonMises"]

_LOG_2PI = math.log(2.0 * math.pi)
OP_COS = _core.OPCODES["COS"]


class VonMises(ComposedFamily):
    """VonMises(loc, concentration); draws lie in [-pi, pi] (as torch's),
    and log_prob accepts any real angle."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self._set_params(validate_args, ("loc", "concentration"), loc, concentration)

    def _draw(self, shape, reparameterized):
        return draws.vonmises(self.loc.detach(), self.concentration.detach(), shape)

    def _log_prob(self, value):
        k = self.concentration
        # log I0(k) = log i0e(k) + k
        return k * (_core.unary(OP_COS, value - self.loc) - 1.0) - _LOG_2PI - _core.log(
            _core.i0e(k))

    @property
    def mean(self):
        return self._batched(self.loc)

    @property
    def mode(self):
        return self._batched(self.loc)

    @property
    def variance(self):
        k = self.concentration
        return self._batched(1.0 - _core.i1e(k) / _core.i0e(k))

    def entropy(self):
        k = self.concentration
        i0e = _core.i0e(k)
        return self._batched(_LOG_2PI + _core.log(i0e) + k * (1.0 - _core.i1e(k) / i0e))
