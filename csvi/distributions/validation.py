"""Checking what a user hands a distribution: the global validation switch,
turning arguments into float64 Tensors, and the errors that name the culprit.

Every family validates its arguments one way (`check_args`, against its
declared `arg_constraints`) and its log_prob values one way (against
`support`); a check is one C pass, so validation stays on by default, as in
Pyro.  Errors say which distribution, which argument, which element, and
what was expected.
"""
from contextlib import contextmanager

import numpy as np

from csvi import _core

Tensor = _core.Tensor
astensor = _core.astensor

_validation = True


def enable_validation(is_validate=True):
    """Turn argument and support checks on or off for distributions created
    from now on (each instance also accepts `validate_args=`)."""
    global _validation
    _validation = bool(is_validate)


def is_validation_enabled():
    return _validation


@contextmanager
def validation_enabled(is_validate=True):
    """Context manager that sets validation for distributions created inside it."""
    old = _validation
    enable_validation(is_validate)
    try:
        yield
    finally:
        enable_validation(old)


def validate_default(validate_args):
    return _validation if validate_args is None else bool(validate_args)


def _got(value):
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def as_real(value, owner, arg):
    """`value` as a float64 Tensor, or an error naming `owner` and `arg` when
    it is not real numbers: None, strings, complex or object data (NumPy would
    turn them into NaN, parse them, or drop the imaginary part) and ragged
    nested lists.  Tensors, floats and real arrays, the hot-path inputs, pass
    without further checks."""
    tp = type(value)
    if tp is Tensor or tp is float or tp is np.float64 or isinstance(value, Tensor):
        return astensor(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return astensor(value)  # data, e.g. an obs (a DataArray from SVI.step)
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{owner}: {arg} must be a number, an array or a Tensor of real "
                        f"numbers, got {_got(value)}")
    try:
        arr = np.asarray(value)
    except ValueError:
        raise ValueError(f"{owner}: {arg} must be a rectangular array of numbers, got a "
                         f"ragged {tp.__name__} {_got(value)[len(tp.__name__) + 1:]} (rows "
                         "of different lengths)") from None
    if arr.dtype.kind not in "biuf":
        kind = {"c": "complex numbers", "O": "Python objects (None, or rows of different "
                "lengths)", "U": "strings", "S": "bytes"}.get(arr.dtype.kind, str(arr.dtype))
        raise TypeError(f"{owner}: {arg} must be real numbers, got an array of {kind}: "
                        f"{_got(value)}")
    return astensor(arr)


def as_count(value, owner, arg, low=0):
    """`value` as a Python int >= low, or an error naming `owner` and `arg`
    (a fractional 1.5 is refused rather than truncated)."""
    if type(value) is int and value >= low:  # the every-step case
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"{owner}: {arg} must be an integer, got {_got(value)}")
    if value < low:
        raise ValueError(f"{owner}: {arg} must be an integer >= {low}, got {value}")
    return int(value)


def as_shape(shape, owner, arg="sample_shape"):
    """A shape as a tuple of ints >= 0 (an int, a tuple or a list of them);
    a string, a fraction or a negative dim is an error naming `arg`."""
    if type(shape) is tuple:  # the every-step case: a tuple of ints >= 0 as it stands
        for d in shape:
            if type(d) is not int or d < 0:
                break
        else:
            return shape
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        dims = (shape,)
    elif isinstance(shape, (tuple, list)) or (isinstance(shape, np.ndarray) and shape.ndim == 1):
        dims = tuple(shape)
    else:
        dims = None
    if dims is None or not all(isinstance(d, (int, np.integer)) and
                               not isinstance(d, (bool, np.bool_)) and d >= 0 for d in dims):
        raise TypeError(f"{owner}: {arg} must be a tuple of integers >= 0, got {_got(shape)}")
    return tuple(int(d) for d in dims)


def describe_bad(x, index, event_dim=0):
    """'-1.0' for a scalar, or '-1.0 at index (1, 2) of an array of shape (3, 4)';
    for a constraint on vectors (event_dim 1), the whole offending row."""
    arr = _core.value_of(x)
    if arr.size == 0:
        return f"an empty array of shape {arr.shape}"
    if event_dim and arr.ndim >= 1:
        k = arr.shape[-1]
        rows = arr.reshape(-1, k)
        text = repr(rows[index // k].tolist())
        if arr.ndim == 1:
            return text
        where = tuple(int(i) for i in np.unravel_index(index // k, arr.shape[:-1]))
        return f"{text} at batch index {where} of an array of shape {arr.shape}"
    text = repr(float(arr.reshape(-1)[index]))
    if arr.ndim == 0:
        return text
    where = tuple(int(i) for i in np.unravel_index(index, arr.shape))
    if len(where) == 1:
        where = where[0]
    return f"{text} at index {where} of an array of shape {arr.shape}"


def bad_arg(owner, arg, x, constraint):
    """The ValueError for a parameter `arg` that violates `constraint`, naming
    the owner, the argument and the first bad element of x.  Callers test
    `constraint.first_violation(x) >= 0` first (one C pass)."""
    index = constraint.first_violation(x)
    return ValueError(f"{owner}: {arg} must be {constraint.describe()}, "
                      f"got {describe_bad(x, index, constraint.event_dim)}")


def bad_value(dist, value, method="log_prob"):
    """The ValueError for a `method` (log_prob, cdf) value outside `dist`'s support."""
    support = dist.support
    bad = support.first_violation(value)
    return ValueError(f"{type(dist).__name__}.{method}: value must be in the support "
                      f"({support.describe()}), got "
                      f"{describe_bad(value, bad, support.event_dim)}")


def check_args(dist, names, values):
    """Raise the ValueError of the first argument that violates its declared
    constraint in `dist.arg_constraints` (the one validation path of every
    family)."""
    declared = dist.arg_constraints
    for arg, t in zip(names, values):
        if declared[arg].first_violation(t) >= 0:
            raise bad_arg(type(dist).__name__, arg, t, declared[arg])


def _family_name(fn):
    """The family's name, not that of .expand()'s or .to_event()'s wrapper."""
    while hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return type(fn).__name__


def check_replayed(name, fn, value, enumerated=False):
    """A guide's draw reused at the model's site `name` must fit the model's
    distribution `fn`: its shape, and its support when validating.  Checked
    where the value enters the model, so the error names this site rather
    than a later one that happens to use the value.  An `enumerated` value
    (all of the guide's support along an enumeration dim) may add dims on the
    left of the model's shape."""
    vshape = value.shape if isinstance(value, Tensor) else np.shape(value)
    own = fn.batch_shape + fn.event_shape
    if vshape != own:
        try:
            joint = _core.broadcast_shapes(vshape, own)
            ok = joint == own or (enumerated and joint[len(joint) - len(own):] == own)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"site '{name}': the guide's value has shape {vshape}, but the model's "
                f"{_family_name(fn)} there has shape {own} (batch_shape {fn.batch_shape}, "
                f"event_shape {fn.event_shape}); give the guide's site the model's shape "
                "(the same plates, the same .to_event(...))")
    support = fn.support if fn._validate else None  # a user's family may declare none
    if support is not None:
        bad = support.first_violation(value)
        if bad >= 0:
            raise ValueError(
                f"site '{name}': the guide's value is outside the support of the model's "
                f"{_family_name(fn)} ({support.describe()}), got "
                f"{describe_bad(value, bad, support.event_dim)}; give the guide's site a "
                "distribution with the same support (e.g. LogNormal or Gamma for a positive "
                "site, Beta for one in (0, 1))")
