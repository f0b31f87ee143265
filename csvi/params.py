"""The global param store: every learnable parameter by name, kept unconstrained.

Each entry is a float64 array (the optimizer updates it in place), its
constraint, and a leaf Tensor over that same buffer, so a step's tape reads the
current value without a copy and the gradient lands in one place.
"""
import threading

import numpy as np

from csvi import _core, archive, constraints
from csvi.distributions.validation import as_real, describe_bad
from csvi.transforms import transform_to

__all__ = ["ParamStore", "get_param_store", "clear_param_store"]


class _Entry:
    __slots__ = ("unconstrained", "constraint", "transform", "leaf", "float32")

    def __init__(self, unconstrained, constraint, transform):
        self.unconstrained = unconstrained
        self.constraint = constraint
        self.transform = transform
        self.leaf = _core.leaf_over(unconstrained)
        self.float32 = False  # a float32 Linear's param (csvi.module marks it)


class ParamStore:
    """Dict-like: `store[name]` is the constrained value; names(), items(), ..."""

    def __init__(self):
        self._entries = {}
        self._creating = threading.RLock()  # one creation per name, whatever the threads

    # ---- dict-like view -----------------------------------------------------
    def __contains__(self, name):
        return name in self._entries

    def __len__(self):
        return len(self._entries)

    def __iter__(self):
        return iter(self._entries)

    def keys(self):
        return self._entries.keys()

    def names(self):
        return list(self._entries)

    def __getitem__(self, name):
        """The constrained value of `name` (a Tensor off any tape)."""
        if name not in self._entries:
            raise KeyError(f"param store has no parameter named '{name}'")
        e = self._entries[name]
        return e.transform(_core.Tensor(e.unconstrained))

    def items(self):
        return [(name, self[name]) for name in self._entries]

    def values(self):
        return [self[name] for name in self._entries]

    def __delitem__(self, name):
        del self._entries[name]

    def clear(self):
        self._entries.clear()

    def get_state(self):
        return {name: (e.unconstrained.copy(), e.constraint) for name, e in self._entries.items()}

    # ---- used by csvi.param and SVI -----------------------------------------
    def get_param(self, name, init_value=None, constraint=constraints.real):
        """The constrained value of `name` on the current tape, creating it from
        `init_value` on first use."""
        e = self._entries.get(name)
        if e is None:
            with self._creating:
                e = self._entries.get(name)
                if e is None:
                    e = self._create(name, init_value, constraint)
        return _core.as_param_value(e.transform(e.leaf), e.leaf)

    def _create(self, name, init_value, constraint):
        """A new entry from the constrained `init_value`, kept unconstrained
        through transform_to(constraint), as Pyro's param store does (softmax
        for a simplex, so an unnormalized positive init is normalized)."""

        owner = f"param '{name}'"
        if init_value is None:
            raise KeyError(f"{owner} is not in the param store and no init_value was given")
        if not isinstance(constraint, constraints.Constraint):
            raise TypeError(f"{owner}: constraint must be a csvi constraint (e.g. "
                            f"constraints.positive), got {type(constraint).__name__} "
                            f"{constraint!r}")
        if callable(init_value) and not _core.is_tensor(init_value):
            init_value = init_value()
        value = np.array(_core.value_of(as_real(init_value, owner, "init_value")),
                         dtype=np.float64)
        bad = _core.first_outside(value, -np.inf, np.inf, True, True)
        if bad >= 0:
            raise ValueError(f"{owner}: init_value must be finite, got "
                             f"{describe_bad(value, bad)}")
        base = constraint
        while isinstance(base, constraints.independent):
            base = base.base_constraint
        checked = value
        if isinstance(base, constraints._Simplex) and value.ndim \
                and (value >= 0).all() and (value.sum(-1) > 0).all():
            # softmax(log y) = y / sum(y): Pyro keeps log(y) and hands back y normalized
            checked = value / value.sum(-1, keepdims=True)
        bad = constraint.first_violation(checked)
        if bad >= 0:
            hint = (" (rows of numbers >= 0 with a positive sum are normalized)"
                    if isinstance(base, constraints._Simplex) else "")
            raise ValueError(f"{owner}: init_value must be {constraint.describe()}{hint}, got "
                             f"{describe_bad(value, bad, constraint.event_dim)}")
        transform = transform_to(constraint)
        with _core.off_tape():  # one-time work, not part of the step's program
            unconstrained = np.array(_core.value_of(transform.inv(value)), dtype=np.float64,
                                     order="C")
        if not np.isfinite(unconstrained).all():
            raise ValueError(f"{owner}: init_value {describe_bad(value, 0)} has no finite "
                             f"unconstrained value under {transform!r}")
        e = _Entry(unconstrained, constraint, transform)
        self._entries[name] = e
        return e

    def leaf(self, name):
        """The unconstrained leaf Tensor of `name` (gradients land on it)."""
        return self._entries[name].leaf

    def unconstrained(self, name):
        """The unconstrained array of `name` (updated in place by optimizers)."""
        return self._entries[name].unconstrained

    def constraint(self, name):
        return self._entries[name].constraint

    def float32(self, name):
        """Whether `name` is a param of a Linear that multiplies in float32
        (`module.float()`; csvi.module marks it at each call): Adam keeps its
        moments in float32, as torch's Adam does for a float32 param."""
        e = self._entries.get(name)
        return e is not None and e.float32

    def mark_float32(self, name, flag):
        self._entries[name].float32 = bool(flag)

    # ---- persistence --------------------------------------------------------
    def save(self, path):
        """Write every param (unconstrained) and its constraint to a csvi
        params file (.npz, see csvi.archive)."""
        archive.write(path, "params", *self.to_archive())

    def load(self, path):
        """Read params saved by `save`.  A param already here with the same
        shape and constraint is overwritten in place, so compiled programs and
        optimizers that hold its buffer see the loaded value; any other is
        replaced.  The whole file is checked first: a bad one changes nothing."""
        self.install(self.from_archive(archive.read(path, "params")))

    def to_archive(self):
        """(header, arrays) of every param, as a params file or checkpoint holds them."""
        specs = {n: constraint_to_spec(e.constraint) for n, e in self._entries.items()}
        arrays = {f"param/{n}": e.unconstrained for n, e in self._entries.items()}
        return {"params": specs}, arrays

    @staticmethod
    def from_archive(contents):
        """[(name, unconstrained array, constraint)] read from an archive's
        Contents, checked (a clear ValueError naming the file otherwise)."""
        specs = contents.field("params", dict)
        out = []
        for name, spec in specs.items():
            try:
                c = constraint_from_spec(spec)
            except (KeyError, TypeError, ValueError):
                raise contents.error(f"corrupt constraint for param '{name}': {spec!r}") from None
            out.append((name, contents.array(f"param/{name}", f"param '{name}'"), c))
        return out

    def install(self, params):
        """Put checked (name, unconstrained, constraint) entries in the store."""
        for name, arr, c in params:
            spec = constraint_to_spec(c)
            e = self._entries.get(name)
            if e is not None and e.unconstrained.shape == arr.shape \
                    and constraint_to_spec(e.constraint) == spec:
                e.unconstrained[...] = arr
            else:
                self._entries[name] = _Entry(arr, c, transform_to(c))


# constraints without arguments, saved by name
_NAMED = ("lower_triangular", "lower_cholesky", "unit_lower_cholesky", "softplus_lower_cholesky",
          "corr_cholesky", "positive_definite", "positive_semidefinite", "corr_matrix",
          "ordered_vector", "positive_ordered_vector", "square", "symmetric")


def constraint_to_spec(c):
    """A JSON-able description of a constraint (no pickled code)."""
    for name in _NAMED:
        if type(c) is type(getattr(constraints, name)):
            return {"kind": name}
    if isinstance(c, constraints.independent):
        return {"kind": "independent", "base": constraint_to_spec(c.base_constraint),
                "ndims": c.reinterpreted_batch_ndims}
    if isinstance(c, constraints._Simplex):
        return {"kind": "simplex"}
    if isinstance(c, constraints._SoftplusPositive):
        return {"kind": "softplus_positive"}
    if isinstance(c, constraints._Interval):
        return {"kind": "interval", "lower": c.lower, "upper": c.upper,
                "lower_open": c.lower_open, "upper_open": c.upper_open,
                "integer": c.is_discrete}
    raise ValueError(f"cannot save a param with constraint {c!r}")


def constraint_from_spec(spec):
    kind = spec["kind"]
    if kind in _NAMED:
        return getattr(constraints, kind)
    if kind == "independent":
        return constraints.independent(constraint_from_spec(spec["base"]), spec["ndims"])
    if kind == "simplex":
        return constraints.simplex
    if kind == "softplus_positive":
        return constraints.softplus_positive
    if kind == "interval":
        if spec["lower"] == -np.inf and spec["upper"] == np.inf and not spec["integer"]:
            return constraints.real
        if spec["lower"] == 0.0 and spec["upper"] == np.inf and spec["lower_open"]:
            return constraints.positive
        if (spec["lower"], spec["upper"]) == (0.0, 1.0) and not spec["lower_open"] \
                and not spec["upper_open"] and not spec["integer"]:
            return constraints.unit_interval
        return constraints._Interval(spec["lower"], spec["upper"], spec["lower_open"],
                                     spec["upper_open"], spec["integer"])
    raise ValueError(f"unknown constraint spec {spec!r}")


_STORE = ParamStore()


def get_param_store():
    return _STORE


def clear_param_store():
    _STORE.clear()
