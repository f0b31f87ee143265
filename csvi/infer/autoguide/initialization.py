"""Where an autoguide starts: per-site initialization strategies with Pyro's
names (`init_to_median`, `init_to_mean`, `init_to_sample`,
`init_to_feasible`, `init_to_uniform`, `init_to_value`) and InitMessenger,
which puts their values on a model's latent sites while an autoguide traces
the model once.

A strategy takes a sample site (a Message) and returns a value of the site's
shape inside its support; called with no site (`init_to_median(num_samples=11)`)
it returns itself with those options, as in Pyro.
"""
import functools

import numpy as np

from csvi import _core
from csvi.distributions import ExpandedDistribution, Independent, MaskedDistribution
from csvi.handlers.messenger import Messenger
from csvi.infer.autoguide.utils import site_transform

__all__ = ["init_to_feasible", "init_to_sample", "init_to_median", "init_to_mean",
           "init_to_uniform", "init_to_value", "InitMessenger"]


def init_to_feasible(site=None):
    """The point of the support that is 0 on the reals (biject_to(support)(0)):
    1 for a positive site, 0.5 on the unit interval, the uniform simplex."""
    if site is None:
        return init_to_feasible
    t = _transform(site)
    return _value(t(np.zeros(t.inverse_shape(site["fn"].shape()))))


def init_to_sample(site=None):
    """A draw from the site's prior."""
    if site is None:
        return init_to_sample
    return _value(site["fn"].sample())


def init_to_median(site=None, num_samples=15, *, fallback=init_to_feasible):
    """The elementwise median of `num_samples` prior draws (the lower middle
    draw, as torch's median); `fallback` when it is not a valid value (or the
    site is multivariate, where no median is defined)."""
    if site is None:
        return functools.partial(init_to_median, num_samples=num_samples, fallback=fallback)
    fn = site["fn"]
    if not _is_multivariate(fn):
        draws = np.sort(_value(fn.sample((int(num_samples),))), axis=0)
        value = draws[(int(num_samples) - 1) // 2]
        if _valid(fn, value):
            return value
    return _fall_back(site, fallback)


def init_to_mean(site=None, *, fallback=init_to_median):
    """The prior mean; `fallback` where it is undefined, infinite or outside
    the support (a HalfCauchy's infinite mean)."""
    if site is None:
        return functools.partial(init_to_mean, fallback=fallback)
    fn = site["fn"]
    try:
        value = np.broadcast_to(_value(fn.mean), fn.shape()).copy()
    except NotImplementedError:
        value = None
    if value is not None and _valid(fn, value):
        return value
    return _fall_back(site, fallback)


def init_to_uniform(site=None, radius=2.0):
    """A point drawn uniformly from (-radius, radius) on the reals, mapped onto
    the support."""
    if site is None:
        return functools.partial(init_to_uniform, radius=radius)
    t = _transform(site)
    shape = t.inverse_shape(site["fn"].shape())
    return _value(t(_core.get_generator().uniform(-radius, radius, shape)))


def init_to_value(site=None, values={}, *, fallback=init_to_uniform):
    """`values[name]` for the sites named there, `fallback` for the others
    (with `fallback=None`, a missing site is an error)."""
    if site is None:
        return functools.partial(init_to_value, values=values, fallback=fallback)
    if site["name"] in values:
        return values[site["name"]]
    return _fall_back(site, fallback)


class InitMessenger(Messenger):
    """Gives each latent sample site without a value the value `init_fn(site)`
    (checked for shape and support), instead of a draw.  For the autoguides,
    which wrap their model in it while tracing it once."""

    def __init__(self, init_fn, fn=None):
        super().__init__(fn)
        if not callable(init_fn):
            raise TypeError(f"InitMessenger: init_fn must be callable, got {init_fn!r}")
        self.init_fn = init_fn

    def process_message(self, msg):
        if msg.type != "sample" or msg.value is not None or msg.done or msg.is_observed:
            return
        name = getattr(self.init_fn, "__name__", None) or getattr(
            getattr(self.init_fn, "func", None), "__name__", repr(self.init_fn))
        value = np.array(_core.value_of(self.init_fn(msg)), dtype=np.float64)
        fn = msg.fn
        if value.shape != fn.shape():
            raise ValueError(f"{name} gave a value of shape {value.shape} for site "
                             f"'{msg.name}', which needs shape {fn.shape()} (batch_shape "
                             f"{fn.batch_shape} + event_shape {fn.event_shape})")
        if not _valid(fn, value):
            raise ValueError(f"{name} gave a value outside the support of site "
                             f"'{msg.name}' ({fn.support!r})")
        msg.value = _core.tensor(value)


def _transform(site):
    return site_transform(site["name"], site)


def _value(x):
    return np.array(_core.value_of(x), dtype=np.float64)


def _valid(fn, value):
    """A finite value in the site's support."""
    return bool(np.all(np.isfinite(value))) and fn.support.first_violation(value) < 0


def _fall_back(site, fallback):
    if fallback is None:
        raise ValueError(f"no init strategy gives a value for site '{site['name']}'")
    return fallback(site)


def _is_multivariate(fn):
    """Has the site's innermost family a multivariate event (where an
    elementwise median means nothing)?"""
    while isinstance(fn, (Independent, MaskedDistribution, ExpandedDistribution)):
        fn = fn.base_dist
    return any(size > 1 for size in fn.event_shape)
