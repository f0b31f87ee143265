"""The effect-handler runtime: the message every primitive sends, the handler
stack, and `apply_stack` that runs a message through it (Pyro's
`pyro.poutine.runtime`).

Primitives (csvi.primitives) build a Message and call apply_stack; handlers
(csvi.handlers) are Messengers that read or rewrite the message on the way in
(`process_message`, innermost handler first) and on the way out
(`postprocess_message`).  With no handler active, primitives skip all of this.

Each thread has its own handler stack (kept with its tapes and generator in
csvi/_tape.pxi's per-thread state), so a model run in one thread never sees
the handlers of another (docs/architecture.md, "Threads and determinism").
"""
import functools

from csvi import _core
from csvi._core import Message

__all__ = ["Message", "CondIndepStackFrame", "apply_stack", "am_i_wrapped", "effectful",
           "get_stack"]


get_stack = _core.handler_stack  # this thread's handlers, outermost first


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


def apply_stack(msg):
    """Run msg through this thread's handlers: `process_message` innermost
    first, then its value is produced (unless a handler did), then
    `postprocess_message` outermost first.  Returns msg."""
    return _core.apply_stack(msg, get_stack())


def am_i_wrapped():
    """Any handler active in this thread?"""
    return bool(get_stack())


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
        stack = get_stack()
        if not stack:
            return fn(*args, **kwargs) if obs is None else obs
        return _core.send(type, name, fn, args, kwargs, obs, obs is not None, infer, stack)

    return effect
