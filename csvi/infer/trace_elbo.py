"""Trace_ELBO: the evidence lower bound estimated from one joint run of guide
and model per particle, with Pyro's gradient estimator.

Reparameterized guide sites get pathwise gradients; the others get a score-
function (REINFORCE) term, log q(z) times the detached log p/q of everything
that shares the site's plates (Pyro's plate-wise Rao-Blackwellization)."""
from csvi import _core
from csvi.infer.elbo import ELBO

__all__ = ["Trace_ELBO"]


class Trace_ELBO(ELBO):
    """ELBO = E_q[log p(x, z) - log q(z)], as pyro.infer.Trace_ELBO."""

    def _particle(self, model_trace, guide_trace):
        """(ELBO estimate, surrogate ELBO) of one particle, as Tensors."""
        model_lps, pathwise_lps, score_sites = _core.elbo_sites(model_trace.nodes,
                                                                guide_trace.nodes)
        elbo = _core.sum_all(model_lps) - _core.sum_all(pathwise_lps)
        if not score_sites:
            return elbo, elbo
        terms = log_r_terms(model_trace, guide_trace)
        surrogate = elbo + _core.sum_all(
            [site.log_prob * log_r_sum_to(terms, site.cond_indep_stack) for site in score_sites])
        elbo = elbo - _core.sum_all([site.log_prob for site in score_sites])
        return elbo, surrogate


def log_r_terms(model_trace, guide_trace):
    """(vectorized plates, detached log p(x, z) - log q(z)) for every model
    sample site, as Pyro's Trace_ELBO builds its MultiFrameTensor."""
    terms = []
    for name, site in model_trace.nodes.items():
        if site.type != "sample":
            continue
        lp = site.log_prob
        if not site.is_observed:
            lp = lp - guide_trace.nodes[name].log_prob
        frames = frozenset(f for f in site.cond_indep_stack if f.dim is not None)
        terms.append((frames, _core.astensor(lp).detach()))
    return terms


def log_r_sum_to(terms, cond_indep_stack):
    """Sum the log p/q terms down to the plates of a guide site: a term keeps
    a plate's dim only if the site sits in that same plate (plates are matched
    by identity, not by dim -- sibling plates may share a dim)."""
    target = frozenset(cond_indep_stack)
    total = 0.0
    for frames, lp in terms:
        axes = tuple(f.dim for f in frames
                     if f not in target and -lp.ndim <= f.dim and lp.shape[f.dim] != 1)
        if axes:
            lp = _core.sum(lp, axis=axes, keepdims=True)
        while lp.ndim and lp.shape[0] == 1:
            lp = _core.reshape(lp, lp.shape[1:])
        total = total + lp
    return total
