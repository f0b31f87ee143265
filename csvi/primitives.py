"""The statements a model or guide is written in: sample, param, plate,
deterministic, factor.  Each builds a Message and runs it through the handler
stack; with no handler active they take a direct path (no message at all).
`sample` and `param`, the most-run of them, are compiled
(csvi/_messages.pxi), and so is plate's per-step work (csvi/_plate.pxi)."""
import numpy as np

from csvi import _core, constraints
from csvi._core import sample, send
from csvi.distributions import Delta, Unit
from csvi.handlers.messenger import Messenger
from csvi.handlers.runtime import CondIndepStackFrame, get_stack

__all__ = ["sample", "param", "plate", "deterministic", "factor", "subsample"]


def param(name, init_value=None, constraint=constraints.real, event_dim=None):
    """A learnable parameter, stored unconstrained in the param store and
    returned constrained (a Tensor on the current tape).

    `init_value` (an array, number, Tensor or a callable returning one) is used
    only the first time `name` is seen.  `event_dim` gives the param batch
    semantics, as in Pyro: inside a subsampled plate, the dims left of its
    `event_dim` rightmost dims are indexed by the plate's subsample."""
    return _core.param(name, init_value, constraint, event_dim)


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
        _core.plate_setup(self, name, size, subsample_size, dim, subsample)

    # compiled (csvi/_plate.pxi), as a model or guide makes its plates every run
    _draw_indices = _core.plate_draw_indices
    _allocate_dim = _core.plate_allocate_dim

    # compiled (csvi/_plate.pxi): the frame, then Messenger's push and pop
    __enter__ = _core.plate_enter
    __exit__ = _core.plate_exit

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
