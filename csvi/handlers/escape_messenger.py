"""escape: leave a run at a chosen site (Pyro's `poutine.escape`)."""
from csvi.handlers.block_messenger import BlockMessenger
from csvi.handlers.messenger import Messenger
from csvi.handlers.runtime import get_stack

__all__ = ["EscapeMessenger", "NonlocalExit"]


class NonlocalExit(Exception):
    """Raised by `escape` at the site `site`, ending the run there."""

    def __init__(self, site):
        super().__init__(f"escaped at site '{site.name}'")
        self.site = site

    def reset_stack(self):
        """Let the handlers outside the escape forget the abandoned run (a
        trace drops its sites), up to a `block` that hides the site."""
        for handler in reversed(get_stack()):
            handler._reset()
            if isinstance(handler, BlockMessenger) and handler.hide_fn(self.site):
                break


class EscapeMessenger(Messenger):
    """Stops the run with NonlocalExit at the first sample site for which
    `escape_fn(msg)` holds (the building block of `handlers.queue`).

        >>> import csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model():
        ...     csvi.sample("a", dist.Normal(0.0, 1.0))
        ...     csvi.sample("b", dist.Bernoulli(0.5))
        >>> try:
        ...     handlers.escape(model, escape_fn=lambda msg: msg["name"] == "b")()
        ... except handlers.NonlocalExit as e:
        ...     print(e.site["name"])
        b
    """

    def __init__(self, fn=None, escape_fn=None):
        super().__init__(fn)
        if escape_fn is None:
            raise ValueError("escape: escape_fn is required")
        self.escape_fn = escape_fn

    def process_message(self, msg):
        if msg.type == "sample" and self.escape_fn(msg):
            msg.done = True
            raise NonlocalExit(msg)
