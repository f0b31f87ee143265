"""AutoGuideList and AutoCallable: one guide made of parts, each covering
some latent sites of the model (Pyro's composition of autoguides)."""
import numpy as np

from csvi import _core
from csvi.infer.autoguide.guide import AutoGuide
from csvi.infer.autoguide.utils import latent_sites

__all__ = ["AutoGuideList", "AutoCallable"]


class AutoGuideList(AutoGuide):
    """Runs its parts in order and merges their results.  Each part is an
    autoguide of the model with other sites hidden (`handlers.block(model,
    hide=[...])` or `expose=[...]`) or a plain guide function (wrapped in an
    AutoCallable); no two parts may draw the same site.  The list makes the
    plates once per call and its parts enter those, so a subsampled plate
    draws one subsample for all of them.  Part k's params are named
    "AutoGuideList.k....", as in Pyro.

        >>> import csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> from csvi.infer.autoguide import AutoDelta, AutoGuideList, AutoNormal
        >>> def model():
        ...     csvi.sample("a", dist.Normal(0.0, 1.0))
        ...     csvi.sample("b", dist.Gamma(2.0, 1.0))
        >>> csvi.clear_param_store()
        >>> guide = AutoGuideList(model)
        >>> guide.append(AutoNormal(handlers.block(model, hide=["b"])))
        >>> guide.append(AutoDelta(handlers.block(model, expose=["b"])))
        >>> sorted(guide())
        ['a', 'b']
        >>> sorted(csvi.get_param_store().keys())
        ['AutoGuideList.0.locs.a', 'AutoGuideList.0.scales.a', 'AutoGuideList.1.b']
    """

    def __init__(self, model, *, create_plates=None):
        super().__init__(model, create_plates=create_plates)
        self._parts = []

    def __len__(self):
        return len(self._parts)

    def __iter__(self):
        return iter(self._parts)

    def __getitem__(self, index):
        return self._parts[index]

    def append(self, part):
        """Add a part: an AutoGuide, or a guide function (wrapped in an
        AutoCallable).  Add it before it first runs: its params are named
        after its place in the list."""
        if not isinstance(part, AutoGuide):
            if not callable(part):
                raise TypeError(f"AutoGuideList.append: expected an AutoGuide or a guide "
                                f"function, got {part!r}")
            part = AutoCallable(self.model, part)
        if part.master is not None:
            raise RuntimeError(f"AutoGuideList.append: {part._pyro_name} is already a part "
                               "of an AutoGuideList")
        if part.prototype_trace is not None:
            raise RuntimeError(f"AutoGuideList.append: {part._pyro_name} has already run "
                               "on its own; its params are named after it. Append a fresh "
                               "guide")
        part.master = self
        part._pyro_name = f"{self._pyro_name}.{len(self._parts)}"
        self._parts.append(part)

    def _check_prototype(self, part_trace):
        """A part's latent sites must be the model's, with the same shapes."""
        for name, part_site in latent_sites(part_trace):
            site = self.prototype_trace.nodes.get(name)
            if site is None:
                raise ValueError(f"AutoGuideList: a part draws site '{name}', which is not "
                                 "a latent site of the list's model")
            for what in ("batch_shape", "event_shape"):
                a, b = getattr(part_site.fn, what), getattr(site.fn, what)
                if tuple(a) != tuple(b):
                    raise ValueError(f"AutoGuideList: site '{name}' has {what} {tuple(a)} "
                                     f"in a part's model but {tuple(b)} in the list's model")
            a = np.shape(_core.value_of(part_site.value))
            b = np.shape(_core.value_of(site.value))
            if a != b:
                raise ValueError(f"AutoGuideList: site '{name}' has shape {a} in a part's "
                                 f"model but {b} in the list's model")

    def forward(self, *args, **kwargs):
        """Run every part inside the list's plates; returns {name: value}."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        self._create_plates(*args, **kwargs)
        result = {}
        for part in self._parts:
            result.update(part(*args, **kwargs))
        return result

    def median(self, *args, **kwargs):
        """The parts' medians, merged."""
        result = {}
        for part in self._parts:
            result.update(part.median(*args, **kwargs))
        return result

    def quantiles(self, quantiles, *args, **kwargs):
        """The parts' quantiles, merged."""
        result = {}
        for part in self._parts:
            result.update(part.quantiles(quantiles, *args, **kwargs))
        return result


class AutoCallable(AutoGuide):
    """A guide function as an autoguide (how AutoGuideList holds one).
    `median(*args, **kwargs)` may give its medians as a dict (default: none)."""

    def __init__(self, model, guide, median=lambda *args, **kwargs: {}):
        super().__init__(model)
        if not callable(guide):
            raise TypeError(f"AutoCallable: guide must be callable, got {guide!r}")
        self._guide = guide
        self.median = median

    def forward(self, *args, **kwargs):
        result = self._guide(*args, **kwargs)
        return {} if result is None else result
