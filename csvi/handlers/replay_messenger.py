"""replay: reuse a trace's draws (Pyro's `poutine.replay`)."""
from csvi.distributions.validation import check_replayed
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

    def process_message(self, msg):
        if msg.type not in ("sample", "subsample"):
            return
        old = self.trace.nodes.get(msg.name)
        if old is None or msg.is_observed:
            return
        if old.type != msg.type:
            raise ValueError(f"replay: site '{msg.name}' is a {old.type} site in the replayed "
                             f"trace but a {msg.type} site here")
        if old.is_observed:
            raise ValueError(f"replay: site '{msg.name}' is observed in the replayed trace, "
                             "so there is no draw to reuse")
        if msg.type == "sample":
            check_replayed(msg.name, msg.fn, old.value,
                           enumerated="_enumerate_dim" in old.infer)
        msg.value = old.value
        msg.infer = dict(old.infer)  # handlers of this run may add fields
        msg.done = True
