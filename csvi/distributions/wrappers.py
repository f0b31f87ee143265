"""Wrappers that change how a distribution's dims are read, not its kernels:
Independent (`.to_event(n)`), ExpandedDistribution (`.expand(shape)`) and
MaskedDistribution (`.mask(mask)`).  Sampling passes the full output shape
to the base distribution, whose kernels broadcast the parameters to it."""
import numpy as np

from csvi import _core, constraints
from csvi.distributions.distribution import (
    Distribution, astensor, broadcast_shapes, expand_to, sample_shape_of,
)


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
    def variance(self):
        return self.base_dist.variance


class Independent(_Wrapper):
    """Reinterprets the rightmost `reinterpreted_batch_ndims` batch dims of
    `base_dist` as event dims: log_prob sums over them."""

    def __init__(self, base_dist, reinterpreted_batch_ndims, validate_args=None):
        super().__init__(base_dist)
        n = int(reinterpreted_batch_ndims)
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

    def enumerate_support(self, expand=True):
        if self.reinterpreted_batch_ndims:
            raise NotImplementedError("Independent over batch dims cannot enumerate its support")
        return self.base_dist.enumerate_support(expand)


class ExpandedDistribution(_Wrapper):
    """`base_dist` with its batch_shape broadcast to `batch_shape`."""

    def __init__(self, base_dist, batch_shape, validate_args=None):
        super().__init__(base_dist)
        batch_shape = sample_shape_of(batch_shape)
        old = base_dist.batch_shape
        try:
            ok = broadcast_shapes(old, batch_shape) == batch_shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{type(base_dist).__name__}.expand: batch_shape {old} cannot be "
                             f"expanded to {batch_shape}")
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
    def variance(self):
        return expand_to(self.base_dist.variance, self._batch_shape + self._event_shape)


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
            m = astensor(mask).detach()
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

