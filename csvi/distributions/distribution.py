"""The base Distribution: shapes, sampling entry points, wrappers, validation.

A distribution holds its parameters as Tensors (so gradients reach Tensor
parameters) and computes everything through one C op per call: `log_prob`
records `<FAMILY>_LP`, `rsample`/`sample` record `<FAMILY>_RS`.  The kernels
broadcast, so a distribution never materializes broadcast parameters; its
`batch_shape` is the broadcast of the parameter shapes, and a draw has shape
`sample_shape + batch_shape + event_shape`.

Validation (on by default, as in Pyro) costs one C pass per argument: a bad
parameter or a `log_prob` value outside the support raises ValueError naming
the distribution, the argument and the first bad element.
"""
from contextlib import contextmanager

import numpy as np

from csvi import _core

astensor = _core.astensor
apply = _core.apply
broadcast_shapes = _core.broadcast_shapes

OP_DIST_EXPAND = _core.OPCODES["DIST_EXPAND"]

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


def _validate_default(validate_args):
    return _validation if validate_args is None else bool(validate_args)


def _describe_bad(x, index):
    """'-1.0' for a scalar, or '-1.0 at index (1, 2) of an array of shape (3, 4)'."""
    arr = _core.value_of(x)
    value = arr.reshape(-1)[index]
    text = repr(float(value))
    if arr.ndim == 0:
        return text
    where = tuple(int(i) for i in np.unravel_index(index, arr.shape))
    if len(where) == 1:
        where = where[0]
    return f"{text} at index {where} of an array of shape {arr.shape}"


def bad_arg(dist_name, arg, x, constraint):
    """The ValueError for a parameter `arg` that violates `constraint`, naming
    the distribution, the argument and the first bad element of x.  Callers
    test `constraint.first_violation(x) >= 0` first (one C pass)."""
    index = constraint.first_violation(x)
    return ValueError(f"{dist_name}: {arg} must be {constraint.describe()}, "
                      f"got {_describe_bad(x, index)}")


def broadcast_args(dist_name, names, shapes):
    """Broadcast of the parameter shapes, or a ValueError naming both culprits."""
    shape = shapes[0]
    for k in range(1, len(shapes)):
        try:
            shape = broadcast_shapes(shape, shapes[k])
        except ValueError:
            pairs = ", ".join(f"{n} {s}" for n, s in zip(names[:k + 1], shapes[:k + 1]))
            raise ValueError(f"{dist_name}: the shapes of {pairs} cannot be broadcast "
                             "together") from None
    return shape


def sample_shape_of(sample_shape):
    """sample_shape as a tuple of ints (accepts (), an int, a list or a tuple)."""
    if sample_shape == ():
        return ()
    if isinstance(sample_shape, (int, np.integer)):
        return (int(sample_shape),)
    return tuple(int(d) for d in sample_shape)


def expand_to(x, shape):
    """x broadcast to `shape` (one recorded op, gradient summed back), or x."""
    x = astensor(x)
    if x.shape == shape:
        return x
    return apply(OP_DIST_EXPAND, (x,), shape)


def full(shape, value):
    """A constant Tensor of `shape` filled with `value`."""
    return astensor(np.full(shape, value, dtype=np.float64))


class Distribution:
    """Base class of csvi distributions (Pyro's TorchDistribution interface).

    Subclasses set `_batch_shape`, `_event_shape`, `_validate` in __init__ and
    implement `log_prob` and `_draw(shape, reparameterized)`, which records the
    family's sampling op for a full output shape (sample + batch + event).
    """

    arg_constraints = {}
    support = None
    has_rsample = False
    has_enumerate_support = False
    _batch_shape = ()
    _event_shape = ()
    _validate = True

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        """For user subclasses (Pyro's signature); csvi's own families set the
        three fields directly."""
        self._batch_shape = sample_shape_of(batch_shape)
        self._event_shape = sample_shape_of(event_shape)
        self._validate = _validate_default(validate_args)

    # ---- shapes ---------------------------------------------------------------
    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    @property
    def event_dim(self):
        return len(self._event_shape)

    @property
    def is_discrete(self):
        return self.support.is_discrete

    def shape(self, sample_shape=()):
        """Shape of a draw: sample_shape + batch_shape + event_shape."""
        return sample_shape_of(sample_shape) + self._batch_shape + self._event_shape

    # ---- sampling --------------------------------------------------------------
    def sample(self, sample_shape=()):
        """A draw of shape `self.shape(sample_shape)`; no gradient flows through it."""
        return self._draw(sample_shape_of(sample_shape) + self._batch_shape + self._event_shape,
                          False)

    def rsample(self, sample_shape=()):
        """A reparameterized draw: gradients flow to the parameters."""
        if not self.has_rsample:
            raise NotImplementedError(
                f"{type(self).__name__} has no reparameterized sampler (rsample); "
                "use sample(), or a score-function estimator in the ELBO")
        return self._draw(sample_shape_of(sample_shape) + self._batch_shape + self._event_shape,
                          True)

    def __call__(self, sample_shape=()):
        return self.rsample(sample_shape) if self.has_rsample else self.sample(sample_shape)

    def _draw(self, shape, reparameterized):
        raise NotImplementedError(f"{type(self).__name__} cannot be sampled")

    # ---- densities -------------------------------------------------------------
    def log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__}.log_prob is not implemented")

    def _bad_value(self, value):
        """Raise the ValueError for a log_prob value outside the support."""
        bad = self.support.first_violation(value)
        raise ValueError(f"{type(self).__name__}.log_prob: value must be in the support "
                         f"({self.support.describe()}), got {_describe_bad(value, bad)}")

    def _value_shape(self, value_shape):
        """Broadcast of a value's shape with batch_shape + event_shape."""
        own = self._batch_shape + self._event_shape
        try:
            return broadcast_shapes(value_shape, own)
        except ValueError:
            raise ValueError(f"{type(self).__name__}.log_prob: a value of shape {value_shape} "
                             f"cannot be broadcast with batch_shape {self._batch_shape} and "
                             f"event_shape {self._event_shape}") from None

    def enumerate_support(self, expand=True):
        raise NotImplementedError(f"{type(self).__name__} does not enumerate its support")

    # ---- moments ---------------------------------------------------------------
    @property
    def mean(self):
        raise NotImplementedError(f"{type(self).__name__}.mean is not implemented")

    @property
    def variance(self):
        raise NotImplementedError(f"{type(self).__name__}.variance is not implemented")

    @property
    def stddev(self):
        return _core.sqrt(self.variance)

    # ---- wrappers --------------------------------------------------------------
    def expand(self, batch_shape):
        """This distribution with a larger batch_shape (parameters broadcast)."""
        from csvi.distributions.wrappers import ExpandedDistribution
        batch_shape = sample_shape_of(batch_shape)
        if batch_shape == self._batch_shape:
            return self
        return ExpandedDistribution(self, batch_shape)

    def expand_by(self, sample_shape):
        """expand(sample_shape + batch_shape): new batch dims on the left."""
        return self.expand(sample_shape_of(sample_shape) + self._batch_shape)

    def to_event(self, reinterpreted_batch_ndims=None):
        """Treat the rightmost `reinterpreted_batch_ndims` batch dims (default:
        all) as event dims: log_prob sums over them."""
        from csvi.distributions.wrappers import Independent
        n = len(self._batch_shape) if reinterpreted_batch_ndims is None else reinterpreted_batch_ndims
        if n == 0:
            return self
        return Independent(self, n)

    def mask(self, mask):
        """log_prob is 0 (with no gradient) where `mask` is False."""
        from csvi.distributions.wrappers import MaskedDistribution
        return MaskedDistribution(self, mask)

    def __repr__(self):
        return (f"{type(self).__name__}(batch_shape={self._batch_shape}, "
                f"event_shape={self._event_shape})")


class Family(Distribution):
    """A family whose two C ops take its parameters `_params` in order:
    log_prob records `_lp_op` on (value, *_params), a draw records `_rs_op` on
    `_params` (each op's aux slot, if any, as its src_c/*.def line says).
    `_iattr` selects a parameterization (probs/logits)."""

    _lp_op = _rs_op = -1
    _params = ()
    _iattr = None

    def _set_params(self, validate_args, *named):
        """Keep each (name, value) as a Tensor attribute, in order, with the
        broadcast batch shape, and check each against arg_constraints."""
        dist_name = type(self).__name__
        params = tuple(astensor(value) for _, value in named)
        for (arg, _), t in zip(named, params):
            setattr(self, arg, t)
        self._params = params
        shapes = [t.shape for t in params]
        if all(s == shapes[0] for s in shapes):
            self._batch_shape = shapes[0]
        else:
            self._batch_shape = broadcast_args(dist_name, [arg for arg, _ in named], shapes)
        self._validate = _validate_default(validate_args)
        if self._validate:
            for (arg, _), t in zip(named, params):
                constraint = self.arg_constraints[arg]
                if constraint.first_violation(t) >= 0:
                    raise bad_arg(dist_name, arg, t, constraint)

    def log_prob(self, value):
        value = astensor(value)
        if self._validate and self.support.first_violation(value) >= 0:
            self._bad_value(value)
        shape = value.shape
        if shape != self._batch_shape:
            shape = self._value_shape(shape)
        return apply(self._lp_op, (value,) + self._params, shape, True, self._iattr)

    def _draw(self, shape, reparameterized):
        return apply(self._rs_op, self._params, shape, reparameterized, self._iattr)
