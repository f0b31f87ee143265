"""replay: reuse a trace's draws (Pyro's `poutine.replay`)."""
from csvi import _core
from csvi.handlers.messenger import Messenger

__all__ = ["ReplayMessenger"]


class ReplayMessenger(Messenger):
    """Reuses the values of latent sites (and plate indices) from `trace`,
    e.g. running the model on the guide's draws.

        >>> import csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model():
        ...     return csvi.sample("z", dist.Normal(0.0, 1.0))
        >>> guide_tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
        >>> z = handlers.replay(model, trace=guide_tr)()
        >>> float(z) == float(guide_tr.nodes["z"]["value"])
        True
    """

    def __init__(self, fn=None, trace=None):
        super().__init__(fn)
        if trace is None:
            raise ValueError("replay: a trace is required")
        self.trace = trace

    process_message = _core.replay_process_message  # compiled: run for every latent site
