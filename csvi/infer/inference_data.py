"""`to_inference_data`: a fitted guide's draws (or given posterior samples),
their posterior predictive, the observed data, the pointwise log-likelihood
and the run's losses as an ArviZ `InferenceData`, so `arviz.summary`,
`arviz.loo` and ArviZ's plots work on a csvi fit.

ArviZ is an optional extra (`pip install csvi[arviz]`), imported on call.
Written for the ArviZ pip installs on Python 3.11 (0.2x, `InferenceData` on
xarray); ArviZ 1.x (DataTree) needs Python 3.12 and is not supported yet.
"""
import numpy as np

from csvi import _core
from csvi.handlers import block, condition, trace
from csvi.infer.autoguide.utils import off_step
from csvi.infer.predictive import Predictive

__all__ = ["to_inference_data"]


def to_inference_data(source, model, *args, num_samples=1000, result=None, parallel=False,
                      **kwargs):
    """InferenceData of one chain of `num_samples` draws.

    `source`: the fitted guide (its draws are the posterior) or a dict of
    posterior samples {site: array with a leading sample dim} (e.g. from
    `Predictive`).  `model` and `*args, **kwargs`: the model and the
    arguments it was fitted with.  Groups: `posterior` (the latent sites),
    `posterior_predictive` (each observed site drawn afresh from its
    distribution given the draw -- and given the observed values of the sites
    before it, so for a model whose observations feed later sites, as a time
    series, it is the one-step-ahead predictive),
    `observed_data`, `log_likelihood` (per observed site, pointwise:
    log p(y_i | draw), unscaled by any subsampling plate), and, given
    `result` (an SVIRunResult or an array of losses), `sample_stats` with the
    losses along a `step` dim.  `parallel=True` draws and evaluates all
    samples in one vectorized pass (the model must declare its batch dims
    with plates)."""
    try:
        import arviz as az
        import xarray as xr
    except ImportError:
        raise ImportError("to_inference_data needs ArviZ: pip install 'csvi[arviz]' "
                          "(or pip install arviz)") from None
    args, kwargs = _core.data_args(args, kwargs)
    with off_step(), block():
        shape_trace = trace(model).get_trace(*args, **kwargs)
        shape_trace.compute_log_prob()
    sites = {n: s for n, s in shape_trace.nodes.items() if s.type == "sample"}
    observed = [n for n, s in sites.items() if s.is_observed]
    latent = [n for n, s in sites.items() if not s.is_observed]
    if callable(source):
        posterior = Predictive(model, guide=source, num_samples=num_samples, parallel=parallel,
                               return_sites=latent)(*args, **kwargs)
    elif isinstance(source, dict):
        unknown = sorted(set(source) - set(latent))
        if unknown:
            raise ValueError(f"to_inference_data: posterior samples {unknown} are not latent "
                             f"sites of the model (its latent sites: {latent})")
        posterior = {n: np.asarray(_core.value_of(v)) for n, v in source.items()}
    else:
        raise TypeError(f"to_inference_data: source must be a guide or a dict of posterior "
                        f"samples, got {type(source).__name__}")
    num = len(next(iter(posterior.values()))) if posterior else num_samples
    predictive, log_likelihood = _given_each_draw(model, posterior, num, observed, sites,
                                                  parallel, args, kwargs)
    posterior = {n: _site_shaped(v, sites[n].value) for n, v in posterior.items()}
    groups = {
        "posterior": {n: v[None] for n, v in posterior.items()},
        "posterior_predictive": {n: v[None] for n, v in predictive.items()},
        "observed_data": {n: np.array(_core.value_of(sites[n].value)) for n in observed},
        "log_likelihood": {n: v[None] for n, v in log_likelihood.items()},
    }
    data = az.from_dict(**{g: v for g, v in groups.items() if v})
    if result is not None:
        losses = np.asarray(getattr(result, "losses", result), dtype=np.float64)
        stats = xr.Dataset({"loss": (("step",), losses)},
                           coords={"step": np.arange(1, losses.size + 1)})
        data.add_groups({"sample_stats": stats})
    return data


def _site_shaped(draws, value):
    """Draws (num_samples, pad..., *value shape) as (num_samples, *value shape)."""
    shape = np.shape(_core.value_of(value))
    return np.asarray(draws).reshape((len(draws),) + shape)


def _given_each_draw(model, posterior, num, observed, sites, parallel, args, kwargs):
    """({observed site: (num, *value shape)} of fresh draws from the site's
    distribution, {observed site: (num, *batch shape)} of log p(y | draw),
    unscaled), from the model run conditioned on each posterior draw."""
    if not observed:
        return {}, {}
    value_shapes = {n: np.shape(_core.value_of(sites[n].value)) for n in observed}
    lp_shapes = {n: np.shape(_core.value_of(sites[n].unscaled_log_prob)) for n in observed}
    with off_step():
        if parallel:
            tr = Predictive(model, posterior_samples=posterior, return_sites=observed,
                            parallel=True).get_vectorized_trace(*args, **kwargs)
            tr.compute_log_prob()
            return ({n: _per_draw(tr.nodes[n].fn.sample(), num, value_shapes[n])
                     for n in observed},
                    {n: _per_draw(tr.nodes[n].unscaled_log_prob, num, lp_shapes[n])
                     for n in observed})
        draws = {n: np.empty((num,) + value_shapes[n]) for n in observed}
        log_likelihood = {n: np.empty((num,) + lp_shapes[n]) for n in observed}
        for i in range(num):
            data = {n: _core.tensor(v[i]) for n, v in posterior.items()}
            tr = trace(condition(model, data=data)).get_trace(*args, **kwargs)
            tr.compute_log_prob()
            for n in observed:
                site = tr.nodes[n]
                draws[n][i] = np.reshape(_core.value_of(site.fn.sample()), value_shapes[n])
                log_likelihood[n][i] = np.reshape(_core.value_of(site.unscaled_log_prob),
                                                  lp_shapes[n])
    return draws, log_likelihood


def _per_draw(values, num, shape):
    """A vectorized run's values (num, pad..., *shape), or (*shape) when they
    do not depend on the draw, as (num, *shape)."""
    values = np.asarray(_core.value_of(values))
    if values.size == int(np.prod(shape, dtype=np.int64)):
        return np.broadcast_to(values.reshape(shape), (num,) + shape).copy()
    return values.reshape((num,) + shape)
