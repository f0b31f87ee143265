"""Predictive: draws of a model's sites given posterior samples or a guide
(Pyro's `pyro.infer.Predictive`), as NumPy arrays with a leading sample dim.

Sequentially, the model runs once per sample, conditioned on that sample's
values.  With `parallel=True` it runs once inside an outermost plate of
`num_samples` (left of the model's plates), every posterior value given that
leading dim: one vectorized pass, which needs a model whose batch dims are
all declared by plates, as in Pyro.
"""
import warnings

import numpy as np

from csvi import _core
from csvi.handlers import block, condition, trace
from csvi.infer.autoguide.utils import off_step
from csvi.primitives import plate

__all__ = ["Predictive"]

_VECTORIZE_PLATE = "_num_predictive_samples"


class Predictive:
    """`Predictive(model, posterior_samples=None, guide=None, num_samples=None,
    return_sites=(), parallel=False)(*args, **kwargs)` returns {site: array}.

    Which sites come back, as in Pyro: `return_sites` if given (plus
    "_RETURN", the model's return value, only if named there); else, with a
    guide, every sample site of the model (latent, observed and
    deterministic), the latent ones drawn by the guide; else every sample site
    not in `posterior_samples`.  Each array has shape (num_samples,) + (1,) *
    k + the site's value shape, with k = the model's plate nesting minus the
    site's batch dims (Pyro's shapes).

        >>> import numpy as np, csvi, csvi.distributions as dist
        >>> from csvi.infer import Predictive
        >>> def model():
        ...     z = csvi.sample("z", dist.Normal(0.0, 1.0))
        ...     with csvi.plate("data", 3):
        ...         csvi.sample("x", dist.Normal(z, 1.0))
        >>> out = Predictive(model, {"z": np.zeros(100)})()
        >>> sorted(out), out["x"].shape
        (['x'], (100, 3))
    """

    def __init__(self, model, posterior_samples=None, guide=None, num_samples=None,
                 return_sites=(), parallel=False):
        if not callable(model):
            raise TypeError(f"Predictive: model must be callable, got {model!r}")
        if posterior_samples is None:
            if num_samples is None:
                raise ValueError("Predictive: give posterior_samples or num_samples")
            posterior_samples = {}
        samples = {}
        for name, value in posterior_samples.items():
            value = np.asarray(_core.value_of(value))
            if value.ndim == 0:
                raise ValueError(f"Predictive: posterior_samples['{name}'] is a scalar; it "
                                 "needs a leading sample dim")
            if num_samples is None:
                num_samples = value.shape[0]
            elif num_samples != value.shape[0]:
                warnings.warn(f"Predictive: posterior_samples['{name}'] has {value.shape[0]} "
                              f"samples but num_samples is {num_samples}; using "
                              f"{value.shape[0]}", UserWarning, stacklevel=2)
                num_samples = value.shape[0]
            samples[name] = value
        if num_samples is None:
            raise ValueError("Predictive: posterior_samples is empty, so num_samples is "
                             "needed")
        if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"Predictive: num_samples must be a positive integer, got "
                             f"{num_samples!r}")
        if guide is not None and samples:
            raise ValueError("Predictive: give posterior_samples or a guide, not both")
        if return_sites is not None and not isinstance(return_sites, (list, tuple, set)):
            raise TypeError(f"Predictive: return_sites must be a list, tuple or set of site "
                            f"names, got {return_sites!r}")
        self.model = model
        self.posterior_samples = samples
        self.guide = guide
        self.num_samples = int(num_samples)
        self.return_sites = return_sites
        self.parallel = bool(parallel)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """{site: NumPy array with a leading dim of num_samples}."""
        samples, return_sites = self.posterior_samples, self.return_sites
        if self.guide is not None:
            return_sites = return_sites or None  # with a guide: every model site by default
            samples = _predictive(self.guide, samples, self.num_samples, None, self.parallel,
                                  args, kwargs)[0]
        return _predictive(self.model, samples, self.num_samples, return_sites,
                           self.parallel, args, kwargs)[0]

    def get_vectorized_trace(self, *args, **kwargs):
        """One trace of the model run in parallel over every sample (its values
        stay csvi Tensors with the sample dim on the left)."""
        samples = self.posterior_samples
        if self.guide is not None:
            samples = _predictive(self.guide, samples, self.num_samples, (), self.parallel,
                                  args, kwargs)[0]
        return _predictive(self.model, samples, self.num_samples, (), True, args, kwargs)[1]


def _predictive(model, posterior_samples, num_samples, return_sites, parallel, args, kwargs):
    """({site: array}, trace or list of traces) of `model` conditioned on
    `posterior_samples`; return_sites None means every sample site."""
    with off_step():
        with block():
            shape_trace = trace(model).get_trace(*args, **kwargs)
        nesting = _plate_nesting(shape_trace)
        shapes = _return_shapes(shape_trace, posterior_samples, num_samples, return_sites,
                                nesting)
        if not parallel:
            return _sequential(model, posterior_samples, num_samples, shapes, args, kwargs)
        samples = {}
        for name, value in posterior_samples.items():
            sample_shape = value.shape[1:]
            pad = (1,) * max(nesting - len(sample_shape), 0)
            samples[name] = _core.tensor(value.reshape((num_samples,) + pad + sample_shape))
        vectorize = plate(_VECTORIZE_PLATE, num_samples, dim=-nesting - 1)
        try:
            tr = trace(condition(vectorize(model), data=samples)).get_trace(*args, **kwargs)
        except ValueError as e:
            raise ValueError(f"Predictive(parallel=True): the vectorized run of {_name(model)} "
                             f"over {num_samples} samples failed: {e} (a vectorized run "
                             "needs every batch dim of the model declared by a plate; "
                             "parallel=False runs one sample at a time)") from e
        out = {}
        for name, shape in shapes.items():
            value = tr.nodes[name].value
            if shape is None:  # a _RETURN that is not an array
                out[name] = value
                continue
            value = np.asarray(_core.value_of(value))
            if value.size < int(np.prod(shape, dtype=np.int64)):
                out[name] = _broadcast(name, value, shape)
            else:
                out[name] = value.reshape(shape).copy()
        return out, tr


def _sequential(model, posterior_samples, num_samples, shapes, args, kwargs):
    traces, collected = [], {name: [] for name in shapes}
    for i in range(num_samples):
        data = {name: _core.tensor(value[i]) for name, value in posterior_samples.items()}
        tr = trace(condition(model, data=data)).get_trace(*args, **kwargs)
        traces.append(tr)
        for name in shapes:
            value = tr.nodes[name].value
            collected[name].append(value if shapes[name] is None
                                   else np.array(_core.value_of(value)))
    out = {}
    for name, shape in shapes.items():
        out[name] = collected[name] if shape is None else \
            _stack(name, collected[name]).reshape(shape)
    return out, traces


def _name(fn):
    return getattr(fn, "__name__", None) or type(fn).__name__


def _plate_nesting(tr):
    """How many plate dims the model's sample sites use (Pyro's guess of
    max_plate_nesting from one run)."""
    dims = [frame.dim for site in tr.nodes.values() if site.type == "sample"
            for frame in site.cond_indep_stack if frame.dim is not None]
    return -min(dims) if dims else 0


def _return_shapes(tr, posterior_samples, num_samples, return_sites, nesting):
    """{site: output shape} of the sites to return (None: a non-array _RETURN)."""
    sites = [name for name, site in tr.nodes.items() if site.type == "sample"]
    if return_sites:
        unknown = [name for name in return_sites if name not in sites and name != "_RETURN"]
        if unknown:
            raise ValueError(f"Predictive: return_sites {unknown} are not sample sites of "
                             f"the model (its sample sites: {sites})")
    shapes = {}
    for name in [n for n in sites if not tr.nodes[n].is_observed] + \
            [n for n in sites if tr.nodes[n].is_observed]:
        site = tr.nodes[name]
        if return_sites:
            if name not in return_sites:
                continue
        elif return_sites is not None and name in posterior_samples:
            continue
        pad = (1,) * max(nesting - len(site.fn.batch_shape), 0)
        shapes[name] = (num_samples,) + pad + tuple(np.shape(_core.value_of(site.value)))
    if return_sites is not None and "_RETURN" in return_sites:
        value = tr.nodes["_RETURN"].value
        is_array = _core.is_tensor(value) or isinstance(value, np.ndarray)
        shapes["_RETURN"] = (num_samples,) + tuple(value.shape) if is_array else None
    return shapes


def _stack(name, values):
    try:
        return np.stack(values)
    except ValueError:
        shapes = sorted({v.shape for v in values})
        raise ValueError(f"Predictive: site '{name}' has different shapes in different "
                         f"samples ({shapes}); its draws cannot be stacked") from None


def _broadcast(name, value, shape):
    try:
        return np.broadcast_to(value, shape).copy()
    except ValueError:
        raise ValueError(f"Predictive: site '{name}' has shape {value.shape} in the "
                         f"vectorized run, which does not broadcast to {shape}; declare "
                         "every batch dim of the model with a plate, or use "
                         "parallel=False") from None
