"""Constraints: where a value may live (a distribution's support, a param's domain).

Names follow Pyro/NumPyro (`constraints.positive`, `interval(a, b)`, ...).  A
constraint answers `first_violation(value)`, checked in C, so validating
arguments costs one pass over the data and the error can name the bad element.
`biject_to` (csvi.transforms) maps each constraint to a bijection from the reals.
"""
import numpy as np

from csvi import _core

__all__ = [
    "Constraint", "real", "real_vector", "positive", "softplus_positive", "nonnegative",
    "greater_than",
    "greater_than_eq", "less_than", "interval", "half_open_interval", "unit_interval",
    "boolean", "nonnegative_integer", "positive_integer", "integer_interval", "simplex",
    "independent", "finite",
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
        self.lower = float(lower)
        self.upper = float(upper)
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


def greater_than(lower_bound):
    return _Interval(lower_bound, np.inf, lower_open=True)


def greater_than_eq(lower_bound):
    return _Interval(lower_bound, np.inf)


def less_than(upper_bound):
    return _Interval(-np.inf, upper_bound, upper_open=True)


def interval(lower_bound, upper_bound):
    return _Interval(lower_bound, upper_bound)


def half_open_interval(lower_bound, upper_bound):
    return _Interval(lower_bound, upper_bound, upper_open=True)


def integer_interval(lower_bound, upper_bound):
    return _Interval(lower_bound, upper_bound, integer=True)


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
