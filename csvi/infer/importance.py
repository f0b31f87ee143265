"""Importance log weights log p(x, z) - log q(z) of a guide's draws, and the
PSIS k-hat diagnostic of the guide built on them (Pyro's
`pyro.infer.importance.psis_diagnostic`; Yao, Vehtari, Simpson and Gelman,
"Yes, but did it work?", 2018).

Where the model allows it, all draws come from one run of guide and model
inside an outermost particle plate (as `vectorize_particles=True`); a model
that cannot run vectorized (a batch dim not declared by a plate) falls back
to one run per draw.  The mean of the log weights is the ELBO estimate the
convergence stop uses.
"""
import warnings

import numpy as np

from csvi import _core
from csvi.handlers import block, replay, trace
from csvi.infer.autoguide.utils import off_step, side_generator
from csvi.infer.psis import pareto_smooth
from csvi.infer.trace_elbo import Trace_ELBO

__all__ = ["importance_log_weights", "psis_diagnostic"]


def importance_log_weights(model, guide, *args, num_particles=1000, max_plate_nesting=None,
                           vectorize=None, return_samples=False, **kwargs):
    """log p(x, z_s) - log q(z_s) for `num_particles` draws z_s of the guide,
    as a NumPy array of shape (num_particles,); with `return_samples=True`
    also the draws, {latent site: array (num_particles, *site shape)}, for
    resampling them (`pareto_smooth` gives the smoothed, normalized weights).

    `vectorize`: True runs all draws in one vectorized pass (the model must
    declare every batch dim with a plate), False one run per draw, None
    (default) tries the vectorized pass and falls back, with a warning, to
    one run per draw if it fails.  `max_plate_nesting` is guessed from one
    run when None.  Log-densities are those the ELBO sums (scaled by
    subsampling plates)."""
    if isinstance(num_particles, bool) or int(num_particles) != num_particles \
            or num_particles < 1:
        raise ValueError(f"importance_log_weights: num_particles must be a positive integer, "
                         f"got {num_particles!r}")
    if vectorize not in (None, True, False):
        raise ValueError(f"importance_log_weights: vectorize must be None, True or False, "
                         f"got {vectorize!r}")
    log_weights, samples, _ = log_weights_and_mode(model, guide, args, kwargs,
                                                   int(num_particles), max_plate_nesting,
                                                   vectorize, return_samples)
    return (log_weights, samples) if return_samples else log_weights


def log_weights_and_mode(model, guide, args, kwargs, num_particles, max_plate_nesting,
                         vectorize, return_samples=False):
    """(log weights, {latent site: draws} or None, whether they came from one
    vectorized run).  A fallback from a failed vectorized run warns, naming
    the error."""
    nesting = float("inf") if max_plate_nesting is None else max_plate_nesting
    args, kwargs = _core.data_args(args, kwargs)
    if vectorize is not False and num_particles > 1:
        try:
            return _vectorized(model, guide, args, kwargs, num_particles, nesting,
                               return_samples) + (True,)
        except (ValueError, TypeError, IndexError) as e:
            if vectorize:
                raise
            warnings.warn(f"the model and guide could not run vectorized over "
                          f"{num_particles} particles ({e}); running them once per particle, "
                          "which is slower. Declare every batch dim with a plate to "
                          "vectorize", UserWarning, stacklevel=3)
    elbo = Trace_ELBO(max_plate_nesting=nesting)
    log_weights, draws = np.empty(num_particles), []
    for i in range(num_particles):
        log_weights[i], model_trace = _log_weight(elbo, model, guide, args, kwargs)
        if return_samples:
            draws.append({name: np.array(_core.value_of(site.value))
                          for name, site in _latent(model_trace)})
    samples = {name: np.stack([d[name] for d in draws]) for name in draws[0]} \
        if return_samples else None
    return log_weights, samples, False


def _latent(model_trace):
    return [(name, site) for name, site in model_trace.nodes.items()
            if site.type == "sample" and not site.is_observed]


def _vectorized(model, guide, args, kwargs, num_particles, nesting, return_samples):
    elbo = Trace_ELBO(num_particles=num_particles, vectorize_particles=True,
                      max_plate_nesting=nesting)
    with off_step():
        _, _, [(model_trace, guide_trace)] = elbo.particle_tensors(model, guide, args, kwargs)
        dim = -int(elbo.max_plate_nesting) - 1
        total = np.zeros(num_particles)
        for sign, tr in ((1.0, model_trace), (-1.0, guide_trace)):
            for name, site in tr.nodes.items():
                if site.type == "sample" and (sign > 0 or not site.is_observed):
                    total += sign * _per_particle(name, site.log_prob, dim, num_particles)
        if not return_samples:
            return total, None
        with side_generator(), block():  # one plain run for each site's own shape
            one = trace(replay(model, trace=trace(guide).get_trace(*args, **kwargs))) \
                .get_trace(*args, **kwargs)
        samples = {}
        for name, site in _latent(model_trace):
            value = np.asarray(_core.value_of(site.value))
            event = len(site.fn.event_shape)
            value = value.reshape((1,) * max(event - dim - value.ndim, 0) + value.shape)
            value = np.moveaxis(value, value.ndim - event + dim, 0)  # the particle dim
            shape = np.shape(_core.value_of(one.nodes[name].value))
            if value.shape[0] == num_particles:
                samples[name] = value.reshape((num_particles,) + shape)
            else:  # one value for all particles
                samples[name] = np.broadcast_to(value.reshape(shape),
                                                (num_particles,) + shape).copy()
    return total, samples


def _per_particle(name, log_prob, dim, num_particles):
    """A site's log-density summed over every dim but the particle dim."""
    lp = np.asarray(_core.value_of(log_prob), dtype=np.float64)
    if lp.ndim < -dim:
        lp = lp.reshape((1,) * (-dim - lp.ndim) + lp.shape)
    lp = np.moveaxis(lp, lp.ndim + dim, 0)
    if lp.shape[0] not in (1, num_particles):
        raise ValueError(f"site '{name}': log_prob has {lp.shape[0]} entries along the "
                         f"particle dim, expected {num_particles}")
    return np.broadcast_to(lp.reshape(lp.shape[0], -1).sum(axis=1), (num_particles,))


def _log_weight(elbo, model, guide, args, kwargs):
    """(log p - log q, the model trace) of one draw."""
    with off_step():
        _, _, [(model_trace, guide_trace)] = elbo.particle_tensors(model, guide, args, kwargs)
        total = 0.0
        for sign, tr in ((1.0, model_trace), (-1.0, guide_trace)):
            for site in tr.nodes.values():
                if site.type == "sample" and (sign > 0 or not site.is_observed):
                    total += sign * float(np.sum(_core.value_of(site.log_prob)))
    return total, model_trace


def psis_diagnostic(model, guide, *args, num_particles=1000, max_simultaneous_particles=None,
                    max_plate_nesting=None, **kwargs):
    """k-hat, the Pareto shape of the right tail of the importance ratios
    p(x, z) / q(z) under the guide (Pyro's signature).  Below 0.5 the guide is
    close to the posterior; between 0.5 and 0.7 usable with care; above 0.7
    (or above `khat_threshold(num_particles)` =
    min(1 - 1/log10(S), 0.7), ArviZ's sample-size-aware bound) its
    importance-sampling estimates are unreliable.  A large S is needed for an
    accurate k-hat.

    `max_simultaneous_particles` (default: all) caps how many draws one
    vectorized run makes; it must divide `num_particles`."""
    if isinstance(num_particles, bool) or int(num_particles) != num_particles \
            or num_particles < 2:
        raise ValueError(f"psis_diagnostic: num_particles must be an integer >= 2, got "
                         f"{num_particles!r}")
    chunk = num_particles if max_simultaneous_particles is None else max_simultaneous_particles
    if isinstance(chunk, bool) or int(chunk) != chunk or chunk < 1 or num_particles % chunk:
        raise ValueError(f"psis_diagnostic: max_simultaneous_particles ({chunk!r}) must be a "
                         f"positive integer dividing num_particles ({num_particles})")
    log_weights = np.concatenate([
        importance_log_weights(model, guide, *args, num_particles=int(chunk),
                               max_plate_nesting=max_plate_nesting, **kwargs)
        for _ in range(int(num_particles) // int(chunk))])
    if not np.all(np.isfinite(log_weights)):
        bad = int(np.sum(~np.isfinite(log_weights)))
        if np.isnan(log_weights).any() or np.isposinf(log_weights).any():
            raise ValueError(f"psis_diagnostic: {bad} of {num_particles} log weights are NaN "
                             "or +inf; check the model's and guide's log-densities")
    return pareto_smooth(log_weights)[1]

