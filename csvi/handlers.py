"""Effect handlers (Pyro's `poutine`, NumPyro's `handlers`).

Each is a Messenger: use it as a context manager (`with handlers.scale(scale=2.):`)
or wrap a function (`handlers.trace(model).get_trace(*args)`).

    >>> from csvi import handlers, sample, distributions as dist
    >>> def model():
    ...     return sample("z", dist.Normal(0.0, 1.0))
    >>> tr = handlers.trace(handlers.condition(model, data={"z": 0.5})).get_trace()
    >>> float(tr.nodes["z"]["value"])
    0.5
"""
import numpy as np

from csvi import _core
from csvi.distributions.validation import check_replayed
from csvi.runtime import Messenger
from csvi.trace_struct import Trace

__all__ = ["trace", "replay", "condition", "substitute", "block", "seed", "scale", "mask"]


class trace(Messenger):
    """Records every sample/param/subsample site of a run into a Trace."""

    def __init__(self, fn=None):
        super().__init__(fn)
        self.trace = Trace()

    def __enter__(self):
        self.trace = Trace()
        return super().__enter__()

    def postprocess_message(self, msg):
        nodes = self.trace.nodes
        if msg.name in nodes:
            self.trace.add_node(msg)  # a repeated name: add_node decides
        else:
            nodes[msg.name] = msg

    def get_trace(self, *args, **kwargs):
        """Run the wrapped function and return its Trace."""
        self(*args, **kwargs)
        return self.trace


class replay(Messenger):
    """Reuses the values of latent sites (and plate indices) from `trace`, e.g.
    running the model on the guide's draws."""

    def __init__(self, fn=None, trace=None):
        super().__init__(fn)
        if trace is None:
            raise ValueError("replay: a trace is required")
        self.trace = trace

    def process_message(self, msg):
        if msg.type not in ("sample", "subsample"):
            return
        old = self.trace.nodes.get(msg.name)
        if old is None or msg.is_observed:
            return
        if old.type != msg.type or old.is_observed:
            raise ValueError(f"replay: site '{msg.name}' is observed or of another type in "
                             "the replayed trace, so there is no draw to reuse")
        if msg.type == "sample":
            check_replayed(msg.name, msg.fn, old.value)
        msg.value = old.value
        msg.infer = old.infer
        msg.done = True


class condition(Messenger):
    """Makes the named sample sites observed at the given values."""

    def __init__(self, fn=None, data=None):
        super().__init__(fn)
        if data is None:
            raise ValueError("condition: data (a dict of site name to value) is required")
        self.data = data

    def process_message(self, msg):
        if msg.type == "sample" and msg.name in self.data:
            msg.value = self.data[msg.name]
            msg.is_observed = True
            msg.done = True


class substitute(Messenger):
    """Replaces the values of param sites (and unobserved sample sites) by
    `data[name]` or `substitute_fn(msg)` (None leaves the site alone)."""

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


class block(Messenger):
    """Hides sites from handlers outside it (their messages stop here).

    By default everything is hidden; `hide`/`hide_types` hide just those
    (everything else shows), `expose`/`expose_types` show just those, and
    `hide_fn(msg)` / `expose_fn(msg)` decide per message."""

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


class seed(Messenger):
    """Runs with csvi's generator seeded by `rng_seed`, restoring the previous
    generator afterwards, so the wrapped draws are reproducible."""

    def __init__(self, fn=None, rng_seed=None):
        super().__init__(fn)
        if rng_seed is None or isinstance(rng_seed, bool) or int(rng_seed) != rng_seed \
                or rng_seed < 0:
            raise ValueError(f"seed: rng_seed must be a nonnegative integer, got {rng_seed!r}")
        self.rng_seed = int(rng_seed)
        self._saved = []

    def __enter__(self):
        self._saved.append(_core.get_generator())
        _core.set_generator(np.random.Generator(np.random.PCG64(self.rng_seed)))
        return super().__enter__()

    def __exit__(self, *exc):
        _core.set_generator(self._saved.pop())
        return super().__exit__(*exc)


class scale(Messenger):
    """Multiplies the log-density of every sample site inside by `scale` (> 0)."""

    def __init__(self, fn=None, scale=1.0):
        super().__init__(fn)
        s = np.asarray(_core.value_of(scale))
        if np.any(~(s > 0)):
            raise ValueError(f"scale: scale must be positive, got {scale!r}")
        self.scale = scale if s.ndim else float(s)

    def process_message(self, msg):
        if msg.type == "sample":
            msg.scale = self.scale * msg.scale


class mask(Messenger):
    """Drops the log-density of sample sites where `mask` is False."""

    def __init__(self, fn=None, mask=None):
        super().__init__(fn)
        if mask is None:
            raise ValueError("mask: a boolean mask is required")
        m = np.asarray(_core.value_of(mask))
        if m.dtype != bool and not np.isin(m, (0, 1)).all():
            raise ValueError(f"mask: values must be boolean, got {mask!r}")
        self.mask = m.astype(bool)

    def process_message(self, msg):
        if msg.type == "sample":
            msg.mask = self.mask if msg.mask is None else np.logical_and(
                self.mask, _core.value_of(msg.mask).astype(bool))
