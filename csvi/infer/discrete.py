"""infer_discrete: draw a model's enumerated sites from their posterior given
everything else, or take their most likely joint assignment (Pyro's
`pyro.infer.infer_discrete`).

One run of the model under parallel enumeration gives every site's factor;
plated variable elimination sums the enumerated variables out while keeping
each variable's joint factor; walking those back (forward filtering,
backward sampling -- or Viterbi's max-product with temperature 0) assigns
each variable given the ones assigned before it.  The model then runs again
with those values replayed, so its return value and trace carry them."""
import functools
import warnings

import numpy as np

from csvi import _core
from csvi.handlers import block, replay, trace
from csvi.handlers.enum_messenger import EnumMessenger
from csvi.infer.plated_elimination import Factor, eliminate

__all__ = ["infer_discrete"]


def infer_discrete(fn=None, first_available_dim=None, temperature=1,
                   *, strict_enumeration_warning=True):
    """`fn` wrapped so that each call assigns its sites marked
    `infer={"enumerate": "parallel"}`: a posterior draw (temperature=1) or
    the joint MAP assignment (temperature=0), given the observed sites and
    the values of its other latent sites (e.g. a guide's, through replay).
    `first_available_dim` is the rightmost dim free for enumeration,
    `-1 - max_plate_nesting`."""
    if temperature not in (0, 1):
        raise ValueError(f"infer_discrete: temperature must be 0 (MAP) or 1 (sample), "
                         f"got {temperature!r}")
    if first_available_dim is None or isinstance(first_available_dim, bool) or \
            int(first_available_dim) != first_available_dim or first_available_dim >= 0:
        raise ValueError("infer_discrete: first_available_dim must be a negative integer "
                         f"(-1 - max_plate_nesting), got {first_available_dim!r}")
    if fn is None:
        return functools.partial(infer_discrete, first_available_dim=first_available_dim,
                                 temperature=temperature,
                                 strict_enumeration_warning=strict_enumeration_warning)

    @functools.wraps(fn)
    def inferred(*args, **kwargs):
        args, kwargs = _core.data_args(args, kwargs)
        assigned = _assign(fn, int(first_available_dim), temperature,
                           strict_enumeration_warning, args, kwargs)
        return replay(fn, trace=assigned)(*args, **kwargs)

    return inferred


def _assign(fn, first_available_dim, temperature, strict, args, kwargs):
    """A trace holding every latent site's value for the replay: the
    enumerated ones assigned from the posterior, the others as drawn."""
    with block():
        enum_trace = trace(EnumMessenger(fn, first_available_dim=first_available_dim)
                           ).get_trace(*args, **kwargs)
    enum_trace.compute_log_prob()
    nesting = -1 - first_available_dim
    sites = {site.infer["_dim_to_id"][site.infer["_enumerate_dim"]]: site
             for site in enum_trace.nodes.values()
             if site.type == "sample" and "_enumerate_dim" in site.infer}
    if not sites and strict:
        warnings.warn("infer_discrete found no sample sites configured for enumeration; "
                      "mark them with infer={'enumerate': 'parallel'} or config_enumerate",
                      RuntimeWarning, stacklevel=4)
    factors = [Factor.from_site(name, site.log_prob, site.infer.get("_dim_to_id", {}),
                                _plates(site), nesting)
               for name, site in enum_trace.nodes.items() if site.type == "sample"]
    factors = [f for f in factors if not set(sites).isdisjoint(f.ids)]
    trail = []
    eliminate(factors, sites, {id_: _plates(site) for id_, site in sites.items()}, trail,
              maximize=temperature == 0)
    chosen = _walk_back(trail, temperature)
    assigned = enum_trace.copy()
    for id_, site in sites.items():
        new = site.copy()
        new.value = _support_value(site, chosen[id_], nesting)
        new.infer = {k: v for k, v in site.infer.items() if not k.startswith("_")}
        assigned.nodes[site.name] = new
    return assigned


def _plates(site):
    return frozenset(f for f in site.cond_indep_stack if f.dim is not None)


def _walk_back(trail, temperature):
    """{variable id: chosen index, shaped like the plate dims}: each
    variable from its joint factor with the later-summed ones fixed."""
    generator = _core.get_generator()
    chosen = {}
    for var, joint in reversed(trail):
        table = np.asarray(_core.value_of(joint.tensor))
        ids = list(joint.ids)
        order = [ids.index(var)] + [k for k, i in enumerate(ids) if i != var]
        table = np.transpose(table, order + list(range(len(ids), table.ndim)))
        for other in [i for i in ids if i != var]:
            index = chosen[other].reshape((1, 1) + (1,) * (table.ndim - 2 - joint.nesting)
                                          + chosen[other].shape)
            table = np.take_along_axis(table, index, axis=1)[:, 0]
        if temperature == 1:
            table = table + generator.gumbel(size=table.shape)
        chosen[var] = np.argmax(table, axis=0)
    return chosen


def _support_value(site, index, nesting):
    """The support values at `index`, shaped like the site's own batch dims
    (its plates) and event dims."""
    fn = site.fn
    raw = _core.astensor(fn.enumerate_support(expand=False))
    support = np.asarray(_core.value_of(raw))
    event = support.shape[support.ndim - fn.event_dim:] if fn.event_dim else ()
    support = support.reshape((support.shape[0],) + event)
    batch_len = min(len(fn.batch_shape), nesting)
    index = index.reshape(index.shape[index.ndim - batch_len:]) if batch_len else index.reshape(())
    value = _core.astensor(support[index])
    if raw.dtype == np.int64:  # a Categorical's indices stay integer Tensors
        value = _core.mark_integer(value)
    return value
