"""Full-rank and low-rank Gaussian guides over the latent vector, and the
Laplace approximation (Pyro's AutoMultivariateNormal,
AutoLowRankMultivariateNormal, AutoLaplaceApproximation).  They capture the
correlations between latents that the mean-field guides miss."""
import math

import numpy as np

from csvi import _core, constraints
from csvi.distributions import (
    Delta, LowRankMultivariateNormal, MultivariateNormal, Normal,
)
from csvi.infer.autoguide.continuous import AutoContinuous
from csvi.infer.autoguide.initialization import init_to_median
from csvi.infer.autoguide.normal import check_init_scale
from csvi.infer.autoguide.utils import side_generator
from csvi.params import get_param_store
from csvi.primitives import param
from csvi.transforms import LowerCholeskyAffine

__all__ = ["AutoMultivariateNormal", "AutoLowRankMultivariateNormal",
           "AutoLaplaceApproximation"]


class AutoMultivariateNormal(AutoContinuous):
    """The latent vector ~ MultivariateNormal(loc, scale_tril = scale[:, None]
    * L) with L unit-lower-triangular, as Pyro: params "<name>.loc" (from
    `init_loc_fn`), "<name>.scale" (softplus, init `init_scale`) and
    "<name>.scale_tril" (L, init the identity)."""

    scale_constraint = constraints.softplus_positive
    scale_tril_constraint = constraints.unit_lower_cholesky

    def __init__(self, model, init_loc_fn=init_to_median, init_scale=0.1):
        self._init_scale = check_init_scale(type(self).__name__, init_scale)
        self._fixed = None  # (loc, scale, scale_tril) of a Laplace approximation
        super().__init__(model, init_loc_fn=init_loc_fn)

    def _params(self):
        if self._fixed is not None:
            return tuple(_core.tensor(v) for v in self._fixed)
        name = self._pyro_name
        loc = param(f"{name}.loc", self._init_loc())
        scale = param(f"{name}.scale", lambda: np.full(self.latent_dim, self._init_scale),
                      self.scale_constraint)
        scale_tril = param(f"{name}.scale_tril", lambda: np.eye(self.latent_dim),
                           self.scale_tril_constraint)
        return loc, scale, scale_tril

    def get_base_dist(self):
        return Normal(np.zeros(self.latent_dim), 1.0).to_event(1)

    def get_transform(self, *args, **kwargs):
        loc, scale, scale_tril = self._params()
        return LowerCholeskyAffine(loc, _core.expand_dims(scale, -1) * scale_tril)

    def get_posterior(self, *args, **kwargs):
        """A MultivariateNormal over the latent vector."""
        loc, scale, scale_tril = self._params()
        return MultivariateNormal(loc, scale_tril=_core.expand_dims(scale, -1) * scale_tril)

    def _loc_scale(self, *args, **kwargs):
        loc, scale, scale_tril = (np.array(_core.value_of(v)) for v in self._current())
        return loc, np.sqrt(((scale[:, None] * scale_tril) ** 2).sum(-1))

    def _current(self):
        """(loc, scale, scale_tril) as stored, or their initial values."""
        if self._fixed is not None:
            return self._fixed
        store = get_param_store()
        name = self._pyro_name
        if f"{name}.loc" not in store:
            return (self._init_loc(), np.full(self.latent_dim, self._init_scale),
                    np.eye(self.latent_dim))
        return store[f"{name}.loc"], store[f"{name}.scale"], store[f"{name}.scale_tril"]


class AutoLowRankMultivariateNormal(AutoContinuous):
    """The latent vector ~ LowRankMultivariateNormal(loc, W * scale[:, None],
    scale^2), as Pyro: params "<name>.loc", "<name>.scale" (softplus, init
    sqrt(1/2) init_scale) and "<name>.cov_factor" (latent_dim x rank, init
    Normal(0, 1/sqrt(rank)) draws); rank defaults to round(sqrt(latent_dim))."""

    scale_constraint = constraints.softplus_positive

    def __init__(self, model, init_loc_fn=init_to_median, init_scale=0.1, rank=None):
        self._init_scale = check_init_scale(type(self).__name__, init_scale)
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)
                                 or rank < 1):
            raise ValueError(f"AutoLowRankMultivariateNormal: rank must be a positive "
                             f"integer, got {rank!r}")
        self.rank = rank
        super().__init__(model, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        if self.rank is None:
            self.rank = max(int(round(self.latent_dim ** 0.5)), 1)

    def _params(self):
        name = self._pyro_name
        loc = param(f"{name}.loc", self._init_loc())
        scale = param(f"{name}.scale",
                      lambda: np.full(self.latent_dim, math.sqrt(0.5) * self._init_scale),
                      self.scale_constraint)
        cov_factor = param(f"{name}.cov_factor", self._init_cov_factor)
        return loc, scale, cov_factor

    def _init_cov_factor(self):
        """Normal(0, 1/sqrt(rank)) draws, from a side stream of csvi's
        generator so that they shift no draw of the steps."""
        with side_generator():
            return _core.get_generator().normal(0.0, 1.0 / math.sqrt(self.rank),
                                                (self.latent_dim, self.rank))

    def get_posterior(self, *args, **kwargs):
        """A LowRankMultivariateNormal over the latent vector."""
        loc, scale, cov_factor = self._params()
        return LowRankMultivariateNormal(loc, cov_factor * _core.expand_dims(scale, -1),
                                         scale * scale)

    def _loc_scale(self, *args, **kwargs):
        store = get_param_store()
        name = self._pyro_name
        if f"{name}.loc" not in store:
            scale = np.full(self.latent_dim, math.sqrt(0.5) * self._init_scale)
            return self._init_loc(), scale * math.sqrt(2.0)
        loc = np.array(_core.value_of(store[f"{name}.loc"]))
        scale = np.array(_core.value_of(store[f"{name}.scale"]))
        w = np.array(_core.value_of(store[f"{name}.cov_factor"]))
        return loc, scale * np.sqrt((w ** 2).sum(-1) + 1.0)


class AutoLaplaceApproximation(AutoContinuous):
    """A point estimate of the latent vector (Delta at "<name>.loc", MAP in
    unconstrained space) that `laplace_approximation()` turns into a Gaussian
    guide: the inverse Hessian of -log p(x, z) there (on the reals, Jacobians
    included) as its covariance, as Pyro's.

    The Hessian is central differences of the exact gradient (csvi has no
    second derivatives): 2 x latent_dim gradient evaluations, accurate to
    about 1e-8 relative for smooth models."""

    def _params(self):
        return param(f"{self._pyro_name}.loc", self._init_loc())

    def get_posterior(self, *args, **kwargs):
        """Delta(loc).to_event(1): MAP inference."""
        return Delta(self._params(), event_dim=1)

    def _loc_scale(self, *args, **kwargs):
        loc = self._loc_value()
        return loc, np.zeros_like(loc)

    def _loc_value(self):
        store = get_param_store()
        name = f"{self._pyro_name}.loc"
        return (np.array(_core.value_of(store[name])) if name in store
                else np.array(self._init_loc()))

    def laplace_approximation(self, *args, **kwargs):
        """An AutoMultivariateNormal whose loc is this guide's loc and whose
        covariance is the inverse Hessian there (fixed, not trained)."""
        from csvi.infer.trace_elbo import Trace_ELBO

        self._require_prototype(args, kwargs)
        store = get_param_store()
        name = f"{self._pyro_name}.loc"
        if name not in store:
            raise RuntimeError("laplace_approximation: the guide has no loc yet; fit it "
                               "(run SVI steps) first")
        loc = store.unconstrained(name)
        start = loc.copy()
        leaf = store.leaf(name)
        elbo = Trace_ELBO()

        def gradient(u):
            loc[...] = u
            leaf.grad = None
            elbo.differentiable_loss(self.model, self, *args, **kwargs).backward()
            return np.array(leaf.grad)

        d = self.latent_dim
        hessian = np.empty((d, d))
        try:
            for j in range(d):
                step = 1e-5 * max(1.0, abs(start[j]))
                up, down = start.copy(), start.copy()
                up[j] += step
                down[j] -= step
                hessian[:, j] = (gradient(up) - gradient(down)) / (2.0 * step)
        finally:
            loc[...] = start
            leaf.grad = None
        hessian = 0.5 * (hessian + hessian.T)
        try:
            cov = np.linalg.inv(hessian)
            scale = np.sqrt(np.diag(cov))
            scale_tril = np.linalg.cholesky(cov / scale[:, None] / scale[None, :])
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            raise ValueError("laplace_approximation: the Hessian of -log p at the guide's "
                             "loc is not positive definite (not a local optimum yet?); run "
                             "more SVI steps") from None
        if not (np.isfinite(scale).all() and np.isfinite(scale_tril).all()):
            raise ValueError("laplace_approximation: the Hessian of -log p at the guide's "
                             "loc is not positive definite (not a local optimum yet?); run "
                             "more SVI steps")
        gaussian = AutoMultivariateNormal(self.model)
        gaussian._setup_prototype(*args, **kwargs)
        gaussian._fixed = (start.copy(), scale, scale_tril)
        return gaussian
