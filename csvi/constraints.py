"""Constraints: where a value may live (a distribution's support, a param's domain).

Names follow Pyro/NumPyro (`constraints.positive`, `interval(a, b)`, ...).  A
constraint answers `first_violation(value)`, checked in C, so validating
arguments costs one pass over the data and the error can name the bad element.
`biject_to` (csvi.transforms) maps each constraint to a bijection from the reals.

Bounds may also be arrays or Tensors (`integer_interval(0, total_count)`,
`greater_than(scale)`): those constraints broadcast the value against the
bounds in NumPy.  Vector and matrix constraints (ordered vectors, Cholesky
factors, correlation and positive-definite matrices) check whole events in
NumPy and report the flat index of an offending element.
"""
import numpy as np

from csvi import _core

__all__ = [
    "Constraint", "real", "real_vector", "positive", "softplus_positive", "nonnegative",
    "greater_than",
    "greater_than_eq", "less_than", "interval", "half_open_interval", "unit_interval",
    "boolean", "nonnegative_integer", "positive_integer", "integer_interval", "simplex",
    "independent", "finite", "ordered_vector", "positive_ordered_vector", "square", "symmetric",
    "lower_triangular", "lower_cholesky", "unit_lower_cholesky", "softplus_lower_cholesky",
    "corr_cholesky", "positive_definite", "positive_semidefinite", "corr_matrix",
]


class Constraint:
    """Base class.  `event_dim` is how many rightmost dims form one value."""

    event_dim = 0
    is_discrete = False

    def first_violation(self, value):
        """Flat index of the first element outside the constraint, or -1."""
        raise NotImplementedError

    def check(self, value):
        """True if every element of value satisfies the constraint."""
        return self.first_violation(value) < 0

    def describe(self):
        """Plain words for error messages ("a number > 0")."""
        return repr(self)

    def __repr__(self):
        return f"constraints.{type(self).__name__.lstrip('_')}"


class _Interval(Constraint):
    """lower (<|<=) x (<|<=) upper, optionally whole numbers."""

    def __init__(self, lower, upper, lower_open=False, upper_open=False, integer=False):
        self.lower = self.lower_bound = float(lower)
        self.upper = self.upper_bound = float(upper)
        self.lower_open = lower_open
        self.upper_open = upper_open
        self.is_discrete = integer
        # the check itself, bound once: a direct C-level call per use
        self.first_violation = _core.IntervalCheck(self.lower, self.upper, lower_open,
                                                   upper_open, integer).first_violation

    def __repr__(self):
        lb = "(" if self.lower_open else "["
        ub = ")" if self.upper_open else "]"
        kind = "integers" if self.is_discrete else "reals"
        return f"constraints.{kind} in {lb}{self.lower}, {self.upper}{ub}"

    def describe(self):
        """Plain words for error messages."""
        lower, upper = self.lower, self.upper
        what = "an integer" if self.is_discrete else "a number"
        if lower == -np.inf and upper == np.inf:
            if self.lower_open and self.upper_open:
                return f"a finite {what[2:]}"
            return f"{what[:-6]}real number (not NaN)" if not self.is_discrete else what
        parts = []
        if lower != -np.inf:
            parts.append(f"{'>' if self.lower_open else '>='} {lower:g}")
        elif self.lower_open:
            what = f"a finite {what[2:]}"
        if upper != np.inf:
            parts.append(f"{'<' if self.upper_open else '<='} {upper:g}")
        elif self.upper_open:
            what = f"a finite {what[2:]}"
        return f"{what} {' and '.join(parts)}"


class _Real(_Interval):
    def __init__(self):
        super().__init__(-np.inf, np.inf)

    def __repr__(self):
        return "constraints.real"


class _SoftplusPositive(_Interval):
    """The positive reals, reached through softplus rather than exp (Pyro's
    `softplus_positive`): the autoguides' scales, whose gradient then does not
    grow with the scale."""

    def __init__(self):
        super().__init__(0.0, np.inf, lower_open=True)

    def __repr__(self):
        return "constraints.softplus_positive"


class _Simplex(Constraint):
    """Nonnegative vectors summing to 1 along the last dim."""

    event_dim = 1

    def first_violation(self, value):
        v = _core.value_of(value)
        bad = _core.first_outside(v, 0.0, 1.0)
        if bad >= 0:
            return bad
        if v.ndim == 0:
            return 0
        sums = np.abs(v.sum(-1) - 1.0).reshape(-1)
        rows = np.nonzero(sums > 1e-6)[0]
        return int(rows[0]) * v.shape[-1] if rows.size else -1

    def describe(self):
        return "a vector of nonnegative numbers summing to 1"

    def __repr__(self):
        return "constraints.simplex"


class independent(Constraint):
    """A constraint over `reinterpreted_batch_ndims` more rightmost dims."""

    def __init__(self, base_constraint, reinterpreted_batch_ndims):
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.event_dim = base_constraint.event_dim + reinterpreted_batch_ndims
        self.is_discrete = base_constraint.is_discrete

    def first_violation(self, value):
        return self.base_constraint.first_violation(value)

    def describe(self):
        return self.base_constraint.describe()

    def __repr__(self):
        return f"constraints.independent({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _ArrayInterval(Constraint):
    """An interval whose bounds are arrays or Tensors (a family's parameters:
    Binomial's integer_interval(0, total_count), Pareto's greater_than_eq(scale)).
    The value is broadcast against the bounds; the reported index is that of
    the value's own element."""

    def __init__(self, lower, upper, lower_open=False, upper_open=False, integer=False):
        self.lower_bound, self.upper_bound = lower, upper
        self.lower_open, self.upper_open = lower_open, upper_open
        self.is_discrete = integer

    def first_violation(self, value):
        x = np.asarray(_core.value_of(value), dtype=np.float64)
        lo = np.asarray(_core.value_of(self.lower_bound), dtype=np.float64)
        hi = np.asarray(_core.value_of(self.upper_bound), dtype=np.float64)
        with np.errstate(invalid="ignore"):
            ok = (x > lo) if self.lower_open else (x >= lo)
            ok = ok & ((x < hi) if self.upper_open else (x <= hi))
            if self.is_discrete:
                ok = ok & (np.floor(x) == x)
        bad = ~ok
        if not bad.any():
            return -1
        # reduce over the dims the value broadcasts along, then index the value itself
        xs = (1,) * (bad.ndim - x.ndim) + x.shape
        axes = tuple(d for d in range(bad.ndim) if xs[d] == 1 and bad.shape[d] != 1)
        if axes:
            bad = bad.any(axis=axes, keepdims=True)
        bad = bad.reshape(bad.shape[bad.ndim - x.ndim:])
        return int(np.flatnonzero(np.broadcast_to(bad, x.shape))[0])

    def describe(self):
        what = "an integer" if self.is_discrete else "a number"
        parts = []
        if not _is_infinite(self.lower_bound, -1):
            parts.append(f"{'>' if self.lower_open else '>='} {_bound(self.lower_bound, 'lower')}")
        if not _is_infinite(self.upper_bound, 1):
            parts.append(f"{'<' if self.upper_open else '<='} {_bound(self.upper_bound, 'upper')}")
        return f"{what} {' and '.join(parts)} (bounds from the distribution's parameters)"

    def __repr__(self):
        kind = "integer_interval" if self.is_discrete else "interval"
        return f"constraints.{kind}(lower_bound, upper_bound)"


def _bound(bound, which):
    """A bound for an error message: its value if a number, else its name."""
    if isinstance(bound, (int, float, np.number)):
        return f"{float(bound):g}"
    return f"{which}_bound"


def _is_infinite(bound, sign):
    """True when `bound` is the number sign * inf (an unbounded side)."""
    return isinstance(bound, (int, float, np.number)) and float(bound) == sign * np.inf


def _interval(lower, upper, lower_open=False, upper_open=False, integer=False):
    """A scalar-bounded _Interval (one C pass per check), or an _ArrayInterval
    when a bound is an array or Tensor."""
    if all(isinstance(b, (int, float, np.number)) and not isinstance(b, (bool, np.bool_))
           for b in (lower, upper)):
        return _Interval(lower, upper, lower_open, upper_open, integer)
    for name, b in (("lower_bound", lower), ("upper_bound", upper)):
        if not (_core.is_tensor(b) or isinstance(b, (int, float, np.number, np.ndarray))):
            raise TypeError(f"constraints: {name} must be a number, an array or a Tensor, "
                            f"got {type(b).__name__} {b!r}")
    return _ArrayInterval(lower, upper, lower_open, upper_open, integer)


def greater_than(lower_bound):
    return _interval(lower_bound, np.inf, lower_open=True)


def greater_than_eq(lower_bound):
    return _interval(lower_bound, np.inf)


def less_than(upper_bound):
    return _interval(-np.inf, upper_bound, upper_open=True)


def interval(lower_bound, upper_bound):
    return _interval(lower_bound, upper_bound)


def half_open_interval(lower_bound, upper_bound):
    return _interval(lower_bound, upper_bound, upper_open=True)


def integer_interval(lower_bound, upper_bound):
    return _interval(lower_bound, upper_bound, integer=True)


# ---- vectors and matrices ----------------------------------------------------------------

def _first_bad_event(value, ok, event_dim):
    """Flat index (into value) of the first element of the first event whose
    `ok` (one bool per event, shape value.shape[:-event_dim]) is False, or -1."""
    if np.all(ok):
        return -1
    k = int(np.prod(value.shape[value.ndim - event_dim:], dtype=np.int64))
    return int(np.flatnonzero(~np.asarray(ok).reshape(-1))[0]) * k


def _as_events(value, event_dim, square=False):
    """value as a float64 array with at least `event_dim` dims (square last two
    when `square`), or None when it has not that shape."""
    x = np.asarray(_core.value_of(value), dtype=np.float64)
    if x.ndim < event_dim or (square and x.shape[-1] != x.shape[-2]):
        return None
    return x


class _OrderedVector(Constraint):
    """Vectors whose entries strictly increase along the last dim."""

    event_dim = 1

    def _ok(self, x):
        return np.all(x[..., 1:] > x[..., :-1], axis=-1) & ~np.isnan(x).any(axis=-1)

    def first_violation(self, value):
        x = _as_events(value, 1)
        return 0 if x is None else _first_bad_event(x, self._ok(x), 1)

    def describe(self):
        return "a vector of strictly increasing numbers"

    def __repr__(self):
        return "constraints.ordered_vector"


class _PositiveOrderedVector(_OrderedVector):
    """Positive vectors whose entries strictly increase along the last dim."""

    def _ok(self, x):
        return super()._ok(x) & np.all(x > 0, axis=-1)

    def describe(self):
        return "a vector of strictly increasing positive numbers"

    def __repr__(self):
        return "constraints.positive_ordered_vector"


class _Square(Constraint):
    """Square matrices (the last two dims)."""

    event_dim = 2

    def _ok(self, x):
        return ~np.isnan(x).any(axis=(-2, -1))

    def first_violation(self, value):
        x = _as_events(value, 2, square=True)
        if x is None:
            return 0
        return _first_bad_event(x, self._ok(x), 2)

    def describe(self):
        return "a square matrix"

    def __repr__(self):
        return f"constraints.{type(self).__name__.lstrip('_').lower()}"


class _Symmetric(_Square):
    """Square matrices equal to their transpose (to 1e-6, as torch)."""

    def _ok(self, x):
        return np.all(np.abs(x - np.swapaxes(x, -1, -2)) <= 1e-6, axis=(-2, -1))

    def describe(self):
        return "a symmetric matrix"


class _LowerTriangular(_Square):
    """Square matrices with zeros above the diagonal."""

    def _ok(self, x):
        return np.all(np.triu(x, 1) == 0, axis=(-2, -1)) & super()._ok(x)

    def describe(self):
        return "a lower-triangular matrix"


class _LowerCholesky(_LowerTriangular):
    """Lower-triangular matrices with a positive diagonal: Cholesky factors."""

    def _ok(self, x):
        return super()._ok(x) & np.all(np.diagonal(x, 0, -2, -1) > 0, axis=-1)

    def describe(self):
        return "a lower-triangular matrix with a positive diagonal (a Cholesky factor)"

    def __repr__(self):
        return "constraints.lower_cholesky"


class _UnitLowerCholesky(_LowerTriangular):
    """Lower-triangular matrices with ones on the diagonal (Pyro's
    unit_lower_cholesky: AutoMultivariateNormal's correlation factor)."""

    def _ok(self, x):
        return super()._ok(x) & np.all(np.diagonal(x, 0, -2, -1) == 1, axis=-1)

    def describe(self):
        return "a lower-triangular matrix with ones on the diagonal"

    def __repr__(self):
        return "constraints.unit_lower_cholesky"


class _SoftplusLowerCholesky(_LowerCholesky):
    """lower_cholesky reached through softplus on the diagonal (Pyro's
    `softplus_lower_cholesky`), for gradients that do not grow with the scale."""

    def __repr__(self):
        return "constraints.softplus_lower_cholesky"


class _CorrCholesky(_LowerCholesky):
    """Cholesky factors of correlation matrices: lower_cholesky with rows of
    unit Euclidean norm (to 10 * D * eps, as torch)."""

    def _ok(self, x):
        tol = 10 * x.shape[-1] * np.finfo(np.float64).eps
        unit = np.all(np.abs(np.linalg.norm(x, axis=-1) - 1.0) <= tol, axis=-1)
        return super()._ok(x) & unit

    def describe(self):
        return ("a lower-triangular matrix with a positive diagonal and rows of unit norm "
                "(the Cholesky factor of a correlation matrix)")

    def __repr__(self):
        return "constraints.corr_cholesky"


class _PositiveDefinite(_Symmetric):
    """Symmetric matrices with positive eigenvalues."""

    def _ok(self, x):
        ok = super()._ok(x)
        if x.size == 0 or not np.any(ok):
            return ok
        safe = np.where(ok[..., None, None], x, np.eye(x.shape[-1]))  # no NaN into LAPACK
        return ok & (np.linalg.eigvalsh(safe)[..., 0] > 0)

    def describe(self):
        return "a symmetric positive-definite matrix"

    def __repr__(self):
        return "constraints.positive_definite"


class _PositiveSemidefinite(_Symmetric):
    """Symmetric matrices with nonnegative eigenvalues."""

    def _ok(self, x):
        ok = super()._ok(x)
        if x.size == 0 or not np.any(ok):
            return ok
        safe = np.where(ok[..., None, None], x, np.eye(x.shape[-1]))
        return ok & (np.linalg.eigvalsh(safe)[..., 0] >= 0)

    def describe(self):
        return "a symmetric positive-semidefinite matrix"

    def __repr__(self):
        return "constraints.positive_semidefinite"


class _CorrMatrix(_PositiveDefinite):
    """Positive-definite matrices with a unit diagonal (to 1e-6, as torch)."""

    def _ok(self, x):
        unit = np.all(np.abs(np.diagonal(x, 0, -2, -1) - 1.0) < 1e-6, axis=-1)
        return unit & super()._ok(x)

    def describe(self):
        return "a correlation matrix (symmetric positive-definite with a unit diagonal)"

    def __repr__(self):
        return "constraints.corr_matrix"


real = _Real()
real_vector = independent(real, 1)
positive = greater_than(0.0)
softplus_positive = _SoftplusPositive()
nonnegative = greater_than_eq(0.0)
unit_interval = interval(0.0, 1.0)
boolean = integer_interval(0, 1)
nonnegative_integer = _Interval(0, np.inf, integer=True)
positive_integer = _Interval(1, np.inf, integer=True)
simplex = _Simplex()
# not NaN and not +-inf: what a location or an interval bound must be
finite = _Interval(-np.inf, np.inf, lower_open=True, upper_open=True)
ordered_vector = _OrderedVector()
positive_ordered_vector = _PositiveOrderedVector()
square = _Square()
symmetric = _Symmetric()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
unit_lower_cholesky = _UnitLowerCholesky()
softplus_lower_cholesky = _SoftplusLowerCholesky()
corr_cholesky = _CorrCholesky()
positive_definite = _PositiveDefinite()
positive_semidefinite = _PositiveSemidefinite()
corr_matrix = _CorrMatrix()
