"""The effect-handler runtime: the message every primitive sends, the handler
stack, and `apply_stack` that runs a message through it (Pyro's
`pyro.poutine.runtime`).

Primitives (csvi.primitives) build a Message and call apply_stack; handlers
(csvi.handlers) are Messengers that read or rewrite the message on the way in
(`process_message`, innermost handler first) and on the way out
(`postprocess_message`).  With no handler active, primitives skip all of this.

Each thread has its own handler stack, so a model run in one thread never
sees the handlers of another (see docs/architecture.md, "Threads").
"""
import functools
import threading

__all__ = ["Message", "CondIndepStackFrame", "apply_stack", "am_i_wrapped", "effectful",
           "get_stack"]


class _ThreadState(threading.local):
    """Per-thread runtime state: the active handlers, outermost first."""

    def __init__(self):
        self.stack = []


_state = _ThreadState()


def get_stack():
    """The calling thread's handler stack (a list, outermost handler first)."""
    return _state.stack


class CondIndepStackFrame:
    """One plate a site sits in: its name, batch dim (negative, or None for an
    iteration of a sequential plate), full size and subsample size (None for
    a plate of arbitrary size).  Frames are equal when their names are: the
    model's and the guide's plate of one name are the same plate."""

    __slots__ = ("name", "dim", "size", "subsample_size")

    def __init__(self, name, dim, size, subsample_size):
        self.name = name
        self.dim = dim
        self.size = size
        self.subsample_size = subsample_size

    @property
    def vectorized(self):
        return self.dim is not None

    def __eq__(self, other):
        return isinstance(other, CondIndepStackFrame) and self.name == other.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"CondIndepStackFrame({self.name!r}, dim={self.dim}, size={self.size})"


class Message:
    """Everything a handler may know or change about one primitive call; the
    one place its fields are defined (dict-style access `msg["value"]` works,
    as in Pyro).

    type          "sample", "param", "subsample" (a plate's indices), or the
                  `type` of an `effectful` function
    name          site name, unique within one run of a model or guide
    fn            the distribution (sample), or the callable producing the value
    args, kwargs  extra arguments to fn
    value         the site's value; set up front for observed sites
    is_observed   obs was given (or a handler conditioned the site)
    scale         multiplier of log_prob (a subsampled plate's size/subsample_size,
                  handlers.scale)
    mask          None or a boolean array/Tensor; False entries drop out of log_prob
    cond_indep_stack  the plates (CondIndepStackFrame) around the site, innermost first
    infer         dict of inference hints (Pyro's `infer=`).  Keys csvi reads:
                  "_deterministic" (set by csvi.deterministic: the site records
                  a computed value and adds nothing to the density)
    done          a value has been produced; later handlers must not produce another
    stop          handlers further out do not see the message
    log_prob      the scaled and masked log-density, filled by Trace.compute_log_prob
    unscaled_log_prob  the same before scale and mask (what the distribution returned)
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
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key, value):
        setattr(self, key, value)

    def __contains__(self, key):
        return key in self.__slots__

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
    stack = _state.stack
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
    """Any handler active in this thread?"""
    return bool(_state.stack)


def effectful(fn=None, type=None):
    """Make `fn` a primitive: under handlers each call becomes a message of
    `type` (with `name=`, `infer=` and `obs=` keywords, as Pyro's), so handlers
    can see, replace or record it; with none active it is a plain call.

        >>> from csvi.handlers import trace
        >>> @effectful(type="my_effect")
        ... def double(x):
        ...     return 2 * x
        >>> tr = trace(lambda: double(3, name="d")).get_trace()
        >>> tr.nodes["d"]["value"], tr.nodes["d"]["type"]
        (6, 'my_effect')
    """
    if fn is None:
        return functools.partial(effectful, type=type)

    @functools.wraps(fn)
    def effect(*args, name=None, infer=None, obs=None, **kwargs):
        if not _state.stack:
            return fn(*args, **kwargs) if obs is None else obs
        msg = Message(type, name, fn, args, kwargs, value=obs, is_observed=obs is not None,
                      infer=infer)
        apply_stack(msg)
        return msg.value

    return effect
