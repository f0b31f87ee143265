"""trace: record a run site by site (Pyro's `poutine.trace`)."""
from csvi import _core
from csvi.handlers.messenger import Messenger
from csvi.handlers.trace_struct import Trace

__all__ = ["TraceMessenger"]


class TraceMessenger(Messenger):
    """Records every sample, param and subsample site of a run into a Trace,
    and, when it wraps a function, its return value as the site "_RETURN".
    With `param_only=True` only param sites are recorded (Pyro's way to
    collect the params a loss touched, for a hand-written training loop).

        >>> import csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model():
        ...     csvi.sample("z", dist.Normal(0.0, 1.0))
        >>> tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
        >>> list(tr.nodes), tr.nodes["z"]["type"]
        (['z', '_RETURN'], 'sample')
    """

    # compiled (csvi/_messages.pxi): an eager step traces guide and model.
    # __init__(fn=None, param_only=False); __enter__ starts a fresh Trace;
    # _run records the return value as "_RETURN"; get_trace(*args, **kwargs)
    # runs the wrapped function and returns its Trace.
    __init__ = _core.trace_init
    __enter__ = _core.trace_enter
    _run = _core.trace_run
    get_trace = _core.trace_get_trace
    postprocess_message = _core.trace_postprocess_message  # the most-run hook

    def _reset(self):
        self.trace = Trace()
