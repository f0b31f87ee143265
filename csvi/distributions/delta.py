"""Delta(v, log_density=0.0, event_dim=0): a point mass at v (AutoDelta guides,
conditioning).  Its sample is v itself, with the gradient passed to v."""
from csvi import _core, constraints
from csvi.distributions.distribution import Distribution
from csvi.distributions.util import apply, full

OP_DIST_EXPAND = _core.OPCODES["DIST_EXPAND"]
# the supports of Deltas with 0..3 event dims, made once (log_prob reads one per call)
_REAL_SUPPORTS = tuple(constraints.independent(constraints.real, n) for n in range(4))


class Delta(Distribution):
    """log_prob(x) = log_density where x == v, else -inf; the rightmost
    `event_dim` dims of v form one event (log_prob sums over them)."""

    arg_constraints = {"log_density": constraints.real}
    has_rsample = True

    # Delta(v, log_density=0.0, event_dim=0, validate_args=None); compiled
    # (csvi/_dist_methods.pxi), as an autoguide makes one per latent site per step
    __init__ = _core.delta_init

    @property
    def support(self):
        n = len(self._event_shape)
        return _REAL_SUPPORTS[n] if n < len(_REAL_SUPPORTS) else \
            constraints.independent(constraints.real, n)

    # log_density where value == v, else -inf, summed over the event dims
    # (compiled, csvi/_dist_methods.pxi)
    log_prob = _core.delta_log_prob

    def _draw(self, shape, reparameterized):
        return apply(OP_DIST_EXPAND, (self.v,), shape, reparameterized)

    @property
    def mean(self):
        return self.v

    @property
    def variance(self):
        return full(self.v.shape, 0.0)
