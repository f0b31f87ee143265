"""The effect-handler runtime: the message every primitive sends, the global
handler stack, and `apply_stack` that runs a message through it.

Primitives (csvi.primitives) build a Message and call apply_stack; handlers
(csvi.handlers) are Messengers that read or rewrite the message on the way in
(`process_message`, innermost handler first) and on the way out
(`postprocess_message`).  With no handler active, primitives skip all of this.
"""

__all__ = ["Message", "Messenger", "apply_stack", "am_i_wrapped", "CondIndepStackFrame"]

# Handlers currently active, outermost first.
_STACK = []


class CondIndepStackFrame:
    """One plate a site sits in: its name, batch dim (negative), full size and
    subsample size.  `dim is None` marks a plate used only for scaling."""

    __slots__ = ("name", "dim", "size", "subsample_size")

    def __init__(self, name, dim, size, subsample_size):
        self.name = name
        self.dim = dim
        self.size = size
        self.subsample_size = subsample_size

    def __eq__(self, other):
        return isinstance(other, CondIndepStackFrame) and self.name == other.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"CondIndepStackFrame({self.name!r}, dim={self.dim}, size={self.size})"


class Message:
    """Everything a handler may know or change about one primitive call.

    type        "sample", "param", "subsample" (a plate's indices) or "factor"-like
                sample sites (sample with an unnormalized distribution)
    name        site name, unique within one run of a model or guide
    fn          distribution (sample), or the callable producing the value
    args, kwargs  extra arguments to fn
    value       the site's value; set up front for observed sites
    is_observed obs was given (or a handler conditioned the site)
    scale       multiplier of log_prob (plates' size/subsample_size, handlers.scale)
    mask        None or a boolean array/Tensor; False entries drop out of log_prob
    cond_indep_stack  the plates (CondIndepStackFrame) around the site, innermost first
    infer       dict of inference hints (Pyro's `infer=`)
    done        a value has been produced; later handlers must not produce another
    stop        handlers further out do not see the message
    log_prob    the scaled and masked log-density, filled by handlers.trace
    """

    __slots__ = ("type", "name", "fn", "args", "kwargs", "value", "is_observed", "scale",
                 "mask", "cond_indep_stack", "infer", "done", "stop", "log_prob",
                 "unscaled_log_prob")

    def __init__(self, type, name, fn, args=(), kwargs=None, value=None, is_observed=False,
                 infer=None):
        self.type = type
        self.name = name
        self.fn = fn
        self.args = args
        self.kwargs = kwargs if kwargs is not None else {}
        self.value = value
        self.is_observed = is_observed
        self.scale = 1.0
        self.mask = None
        self.cond_indep_stack = ()
        self.infer = infer if infer is not None else {}
        self.done = False
        self.stop = False
        self.log_prob = None
        self.unscaled_log_prob = None

    def __getitem__(self, key):
        """Pyro-style dict access (`site["value"]`)."""
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key, value):
        setattr(self, key, value)

    def get(self, key, default=None):
        return getattr(self, key, default)

    def __repr__(self):
        return f"Message(type={self.type!r}, name={self.name!r}, is_observed={self.is_observed})"


def _default_process(msg):
    """What happens when no handler produced a value: draw or compute it."""
    if msg.type == "sample":
        fn = msg.fn
        msg.value = fn.rsample(*msg.args) if fn.has_rsample else fn.sample(*msg.args)
    else:
        msg.value = msg.fn(*msg.args, **msg.kwargs)


def apply_stack(msg):
    """Run msg through the handlers innermost-first, produce its value, then
    let the same handlers post-process it outermost-last.  (Hooks a handler
    does not define are None and skipped.)"""
    stack = _STACK
    start = len(stack)
    while start:
        start -= 1
        hook = stack[start].process_message
        if hook is not None:
            hook(msg)
            if msg.stop:
                break
    if msg.value is None and not msg.done:
        _default_process(msg)
    msg.done = True
    for handler in stack[start:]:
        hook = handler.postprocess_message
        if hook is not None:
            hook(msg)
    return msg


def am_i_wrapped():
    return bool(_STACK)


class Messenger:
    """Base handler: a context manager that sits on the stack, or wraps a function.

    Subclasses define `process_message(msg)` and/or `postprocess_message(msg)`;
    a hook left as None costs nothing per message.
    """

    process_message = None
    postprocess_message = None

    def __init__(self, fn=None):
        self.fn = fn

    def __enter__(self):
        _STACK.append(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        if _STACK and _STACK[-1] is self:
            _STACK.pop()
        else:  # an inner handler failed to exit cleanly; remove just this one
            _STACK.remove(self)
        return False

    def __call__(self, *args, **kwargs):
        if self.fn is None:
            # used as a decorator factory: handler(fn)
            self.fn = args[0]
            return self
        with self:
            return self.fn(*args, **kwargs)
