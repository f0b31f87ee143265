"""TraceMeanField_ELBO: Trace_ELBO with each latent site's log p - log q
replaced by its analytic -KL(q || p) where `kl_divergence` has a rule for
the pair (as pyro.infer.TraceMeanField_ELBO), Monte Carlo otherwise.  An
exact KL removes that site's sampling noise from the estimate; it assumes
the guide is mean-field (each guide site's distribution does not depend on
another latent), which is the user's promise, as in Pyro."""
from csvi import _core
from csvi.distributions.kl import kl_divergence
from csvi.distributions.util import broadcast_shapes, expand_to
from csvi.handlers.trace_struct import scale_and_mask
from csvi.infer.elbo import ELBO

__all__ = ["TraceMeanField_ELBO"]


class TraceMeanField_ELBO(ELBO):
    """ELBO = sum of observed log p - sum over latents of KL(q || p) (or its
    one-draw estimate).  Every guide site must be reparameterized."""

    def _particle(self, model_trace, guide_trace):
        terms = []
        for name, site in model_trace.nodes.items():
            if site.type != "sample":
                continue
            if site.is_observed:
                terms.append(site.log_prob)
                continue
            guide_site = guide_trace.nodes[name]
            if not guide_site.fn.has_rsample:
                raise ValueError(f"TraceMeanField_ELBO: guide site '{name}' "
                                 f"({type(guide_site.fn).__name__}) is not reparameterized; "
                                 "use Trace_ELBO or TraceGraph_ELBO for it")
            try:
                kl = kl_divergence(guide_site.fn, site.fn)
            except NotImplementedError:
                terms.append(site.log_prob - guide_site.log_prob)
                continue
            # a site in a plate is drawn with the plate's shape: so is its KL
            kl = expand_to(kl, broadcast_shapes(kl.shape, _core.astensor(site.log_prob).shape))
            terms.append(-scale_and_mask(kl, site.scale, site.mask, name))
        # auxiliary guide sites (the model has none) enter as -log q
        for name, site in guide_trace.nodes.items():
            if site.type == "sample" and not site.is_observed and name not in model_trace.nodes:
                terms.append(-_core.astensor(site.log_prob))
        elbo = _core.sum_all(terms)
        return elbo, elbo
