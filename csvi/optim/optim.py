"""PyroOptim: one optimizer per parameter, created the first time the parameter
is updated, so parameters that appear mid-training (as `csvi.param` allows) need
no registration.  The update itself is C (csvi._core.OptimKernel).

The SVI layer calls ``optim(params)`` (or ``optim.step(params)``) with a list of
``(name, value, grad)``: ``value`` is the param store's unconstrained float64
array, updated in place, and ``grad`` the gradient of the loss w.r.t. it.
"""
import math
import numbers

import numpy as np

from csvi import _core, archive
from csvi.params import get_param_store

__all__ = ["PyroOptim"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---- argument checks (shared by every optimizer's argument table) -----------

def _number(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"invalid {name}={value!r}: must be a real number")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"invalid {name}={value!r}: must not be NaN")
    return value


def nonnegative(name, value):
    value = _number(name, value)
    if not (0.0 <= value < math.inf):
        raise ValueError(f"invalid {name}={value!r}: must be a finite number >= 0")
    return value


def positive(name, value):
    value = _number(name, value)
    if not (0.0 < value < math.inf):
        raise ValueError(f"invalid {name}={value!r}: must be a finite number > 0")
    return value


def finite(name, value):
    value = _number(name, value)
    if not math.isfinite(value):
        raise ValueError(f"invalid {name}={value!r}: must be finite")
    return value


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"invalid {name}={value!r}: must be True or False")
    return bool(value)


def betas(name, value):
    try:
        b1, b2 = value
    except (TypeError, ValueError):
        raise ValueError(f"invalid {name}={value!r}: must be a pair (beta1, beta2)") from None
    out = []
    for k, b in enumerate((b1, b2)):
        b = _number(f"{name}[{k}]", b)
        if not 0.0 <= b < 1.0:
            raise ValueError(f"invalid {name}={tuple(value)!r}: {name}[{k}]={b!r} must be in [0, 1)")
        out.append(b)
    return tuple(out)


# Pyro's clip_args: applied to a raw gradient before any algorithm.
_CLIP_ARGS = {"clip_norm": positive, "clip_value": positive}


def _plain(value):
    """A state entry as stored: arrays as fresh float64 arrays, 0-d as numbers."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if np.ndim(value):
        return np.array(value, dtype=np.float64)
    return value


def _is_tensor_iterable(x):
    if isinstance(x, (str, bytes, np.ndarray)) or _core.is_tensor(x):
        return False
    try:
        iter(x)
    except TypeError:
        return False
    return True


def _explicit_leaves(name, params):
    """The leaves of torch's form, each a writeable float64 leaf Tensor."""
    leaves = list(params)
    if not leaves:
        raise ValueError(f"{name}(params, ...): got an empty list of params")
    for k, leaf in enumerate(leaves):
        if not _core.is_tensor(leaf) or not leaf.is_leaf or not leaf.requires_grad:
            raise TypeError(f"{name}(params, ...): params[{k}] must be a leaf Tensor with "
                            f"requires_grad (e.g. csvi.param(name).unconstrained()), "
                            f"got {leaf!r}")
        if not _core.value_of(leaf).flags.writeable:
            raise ValueError(f"{name}(params, ...): params[{k}] is read-only")
    return leaves


class _ParamSlot:
    """One parameter's optimizer: its C kernel (hyperparameters, state vectors
    and step count) and shape.  `extra` holds numbers owned by a scheduler
    (epoch, base_lr, ...)."""

    __slots__ = ("kernel", "shape", "extra")

    def __init__(self, kernel, shape):
        self.kernel = kernel
        self.shape = shape
        self.extra = {}


class PyroOptim:
    """Base of csvi's optimizers (Pyro's PyroOptim over torch.optim).

    Subclasses set `kind` (the C algorithm) and `args` (each optim_args key
    with its default and check).  `optim_args` is a dict, or a callable taking
    a param name and returning a dict (Pyro's per-param form); `clip_args`
    likewise, with keys clip_norm (rescale a gradient whose L2 norm exceeds
    it) and/or clip_value (clamp each element).

    torch.optim's form serves hand-written loops: `Adam(params, lr=0.01)`
    with an iterable of leaf Tensors (e.g. params' `.unconstrained()`), then
    `loss.backward(); optim.step(); optim.zero_grad()` updates each leaf in
    place from its `.grad`.
    """

    kind = None
    args = {}

    def __init__(self, optim_args, clip_args=None, **torch_args):
        self._explicit = None
        if not (isinstance(optim_args, dict) or callable(optim_args)) \
                and _is_tensor_iterable(optim_args):
            if clip_args is not None:
                raise TypeError(f"{self._name()}(params, ...): clip_args is not an argument "
                                "of torch's form")
            self._explicit = _explicit_leaves(self._name(), optim_args)
            optim_args = torch_args
        elif torch_args:
            raise TypeError(f"{self._name()}: unexpected keyword arguments "
                            f"{sorted(torch_args)}; Pyro's form takes one dict of optim_args")
        if not (isinstance(optim_args, dict) or callable(optim_args)):
            raise TypeError(f"{self._name()}: optim_args must be a dict or a callable "
                            f"returning a dict per param name, got {type(optim_args).__name__}")
        if clip_args is None:
            clip_args = {}
        if not (isinstance(clip_args, dict) or callable(clip_args)):
            raise TypeError(f"{self._name()}: clip_args must be a dict or a callable "
                            f"returning a dict per param name, got {type(clip_args).__name__}")
        self.optim_args = optim_args
        self.clip_args = clip_args
        # Fixed dicts are checked now, so a typo fails before training starts.
        fixed = isinstance(optim_args, dict) and isinstance(clip_args, dict)
        self._fixed_hyper = self._hyper(optim_args, clip_args, None) if fixed else None
        self._slots = {}
        self._waiting = {}        # state from set_state for params not yet seen
        self._new_param_hook = None

    # ---- subclass interface -------------------------------------------------
    def to_kernel(self, args):
        """Checked optim_args -> OptimKernel keywords (names differ for betas)."""
        return dict(args)

    def validate(self, args, where):
        """Checks that involve several arguments (e.g. SGD's nesterov)."""

    # ---- argument handling ----------------------------------------------------
    def _name(self):
        return type(self).__name__

    def _hyper(self, optim_args, clip_args, param_name):
        where = self._name() if param_name is None else f"{self._name()} (param {param_name!r})"
        if not isinstance(optim_args, dict):
            raise TypeError(f"{where}: the optim_args callable must return a dict, "
                            f"got {type(optim_args).__name__}")
        unknown = sorted(set(optim_args) - set(self.args))
        if unknown:
            raise ValueError(f"{where}: unknown optim_args key {unknown[0]!r}; "
                             f"valid keys are {', '.join(sorted(self.args))}")
        checked = {}
        for key, (default, check) in self.args.items():
            try:
                checked[key] = check(key, optim_args.get(key, default))
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        self.validate(checked, where)
        hyper = self.to_kernel(checked)
        if not isinstance(clip_args, dict):
            raise TypeError(f"{where}: the clip_args callable must return a dict, "
                            f"got {type(clip_args).__name__}")
        for key, value in clip_args.items():
            if key not in _CLIP_ARGS:
                raise ValueError(f"{where}: unknown clip_args key {key!r}; "
                                 "valid keys are clip_norm, clip_value")
            try:
                value = _CLIP_ARGS[key](key, value)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            hyper["max_grad_norm" if key == "clip_norm" else "max_grad_value"] = value
        return hyper

    def _new_slot(self, name, shape):
        if self._fixed_hyper is not None:
            hyper = self._fixed_hyper
        else:
            optim_args = self.optim_args(name) if callable(self.optim_args) else self.optim_args
            clip_args = self.clip_args(name) if callable(self.clip_args) else self.clip_args
            hyper = self._hyper(optim_args, clip_args, name)
        if self.kind == "Adam" and self._explicit is None and get_param_store().float32(name):
            hyper = dict(hyper, moments32=True)
        size = int(np.prod(shape, dtype=np.int64))
        slot = _ParamSlot(_core.OptimKernel(self.kind, size, **hyper), shape)
        if self._new_param_hook is not None:
            self._new_param_hook(slot)
        return slot

    # ---- the update -----------------------------------------------------------
    def slot_of(self, name, value):
        """The optimizer of param `name` (kernel and shape), made on first use."""
        slot = self._slots.get(name)
        if slot is None:
            slot = self._new_slot(name, value.shape)
            waiting = self._waiting.get(name)
            if waiting is not None:
                self._load_slot(name, slot, self._checked_state(name, slot, waiting))
                del self._waiting[name]
            self._slots[name] = slot
        elif value.shape != slot.shape:
            raise ValueError(f"{self._name()}.step: param {name!r} has shape {value.shape}, "
                             f"but its optimizer state was made for shape {slot.shape}")
        return slot

    def kernels_for(self, params):
        """The C kernels (hyperparameters, state, step count) of `(name, value)`
        pairs, made on first use: a compiled SVI loop runs their updates in
        place, exactly as `step` would."""
        return [self.slot_of(name, value).kernel for name, value in params]

    def step(self, params=None):
        """One update of every `(name, value, grad)` in `params`, in place.  A
        param whose grad is None is skipped, as torch skips params without one.
        Every param is checked before any is updated, so a bad one (or a
        Ctrl-C) leaves all of them, and all optimizer state, unchanged.

        In torch's form (made with an iterable of leaves) `step()` takes no
        argument and updates each leaf from its `.grad`."""
        if params is None:
            if self._explicit is None:
                raise TypeError(f"{self._name()}.step() needs the (name, value, grad) "
                                "triples, unless the optimizer was made from params as "
                                "torch's (Adam(params, lr=...))")
            params = [(f"param {k}", _core.value_of(leaf), leaf.grad)
                      for k, leaf in enumerate(self._explicit)]
        _core.optim_step(self, params)  # compiled: every eager step runs it

    __call__ = step

    def zero_grad(self, set_to_none=True):
        """Clear the `.grad` of the leaves of torch's form (to None, or to
        zeros with set_to_none=False), as torch.optim's zero_grad."""
        if self._explicit is None:
            raise TypeError(f"{self._name()}.zero_grad(): only an optimizer made from params "
                            "as torch's (Adam(params, lr=...)) holds gradients")
        for leaf in self._explicit:
            if leaf.grad is not None:
                leaf.grad = None if set_to_none else np.zeros_like(leaf.grad)

    # ---- state ----------------------------------------------------------------
    def _slot_state(self, slot):
        kernel = slot.kernel
        out = {"step": kernel.step, "lr": kernel.lr}
        for k, key in enumerate(kernel.state_names):
            out[key] = kernel.state[k].reshape(slot.shape).astype(np.float64)
        out.update(slot.extra)
        return out

    def _checked_state(self, name, slot, state):
        """`state` (one param's get_state() entry) checked against `slot`:
        (step, lr, state vectors, extra) ready to load, or a ValueError."""
        where = f"{self._name()}.set_state: param {name!r}"
        names = slot.kernel.state_names
        expected = {"step", "lr", *names, *slot.extra}
        if set(state) != expected:
            raise ValueError(f"{where}: state keys {sorted(state)} do not match "
                             f"{sorted(expected)}")
        arrays = []
        for key in names:
            try:
                arr = np.asarray(state[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {key} is not an array of numbers") from None
            if arr.shape != slot.shape:
                raise ValueError(f"{where}: {key} has shape {arr.shape}, but the param has "
                                 f"shape {slot.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{where}: {key} has non-finite values")
            if slot.kernel.state.dtype == np.float32 and np.any(np.abs(arr) > _FLOAT32_MAX):
                raise ValueError(f"{where}: {key} exceeds float32's range (this param's "
                                 f"Adam moments are float32: a float32 Linear's)")
            arrays.append(arr.reshape(-1))
        step, lr = state["step"], state["lr"]
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral) \
                or step < 0:
            raise ValueError(f"{where}: step={step!r} must be an integer >= 0")
        try:
            lr = nonnegative("lr", lr)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        extra = {}
        for key, old in slot.extra.items():
            try:
                extra[key] = type(old)(state[key])
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {key}={state[key]!r} is not a "
                                 f"{type(old).__name__}") from None
        return int(step), lr, arrays, extra

    @staticmethod
    def _load_slot(name, slot, checked):
        step, lr, arrays, extra = checked
        for k, arr in enumerate(arrays):
            slot.kernel.state[k] = arr  # in place: a compiled loop holds the buffer
        slot.kernel.step = step
        slot.kernel.lr = lr
        slot.extra.update(extra)

    def get_state(self):
        """{param name: {"step", "lr", state vectors (shaped like the param), ...}}
        as plain numbers and fresh NumPy arrays."""
        state = {name: self._slot_state(slot) for name, slot in self._slots.items()}
        for name, waiting in self._waiting.items():
            state.setdefault(name, {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                    for k, v in waiting.items()})
        return state

    def set_state(self, state):
        """Restore a get_state() result: params already seen take it now, the
        rest when they are first updated (as in Pyro).  Every entry is checked
        before any is applied."""
        if not isinstance(state, dict):
            raise TypeError(f"{self._name()}.set_state: expected a dict from get_state(), "
                            f"got {type(state).__name__}")
        now, later = [], {}
        for name, entry in state.items():
            if not isinstance(entry, dict):
                raise TypeError(f"{self._name()}.set_state: the state of param {name!r} must "
                                f"be a dict, got {type(entry).__name__}")
            entry = {k: _plain(v) for k, v in entry.items()}
            slot = self._slots.get(name)
            if slot is None:
                later[name] = entry
            else:
                now.append((name, slot, self._checked_state(name, slot, entry)))
        for name, slot, checked in now:
            self._load_slot(name, slot, checked)
        self._waiting.update(later)

    def state_of(self, name):
        """The state of one param, as in get_state()."""
        slot = self._slots.get(name)
        if slot is None:
            raise KeyError(f"{self._name()}: no optimizer state for param {name!r} "
                           f"(known: {sorted(self._slots)})")
        return self._slot_state(slot)

    def save(self, filename):
        """Write get_state() to a csvi optimizer file (.npz, see csvi.archive)."""
        archive.write(filename, "optimizer", *state_to_archive(self.get_state()))

    def load(self, filename):
        """Read a file written by save() and set_state() it (checked first:
        a bad file changes nothing)."""
        self.set_state(state_from_archive(archive.read(filename, "optimizer")))


def state_to_archive(state):
    """(header, arrays) of a get_state() result: numbers in the header, state
    vectors as arrays "optim/<param>/<key>"."""
    header, arrays = {}, {}
    for name, entry in state.items():
        numbers_, keys = {}, []
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                arrays[f"optim/{name}/{key}"] = value
                keys.append(key)
            else:
                numbers_[key] = value
        header[name] = {"numbers": numbers_, "arrays": keys}
    return {"optim": header}, arrays


def state_from_archive(contents):
    """The get_state() dict in an archive's Contents (arrays checked finite;
    set_state checks the rest)."""
    state = {}
    for name, entry in contents.field("optim", dict).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("numbers"), dict) \
                or not isinstance(entry.get("arrays"), list):
            raise contents.error(f"corrupt optimizer state for param {name!r}")
        state[name] = dict(entry["numbers"])
        for key in entry["arrays"]:
            state[name][key] = contents.array(f"optim/{name}/{key}",
                                              f"optimizer state {key!r} of param {name!r}")
    return state
