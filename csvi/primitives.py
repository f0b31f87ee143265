"""The statements a model or guide is written in: sample, param, plate,
deterministic, factor.  Each builds a Message and runs it through the handler
stack; with no handler active they take a direct path (no message at all).
`sample`, the most-run of them, is compiled (csvi/_messages.pxi)."""
import numpy as np

from csvi import _core, constraints
from csvi._core import sample, send
from csvi.distributions import Delta, Unit
from csvi.handlers.messenger import Messenger
from csvi.handlers.runtime import CondIndepStackFrame, get_stack
from csvi.params import get_param_store

__all__ = ["sample", "param", "plate", "deterministic", "factor", "subsample"]


def param(name, init_value=None, constraint=constraints.real, event_dim=None):
    """A learnable parameter, stored unconstrained in the param store and
    returned constrained (a Tensor on the current tape).

    `init_value` (an array, number, Tensor or a callable returning one) is used
    only the first time `name` is seen.  `event_dim` gives the param batch
    semantics, as in Pyro: inside a subsampled plate, the dims left of its
    `event_dim` rightmost dims are indexed by the plate's subsample."""
    stack = get_stack()
    if not stack:
        return get_param_store().get_param(name, init_value, constraint)
    return send("param", name, _param_value, (name, init_value, constraint),
                None if event_dim is None else {"event_dim": int(event_dim)}, None, False,
                None, stack)


def _param_value(name, init_value, constraint, event_dim=None):
    """The whole param (plates subsample it afterwards, by `event_dim`)."""
    return get_param_store().get_param(name, init_value, constraint)


def deterministic(name, value, event_dim=None):
    """Record a computed value under `name` (it shows up in traces and Predictive)."""
    stack = get_stack()
    if not stack:
        return value
    event_dim = np.ndim(_core.value_of(value)) if event_dim is None else event_dim
    return send("sample", name, Delta(value, event_dim=event_dim).mask(False), (), None, value,
                True, {"_deterministic": True}, stack)


def factor(name, log_factor):
    """Add `log_factor` to the model's log-density (an observed unit-weight site)."""
    try:
        unit = Unit(log_factor)
    except (TypeError, ValueError) as e:
        raise type(e)(f"factor '{name}': {e}") from None
    return sample(name, unit, obs=np.empty(unit.batch_shape + (0,)))


_FULL_INDICES = {}


def _full_indices(size):
    """The _SubsampleFn giving np.arange(size) (read-only), made once per
    size: a plate that is not subsampled is made every step, and its indices
    never change."""
    fn = _FULL_INDICES.get(size)
    if fn is None:
        if len(_FULL_INDICES) >= 64:
            _FULL_INDICES.clear()
        idx = np.arange(size)
        idx.flags.writeable = False
        fn = _FULL_INDICES[size] = _SubsampleFn(None, None, idx)
    return fn


class plate(Messenger):
    """Conditionally independent batch of size `size` at batch dim `dim`.

    Used as `with plate("data", N, subsample_size=B) as idx:` -- sites inside
    get the plate's size at `dim` (allocated right to left when not given),
    and with subsampling their log-densities are scaled by N / B and `idx`
    holds the indices drawn for this run.  As in Pyro the indices are drawn
    when the plate is made, as a "subsample" site: a model's plate of the
    same name replays the guide's (taking its subsample size and scaling from
    them), and one plate object may be entered several times.  `plate(name)`
    with no size is an independence context whose size comes from the sites
    inside it.  `for i in plate(...)` is a sequential plate over the
    (subsampled) indices.

        >>> import numpy as np, csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model(data):
        ...     with csvi.plate("data", len(data), subsample_size=2) as idx:
        ...         csvi.sample("x", dist.Normal(0.0, 1.0), obs=csvi.as_tensor(data)[idx])
        >>> tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(np.zeros(6))
        >>> tr.nodes["x"]["scale"], tr.nodes["x"]["value"].shape
        (3.0, (2,))
    """

    def __init__(self, name, size=None, subsample_size=None, dim=None, subsample=None):
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or int(dim) != dim or dim >= 0):
            raise ValueError(f"plate '{name}': dim must be a negative integer, got {dim!r}")
        if subsample is not None:
            given = np.asarray(_core.value_of(subsample), dtype=np.float64).reshape(-1)
            if not np.all(np.isfinite(given) & (given == np.round(given)) & (given >= 0)):
                raise ValueError(f"plate '{name}': subsample must hold nonnegative integer "
                                 f"indices, got {given[:8].tolist()}")
            subsample = given.astype(np.int64)
            size = len(subsample) if size is None else size
            if subsample.size and subsample.max() >= size:
                raise ValueError(f"plate '{name}': subsample index {int(subsample.max())} is "
                                 f"out of range for size {size}")
        self.name = name
        self.dim = None if dim is None else int(dim)
        self._frame = None
        if size is None:
            if subsample_size is not None:
                raise ValueError(f"plate '{name}': subsample_size needs a size")
            self.size = self.subsample_size = None
            self._indices = None
            return
        if isinstance(size, bool) or int(size) != size or size < 0:
            raise ValueError(f"plate '{name}': size must be a nonnegative integer, got {size!r}")
        self.size = int(size)
        if subsample_size is not None and (isinstance(subsample_size, bool)
                                           or int(subsample_size) != subsample_size
                                           or not 0 <= subsample_size <= self.size):
            raise ValueError(f"plate '{name}': subsample_size must be an integer in "
                             f"[0, {self.size}], got {subsample_size!r}")
        self._indices = self._draw_indices(subsample_size, subsample)
        drawn = len(self._indices)
        if subsample_size is not None and int(subsample_size) != drawn:
            raise ValueError(f"plate '{name}': subsample_size is {subsample_size} but the "
                             f"indices replayed for it have length {drawn}; the model and "
                             "guide use different subsample sizes for this plate")
        self.subsample_size = drawn

    def _draw_indices(self, subsample_size, given):
        """The indices for this run, through the handlers (replay supplies
        the guide's)."""
        if given is None and (subsample_size is None or subsample_size == self.size):
            fn = _full_indices(self.size)
        elif given is not None:
            fn = _SubsampleFn(None, None, given)
        else:
            fn = _SubsampleFn(self.size, int(subsample_size), None)
        stack = get_stack()
        if not stack:
            return fn()
        return send("subsample", self.name, fn, (), None, None, False, None, stack)

    def _allocate_dim(self, taken):
        """This plate's dim: its own, or the rightmost one the active plates
        (`taken`: their dims) leave free."""
        if self.dim is not None:
            if self.dim in taken:
                other = next(h.name for h in get_stack() if isinstance(h, plate)
                             and h._frame is not None and h._frame.dim == self.dim)
                raise ValueError(f"plate '{self.name}': dim {self.dim} is already used by "
                                 f"the enclosing plate '{other}'")
            return self.dim
        dim = -1
        while dim in taken:
            dim -= 1
        return dim

    def __enter__(self):
        if self._frame is not None:
            raise ValueError(f"plate '{self.name}' is already active (nested in itself)")
        taken = []
        for h in get_stack():
            if isinstance(h, plate) and h._frame is not None:
                if h.name == self.name:
                    raise ValueError(f"plate '{self.name}' is already active (two nested "
                                     "plates share its name)")
                taken.append(h._frame.dim)
        frame = CondIndepStackFrame(self.name, self._allocate_dim(taken), self.size,
                                    self.subsample_size)
        super().__enter__()
        self._frame = frame
        return self._indices

    def __exit__(self, *exc):
        self._frame = None
        return super().__exit__(*exc)

    def __iter__(self):
        """Sequential plate: `for i in plate("data", N)` gives each index (of
        the subsample, when subsampled) in turn, scaled by N / subsample_size."""
        if self.size is None:
            raise ValueError(f"plate '{self.name}': a sequential plate needs a size")
        scale = self.size / self.subsample_size if self.subsample_size else 1.0
        for i in np.asarray(self._indices).tolist():
            with _SequentialFrame(self.name, i, self.size, scale):
                yield i

    process_message = _core.plate_process_message  # compiled: run for every site inside

    # compiled: a param declared with `event_dim` inside a subsampled plate
    # goes on to _subsample_param; every other message returns at once
    postprocess_message = _core.plate_postprocess_message

    def _subsample_param(self, msg):
        """Index a param declared with `event_dim` by this plate's subsample."""
        event_dim = msg.kwargs["event_dim"]
        dim = self._frame.dim - event_dim
        shape = tuple(msg.value.shape)
        if len(shape) < -dim or shape[dim] == 1:
            return
        if shape[dim] != self.size:
            raise ValueError(f"param '{msg.name}' (event_dim={event_dim}) has shape {shape}: "
                             f"size {shape[dim]} at dim {dim}, but it is inside plate "
                             f"'{self.name}' of size {self.size}")
        msg.value = _take_along(_core.astensor(msg.value), self._indices, dim)


class _SequentialFrame(Messenger):
    """The frame of one iteration of a sequential plate (no batch dim)."""

    def __init__(self, name, index, size, scale):
        super().__init__()
        self.frame = CondIndepStackFrame(f"{name}__{index}", None, size, size)
        self.scale = scale

    def process_message(self, msg):
        if msg.type == "sample":
            msg.cond_indep_stack = (self.frame,) + msg.cond_indep_stack
            if self.scale != 1.0:
                msg.scale = msg.scale * self.scale


class _SubsampleFn:
    """Produces a plate's indices when called (not when a handler such as
    replay supplies them): a fresh draw, the user's, or None for all."""

    def __init__(self, size, subsample_size, given):
        self.size = size
        self.subsample_size = subsample_size
        self.given = given

    def __call__(self):
        if self.size is None:
            return self.given
        return _core.draw_subsample(self.size, self.subsample_size)


def subsample(data, event_dim=0):
    """NumPyro's helper: the rows of `data` picked by the enclosing subsampled
    plates (a recorded gather, so it also works in a compiled loop)."""
    value = data
    for h in get_stack():
        if isinstance(h, plate) and h._frame is not None and h.subsample_size != h.size:
            value = _take_along(_core.astensor(value), h._indices, h._frame.dim - event_dim)
    return value


def _take_along(t, indices, dim):
    axis = dim % t.ndim
    if axis == 0:
        return t[indices]
    perm = (axis,) + tuple(d for d in range(t.ndim) if d != axis)
    return _core.transpose(_core.transpose(t, perm)[indices], tuple(np.argsort(perm)))
