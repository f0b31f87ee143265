"""infer_config: set `infer` options of sites from a function of the site
(Pyro's `poutine.infer_config`; `config_enumerate` is built on it)."""
from csvi.handlers.messenger import Messenger

__all__ = ["InferConfigMessenger"]


class InferConfigMessenger(Messenger):
    """Updates each sample and param site's `infer` dict with
    `config_fn(site)` (a dict), before inner handlers see it."""

    def __init__(self, fn=None, config_fn=None):
        super().__init__(fn)
        if not callable(config_fn):
            raise TypeError(f"infer_config: config_fn must be a callable returning a dict, "
                            f"got {config_fn!r}")
        self.config_fn = config_fn

    def process_message(self, msg):
        if msg.type not in ("sample", "param"):
            return
        update = self.config_fn(msg)
        if update:
            msg.infer = {**msg.infer, **update}
