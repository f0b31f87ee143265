"""TraceGraph_ELBO: Trace_ELBO's estimator with each score-function term
Rao-Blackwellized by the dependency structure, and optional baselines, as
pyro.infer.TraceGraph_ELBO (SVI Part III).

A non-reparameterized guide site z gets the surrogate term log q(z) times the
detached *downstream cost* of z: the log p - log q terms whose values were
computed from z (read off the tape: `_core.provenance`, what Pyro's
provenance tracking gives), summed down to z's plates.  Terms that do not
depend on z add only variance to its gradient, so they are left out.  A
baseline b (a decaying average of the cost, a user's `baseline_value`, or an
`nn_baseline` module) is subtracted from the cost; the last two are trained
by adding (cost - b)^2 to the loss.
"""
import numpy as np

from csvi import _core
from csvi.infer.elbo import ELBO
from csvi.infer.trace_elbo import log_r_sum_to
from csvi.params import get_param_store

__all__ = ["TraceGraph_ELBO"]

_BASELINE_OPTIONS = ("nn_baseline", "nn_baseline_input", "use_decaying_avg_baseline",
                     "baseline_beta", "baseline_value")


class TraceGraph_ELBO(ELBO):
    """ELBO = E_q[log p(x, z) - log q(z)] with a lower-variance gradient for
    non-reparameterized sites (see the module docstring).  Baselines are set
    per guide site: `infer={"baseline": {"use_decaying_avg_baseline": True,
    "baseline_beta": 0.95}}`, `{"baseline_value": b}` or
    `{"nn_baseline": module, "nn_baseline_input": x}`."""

    def loss_tensors(self, model, guide, args, kwargs):
        # provenance reads the tape, which must hold every op, also those on
        # constants (an SVI step's tape does; the default tape does not)
        if _core.current_tape().record_all:
            return super().loss_tensors(model, guide, args, kwargs)
        return _core.record_call(_core.Tape(record_all=True), super().loss_tensors, model,
                                 guide, args, kwargs)

    def _particle(self, model_trace, guide_trace):
        costs, score_sites = [], []
        model_lp, pathwise_lq, all_lq = [], [], []
        for site in model_trace.nodes.values():
            if site.type == "sample":
                model_lp.append(site.log_prob)
                costs.append((_plates(site), site.log_prob))
        for site in guide_trace.nodes.values():
            if site.type != "sample" or site.is_observed:
                continue
            all_lq.append(site.log_prob)
            costs.append((_plates(site), -_core.astensor(site.log_prob)))
            if site.fn.has_rsample:
                pathwise_lq.append(site.log_prob)
            else:
                score_sites.append(site)
        model_lp = _core.sum_all(model_lp)
        elbo = model_lp - _core.sum_all(all_lq)
        surrogate = model_lp - _core.sum_all(pathwise_lq)
        if not score_sites:
            return elbo, surrogate
        depends = _core.provenance([site.value for site in score_sites],
                                   [lp for _, lp in costs])
        for k, site in enumerate(score_sites):
            downstream = [(frames, _core.astensor(lp).detach())
                          for (frames, lp), sources in zip(costs, depends) if k in sources]
            cost = log_r_sum_to(downstream, site.cond_indep_stack)
            baseline, baseline_loss = _baseline(site, cost)
            if baseline is not None:
                cost = (cost - baseline).detach()
            surrogate = surrogate + _core.sum_all([site.log_prob * cost])
            if baseline_loss is not None:
                surrogate = surrogate - baseline_loss
        return elbo, surrogate


def _plates(site):
    return frozenset(f for f in site.cond_indep_stack if f.dim is not None)


def _baseline(site, cost):
    """(baseline, baseline loss or None) for a guide site's downstream cost,
    from its `infer["baseline"]` options (Pyro's names); (None, None) without."""
    options = dict(site.infer.get("baseline", {}))
    unknown = sorted(set(options) - set(_BASELINE_OPTIONS))
    if unknown:
        raise ValueError(f"site '{site.name}': unrecognized baseline options {unknown}; "
                         f"known are {list(_BASELINE_OPTIONS)}")
    nn_baseline = options.get("nn_baseline")
    value = options.get("baseline_value")
    decaying = options.get("use_decaying_avg_baseline", False)
    if nn_baseline is not None and value is not None:
        raise ValueError(f"site '{site.name}': give baseline_value or nn_baseline, not both")
    if nn_baseline is None and value is None and not decaying:
        return None, None
    baseline = 0.0
    if decaying:
        baseline = _decaying_average(site, cost, options.get("baseline_beta", 0.90))
    if nn_baseline is not None:
        if "nn_baseline_input" not in options:
            raise ValueError(f"site '{site.name}': nn_baseline needs nn_baseline_input")
        baseline = baseline + nn_baseline(_core.astensor(options["nn_baseline_input"]).detach())
    elif value is not None:
        baseline = baseline + _core.astensor(value)
    shape = _core.astensor(baseline).shape
    if shape != cost.shape:
        raise ValueError(f"site '{site.name}': the baseline has shape {shape}, but the "
                         f"downstream cost it is subtracted from has shape {cost.shape}")
    if nn_baseline is None and value is None:
        return baseline, None
    residual = cost - baseline
    return baseline, _core.sum_all([residual * residual])


def _decaying_average(site, cost, beta):
    """The running average of the site's downstream cost before this step
    (Pyro keeps it in the param store under the same name, outside any
    gradient), then updated with this step's cost."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"site '{site.name}': baseline_beta must be in [0, 1), got {beta!r}")
    if _core.current_tape().freezing:
        raise ValueError(f"site '{site.name}': use_decaying_avg_baseline updates its average "
                         "in Python after each step, which a compiled run cannot repeat; use "
                         "baseline_value or nn_baseline in compiled runs")
    store = get_param_store()
    name = "__baseline_avg_downstream_cost_" + site.name
    current = np.array(_core.value_of(cost), dtype=np.float64)
    with _core.off_tape():
        store.get_param(name, np.zeros(current.shape))
    average = store.unconstrained(name)
    if average.shape != current.shape:
        raise ValueError(f"site '{site.name}': the downstream cost changed shape from "
                         f"{average.shape} to {current.shape}; the decaying-average baseline "
                         "needs a fixed shape")
    old = _core.astensor(average.copy())
    if np.isfinite(current).all():
        average *= beta
        average += (1.0 - beta) * current
    return old
