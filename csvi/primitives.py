"""The statements a model or guide is written in: sample, param, plate,
deterministic, factor.  Each builds a Message and runs it through the handler
stack; with no handler active they take a direct path (no message at all)."""
import numpy as np

from csvi import _core, constraints
from csvi.params import get_param_store
from csvi.runtime import _STACK, CondIndepStackFrame, Message, Messenger, apply_stack

__all__ = ["sample", "param", "plate", "deterministic", "factor", "subsample"]


def sample(name, fn, *args, obs=None, infer=None, **kwargs):
    """A random variable `name` with distribution `fn`; `obs` makes it observed.

    Returns the value: `obs`, a replayed/conditioned value, or a fresh draw
    (reparameterized when fn supports it, so gradients flow through it)."""
    if not _STACK:
        if obs is not None:
            return obs
        return fn.rsample(*args) if fn.has_rsample else fn.sample(*args)
    msg = Message("sample", name, fn, args, kwargs, value=obs, is_observed=obs is not None,
                  infer=infer)
    apply_stack(msg)
    return msg.value


def param(name, init_value=None, constraint=constraints.real, event_dim=None):
    """A learnable parameter, stored unconstrained in the param store and
    returned constrained (a Tensor on the current tape).

    `init_value` (an array, number, Tensor or a callable returning one) is used
    only the first time `name` is seen.  `event_dim` is accepted for Pyro
    compatibility; params are not subsampled by plates here, so it is unused."""
    if not _STACK:
        return get_param_store().get_param(name, init_value, constraint)
    msg = Message("param", name, get_param_store().get_param,
                  (name, init_value, constraint))
    apply_stack(msg)
    return msg.value


def deterministic(name, value, event_dim=None):
    """Record a computed value under `name` (it shows up in traces and Predictive)."""
    if not _STACK:
        return value
    from csvi.distributions import Delta

    event_dim = np.ndim(_core.value_of(value)) if event_dim is None else event_dim
    msg = Message("sample", name, Delta(value, event_dim=event_dim).mask(False), value=value,
                  is_observed=True, infer={"_deterministic": True})
    apply_stack(msg)
    return msg.value


def factor(name, log_factor):
    """Add `log_factor` to the model's log-density (an observed unit-weight site)."""
    from csvi.distributions import Unit

    unit = Unit(log_factor)
    return sample(name, unit, obs=np.empty(unit.batch_shape + (0,)))


class plate(Messenger):
    """Conditionally independent batch of size `size` at batch dim `dim`.

    Used as `with plate("data", N, subsample_size=B) as idx:` — sites inside get
    the plate's size at `dim` (allocated right to left when not given), and with
    subsampling their log-densities are scaled by N / B and `idx` holds the
    indices drawn for this step (replayed from the guide into the model)."""

    def __init__(self, name, size=None, subsample_size=None, dim=None, subsample=None):
        super().__init__()
        if subsample is not None:
            subsample = np.asarray(_core.value_of(subsample), dtype=np.int64).reshape(-1)
            size = len(subsample) if size is None else size
            subsample_size = len(subsample)
        if size is None:
            raise ValueError(f"plate '{name}': size is required")
        if int(size) != size or size < 0:
            raise ValueError(f"plate '{name}': size must be a nonnegative integer, got {size!r}")
        size = int(size)
        if subsample_size is None:
            subsample_size = size
        if int(subsample_size) != subsample_size or not 0 <= subsample_size <= size:
            raise ValueError(f"plate '{name}': subsample_size must be an integer in "
                             f"[0, {size}], got {subsample_size!r}")
        if dim is not None and (int(dim) != dim or dim >= 0):
            raise ValueError(f"plate '{name}': dim must be a negative integer, got {dim!r}")
        self.name = name
        self.size = size
        self.subsample_size = int(subsample_size)
        self.dim = dim
        self._user_subsample = subsample
        self._frame = None
        self._indices = None

    def _allocate_dim(self):
        taken = {h._frame.dim for h in _STACK
                 if isinstance(h, plate) and h is not self and h._frame is not None}
        if self.dim is not None:
            if self.dim in taken:
                raise ValueError(f"plate '{self.name}': dim {self.dim} is already used by "
                                 "an enclosing plate")
            return self.dim
        dim = -1
        while dim in taken:
            dim -= 1
        return dim

    def __enter__(self):
        for h in _STACK:
            if isinstance(h, plate) and h.name == self.name:
                raise ValueError(f"plate '{self.name}' is already active (nested twice)")
        super().__enter__()
        self._frame = CondIndepStackFrame(self.name, self._allocate_dim(), self.size,
                                          self.subsample_size)
        self._indices = self._draw_indices()
        return self._indices

    def _draw_indices(self):
        if self._user_subsample is not None or self.subsample_size == self.size:
            fn = _SubsampleFn(None, None, self._user_subsample)
        else:
            fn = _SubsampleFn(self.size, self.subsample_size, None)
        msg = Message("subsample", self.name, fn, value=None,
                      infer={"size": self.size, "subsample_size": self.subsample_size})
        apply_stack(msg)
        indices = msg.value
        return np.arange(self.size) if indices is None else indices

    def __exit__(self, *exc):
        self._frame = None
        return super().__exit__(*exc)

    def __iter__(self):
        """Sequential plate: `for i in plate("data", N)` gives each index in turn."""
        if self.size != self.subsample_size:
            raise NotImplementedError(f"plate '{self.name}': subsampling is only supported "
                                      "as a context manager (`with plate(...)`)")
        for i in range(self.size):
            with _SequentialFrame(self.name, i, self.size):
                yield i

    def process_message(self, msg):
        if msg.type not in ("sample",) or self._frame is None:
            return
        msg.cond_indep_stack = (self._frame,) + msg.cond_indep_stack
        if self.size != self.subsample_size:
            msg.scale = msg.scale * (self.size / self.subsample_size)
        fn = msg.fn
        batch = tuple(fn.batch_shape)
        need = -self._frame.dim
        if len(batch) < need:
            batch = (1,) * (need - len(batch)) + batch
        pos = len(batch) + self._frame.dim
        if batch[pos] == 1:
            batch = batch[:pos] + (self.subsample_size,) + batch[pos + 1:]
            msg.fn = fn.expand(batch)
        elif batch[pos] != self.subsample_size:
            raise ValueError(
                f"site '{msg.name}': its batch shape {tuple(fn.batch_shape)} has size "
                f"{batch[pos]} at dim {self._frame.dim}, but it is inside plate "
                f"'{self.name}' of size {self.subsample_size}")


class _SequentialFrame(Messenger):
    """The frame of one iteration of a sequential plate (no batch dim)."""

    def __init__(self, name, index, size):
        super().__init__()
        self.frame = CondIndepStackFrame(f"{name}__{index}", None, size, size)

    def process_message(self, msg):
        if msg.type == "sample":
            msg.cond_indep_stack = (self.frame,) + msg.cond_indep_stack


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
    for h in _STACK:
        if isinstance(h, plate) and h._frame is not None and h.subsample_size != h.size:
            value = _take_along(_core.astensor(value), h._indices, h._frame.dim - event_dim)
    return value


def _take_along(t, indices, dim):
    axis = dim % t.ndim
    if axis == 0:
        return t[indices]
    perm = (axis,) + tuple(d for d in range(t.ndim) if d != axis)
    return _core.transpose(_core.transpose(t, perm)[indices], tuple(np.argsort(perm)))
