"""TraceEnum_ELBO: the ELBO with discrete latent sites summed out exactly
(Pyro's `pyro.infer.TraceEnum_ELBO`).

Model sites marked `infer={"enumerate": "parallel"}` (or through
`config_enumerate`) that the guide does not draw take all their values at
once along dims left of the plates (csvi.handlers.enum); the model's log
joint is then a product of factors over those dims, and the ELBO's model
term is its log-sum over all assignments, computed by plated variable
elimination (csvi.infer.plated_elimination) -- never by building the joint.

Guide sites marked for parallel enumeration are summed exactly too: every
cost term is weighted by the guide probabilities of the enumerated values it
depends on (Pyro's Dice estimator), and non-reparameterized guide sites
that are sampled get score-function terms weighted by the costs in their
plates.  Guide sites marked "sequential" are summed by running guide and
model once per value (handlers.queue), each run weighted the same way.
"""
import queue
import warnings

import numpy as np

from csvi import _core
from csvi.handlers import Trace, replay, trace
from csvi.handlers import queue as queued
from csvi.handlers.enum_messenger import EnumAllocator, EnumMessenger
from csvi.handlers.trace_struct import check_mask_shape, scale_and_mask
from csvi.infer.elbo import ELBO, check_site_agreement
from csvi.infer.plated_elimination import Factor, combine, eliminate, site_variables

__all__ = ["TraceEnum_ELBO"]


class TraceEnum_ELBO(ELBO):
    """ELBO = E_q[log Σ_{enumerated z} p(x, z, y) - log q(y)], with the
    enumerated sums exact (see the module docstring).

    `max_plate_nesting` bounds the plate dims; enumeration uses the dims to
    their left (guessed from one run when not given, as in Pyro).
    `strict_enumeration_warning` warns when nothing is enumerated (then
    Trace_ELBO would do)."""

    def __init__(self, num_particles=1, max_plate_nesting=float("inf"),
                 vectorize_particles=False, strict_enumeration_warning=True):
        super().__init__(num_particles, max_plate_nesting, vectorize_particles)
        self.strict_enumeration_warning = bool(strict_enumeration_warning)

    @property
    def _nesting(self):
        """Plate dims in use, with the particle plate when vectorized."""
        return int(self.max_plate_nesting) + (1 if self.particles_per_run > 1 else 0)

    def _get_traces(self, model, guide, args, kwargs):
        if self.max_plate_nesting == float("inf"):
            self.max_plate_nesting = self._guess_max_plate_nesting(model, guide, args, kwargs)
        if self.particles_per_run > 1:
            model, guide = self._vectorized(model, guide, args, kwargs)
        nesting = self._nesting
        allocator = EnumAllocator(-1 - nesting)
        guide_trace = trace(EnumMessenger(guide, allocator=allocator)).get_trace(*args, **kwargs)
        guide_dims = [site.infer["_enumerate_dim"] for site in _sample_sites(guide_trace)
                      if "_enumerate_dim" in site.infer]
        # the model's variables go left of every dim the guide used
        allocator.next_available_dim = min(guide_dims + [allocator.next_available_dim + 1]) - 1
        model_trace = trace(EnumMessenger(replay(model, trace=guide_trace),
                                          allocator=allocator)).get_trace(*args, **kwargs)
        _check_enumerated_model_sites(model_trace, guide_trace)
        check_site_agreement(model_trace, guide_trace)
        if self.strict_enumeration_warning and not any(
                _is_enumerated(site) for tr in (model_trace, guide_trace)
                for site in _sample_sites(tr)):
            warnings.warn("TraceEnum_ELBO found no sample sites configured for enumeration; "
                          "mark sites with infer={'enumerate': 'parallel'} or "
                          "config_enumerate, or use Trace_ELBO", RuntimeWarning, stacklevel=5)
        model_trace.compute_log_prob()
        guide_trace.compute_log_prob()
        return model_trace, guide_trace

    def particle_tensors(self, model, guide, args, kwargs):
        """One particle: a pair of traces per value of the guide's
        sequentially enumerated sites (one pair without them), their Dice
        ELBOs summed."""
        todo = queue.Queue()
        todo.put(Trace())
        guide_runs = queued(guide, queue=todo, escape_fn=_undecided_sequential_site)
        pairs = [self._get_traces(model, guide_runs, args, kwargs)]
        while not todo.empty():
            pairs.append(self._get_traces(model, guide_runs, args, kwargs))
        elbo = _core.sum_all([self._particle(*pair)[0] for pair in pairs])
        loss = -elbo if self.num_particles == 1 else elbo * (-1.0 / self.num_particles)
        return loss, loss, pairs

    def _particle(self, model_trace, guide_trace):
        nesting = self._nesting
        costs = _model_costs(model_trace, guide_trace, nesting)
        weights = []  # log-weight factors: enumerated probabilities, score-function ones
        for name, site in _latent_sites(guide_trace):
            lq = site.log_prob
            costs.append(_factor(name, site, -_core.astensor(lq), nesting))
            if _is_enumerated(site):
                weights.append(_factor(name, site, site.unscaled_log_prob, nesting))
            elif not site.fn.has_rsample:
                score = _core.astensor(site.unscaled_log_prob)
                weights.append(_factor(name, site, score - score.detach(), nesting))
        elbo = _core.sum_all([_expected(cost, weights) for cost in costs])
        return elbo, elbo


def _undecided_sequential_site(partial, msg):
    return (msg.type == "sample" and not msg.is_observed and msg.name not in partial
            and msg.infer.get("enumerate") == "sequential")


def _is_enumerated(site):
    return "_enumerate_dim" in site.infer or site.infer.get("enumerate") == "sequential"


def _sample_sites(tr):
    return [site for site in tr.nodes.values() if site.type == "sample"]


def _latent_sites(tr):
    return [(name, site) for name, site in tr.nodes.items()
            if site.type == "sample" and not site.is_observed]


def _plates(site):
    return frozenset(f for f in site.cond_indep_stack if f.dim is not None)


def _factor(name, site, log_value, nesting):
    return Factor.from_site(name, log_value, site.infer.get("_dim_to_id", {}), _plates(site),
                            nesting)


def _model_costs(model_trace, guide_trace, nesting):
    """The model's cost factors: each site's log_prob as it is, except that
    the sites which depend on variables enumerated in the model are summed
    over those variables first (masked inside the log-sum, scaled outside)."""
    enumerated = {site.infer["_dim_to_id"][site.infer["_enumerate_dim"]]: (name, site)
                  for name, site in model_trace.nodes.items()
                  if site.type == "sample" and "_enumerate_dim" in site.infer
                  and name not in guide_trace.nodes}
    var_plates = {id_: _plates(site) for id_, (_, site) in enumerated.items()}
    costs, factors, scales = [], [], {}
    for name, site in model_trace.nodes.items():
        if site.type != "sample":
            continue
        factor = _factor(name, site, site.log_prob, nesting)
        if not enumerated or enumerated.keys().isdisjoint(factor.ids):
            costs.append(factor)
            continue
        factors.append(_masked_factor(name, site, nesting, var_plates))
        scales[name] = site.scale
    if not factors:
        return costs
    scale = _common_scale(scales)
    for factor in eliminate(factors, enumerated, var_plates):
        if not (type(scale) is float and scale == 1.0):
            factor = Factor(factor.tensor * scale, factor.ids, factor.plates, factor.nesting)
        costs.append(factor)
    return costs


def _masked_factor(name, site, nesting, var_plates):
    """The site's unscaled log-density as a factor, masked.  The plates none
    of its enumerated variables lives in are multiplied out first (the
    elimination would do that first anyway), and a mask constant along them
    is applied to that smaller product: a chain's emission summed over its
    data dims is masked once per state and sequence, not once per datum."""
    log_prob = _core.astensor(site.unscaled_log_prob)
    mask = site.mask
    dim_to_id = site.infer.get("_dim_to_id", {})
    ids, _ = site_variables(name, log_prob.shape, dim_to_id, nesting)
    plates = _plates(site)
    outer = [f for f in plates if not any(f in var_plates[v] for v in ids)]
    if mask is None or mask is True:
        return Factor.from_site(name, log_prob, dim_to_id, plates, nesting, outer)
    check_mask_shape(mask, log_prob, name)
    tail = _mask_tail(_core.value_of(mask).shape, nesting)
    if not outer or tail is None or any(tail[f.dim] != 1 for f in outer):
        return _factor(name, site, scale_and_mask(log_prob, 1.0, mask, name), nesting)
    factor = Factor.from_site(name, log_prob, dim_to_id, plates, nesting, outer)
    shape = (1,) * len(factor.ids) + tail
    mask = _core.reshape(mask, shape) if isinstance(mask, _core.Tensor) else np.reshape(mask, shape)
    return Factor(_core.where(mask, factor.tensor, 0.0), factor.ids, factor.plates, nesting)


def _mask_tail(shape, nesting):
    """A mask's shape over the `nesting` plate dims (size 1 where it has
    none), or None when it varies along a dim left of them (with an
    enumerated variable)."""
    shape = tuple(shape)
    if any(s != 1 for s in shape[:max(len(shape) - nesting, 0)]):
        return None
    tail = shape[max(len(shape) - nesting, 0):]
    return (1,) * (nesting - len(tail)) + tail


def _common_scale(scales):
    """The one scale (subsampling factor) of all sites summed over jointly:
    it can only multiply the log of the sum, so it must be shared."""
    (first_name, first), *rest = scales.items()
    for name, value in rest:
        if not np.array_equal(_core.value_of(value), _core.value_of(first)):
            raise ValueError(
                "TraceEnum_ELBO: the sites that depend on enumerated variables must share "
                f"one scale (subsampling factor), but '{name}' has {value} and "
                f"'{first_name}' has {first}; subsample the plates around them alike")
    return first


def _expected(cost, weights):
    """Σ over every dim of cost × the weights of the guide sites in the
    cost's plates (probabilities of enumerated values; 1 with a score-
    function gradient for sampled ones)."""
    relevant = [w for w in weights if w.plates <= cost.plates]
    if not relevant:
        return _core.sum(cost.tensor)
    log_weight = combine(relevant)
    ids = list(log_weight.ids) + [i for i in cost.ids if i not in log_weight.ids]
    weight = _core.exp(log_weight.arranged(ids))
    product = weight * cost.arranged(ids)
    # where an enumerated value has probability 0 its cost may be -inf
    product = _core.where(weight > 0.0, product, 0.0)
    return _core.sum(product)


def _check_enumerated_model_sites(model_trace, guide_trace):
    for name, site in model_trace.nodes.items():
        if site.type != "sample" or site.is_observed or name in guide_trace.nodes:
            continue
        strategy = site.infer.get("enumerate")
        if strategy == "sequential":
            raise ValueError(
                f"site '{name}' is marked for sequential enumeration in the model, where "
                "sites are enumerated in parallel only (as in Pyro); use "
                "infer={'enumerate': 'parallel'} or draw it in the guide")
