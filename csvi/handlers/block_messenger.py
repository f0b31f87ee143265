"""block: hide sites from outer handlers (Pyro's `poutine.block`)."""
from csvi.handlers.messenger import Messenger

__all__ = ["BlockMessenger"]


class BlockMessenger(Messenger):
    """Hides sites from handlers outside it (their messages stop here).

    By default everything is hidden; `hide`/`hide_types` hide just those
    (everything else shows), `expose`/`expose_types` show just those, and
    `hide_fn(msg)` / `expose_fn(msg)` decide per message.

        >>> import csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model():
        ...     csvi.sample("a", dist.Normal(0.0, 1.0))
        ...     csvi.sample("b", dist.Normal(0.0, 1.0))
        >>> list(handlers.trace(handlers.block(model, hide=["a"])).get_trace().nodes)
        ['b', '_RETURN']
    """

    def __init__(self, fn=None, hide_fn=None, expose_fn=None, hide_all=True, expose_all=False,
                 hide=None, expose=None, hide_types=None, expose_types=None):
        super().__init__(fn)
        if hide_fn is not None:
            self.hide_fn = hide_fn
        elif expose_fn is not None:
            self.hide_fn = lambda msg: not expose_fn(msg)
        else:
            self.hide_fn = _default_hide_fn(hide_all, expose_all, hide, expose, hide_types,
                                            expose_types)

    def process_message(self, msg):
        if self.hide_fn(msg):
            msg.stop = True


def _default_hide_fn(hide_all, expose_all, hide, expose, hide_types, expose_types):
    if hide_all and expose_all:
        raise ValueError("block: hide_all and expose_all cannot both be True")
    hide, expose = set(hide or ()), set(expose or ())
    hide_types, expose_types = set(hide_types or ()), set(expose_types or ())
    if hide & expose or hide_types & expose_types:
        raise ValueError("block: a site or type cannot be both hidden and exposed")
    if hide or hide_types:
        hide_all = False
    if expose or expose_types:
        hide_all = True
    if expose_all:
        hide_all = False

    def hide_fn(msg):
        if msg.name in expose or msg.type in expose_types:
            return False
        if msg.name in hide or msg.type in hide_types:
            return True
        return hide_all

    return hide_fn
