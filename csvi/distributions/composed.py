"""ComposedFamily: a family whose log-density and draws are a few tape ops
written in Python (DESIGN.md, "compose first, fuse second"), so gradients,
particles and compiled replay come from the ops with no kernel of its own.

It takes its parameters through Family._set_params (the one validation
path), checks a log_prob value as every family does, and leaves the
arithmetic to the subclass: `_log_prob(value)` on a checked value Tensor and
`_draw(shape, reparameterized)` from the standard noises of
csvi.distributions.draws.
"""
from csvi import _core
from csvi.distributions.family import Family
from csvi.distributions.util import expand_to
from csvi.distributions.validation import as_real

Tensor = _core.Tensor


class ComposedFamily(Family):
    """Subclasses implement `_log_prob(value)`, whose ops broadcast the value
    with the parameters, and `_draw`."""

    def log_prob(self, value):
        if type(value) is not Tensor:
            value = as_real(value, f"{type(self).__name__}.log_prob", "value")
        # the shape first (the error names the family): a support that
        # depends on the parameters broadcasts the value against them
        if value.shape != self._batch_shape or self._event_shape:
            self._value_shape(value.shape)
        return self._log_prob(self._as_value(value))

    def _log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__}._log_prob is not implemented")

    def _batched(self, x):
        """x (a parameter expression) broadcast to batch_shape: what mean,
        variance and entropy return."""
        return expand_to(x, self._batch_shape)
