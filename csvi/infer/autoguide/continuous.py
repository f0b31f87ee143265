"""AutoContinuous and AutoDiagonalNormal: one joint distribution over all
latent sites, flattened on the reals into a single vector (Pyro's ADVI-style
autoguides).  AutoMultivariateNormal and the low-rank and Laplace guides
(multivariate.py) stand on the same base."""
import numpy as np

from csvi import _core, constraints
from csvi.distributions import Normal
from csvi.infer.autoguide.guide import AutoGuide
from csvi.infer.autoguide.initialization import InitMessenger, init_to_median
from csvi.infer.autoguide.normal import check_init_scale, constrained_delta, normal_icdf
from csvi.infer.autoguide.utils import (
    constant, latent_sites, site_transform, unconstrained_event_dim,
)
from csvi.params import get_param_store
from csvi.primitives import param, sample
from csvi.transforms import AffineTransform

__all__ = ["AutoContinuous", "AutoDiagonalNormal"]


class AutoContinuous(AutoGuide):
    """Base: subclasses give `get_posterior()`, a distribution over the
    vector of every latent site's unconstrained value (in the prototype's
    order, each flattened), and `_loc_scale()` for median and quantiles.

    The vector is drawn as the auxiliary site "_<name>_latent"; each latent
    site is then a Delta at its slice mapped onto its support, with the
    Jacobian term.  Local latents of a subsampled plate are not supported
    (the vector has one fixed length): use AutoNormal for those."""

    def __init__(self, model, init_loc_fn=init_to_median):
        self.init_loc_fn = init_loc_fn
        super().__init__(InitMessenger(init_loc_fn)(model))

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        self._unconstrained_shapes = {}
        self._transforms = {}
        self._cond_indep_stacks = {}
        parts = []
        for name, site in latent_sites(self.prototype_trace):
            for frame in site.cond_indep_stack:
                if frame.size is not None and frame.size != frame.subsample_size:
                    raise NotImplementedError(
                        f"{type(self).__name__}: site '{name}' is a local latent of the "
                        f"subsampled plate '{frame.name}'; its one latent vector cannot "
                        "follow a subsample. Use AutoNormal (or AutoDelta) for it, e.g. in "
                        "an AutoGuideList")
            t = site_transform(name, site, self._pyro_name)
            with _core.off_tape():
                u = np.array(_core.value_of(t.inv(site.value)), dtype=np.float64)
            self._transforms[name] = t
            self._unconstrained_shapes[name] = u.shape
            self._cond_indep_stacks[name] = site.cond_indep_stack
            parts.append(u.reshape(-1))
        self.latent_dim = sum(p.size for p in parts)
        if self.latent_dim == 0:
            raise RuntimeError(f"{type(self).__name__} found no latent variables; use an "
                               "empty guide instead")
        self._init_loc_value = np.concatenate(parts)

    def _init_loc(self):
        """The initial latent vector: each site's init value on the reals."""
        return self._init_loc_value

    def get_base_dist(self):
        raise NotImplementedError(f"{type(self).__name__}.get_base_dist is not implemented")

    def get_transform(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.get_transform is not implemented")

    def get_posterior(self, *args, **kwargs):
        """The distribution of the latent vector (a csvi distribution)."""
        raise NotImplementedError(f"{type(self).__name__}.get_posterior is not implemented "
                                  "(a subclass of AutoContinuous gives it)")

    def sample_latent(self, *args, **kwargs):
        """Draw the latent vector (auxiliary site "_<name>_latent")."""
        return sample(f"_{self._pyro_name}_latent", self.get_posterior(*args, **kwargs),
                           infer={"is_auxiliary": True})

    def _unpack_latent(self, latent):
        """(name, site, unconstrained value) per latent site, from a latent
        vector with any batch dims on the left (e.g. Predictive's samples)."""
        batch = tuple(latent.shape[:-1])
        pos = 0
        for name, site in latent_sites(self.prototype_trace):
            shape = self._unconstrained_shapes[name]
            size = int(np.prod(shape, dtype=np.int64))
            event_dim = unconstrained_event_dim(site, shape)
            target = _core.broadcast_shapes(tuple(shape), batch + (1,) * event_dim)
            yield name, site, _core.reshape(latent[..., pos:pos + size], target)
            pos += size

    def forward(self, *args, **kwargs):
        """Draw the latent vector, then every latent site; returns {name: value}."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        latent = self.sample_latent(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        result = {}
        for name, site, u in self._unpack_latent(latent):
            delta = constrained_delta(self._transforms[name], u, site.fn.event_dim)
            with self._site_plates(site, plates):
                result[name] = sample(name, delta)
        return result

    def _loc_scale(self, *args, **kwargs):
        """(loc, scale) arrays of the latent vector's marginals."""
        raise NotImplementedError(f"{type(self).__name__}._loc_scale is not implemented")

    def _constrained(self, vector):
        """{name: value on the support} of an unconstrained latent vector."""
        out = {}
        with _core.off_tape():
            for name, site, u in self._unpack_latent(_core.tensor(vector)):
                out[name] = constant(self._transforms[name](u))
        return out

    def median(self, *args, **kwargs):
        """Each latent site at the latent vector's loc, mapped onto its support."""
        self._require_prototype(args, kwargs)
        loc, _ = self._loc_scale(*args, **kwargs)
        return self._constrained(loc)

    def quantiles(self, quantiles, *args, **kwargs):
        """The `quantiles` (in [0, 1]) of each latent site's marginal, stacked
        along a new leading dim."""
        self._require_prototype(args, kwargs)
        loc, scale = self._loc_scale(*args, **kwargs)
        q = normal_icdf(quantiles, type(self).__name__)
        per_q = [self._constrained(loc + scale * qi) for qi in q]
        return {name: constant(np.stack([_core.value_of(d[name]) for d in per_q]))
                for name in per_q[0]} if per_q else {}


class AutoDiagonalNormal(AutoContinuous):
    """The latent vector ~ Normal(loc, scale).to_event(1): params
    "AutoDiagonalNormal.loc" (init from `init_loc_fn`) and
    "AutoDiagonalNormal.scale" (through softplus, init `init_scale`)."""

    scale_constraint = constraints.softplus_positive

    def __init__(self, model, init_loc_fn=init_to_median, init_scale=0.1):
        self._init_scale = check_init_scale(type(self).__name__, init_scale)
        super().__init__(model, init_loc_fn=init_loc_fn)

    def _params(self):
        loc = param(f"{self._pyro_name}.loc", self._init_loc())
        scale = param(f"{self._pyro_name}.scale",
                           lambda: np.full(self.latent_dim, self._init_scale),
                           self.scale_constraint)
        return loc, scale

    def get_base_dist(self):
        """Normal(0, 1) over the latent vector (reparameterized by get_transform)."""
        return Normal(np.zeros(self.latent_dim), 1.0).to_event(1)

    def get_transform(self, *args, **kwargs):
        """loc + scale * x, mapping get_base_dist() onto get_posterior()."""
        loc, scale = self._params()
        return AffineTransform(loc, scale, event_dim=1)

    def get_posterior(self, *args, **kwargs):
        """Normal(loc, scale).to_event(1), a csvi distribution."""
        loc, scale = self._params()
        return Normal(loc, scale).to_event(1)

    def _loc_scale(self, *args, **kwargs):
        store = get_param_store()
        loc_name, scale_name = f"{self._pyro_name}.loc", f"{self._pyro_name}.scale"
        if loc_name not in store:
            return self._init_loc(), np.full(self.latent_dim, self._init_scale)
        return (np.array(_core.value_of(store[loc_name])),
                np.array(_core.value_of(store[scale_name])))
