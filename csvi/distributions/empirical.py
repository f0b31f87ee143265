"""Empirical: a weighted set of samples as a distribution (Pyro's
`dist.Empirical`), e.g. the executions `handlers.queue` enumerates."""
import numpy as np

from csvi import _core, constraints
from csvi.distributions.discrete import Categorical
from csvi.distributions.distribution import Distribution
from csvi.distributions.validation import as_real, check_args

__all__ = ["Empirical"]


class Empirical(Distribution):
    """Empirical(samples, log_weights): the samples along the rightmost dim of
    `log_weights` (whose shape is the leftmost part of `samples`'), drawn with
    probability proportional to exp(log_weights).  batch_shape is
    log_weights.shape[:-1]; event_shape is what `samples` has beyond
    log_weights.shape.

        >>> import numpy as np
        >>> d = Empirical(np.array([0.0, 1.0, 1.0]), np.log([0.2, 0.3, 0.5]))
        >>> round(float(np.exp(d.log_prob(1.0))), 6), round(float(d.mean), 6)
        (0.8, 0.8)
    """

    arg_constraints = {"log_weights": Categorical.arg_constraints["logits"]}
    support = constraints.real
    has_enumerate_support = True

    def __init__(self, samples, log_weights, validate_args=None):
        samples = as_real(samples, "Empirical", "samples").numpy()
        log_weights = as_real(log_weights, "Empirical", "log_weights")
        weights_shape = log_weights.shape
        if not weights_shape or samples.shape[:len(weights_shape)] != weights_shape:
            raise ValueError(f"Empirical: the shape of log_weights {weights_shape} must be "
                             f"the leftmost part of the shape of samples {samples.shape} "
                             "(and have at least one dim)")
        super().__init__(weights_shape[:-1], samples.shape[len(weights_shape):],
                         validate_args)
        if self._validate:
            check_args(self, ("log_weights",), (log_weights,))
        self._samples = samples
        self._log_weights = log_weights
        self._axis = len(weights_shape) - 1
        self._categorical = Categorical(logits=log_weights, validate_args=False)

    @property
    def sample_size(self):
        """Number of samples (over all batch elements)."""
        return self._log_weights.size

    @property
    def log_weights(self):
        return self._log_weights

    def _probs(self):
        lw = self._log_weights
        return _core.exp(lw - _core.logsumexp(lw, axis=-1, keepdims=True))

    def _draw(self, shape, reparameterized):
        sample_shape = shape[:len(shape) - len(self._batch_shape) - len(self._event_shape)]
        idx = np.asarray(self._categorical.sample(sample_shape)).astype(np.int64)
        stacked = np.moveaxis(self._samples, self._axis, 0)  # (n, *batch, *event)
        batch_index = np.indices(idx.shape)[len(sample_shape):]
        picked = stacked[(idx,) + tuple(batch_index)]
        return _core.astensor(np.ascontiguousarray(picked))

    def log_prob(self, value):
        """log of the total weight of the samples equal to `value` (a value of
        shape batch_shape + event_shape, as in Pyro)."""
        value = as_real(value, "Empirical.log_prob", "value").numpy()
        if value.shape != self._batch_shape + self._event_shape:
            raise ValueError(f"Empirical.log_prob: the value's shape must be "
                             f"{self._batch_shape + self._event_shape}, got {value.shape}")
        if self._batch_shape:
            value = np.expand_dims(value, self._axis)
        equal = self._samples == value
        for _ in range(len(self._event_shape)):
            equal = equal.all(axis=-1)
        return _core.log(_core.sum(self._probs() * equal.astype(np.float64), axis=-1))

    def _weighted_mean(self, values):
        probs = self._probs()
        extra = values.ndim - probs.ndim
        return _core.sum(_core.reshape(probs, probs.shape + (1,) * extra) * values,
                         axis=self._axis)

    @property
    def mean(self):
        return self._weighted_mean(self._samples)

    @property
    def variance(self):
        mean = np.expand_dims(np.asarray(_core.value_of(self.mean)), self._axis)
        return self._weighted_mean((self._samples - mean) ** 2)

    def enumerate_support(self, expand=True):
        """The samples (Empirical does not batch its support, as in Pyro)."""
        return _core.astensor(self._samples)
