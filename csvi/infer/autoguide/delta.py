"""AutoDelta: a point estimate of every latent site (Pyro's `AutoDelta`):
MAP inference in constrained space."""
import numpy as np

from csvi import _core
from csvi.distributions import Delta
from csvi.infer.autoguide.guide import AutoGuide
from csvi.infer.autoguide.initialization import InitMessenger, init_to_median
from csvi.infer.autoguide.utils import constant, latent_sites, periodic_repeat, site_transform
from csvi.params import get_param_store
from csvi.primitives import param, sample

__all__ = ["AutoDelta"]


class AutoDelta(AutoGuide):
    """Each latent site is a Delta at the param "AutoDelta.<site>", kept in the
    site's support.  The Delta adds no log-density, so SVI maximizes the
    model's joint density of the constrained values: the posterior mode in
    constrained space (a Gamma(a, b) posterior gives (a - 1) / b, not the mode
    of log z), as Pyro's AutoDelta."""

    def __init__(self, model, init_loc_fn=init_to_median, *, create_plates=None):
        self.init_loc_fn = init_loc_fn
        super().__init__(InitMessenger(init_loc_fn)(model), create_plates=create_plates)

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        self._init_values = {}
        for name, site in latent_sites(self.prototype_trace):
            site_transform(name, site, self._pyro_name)  # a discrete site fails here
            value = np.array(_core.value_of(site.value), dtype=np.float64)
            event_dim = site.fn.event_dim
            for frame in site.cond_indep_stack:
                if frame.size is not None and frame.size != frame.subsample_size:
                    value = periodic_repeat(value, frame.size, frame.dim - event_dim)
            self._init_values[name] = np.array(value, order="C")

    def _param_name(self, name):
        return f"{self._pyro_name}.{name}"

    def forward(self, *args, **kwargs):
        """Put every latent site at its param; returns {name: value}."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        result = {}
        for name, site in latent_sites(self.prototype_trace):
            event_dim = site.fn.event_dim
            with self._site_plates(site, plates):
                value = param(self._param_name(name), self._init_values[name],
                                   site.fn.support, event_dim=event_dim)
                result[name] = sample(name, Delta(value, event_dim=event_dim))
        return result

    def median(self, *args, **kwargs):
        """The point estimate of each latent site (full size)."""
        self._require_prototype(args, kwargs)
        store = get_param_store()
        result = {}
        for name, _ in latent_sites(self.prototype_trace):
            pname = self._param_name(name)
            result[name] = constant(store[pname] if pname in store else self._init_values[name])
        return result
