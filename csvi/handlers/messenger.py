"""Messenger: the base of every effect handler (Pyro's
`pyro.poutine.messenger.Messenger`)."""
from csvi import _core

__all__ = ["Messenger"]


class Messenger:
    """A handler: a context manager that sits on the handler stack, or a
    wrapper of a function (`Messenger(fn)(*args)` runs fn inside it).

    Subclasses define `process_message(msg)` and/or `postprocess_message(msg)`
    (a hook left as None costs nothing per message), or, as in Pyro,
    `_process_message` / `_postprocess_message` or per-type methods
    `_pyro_sample(msg)`, `_pyro_post_sample(msg)`, `_pyro_param(msg)`, ... .

        >>> import csvi, csvi.distributions as dist
        >>> class LogJoint(Messenger):
        ...     def __enter__(self):
        ...         self.total = 0.0
        ...         return super().__enter__()
        ...     def _pyro_post_sample(self, msg):
        ...         self.total += float(msg["fn"].log_prob(msg["value"]))
        >>> with LogJoint() as h:
        ...     _ = csvi.sample("x", dist.Normal(0.0, 1.0), obs=0.0)
        >>> round(h.total, 4)
        -0.9189

    On the way out of a `with` block that raised, the handler also removes
    every handler entered after it and not exited (as Pyro's does), so a
    failed model run never leaves handlers on the stack.
    """

    process_message = None
    postprocess_message = None
    fn = None  # (Pyro-style subclasses may skip Messenger.__init__)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "_process_message" in own:
            cls.process_message = own["_process_message"]
        if "_postprocess_message" in own:
            cls.postprocess_message = own["_postprocess_message"]
        hooks = [name for name in dir(cls) if name.startswith("_pyro_")]
        post = {name[len("_pyro_post_"):]: name for name in hooks
                if name.startswith("_pyro_post_")}
        pre = {name[len("_pyro_"):]: name for name in hooks
               if not name.startswith("_pyro_post_")}
        if pre and "process_message" not in own:
            cls.process_message = _dispatcher(pre, cls.process_message)
        if post and "postprocess_message" not in own:
            cls.postprocess_message = _dispatcher(post, cls.postprocess_message)

    # compiled (csvi/_messages.pxi): a step makes and enters a handler for
    # every trace, replay and plate.  __init__(fn=None) keeps fn; __exit__
    # also removes, after an exception, every handler entered after this one
    # and not exited; __call__ restores the stack's depth even after a Ctrl-C
    # between __enter__'s push and return.
    __init__ = _core.messenger_init
    __enter__ = _core.messenger_enter
    __exit__ = _core.messenger_exit
    __call__ = _core.messenger_call

    def _reset(self):
        """Forget what this handler saw of an abandoned run (handlers.queue)."""

    def _run(self, *args, **kwargs):
        """The wrapped call, inside this handler."""
        return self.fn(*args, **kwargs)


def _dispatcher(methods, fallback):
    """A hook calling the `_pyro_...` method for the message's type, or the
    inherited hook for other types."""

    def hook(self, msg):
        name = methods.get(msg.type)
        if name is not None:
            return getattr(self, name)(msg)
        if fallback is not None:
            return fallback(self, msg)
        return None

    return hook
