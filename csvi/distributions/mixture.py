"""MixtureSameFamily(mixture_distribution, component_distribution): a
Categorical over K components picks one of K distributions of the same
family, batched along the component distribution's rightmost batch dim.

log_prob is a logsumexp over the components of their log-densities plus the
normalized mixture logits; a draw picks a component index, draws every
component, and keeps the picked one by a one-hot product (no gather op,
so it replays in a compiled program).  All tape ops: gradients reach both
distributions' parameters.
"""
import numpy as np

from csvi import _core, constraints
from csvi.distributions.discrete import Categorical
from csvi.distributions.distribution import Distribution
from csvi.distributions.util import astensor, broadcast_shapes
from csvi.distributions.validation import as_real, bad_value, validate_default


class _MixtureSupport(constraints.Constraint):
    """A value is in a mixture's support when it is in every component's
    support (as torch checks it): the component support, checked on the
    value with a size-1 component dim inserted (which keeps the flat index
    of the value's elements)."""

    def __init__(self, base, event_dim):
        self.base_constraint = base
        self.event_dim = event_dim
        self.is_discrete = base.is_discrete

    def first_violation(self, value):
        value = astensor(value)
        if value.ndim < self.event_dim:
            return self.base_constraint.first_violation(value)
        return self.base_constraint.first_violation(
            _core.value_of(value)[(Ellipsis, None) + (slice(None),) * self.event_dim])

    def describe(self):
        return self.base_constraint.describe()

    def __repr__(self):
        return f"constraints.mixture({self.base_constraint!r})"


class MixtureSameFamily(Distribution):
    """MixtureSameFamily(mixture_distribution, component_distribution):
    mixture_distribution is a Categorical over K components (its batch_shape
    broadcastable with the components'); component_distribution has K as its
    rightmost batch dim.  batch_shape is the broadcast of the two batch
    shapes without K; event_shape is the components'."""

    arg_constraints = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(f"MixtureSameFamily: mixture_distribution must be a Categorical, "
                             f"got {type(mixture_distribution).__name__}")
        if not isinstance(component_distribution, Distribution):
            raise ValueError(f"MixtureSameFamily: component_distribution must be a csvi "
                             f"Distribution, got {type(component_distribution).__name__}")
        cbs = component_distribution.batch_shape
        if not cbs:
            raise ValueError("MixtureSameFamily: component_distribution must have a batch "
                             "dim of components (its rightmost batch dim), got batch_shape ()")
        K = mixture_distribution._num_categories
        if cbs[-1] != K:
            raise ValueError(f"MixtureSameFamily: mixture_distribution has {K} components but "
                             f"component_distribution.batch_shape[-1] is {cbs[-1]} (batch_shape "
                             f"{cbs})")
        mbs = mixture_distribution.batch_shape
        try:
            batch = broadcast_shapes(mbs, cbs[:-1])
        except ValueError:
            raise ValueError(f"MixtureSameFamily: mixture_distribution.batch_shape {mbs} cannot "
                             f"be broadcast with component_distribution.batch_shape[:-1] "
                             f"{cbs[:-1]}") from None
        if batch != cbs[:-1]:
            component_distribution = component_distribution.expand(batch + (K,))
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        self._num_component = K
        self._batch_shape = batch
        self._event_shape = component_distribution.event_shape
        self._validate = validate_default(validate_args)
        self._support = _MixtureSupport(component_distribution.support,
                                        len(self._event_shape))

    @property
    def mixture_distribution(self):
        return self._mixture_distribution

    @property
    def component_distribution(self):
        return self._component_distribution

    @property
    def support(self):
        return self._support

    def _component_axis(self):
        return -1 - len(self._event_shape)

    def _weights(self, x):
        """Mixture weights x (batch + (K,)) with size-1 dims for the event."""
        return _core.reshape(x, x.shape + (1,) * len(self._event_shape))

    def log_prob(self, value):
        value = as_real(value, "MixtureSameFamily.log_prob", "value")
        self._value_shape(value.shape)  # first: the support broadcasts value and parameters
        if self._validate and self._support.first_violation(value) >= 0:
            raise bad_value(self, value)
        lp = self._component_distribution.log_prob(
            _core.expand_dims(value, self._component_axis()))
        return _core.logsumexp(lp + self._mixture_distribution.logits, -1)

    def _draw(self, shape, reparameterized):
        sample_shape = shape[:len(shape) - len(self._batch_shape) - len(self._event_shape)]
        mixture = self._mixture_distribution
        if mixture.batch_shape != self._batch_shape:
            mixture = mixture.expand(self._batch_shape)
        pick = mixture.sample(sample_shape)
        draws = self._component_distribution.sample(sample_shape)
        codes = astensor(np.arange(float(self._num_component)))
        one_hot = _core.equal(self._weights(_core.expand_dims(pick, -1)), self._weights(codes))
        return _core.sum(one_hot * draws, self._component_axis())

    @property
    def mean(self):
        """E[Y] = sum_k w_k E[Y | k]."""
        w = self._weights(self._mixture_distribution.probs)
        return _core.sum(w * self._component_distribution.mean, self._component_axis())

    @property
    def variance(self):
        """Var(Y) = E[Var(Y | k)] + Var(E[Y | k]) (the law of total variance)."""
        w = self._weights(self._mixture_distribution.probs)
        axis = self._component_axis()
        means = self._component_distribution.mean
        spread = means - _core.expand_dims(self.mean, axis)
        return _core.sum(w * (self._component_distribution.variance + spread * spread), axis)

    def __repr__(self):
        return (f"MixtureSameFamily({self._mixture_distribution!r}, "
                f"{self._component_distribution!r})")
