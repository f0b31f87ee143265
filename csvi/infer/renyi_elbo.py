"""RenyiELBO: the variational Renyi bound of order alpha (Li & Turner 2016),
as pyro.infer.RenyiELBO; alpha = 0 is the importance-weighted bound of the
IWAE (Burda et al.).

With particle log-weights w_k = log p(x, z_k) - log q(z_k), the bound is
1/(1 - alpha) log mean_k exp((1 - alpha) w_k), a log-mean-exp over particles
per element of the plates every site shares (each data point of a plate
around the whole model gets its own bound, as in an IWAE), summed.  Particles
are coupled through the log-mean-exp, so a compiled run unrolls them in one
trace instead of repeating one particle's.
"""
import math

from csvi import _core
from csvi.infer.elbo import ELBO

__all__ = ["RenyiELBO"]


class RenyiELBO(ELBO):
    """`alpha` != 1 (alpha = 1 is the ELBO: use Trace_ELBO); `num_particles`
    defaults to 2, as in Pyro."""

    independent_particles = False

    def __init__(self, alpha=0, num_particles=2, max_plate_nesting=float("inf"),
                 vectorize_particles=False):
        if alpha == 1:
            raise ValueError("RenyiELBO: the order alpha must not be 1 (that is the ELBO; "
                             "use Trace_ELBO)")
        self.alpha = float(alpha)
        super().__init__(num_particles, max_plate_nesting, vectorize_particles)

    def loss_tensors(self, model, guide, args, kwargs):
        if self.particles_per_run > 1:
            # one run; the particle plate's dim is the leftmost the terms keep
            traces = [self._get_traces(model, guide, args, kwargs)]
            elbo, surrogates = self._particle(*traces[0])
            log_weights = elbo * (1.0 - self.alpha)
            axis = -self.max_plate_nesting - 1
        else:
            log_weights, surrogates, traces = [], [], []
            for _ in range(self.num_particles):
                model_trace, guide_trace = self._get_traces(model, guide, args, kwargs)
                traces.append((model_trace, guide_trace))
                elbo, surrogate = self._particle(model_trace, guide_trace)
                log_weights.append(elbo * (1.0 - self.alpha))
                surrogates.append(surrogate)
            log_weights, surrogates = _core.stack(log_weights), _core.stack(surrogates)
            axis = 0
        log_mean_weight = (_core.logsumexp(log_weights, axis=axis, keepdims=True)
                           - math.log(self.num_particles))
        loss = -_core.sum(log_mean_weight) / (1.0 - self.alpha)
        # each particle's surrogate weighted by its normalized importance weight
        weights = _core.exp(log_weights - log_mean_weight).detach()
        surrogate = -_core.sum(weights * surrogates) / self.num_particles
        return loss, surrogate, traces

    def _particle(self, model_trace, guide_trace):
        """(log-weight, surrogate) of one particle, both with the dims of the
        plates every sample site shares; the log-weight is detached."""
        sites = [s for tr in (model_trace, guide_trace) for s in tr.nodes.values()
                 if s.type == "sample"]
        common = frozenset.intersection(*[frozenset(s.cond_indep_stack) for s in sites])
        elbo = surrogate = 0.0
        for site in model_trace.nodes.values():
            if site.type == "sample":
                lp = _sum_uncommon(site, common)
                elbo = elbo + lp.detach()
                surrogate = surrogate + lp
        for site in guide_trace.nodes.values():
            if site.type != "sample" or site.is_observed:
                continue
            lq = _sum_uncommon(site, common)
            elbo = elbo - lq.detach()
            # Pyro's surrogate: a reparameterized site's log q enters directly, a
            # score-function one scaled by alpha / (1 - alpha)
            if site.fn.has_rsample:
                surrogate = surrogate - lq
            else:
                surrogate = surrogate + self.alpha / (1.0 - self.alpha) * lq
        return _core.astensor(elbo), _core.astensor(surrogate)


def _sum_uncommon(site, common):
    """The site's log-density summed over every dim but those of the plates
    all sites share, aligned to those plates' dims."""
    lp = _core.astensor(site.log_prob)
    keep = {f.dim for f in common if f.dim is not None}
    axes = tuple(d for d in range(-lp.ndim, 0) if d not in keep)
    if axes:
        lp = _core.sum(lp, axis=axes, keepdims=True)
    while lp.ndim and lp.shape[0] == 1 and -lp.ndim not in keep:
        lp = _core.reshape(lp, lp.shape[1:])
    return lp
