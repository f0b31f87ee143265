"""Delta(v, log_density=0.0, event_dim=0): a point mass at v (AutoDelta guides,
conditioning).  Its sample is v itself, with the gradient passed to v."""
from csvi import _core, constraints
from csvi.distributions.distribution import Distribution
from csvi.distributions.util import apply, broadcast_args, broadcast_shapes, full
from csvi.distributions.validation import as_count, as_real, check_args, validate_default

OP_DELTA_LP = _core.OPCODES["DELTA_LP"]
OP_DIST_EXPAND = _core.OPCODES["DIST_EXPAND"]
# the supports of Deltas with 0..3 event dims, made once (log_prob reads one per call)
_REAL_SUPPORTS = tuple(constraints.independent(constraints.real, n) for n in range(4))


class Delta(Distribution):
    """log_prob(x) = log_density where x == v, else -inf; the rightmost
    `event_dim` dims of v form one event (log_prob sums over them)."""

    arg_constraints = {"log_density": constraints.real}
    has_rsample = True

    def __init__(self, v, log_density=0.0, event_dim=0, validate_args=None):
        self.v = v = v if type(v) is _core.Tensor else as_real(v, "Delta", "v")
        if type(event_dim) is not int or event_dim < 0:  # (an autoguide's int: every step)
            event_dim = as_count(event_dim, "Delta", "event_dim")
        if event_dim > v.ndim:
            raise ValueError(f"Delta: event_dim must be between 0 and v.ndim = {v.ndim}, "
                             f"got {event_dim}")
        split = v.ndim - event_dim
        self._batch_shape = v.shape[:split]
        self._event_shape = v.shape[split:]
        self.log_density = ld = log_density if type(log_density) is _core.Tensor else \
            as_real(log_density, "Delta", "log_density")
        if ld.shape != () and ld.shape != self._batch_shape:
            shape = broadcast_args("Delta", ("batch_shape of v", "log_density"),
                                   (self._batch_shape, ld.shape))
            if shape != self._batch_shape:
                raise ValueError(f"Delta: log_density of shape {ld.shape} must broadcast to "
                                 f"the batch_shape {self._batch_shape} of v")
        self._validate = validate_default(validate_args)
        if self._validate:
            check_args(self, ("log_density",), (ld,))

    @property
    def support(self):
        n = len(self._event_shape)
        return _REAL_SUPPORTS[n] if n < len(_REAL_SUPPORTS) else \
            constraints.independent(constraints.real, n)

    def log_prob(self, value):
        value = self._as_value(value)
        shape = value.shape
        if shape != self.v.shape:
            shape = self._value_shape(shape)
        n = len(self._event_shape)
        if n == 0:
            shape = broadcast_shapes(shape, self.log_density.shape)
            return apply(OP_DELTA_LP, (value, self.v, self.log_density), shape)
        # the indicator over the event dims, then log_density once per event
        hit = apply(OP_DELTA_LP, (value, self.v, 0.0), shape, False)
        return _core.sum(hit, tuple(range(-n, 0))) + self.log_density

    def _draw(self, shape, reparameterized):
        return apply(OP_DIST_EXPAND, (self.v,), shape, reparameterized)

    @property
    def mean(self):
        return self.v

    @property
    def variance(self):
        return full(self.v.shape, 0.0)
