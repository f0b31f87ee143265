"""trace: record a run site by site (Pyro's `poutine.trace`)."""
from csvi import _core
from csvi._core import Message
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

    def __init__(self, fn=None, param_only=False):
        super().__init__(fn)
        self.param_only = bool(param_only)
        self.trace = Trace()

    def __enter__(self):
        self.trace = Trace()
        return super().__enter__()

    postprocess_message = _core.trace_postprocess_message  # compiled: the most-run hook

    def _reset(self):
        self.trace = Trace()

    def _run(self, *args, **kwargs):
        value = self.fn(*args, **kwargs)
        self.trace.nodes["_RETURN"] = Message("return", "_RETURN", None, value=value)
        return value

    def get_trace(self, *args, **kwargs):
        """Run the wrapped function and return its Trace."""
        self(*args, **kwargs)
        return self.trace
