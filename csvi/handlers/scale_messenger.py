"""scale: multiply log-densities (Pyro's `poutine.scale`)."""
import numpy as np

from csvi import _core
from csvi.handlers.messenger import Messenger

__all__ = ["ScaleMessenger"]


class ScaleMessenger(Messenger):
    """Multiplies the log-density of every sample site inside by `scale` (> 0).

        >>> import csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model():
        ...     csvi.sample("x", dist.Normal(0.0, 1.0), obs=0.0)
        >>> tr = handlers.trace(handlers.scale(model, scale=2.0)).get_trace()
        >>> round(float(tr.log_prob_sum()), 4)
        -1.8379
    """

    def __init__(self, fn=None, scale=1.0):
        super().__init__(fn)
        s = np.asarray(_core.value_of(scale))
        if np.any(~(s > 0)):
            raise ValueError(f"scale: scale must be positive, got {scale!r}")
        self.scale = scale if s.ndim else float(s)

    def process_message(self, msg):
        if msg.type == "sample":
            msg.scale = self.scale * msg.scale
