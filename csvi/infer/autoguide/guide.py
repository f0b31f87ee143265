"""AutoGuide: the base of the automatic guides (Pyro's
`pyro.infer.autoguide.AutoGuide`).

An autoguide traces its model once, the first time it is called, with the
observed, deterministic and subsample sites hidden: that prototype trace
gives every latent site's shape, support and plates.  Each later call enters
plates of the same names, sizes and dims (so a subsampled plate replays the
guide's indices into the model) and draws every latent site.  Its params are
ordinary `csvi.param`s named as Pyro's param store names them
("AutoNormal.locs.z"), so they train, compile and save like any other.
"""
from csvi import _core, primitives
from csvi.handlers import block, trace
from csvi.infer.autoguide.utils import latent_sites, off_step, side_generator

__all__ = ["AutoGuide", "prototype_hide_fn"]


def prototype_hide_fn(msg):
    """Keep only latent sample sites in the prototype trace."""
    return msg.type != "sample" or msg.is_observed


class AutoGuide:
    """Base class: `guide(*args, **kwargs)` takes the model's arguments and
    returns a dict of latent site name to value.

    `create_plates(*args, **kwargs)` may return a `csvi.plate` (or a list of
    them) to use instead of the plates the guide makes from the model's --
    e.g. to choose the subsample itself."""

    def __init__(self, model, *, create_plates=None):
        if not callable(model):
            raise TypeError(f"{type(self).__name__}: model must be callable, got {model!r}")
        self.model = model
        self.create_plates = create_plates
        self.master = None
        self.prototype_trace = None
        self.plates = {}
        self._prototype_frames = {}
        # Param names start with this, as Pyro's PyroModule names them; an
        # AutoGuideList renames its parts "AutoGuideList.0", ...
        self._pyro_name = type(self).__name__

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def _setup_prototype(self, *args, **kwargs):
        """Trace the model once (off the SVI step's tape, from a side stream of
        the generator, hidden from any handler outside) and read its plates."""
        model = block(self.model, hide_fn=prototype_hide_fn)
        args, kwargs = _core.data_args(args, kwargs)  # as the model sees them in SVI.step
        with off_step(), side_generator(), block():
            self.prototype_trace = trace(model).get_trace(*args, **kwargs)
        if self.master is not None:
            self.master._check_prototype(self.prototype_trace)
        self._prototype_frames = {}
        for name, site in latent_sites(self.prototype_trace):
            for frame in site.cond_indep_stack:
                if frame.dim is None:
                    raise NotImplementedError(
                        f"{type(self).__name__}: site '{name}' is in a sequential plate "
                        f"('{frame.name}'); autoguides support vectorized plates only")
                self._prototype_frames[frame.name] = frame

    def _create_plates(self, *args, **kwargs):
        """This call's plates by name: the user's `create_plates`, then one per
        remaining plate of the prototype (the model's name, size, subsample
        size and dim), or, in an AutoGuideList, the list's."""
        if self.master is not None:
            if self.create_plates is not None:
                raise ValueError(f"{self._pyro_name}: a part of an AutoGuideList cannot have "
                                 "its own create_plates; give it to the AutoGuideList")
            self.plates = self.master.plates
            return self.plates
        plates = {}
        if self.create_plates is not None:
            made = self.create_plates(*args, **kwargs)
            made = [made] if isinstance(made, primitives.plate) else list(made)
            for p in made:
                if not isinstance(p, primitives.plate):
                    raise TypeError(f"{type(self).__name__}: create_plates returned "
                                    f"{p!r}, which is not a csvi.plate")
                plates[p.name] = p
        for name, frame in sorted(self._prototype_frames.items()):
            if name not in plates:
                plates[name] = primitives.plate(name, frame.size,
                                                subsample_size=frame.subsample_size,
                                                dim=frame.dim)
        self.plates = plates
        return plates

    def _site_plates(self, site, plates):
        """A context entering the plates `site` sits in."""
        found = []
        for frame in site.cond_indep_stack:
            p = plates.get(frame.name)
            if p is None:
                raise ValueError(f"{self._pyro_name}: no plate named '{frame.name}' for "
                                 f"site '{site.name}' (create_plates must make every plate "
                                 "it names, and only once)")
            found.append(p)
        return EnteredPlates(found)

    def _require_prototype(self, args, kwargs):
        """Set up from the model's arguments if the guide has never run (so
        median() etc. work before any SVI step, given the model's arguments)."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)

    def median(self, *args, **kwargs):
        """The posterior median of each latent site (a dict of Tensors)."""
        raise NotImplementedError(f"{type(self).__name__}.median is not implemented")

    def quantiles(self, quantiles, *args, **kwargs):
        """Posterior quantiles of each latent site (a dict of Tensors with a
        leading dim over `quantiles`)."""
        raise NotImplementedError(f"{type(self).__name__}.quantiles is not implemented")


class EnteredPlates:
    """Several plates entered as one context, in order, and left in reverse
    (ExitStack's job for this one case, without its cost: an autoguide
    enters every site's plates on every step)."""

    __slots__ = ("plates", "entered")

    def __init__(self, plates):
        self.plates = plates
        self.entered = 0

    def __enter__(self):
        try:
            for p in self.plates:
                p.__enter__()
                self.entered += 1
        except BaseException as e:
            self._leave(type(e), e, e.__traceback__)
            raise
        return self

    def __exit__(self, *exc):
        self._leave(*exc)
        return False

    def _leave(self, *exc):
        while self.entered:
            self.entered -= 1
            self.plates[self.entered].__exit__(*exc)
