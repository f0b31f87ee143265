"""The Distribution interface and the wrappers its methods return.

A distribution holds its parameters as Tensors (so gradients reach Tensor
parameters) and computes everything through C ops: `log_prob` records a
log-density op, `rsample`/`sample` record a draw op.  The kernels broadcast,
so a distribution never materializes broadcast parameters; its `batch_shape`
is the broadcast of the parameter shapes, and a draw has shape
`sample_shape + batch_shape + event_shape`.

`.to_event(n)`, `.expand(shape)` and `.mask(mask)` return the wrappers
Independent, ExpandedDistribution and MaskedDistribution, defined here
because the base class constructs them and they subclass it (one module, no
import cycle).  They change how a distribution's dims are read, not its
kernels.
"""
import numpy as np

from csvi import _core, constraints
from csvi.distributions.util import astensor, broadcast_shapes, expand_to
from csvi.distributions.validation import (
    as_count, as_real, as_shape, describe_bad, validate_default,
)


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
        name = type(self).__name__
        self._batch_shape = as_shape(batch_shape, name, "batch_shape")
        self._event_shape = as_shape(event_shape, name, "event_shape")
        self._validate = validate_default(validate_args)

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
        return as_shape(sample_shape, type(self).__name__) + self._batch_shape + self._event_shape

    # ---- sampling --------------------------------------------------------------
    def sample(self, sample_shape=()):
        """A draw of shape `self.shape(sample_shape)`; no gradient flows through it."""
        return self._draw(as_shape(sample_shape, type(self).__name__) + self._batch_shape
                          + self._event_shape, False)

    # A reparameterized draw: gradients flow to the parameters
    # (`rsample(sample_shape=())`; compiled, csvi/_dist_methods.pxi: every site of
    # every step draws through it).
    rsample = _core.distribution_rsample

    def __call__(self, sample_shape=()):
        return self.rsample(sample_shape) if self.has_rsample else self.sample(sample_shape)

    def _draw(self, shape, reparameterized):
        raise NotImplementedError(f"{type(self).__name__} cannot be sampled")

    # ---- densities -------------------------------------------------------------
    def log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__}.log_prob is not implemented")

    # A log_prob (or cdf) value as a Tensor, checked against the support when
    # validating (errors name the distribution and the bad element):
    # `_as_value(value, method="log_prob")`, compiled (csvi/_dist_methods.pxi).
    _as_value = _core.distribution_as_value

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
        """Every value of a finite discrete support along a new leftmost dim:
        shape (K,) + batch_shape + event_shape, or with expand=False
        (K,) + (1,) * len(batch_shape) + event_shape."""
        raise NotImplementedError(f"{type(self).__name__} does not enumerate its support")

    def cdf(self, value):
        """P(X <= value), elementwise."""
        raise NotImplementedError(f"{type(self).__name__}.cdf is not implemented")

    def icdf(self, value):
        """The quantile function, the inverse of cdf."""
        raise NotImplementedError(f"{type(self).__name__}.icdf is not implemented")

    def _as_probability(self, value):
        """An icdf argument as a Tensor, checked to lie in [0, 1] when validating."""
        owner = f"{type(self).__name__}.icdf"
        if type(value) is not _core.Tensor:
            value = as_real(value, owner, "value")
        if self._validate:
            bad = _core.first_outside(value, 0.0, 1.0)
            if bad >= 0:
                raise ValueError(f"{owner}: value must be a probability in [0, 1], got "
                                 f"{describe_bad(value, bad)}")
        return value

    # ---- moments ---------------------------------------------------------------
    @property
    def mean(self):
        raise NotImplementedError(f"{type(self).__name__}.mean is not implemented")

    @property
    def mode(self):
        raise NotImplementedError(f"{type(self).__name__}.mode is not implemented")

    @property
    def variance(self):
        raise NotImplementedError(f"{type(self).__name__}.variance is not implemented")

    @property
    def stddev(self):
        return _core.sqrt(self.variance)

    def entropy(self):
        """The differential (or Shannon) entropy, of shape batch_shape."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form entropy()")

    def perplexity(self):
        """exp(entropy())."""
        return _core.exp(self.entropy())

    # ---- wrappers --------------------------------------------------------------
    # expand(batch_shape): this distribution with a larger batch_shape
    # (parameters broadcast); compiled (csvi/_dist_methods.pxi), as a plate
    # expands every site inside it
    expand = _core.distribution_expand

    def expand_by(self, sample_shape):
        """expand(sample_shape + batch_shape): new batch dims on the left."""
        return self.expand(as_shape(sample_shape, f"{type(self).__name__}.expand_by")
                           + self._batch_shape)

    def to_event(self, reinterpreted_batch_ndims=None):
        """Treat the rightmost `reinterpreted_batch_ndims` batch dims (default:
        all) as event dims: log_prob sums over them."""
        n = len(self._batch_shape) if reinterpreted_batch_ndims is None else as_count(
            reinterpreted_batch_ndims, f"{type(self).__name__}.to_event",
            "reinterpreted_batch_ndims")
        if n == 0:
            return self
        return Independent(self, n)

    def mask(self, mask):
        """log_prob is 0 (with no gradient) where `mask` is False."""
        return MaskedDistribution(self, mask)

    def __repr__(self):
        return (f"{type(self).__name__}(batch_shape={self._batch_shape}, "
                f"event_shape={self._event_shape})")


class _Wrapper(Distribution):
    """Delegates sampling, support and moments to `base_dist`."""

    def __init__(self, base_dist):
        if not isinstance(base_dist, Distribution):
            raise TypeError(f"{type(self).__name__}: base_dist must be a csvi "
                            f"Distribution, got {type(base_dist).__name__}")
        self.base_dist = base_dist
        self._validate = base_dist._validate

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    @property
    def has_enumerate_support(self):
        return self.base_dist.has_enumerate_support

    @property
    def arg_constraints(self):
        return self.base_dist.arg_constraints

    @property
    def support(self):
        return self.base_dist.support

    def _draw(self, shape, reparameterized):
        return self.base_dist._draw(shape, reparameterized)

    def enumerate_support(self, expand=True):
        return self.base_dist.enumerate_support(expand)

    @property
    def mean(self):
        return self.base_dist.mean

    @property
    def mode(self):
        return self.base_dist.mode

    @property
    def variance(self):
        return self.base_dist.variance


class Independent(_Wrapper):
    """Reinterprets the rightmost `reinterpreted_batch_ndims` batch dims of
    `base_dist` as event dims: log_prob sums over them."""

    def __init__(self, base_dist, reinterpreted_batch_ndims, validate_args=None):
        super().__init__(base_dist)
        n = as_count(reinterpreted_batch_ndims, "Independent", "reinterpreted_batch_ndims")
        batch = base_dist.batch_shape
        if not 0 <= n <= len(batch):
            raise ValueError(f"Independent: reinterpreted_batch_ndims must be between 0 and "
                             f"len(batch_shape) = {len(batch)} of {type(base_dist).__name__} "
                             f"(batch_shape {batch}), got {reinterpreted_batch_ndims}")
        self.reinterpreted_batch_ndims = n
        split = len(batch) - n
        self._batch_shape = batch[:split]
        self._event_shape = batch[split:] + base_dist.event_shape
        if validate_args is not None:
            self._validate = bool(validate_args)

    @property
    def support(self):
        return constraints.independent(self.base_dist.support, self.reinterpreted_batch_ndims)

    def log_prob(self, value):
        lp = self.base_dist.log_prob(value)
        n = self.reinterpreted_batch_ndims
        return _core.sum(lp, tuple(range(-n, 0))) if n else lp

    @property
    def has_enumerate_support(self):
        return not self.reinterpreted_batch_ndims and self.base_dist.has_enumerate_support

    def enumerate_support(self, expand=True):
        if self.reinterpreted_batch_ndims:
            raise NotImplementedError("Independent over batch dims cannot enumerate its support "
                                      "(the cartesian product of the reinterpreted dims)")
        return self.base_dist.enumerate_support(expand)

    def entropy(self):
        h = self.base_dist.entropy()
        n = self.reinterpreted_batch_ndims
        return _core.sum(h, tuple(range(-n, 0))) if n else h


class ExpandedDistribution(_Wrapper):
    """`base_dist` with its batch_shape broadcast to `batch_shape`."""

    def __init__(self, base_dist, batch_shape, validate_args=None):
        super().__init__(base_dist)
        batch_shape = _core.expanded_batch_shape(base_dist, batch_shape)  # checked
        self._batch_shape = batch_shape
        self._event_shape = base_dist.event_shape
        if validate_args is not None:
            self._validate = bool(validate_args)

    def log_prob(self, value):
        lp = self.base_dist.log_prob(value)
        shape = lp.shape
        if shape != self._batch_shape:
            shape = broadcast_shapes(shape, self._batch_shape)
        return expand_to(lp, shape)

    def enumerate_support(self, expand=True):
        values = self.base_dist.enumerate_support(False)
        values = values.reshape(values.shape[:1] + (1,) * len(self._batch_shape))
        if expand:
            values = expand_to(values, values.shape[:1] + self._batch_shape)
        return values

    def expand(self, batch_shape):
        return self.base_dist.expand(batch_shape)

    @property
    def mean(self):
        return expand_to(self.base_dist.mean, self._batch_shape + self._event_shape)

    @property
    def mode(self):
        return expand_to(self.base_dist.mode, self._batch_shape + self._event_shape)

    @property
    def variance(self):
        return expand_to(self.base_dist.variance, self._batch_shape + self._event_shape)

    def entropy(self):
        return expand_to(self.base_dist.entropy(), self._batch_shape)


class MaskedDistribution(_Wrapper):
    """log_prob is 0, with no gradient, where `mask` is False.  `mask` is a
    Python bool or an array/Tensor of bools broadcastable with batch_shape."""

    def __init__(self, base_dist, mask):
        super().__init__(base_dist)
        batch = base_dist.batch_shape
        if isinstance(mask, (bool, np.bool_)):
            self._mask = bool(mask)
            self._batch_shape = batch
        else:
            owner = f"{type(base_dist).__name__}.mask"
            m = as_real(mask, owner, "mask").detach()
            bad = _core.first_outside(m, 0.0, 1.0, False, False, True)
            if bad >= 0:
                raise ValueError(f"{owner}: mask must hold booleans (True/False or 1/0), got "
                                 f"{describe_bad(m, bad)}")
            try:
                self._batch_shape = broadcast_shapes(m.shape, batch)
            except ValueError:
                raise ValueError(f"{type(base_dist).__name__}.mask: a mask of shape {m.shape} "
                                 f"cannot be broadcast with batch_shape {batch}") from None
            self._mask = m
        self._event_shape = base_dist.event_shape

    def log_prob(self, value):
        mask = self._mask
        if mask is True:
            return self.base_dist.log_prob(value)
        if mask is False:
            vshape = astensor(value).shape
            vshape = vshape[:len(vshape) - len(self._event_shape)]
            return astensor(np.zeros(broadcast_shapes(vshape, self._batch_shape)))
        return _core.where(mask, self.base_dist.log_prob(value), 0.0)

    # Pyro expands the base distribution to the mask's batch shape, so what it
    # exposes of the base has that shape; like Pyro, no entropy() or mode.
    def enumerate_support(self, expand=True):
        if self._batch_shape == self.base_dist.batch_shape:
            return self.base_dist.enumerate_support(expand)
        return self.base_dist.expand(self._batch_shape).enumerate_support(expand)

    @property
    def mean(self):
        return expand_to(self.base_dist.mean, self._batch_shape + self._event_shape)

    @property
    def variance(self):
        return expand_to(self.base_dist.variance, self._batch_shape + self._event_shape)

    @property
    def mode(self):
        raise NotImplementedError("MaskedDistribution.mode is not implemented")

    def entropy(self):
        raise NotImplementedError("MaskedDistribution has no entropy() (as in Pyro)")

