"""substitute: replace param (and latent) values (Pyro's `poutine.substitute`)."""
from csvi import _core
from csvi.handlers.messenger import Messenger

__all__ = ["SubstituteMessenger"]


class SubstituteMessenger(Messenger):
    """Replaces the values of param sites (and unobserved sample sites) by
    `data[name]` or `substitute_fn(msg)` (None leaves the site alone).

        >>> import csvi
        >>> from csvi import handlers
        >>> csvi.clear_param_store()
        >>> with handlers.substitute(data={"w": 3.0}):
        ...     w = csvi.param("w", 1.0)
        >>> float(w)
        3.0
    """

    def __init__(self, fn=None, data=None, substitute_fn=None):
        super().__init__(fn)
        if (data is None) == (substitute_fn is None):
            raise ValueError("substitute: give exactly one of data and substitute_fn")
        self.data = data
        self.substitute_fn = substitute_fn

    def process_message(self, msg):
        if msg.type not in ("param", "sample") or (msg.type == "sample" and msg.is_observed):
            return
        if self.data is not None:
            if msg.name not in self.data:
                return
            value = self.data[msg.name]
        else:
            value = self.substitute_fn(msg)
            if value is None:
                return
        msg.value = value if msg.type == "sample" else _core.astensor(value)
        msg.done = True
