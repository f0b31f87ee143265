"""mask: drop log-density entries (Pyro's `poutine.mask`)."""
import numpy as np

from csvi import _core
from csvi.handlers.messenger import Messenger

__all__ = ["MaskMessenger"]


class MaskMessenger(Messenger):
    """Drops the log-density of sample sites where `mask` is False.

        >>> import numpy as np, csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model():
        ...     with csvi.plate("data", 2):
        ...         csvi.sample("x", dist.Normal(0.0, 1.0), obs=np.zeros(2))
        >>> tr = handlers.trace(handlers.mask(model, mask=np.array([True, False]))).get_trace()
        >>> round(float(tr.log_prob_sum()), 4)
        -0.9189
    """

    def __init__(self, fn=None, mask=None):
        super().__init__(fn)
        if mask is None:
            raise ValueError("mask: a boolean mask is required")
        m = np.asarray(_core.value_of(mask))
        if m.dtype != bool and not np.isin(m, (0, 1)).all():
            raise ValueError(f"mask: values must be boolean, got {mask!r}")
        # a Tensor mask stays one, so a compiled loop recomputes it each step
        # (e.g. from a minibatch's sequence lengths)
        self.mask = mask.detach() if isinstance(mask, _core.Tensor) else m.astype(bool)

    def process_message(self, msg):
        if msg.type == "sample":
            msg.mask = self.mask if msg.mask is None else _both(self.mask, msg.mask)


def _both(a, b):
    if isinstance(a, _core.Tensor) or isinstance(b, _core.Tensor):
        return _core.astensor(a) * _core.astensor(b)  # 1 where both hold
    return np.logical_and(a, b)
