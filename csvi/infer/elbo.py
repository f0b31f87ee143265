"""The ELBO base every estimator shares: running guide and model into traces,
the particle loop (or one vectorized run of all particles), and the checks
that name the site at fault."""
import math
import warnings

from csvi import _core
from csvi.distributions.validation import is_validation_enabled
from csvi.handlers import block, replay, trace
from csvi.infer.autoguide.utils import off_step, side_generator
from csvi.primitives import plate

__all__ = ["ELBO"]


class ELBO:
    """Base: `loss` (a float), `differentiable_loss` (a Tensor) and
    `loss_and_grads` (a float, with gradients left on the params' leaves).

    With `vectorize_particles=True` the particles are drawn in one run of
    guide and model inside an outermost plate of size `num_particles` at dim
    -(max_plate_nesting + 1), as in Pyro (max_plate_nesting is guessed from
    one run when not given); the model must then declare every batch dim
    with a plate.

    `independent_particles`: the loss is a mean over particles, so a compiled
    run traces one particle (or one vectorized run) and repeats it (False for
    an ELBO that couples its particles, which is then traced whole)."""

    independent_particles = True

    def __init__(self, num_particles=1, max_plate_nesting=float("inf"),
                 vectorize_particles=False):
        name = type(self).__name__
        if int(num_particles) != num_particles or num_particles < 1:
            raise ValueError(f"{name}: num_particles must be a positive integer, "
                             f"got {num_particles!r}")
        if max_plate_nesting != float("inf") and (
                int(max_plate_nesting) != max_plate_nesting or max_plate_nesting < 0):
            raise ValueError(f"{name}: max_plate_nesting must be a nonnegative integer, "
                             f"got {max_plate_nesting!r}")
        self.num_particles = int(num_particles)
        self.max_plate_nesting = max_plate_nesting
        self.vectorize_particles = bool(vectorize_particles)

    @property
    def particles_per_run(self):
        """Particles one run of guide and model draws."""
        return self.num_particles if self.vectorize_particles else 1

    def _get_traces(self, model, guide, args, kwargs):
        if self.particles_per_run > 1:
            model, guide = self._vectorized(model, guide, args, kwargs)
        guide_trace = trace(guide).get_trace(*args, **kwargs)
        if is_validation_enabled():
            warn_if_enumerated(guide_trace)
        model_trace = trace(replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        check_site_agreement(model_trace, guide_trace)
        model_trace.compute_log_prob()
        guide_trace.compute_log_prob()
        return model_trace, guide_trace

    def _vectorized(self, model, guide, args, kwargs):
        """model and guide run inside the particle plate."""
        if self.max_plate_nesting == float("inf"):
            self.max_plate_nesting = self._guess_max_plate_nesting(model, guide, args, kwargs)
        particles = plate("num_particles_vectorized", self.num_particles,
                          dim=-self.max_plate_nesting - 1)

        def inside(fn):
            def run(*args, **kwargs):
                with particles:
                    return fn(*args, **kwargs)
            return run

        return inside(model), inside(guide)

    def _guess_max_plate_nesting(self, model, guide, args, kwargs):
        """The deepest plate dim guide and model use, from one run of both
        outside any step and off the step's random stream (as Pyro guesses
        it)."""
        with off_step(), side_generator(), block():
            guide_trace = trace(guide).get_trace(*args, **kwargs)
            model_trace = trace(replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        dims = [f.dim for tr in (model_trace, guide_trace) for site in tr.nodes.values()
                if site.type == "sample" for f in site.cond_indep_stack if f.dim is not None]
        return -min(dims) if dims else 0

    def __call__(self, model, guide, *args, **kwargs):
        """The loss, so that `svi.loss(model, guide, *args)` reads as in
        Pyro (whose SVI keeps the ELBO's `loss` method there)."""
        return self.loss(model, guide, *args, **kwargs)

    # The public entry points pass NumPy arrays on as DataArrays, as SVI.step
    # does, so a model indexing its data with a plate's indices works alike.
    def loss(self, model, guide, *args, **kwargs):
        args, kwargs = _core.data_args(args, kwargs)
        loss, _, traces = self.loss_tensors(model, guide, args, kwargs)
        return checked_value(loss, traces)

    def differentiable_loss(self, model, guide, *args, **kwargs):
        args, kwargs = _core.data_args(args, kwargs)
        return self.loss_tensors(model, guide, args, kwargs)[1]

    def loss_and_grads(self, model, guide, *args, **kwargs):
        args, kwargs = _core.data_args(args, kwargs)
        loss, surrogate, traces = self.loss_tensors(model, guide, args, kwargs)
        value = checked_value(loss, traces)
        if surrogate.requires_grad:
            surrogate.backward()
        return value

    def loss_tensors(self, model, guide, args, kwargs):
        """(loss, surrogate loss, [(model_trace, guide_trace)]) as recorded
        Tensors: the loss is -ELBO averaged over particles; the surrogate's
        gradient is the estimator's.  Nothing is read back into Python, so a
        compiled loop replays the same records."""
        loss = surrogate = None
        traces = []
        for _ in range(self.num_particles // self.particles_per_run):
            loss_p, surr_p, particle_traces = self.particle_tensors(model, guide, args, kwargs)
            traces.extend(particle_traces)
            loss = loss_p if loss is None else loss + loss_p
            surrogate = surr_p if surrogate is None else surrogate + surr_p
        return loss, surrogate, traces

    def particle_tensors(self, model, guide, args, kwargs):
        """One particle's terms of `loss_tensors` -- (loss, surrogate,
        [(model_trace, guide_trace)]), each loss already divided by the number
        of particles -- which the compiled loop repeats over a particle
        dimension.  (An ELBO that enumerates a guide's sites sequentially
        gives a pair of traces per value.)"""
        model_trace, guide_trace = self._get_traces(model, guide, args, kwargs)
        elbo, surrogate_elbo = self._particle(model_trace, guide_trace)
        scale = -1.0 / self.num_particles
        loss = -elbo if scale == -1.0 else elbo * scale
        if surrogate_elbo is elbo:
            surrogate = loss
        else:
            surrogate = -surrogate_elbo if scale == -1.0 else surrogate_elbo * scale
        return loss, surrogate, [(model_trace, guide_trace)]

    def _particle(self, model_trace, guide_trace):
        raise NotImplementedError


def checked_value(loss, traces):
    """The loss as a float; a non-finite one raises naming the site at fault."""
    value = float(_core.value_of(loss))
    if not math.isfinite(value):
        for model_trace, guide_trace in traces:
            raise_non_finite(model_trace, guide_trace)
    return value


# every latent site of the model drawn by the guide and vice versa (compiled:
# csvi/_messages.pxi, as it runs on both traces of every eager step)
check_site_agreement = _core.check_site_agreement


def warn_if_enumerated(guide_trace):
    """Sites configured for enumeration need TraceEnum_ELBO (Pyro warns too)."""
    names = _core.enumerated_site_names(guide_trace.nodes)
    if names:
        warnings.warn(f"found sample sites configured for enumeration: {', '.join(names)}; "
                      "to enumerate them use TraceEnum_ELBO", RuntimeWarning, stacklevel=4)


def raise_non_finite(model_trace, guide_trace):
    """Name the first site whose log-density is not finite."""
    for label, tr in (("guide", guide_trace), ("model", model_trace)):
        for name, site in tr.nodes.items():
            if site.type == "sample":
                value = _core.value_of(site.log_prob).sum()
                if not math.isfinite(value):
                    raise ValueError(f"the loss is not finite: log_prob of {label} site "
                                     f"'{name}' is {value}; check its parameters and value")
    raise ValueError("the loss is not finite")
