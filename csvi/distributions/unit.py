"""Unit: the trivial distribution behind `csvi.factor` (a log-density term)."""
import numpy as np

from csvi import _core, constraints
from csvi.distributions.distribution import Distribution
from csvi.distributions.util import expand_to
from csvi.distributions.validation import as_real, check_args, validate_default


class Unit(Distribution):
    """Its only value is empty (event shape (0,)); log_prob is `log_factor`,
    broadcast to the batch shape, with gradients flowing into it."""

    arg_constraints = {"log_factor": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, log_factor, validate_args=None):
        self.log_factor = lf = as_real(log_factor, "Unit", "log_factor")
        self._batch_shape = tuple(lf.shape)
        self._event_shape = (0,)
        self._validate = validate_default(validate_args)
        if self._validate:
            check_args(self, ("log_factor",), (lf,))

    def expand(self, batch_shape):
        batch_shape = tuple(batch_shape)
        return Unit(expand_to(self.log_factor, batch_shape), self._validate)

    def _draw(self, shape, reparameterized):
        return _core.astensor(np.empty(shape))

    def log_prob(self, value):
        shape = tuple(np.shape(_core.value_of(value)))[:-1]
        return expand_to(self.log_factor, _core.broadcast_shapes(shape, self._batch_shape))
