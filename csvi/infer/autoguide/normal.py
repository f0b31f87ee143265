"""AutoNormal: a mean-field Normal on each latent site's unconstrained value
(Pyro's `AutoNormal`), with one loc and one scale param per site."""
import numpy as np

from csvi import _core, constraints
from csvi.distributions import Delta, Normal
from csvi.infer.autoguide.guide import AutoGuide
from csvi.infer.autoguide.initialization import InitMessenger, init_to_feasible
from csvi.infer.autoguide.utils import (
    constant, latent_sites, periodic_repeat, site_transform, sum_rightmost,
    unconstrained_event_dim,
)
from csvi.params import get_param_store
from csvi.primitives import plate, sample
from csvi.transforms import IdentityTransform, IndependentTransform

__all__ = ["AutoNormal", "check_init_scale"]


def check_init_scale(guide_name, init_scale):
    if isinstance(init_scale, bool) or not isinstance(init_scale, (float, int)) \
            or not init_scale > 0 or not np.isfinite(init_scale):
        raise ValueError(f"{guide_name}: init_scale must be a positive finite number, "
                         f"got {init_scale!r}")
    return float(init_scale)


class AutoNormal(AutoGuide):
    """Each latent z is biject_to(support)(u), u ~ Normal(loc, scale) with
    elementwise loc and scale: params "AutoNormal.locs.<site>" and
    "AutoNormal.scales.<site>" (scales through softplus, init `init_scale`).

    The draw of u is the auxiliary site "<site>_unconstrained"; the site
    itself is a Delta at z whose log-density carries -log|det J|, so the
    guide's log-density is that of z.  A local latent of a subsampled plate
    has full-size params, of which each call uses the plate's subsample.

        >>> import numpy as np, csvi, csvi.distributions as dist
        >>> from csvi.infer import SVI, Trace_ELBO
        >>> from csvi.infer.autoguide import AutoNormal
        >>> from csvi.optim import Adam
        >>> def model(x):
        ...     z = csvi.sample("z", dist.Normal(0.0, 1.0))
        ...     with csvi.plate("data", len(x)):
        ...         csvi.sample("x", dist.Normal(z, 1.0), obs=x)
        >>> csvi.clear_param_store(); csvi.set_rng_seed(0)
        >>> guide = AutoNormal(model)
        >>> svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
        >>> loss = svi.step(np.ones(4))
        >>> sorted(csvi.get_param_store().keys())
        ['AutoNormal.locs.z', 'AutoNormal.scales.z']
    """

    scale_constraint = constraints.softplus_positive

    def __init__(self, model, *, init_loc_fn=init_to_feasible, init_scale=0.1,
                 create_plates=None):
        self.init_loc_fn = init_loc_fn
        self._init_scale = check_init_scale(type(self).__name__, init_scale)
        super().__init__(InitMessenger(init_loc_fn)(model), create_plates=create_plates)

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        self._event_dims = {}
        self._transforms = {}
        self._init_locs = {}
        for name, site in latent_sites(self.prototype_trace):
            t = site_transform(name, site, self._pyro_name)
            with _core.off_tape():
                init_loc = np.array(_core.value_of(t.inv(site.value)), dtype=np.float64)
            event_dim = unconstrained_event_dim(site, init_loc.shape)
            for frame in site.cond_indep_stack:
                if frame.size is not None and frame.size != frame.subsample_size:
                    init_loc = periodic_repeat(init_loc, frame.size, frame.dim - event_dim)
            self._event_dims[name] = event_dim
            self._transforms[name] = t
            self._init_locs[name] = np.array(init_loc, order="C")
        # what forward needs of each site, worked out once rather than every step
        self._site_plans = [
            _SitePlan(self, name, site, t)
            for (name, site), t in zip(latent_sites(self.prototype_trace),
                                       self._transforms.values())]

    def _loc_name(self, name):
        return f"{self._pyro_name}.locs.{name}"

    def _scale_name(self, name):
        return f"{self._pyro_name}.scales.{name}"

    def forward(self, *args, **kwargs):
        """Draw every latent site; returns {name: value}."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        result = {}
        for plan in self._site_plans:
            if plan.in_plates:
                one = plates.get(plan.plate_name) if plan.plate_name is not None else None
                if type(one) is plate:  # one csvi.plate: entered as it stands
                    with one:
                        result[plan.name] = plan.draw()
                else:
                    with self._site_plates(plan.site, plates):
                        result[plan.name] = plan.draw()
            else:
                result[plan.name] = plan.draw()
        return result

    def _stored(self, name):
        """Full-size (loc, scale) arrays of `name` as the param store holds them."""
        store = get_param_store()
        if self._loc_name(name) not in store:
            loc = self._init_locs[name]
            return loc, np.full(loc.shape, self._init_scale)
        return (np.array(_core.value_of(store[self._loc_name(name)])),
                np.array(_core.value_of(store[self._scale_name(name)])))

    def median(self, *args, **kwargs):
        """biject_to(support)(loc) of each latent site (full size)."""
        self._require_prototype(args, kwargs)
        result = {}
        for name, site in latent_sites(self.prototype_trace):
            loc, _ = self._stored(name)
            with _core.off_tape():
                result[name] = constant(self._transforms[name](loc))
        return result

    def quantiles(self, quantiles, *args, **kwargs):
        """The `quantiles` (numbers in [0, 1]) of each latent site's marginal,
        stacked along a new leading dim: the Normal's quantiles on the reals,
        mapped onto the support (exact, as the maps are increasing)."""
        self._require_prototype(args, kwargs)
        q = normal_icdf(quantiles, type(self).__name__)
        result = {}
        for name, site in latent_sites(self.prototype_trace):
            loc, scale = self._stored(name)
            u = loc + scale * q.reshape((-1,) + (1,) * loc.ndim)
            with _core.off_tape():
                result[name] = constant(self._transforms[name](u))
        return result


class _SitePlan:
    """One latent site's draw in AutoNormal.forward, with what does not
    change between steps (param names and inits, the transform and its
    inverse, event dims) worked out once: an eager step runs `draw` for every
    site."""

    __slots__ = ("name", "site", "in_plates", "plate_name", "loc_name", "scale_name", "init_loc",
                 "init_scale", "event_dim", "aux_name", "transform", "site_event_dim",
                 "inverse", "identity", "scale_constraint")

    def __init__(self, guide, name, site, t):
        self.name, self.site, self.transform = name, site, t
        self.in_plates = bool(site.cond_indep_stack)
        # the plate's name when the site is in exactly one
        frames = site.cond_indep_stack
        self.plate_name = frames[0].name if len(frames) == 1 else None
        self.loc_name, self.scale_name = guide._loc_name(name), guide._scale_name(name)
        self.init_loc = guide._init_locs[name]
        init_scale, shape = guide._init_scale, self.init_loc.shape
        self.init_scale = lambda: np.full(shape, init_scale)
        self.event_dim = guide._event_dims[name]
        self.aux_name = name + "_unconstrained"
        self.site_event_dim = site.fn.event_dim
        self.inverse = None if _is_identity(t) else t.inv
        self.identity = _is_exact_identity(t)
        self.scale_constraint = guide.scale_constraint

    def draw(self):
        """u ~ Normal(loc, scale) as the auxiliary site, then the site itself
        as the Delta at t(u); the caller has entered the site's plates."""
        event_dim = self.event_dim
        # csvi.param's body, without its wrapper's frame
        loc = _core.param(self.loc_name, self.init_loc, constraints.real, event_dim)
        scale = _core.param(self.scale_name, self.init_scale, self.scale_constraint, event_dim)
        fn = Normal(loc, scale)
        if event_dim:  # (to_event(0) is the Normal itself)
            fn = fn.to_event(event_dim)
        u = sample(self.aux_name, fn, infer={"is_auxiliary": True})
        if self.identity:  # t(u) is astensor(u) and the Delta has no log-density
            return sample(self.name, Delta(_core.astensor(u), event_dim=self.site_event_dim))
        return sample(self.name, constrained_delta(self.transform, u, self.site_event_dim,
                                                   self.inverse))


def constrained_delta(t, u, event_dim, inverse=False):
    """The Delta at t(u) whose log-density is -log|det dt/du| summed over the
    site's event dims: with u's Normal density it makes the density of t(u).
    `inverse`: t.inv, or None when t is the identity (a caller running every
    step passes what it worked out once; False: work it out here)."""
    value = t(u)
    if inverse is False:
        inverse = None if _is_identity(t) else t.inv
    if inverse is None:
        return Delta(value, event_dim=event_dim)
    log_density = inverse.log_abs_det_jacobian(value, u)
    log_density = sum_rightmost(log_density, log_density.ndim - value.ndim + event_dim)
    return Delta(value, log_density=log_density, event_dim=event_dim)


def _is_identity(t):
    while isinstance(t, IndependentTransform):
        t = t.base_transform
    return isinstance(t, IdentityTransform)


def _is_exact_identity(t):
    """t is an IdentityTransform, maybe inside IndependentTransforms, none of
    them a subclass (so t(u) is astensor(u))."""
    while type(t) is IndependentTransform:
        t = t.base_transform
    return type(t) is IdentityTransform


def normal_icdf(quantiles, guide_name):
    """Standard-normal quantiles of the numbers `quantiles` (SciPy's ndtri,
    imported only here: it costs a fifth of a second)."""
    q = np.asarray(_core.value_of(quantiles), dtype=np.float64).reshape(-1)
    if not np.all((q >= 0) & (q <= 1)):
        raise ValueError(f"{guide_name}.quantiles: quantiles must be in [0, 1], got "
                         f"{np.asarray(quantiles).tolist()}")
    from scipy.special import ndtri
    return ndtri(q)
