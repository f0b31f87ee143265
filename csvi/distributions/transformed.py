"""TransformedDistribution: a base distribution pushed through transforms
(torch/Pyro semantics).  A draw is the transforms applied to a base draw;
log_prob(y) is the base's log_prob at the inverse image minus the transforms'
log|det J|.  Everything is tape ops, so gradients and compiled replay come
from the base's sampler and the transforms' ops.
"""
from csvi import constraints
from csvi.distributions.distribution import Distribution, Independent
from csvi.distributions.validation import as_shape, validate_default
from csvi.transforms import ComposeTransform, Transform, _sum_rightmost

__all__ = ["TransformedDistribution"]


class TransformedDistribution(Distribution):
    """TransformedDistribution(base_distribution, transforms): the law of
    transforms[-1](... transforms[0](x)) for x ~ base_distribution.

    A transform whose domain spans more dims than the base's events turns
    the base's rightmost batch dims into event dims (and a transform may
    change the rank, e.g. CorrCholeskyTransform: vector in, matrix out).
    log_prob of the last value this distribution drew reuses the draw's
    intermediate values instead of inverting the transforms, as a torch
    transform with cache_size=1 does: exact where an inverse would lose
    digits (tanh near +-1).
    """

    arg_constraints = {}

    def __init__(self, base_distribution, transforms, validate_args=None):
        if not isinstance(base_distribution, Distribution):
            raise TypeError(f"TransformedDistribution: base_distribution must be a csvi "
                            f"Distribution, got {type(base_distribution).__name__}")
        if isinstance(transforms, Transform):
            transforms = [transforms]
        elif isinstance(transforms, (list, tuple)):
            transforms = list(transforms)
            for t in transforms:
                if not isinstance(t, Transform):
                    raise TypeError(f"TransformedDistribution: transforms must be csvi "
                                    f"Transforms, got {type(t).__name__} {t!r}")
        else:
            raise TypeError(f"TransformedDistribution: transforms must be a Transform or a "
                            f"list of them, got {type(transforms).__name__}")
        self.transforms = transforms
        self._validate = validate_default(validate_args)
        self._cache = None
        base = base_distribution
        base_shape = base.batch_shape + base.event_shape
        base_event_dim = len(base.event_shape)
        if not transforms:
            self.base_dist = base
            self._batch_shape, self._event_shape = base.batch_shape, base.event_shape
            return
        whole = ComposeTransform(transforms)
        domain_dim, codomain_dim = whole.domain.event_dim, whole.codomain.event_dim
        if len(base_shape) < domain_dim:
            raise ValueError(f"TransformedDistribution: the transforms read values of "
                             f"{domain_dim} dims, but {type(base).__name__} draws shape "
                             f"{base_shape}")
        forward_shape = whole.forward_shape(base_shape)
        expanded = whole.inverse_shape(forward_shape)
        if expanded != base_shape:   # a transform's parameters broadcast the base
            base = base.expand(expanded[:len(expanded) - base_event_dim])
        if domain_dim > base_event_dim:
            base = Independent(base, domain_dim - base_event_dim)
        self.base_dist = base
        event_dim = max(codomain_dim, base_event_dim + codomain_dim - domain_dim)
        cut = len(forward_shape) - event_dim
        self._batch_shape = tuple(forward_shape[:cut])
        self._event_shape = tuple(forward_shape[cut:])

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    @property
    def support(self):
        if not self.transforms:
            return self.base_dist.support
        support = self.transforms[-1].codomain
        extra = len(self._event_shape) - support.event_dim
        return constraints.independent(support, extra) if extra > 0 else support

    def _draw(self, shape, reparameterized):
        base_shape = tuple(shape)
        for t in reversed(self.transforms):
            base_shape = t.inverse_shape(base_shape)
        x = self.base_dist._draw(base_shape, reparameterized)
        xs = [x]
        for t in self.transforms:
            x = t(x)
            xs.append(x)
        self._cache = (x, xs)
        return x

    def log_prob(self, value):
        cache = self._cache
        cached = cache is not None and value is cache[0]
        if not cached:
            value = self._as_value(value)
        event_dim = len(self._event_shape)
        lp = None
        y = value
        for i in range(len(self.transforms) - 1, -1, -1):
            t = self.transforms[i]
            x = cache[1][i] if cached else t.inv(y)
            event_dim += t.domain.event_dim - t.codomain.event_dim
            term = _sum_rightmost(t.log_abs_det_jacobian(x, y), event_dim - t.domain.event_dim)
            lp = -term if lp is None else lp - term
            y = x
        base_lp = _sum_rightmost(self.base_dist.log_prob(y),
                                 event_dim - len(self.base_dist.event_shape))
        return base_lp if lp is None else base_lp + lp

    def expand(self, batch_shape):
        """The same transforms of the base expanded to match `batch_shape`."""
        batch_shape = as_shape(batch_shape, "TransformedDistribution.expand", "batch_shape")
        if batch_shape == self._batch_shape:
            return self
        shape = batch_shape + self._event_shape
        for t in reversed(self.transforms):
            shape = t.inverse_shape(shape)
        base_batch = shape[:len(shape) - len(self.base_dist.event_shape)]
        return TransformedDistribution(self.base_dist.expand(base_batch), self.transforms,
                                       validate_args=self._validate)

    def __repr__(self):
        return (f"TransformedDistribution({self.base_dist!r}, {self.transforms!r}, "
                f"batch_shape={self._batch_shape}, event_shape={self._event_shape})")
