"""queue: enumerate a model's discrete choices, one complete run per call
(Pyro's `poutine.queue`), e.g. for exact marginals by brute force."""
import functools

from csvi.handlers.escape_messenger import EscapeMessenger, NonlocalExit
from csvi.handlers.replay_messenger import ReplayMessenger
from csvi.handlers.trace_messenger import TraceMessenger

__all__ = ["queue", "discrete_escape", "enum_extend"]


def discrete_escape(trace, msg):
    """Escape at an unobserved sample site with an enumerable support that
    the partial trace has not decided yet."""
    return (msg.type == "sample" and not msg.is_observed and msg.name not in trace
            and getattr(msg.fn, "has_enumerate_support", False))


def enum_extend(trace, msg, num_samples=None):
    """The partial traces extending `trace` by each value of `msg`'s support
    (the first `num_samples + 1` of them when num_samples >= 0)."""
    extended = []
    for i, value in enumerate(msg.fn.enumerate_support()):
        if num_samples is not None and 0 <= num_samples < i:
            break
        tr = trace.copy()
        site = msg.copy()
        site.value = value
        tr.nodes[msg.name] = site
        extended.append(tr)
    return extended


def queue(fn=None, queue=None, max_tries=None, extend_fn=None, escape_fn=None,
          num_samples=None):
    """Each call of the returned function takes a partial trace from `queue`
    (a `queue.Queue` seeded with an empty Trace), replays it, and either
    finishes the run -- returning fn's value -- or, at the first undecided
    discrete site, puts the partial traces for each of its values back on the
    queue and tries the next one (at most `max_tries` times).

        >>> import queue as q, csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model():
        ...     return float(csvi.sample("a", dist.Bernoulli(0.3)))
        >>> todo = q.Queue(); todo.put(handlers.Trace())
        >>> enum_model = handlers.queue(model, queue=todo)
        >>> sorted(enum_model() for _ in range(2)), todo.empty()
        ([0.0, 1.0], True)
    """
    if queue is None:
        raise ValueError("queue: a queue of partial traces is required")
    max_tries = int(1e6) if max_tries is None else int(max_tries)
    extend_fn = enum_extend if extend_fn is None else extend_fn
    escape_fn = discrete_escape if escape_fn is None else escape_fn

    def wrapper(wrapped):
        @functools.wraps(wrapped)
        def run(*args, **kwargs):
            for _ in range(max_tries):
                if queue.empty():
                    raise ValueError("queue: the queue is empty (every execution has "
                                     "been enumerated)")
                partial = queue.get()
                tracer = TraceMessenger(EscapeMessenger(
                    ReplayMessenger(wrapped, trace=partial),
                    escape_fn=functools.partial(escape_fn, partial)))
                try:
                    return tracer(*args, **kwargs)
                except NonlocalExit as exit_:
                    exit_.reset_stack()
                    for tr in extend_fn(tracer.trace.copy(), exit_.site,
                                        num_samples=num_samples):
                        queue.put(tr)
            raise ValueError(f"queue: max_tries ({max_tries}) exceeded")

        return run

    return wrapper(fn) if fn is not None else wrapper
