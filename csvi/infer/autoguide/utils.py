"""Helpers the autoguides share: running the model once to read its latent
sites, the map of a site onto the reals, and the small array utilities Pyro's
autoguides use (`periodic_repeat`, `sum_rightmost`)."""
from contextlib import contextmanager

import numpy as np

from csvi import _core
from csvi.transforms import biject_to

__all__ = ["latent_sites", "site_transform", "unconstrained_event_dim", "periodic_repeat",
           "sum_rightmost", "off_step", "side_generator", "constant"]


def latent_sites(trace):
    """(name, site) of every unobserved sample site of `trace`, in order
    (Pyro's `Trace.iter_stochastic_nodes`)."""
    for name, site in trace.nodes.items():
        if site.type == "sample" and not site.is_observed:
            yield name, site


def site_transform(name, site, guide_name=None):
    """`biject_to(site's support)`, or an error naming the site when the
    support has no bijection from the reals (a discrete site must be hidden
    from the autoguide, as in Pyro)."""
    support = site.fn.support
    prefix = "" if guide_name is None else f"{guide_name}: "
    example = guide_name or "AutoNormal"
    try:
        return biject_to(support)
    except NotImplementedError:
        if getattr(support, "is_discrete", False):
            raise ValueError(
                f"{prefix}sample site '{name}' is discrete ({support!r}); continuous "
                "autoguides cannot draw it. Hide it from the autoguide, e.g. "
                f"{example}(handlers.block(model, hide=['{name}'])), and give it its "
                "own guide (AutoGuideList)") from None
        raise NotImplementedError(f"{prefix}sample site '{name}' has support {support!r}, "
                                  "which biject_to cannot map onto") from None


def unconstrained_event_dim(site, unconstrained_shape):
    """Event dims of a site's value on the reals: its own event dims, plus or
    minus what the bijection adds or drops (none for elementwise maps)."""
    return site.fn.event_dim + len(unconstrained_shape) - len(_shape(site.value))


def periodic_repeat(value, size, dim):
    """`value` (an array) repeated along `dim` up to `size` entries: a local
    latent initialized from a subsample of a plate, extended to the plate's
    full size."""
    value = np.asarray(value)
    dim = dim % value.ndim
    period = value.shape[dim]
    reps = [1] * value.ndim
    reps[dim] = -(-size // period)
    return np.take(np.tile(value, reps), np.arange(size), axis=dim)


def sum_rightmost(x, n):
    """Sum a Tensor (or number) over its n rightmost dims (none when n <= 0)."""
    if n <= 0 or not _core.is_tensor(x):
        return x
    return _core.sum(x, axis=tuple(range(-n, 0)))


def constant(x):
    """A copy of x's value as a Tensor on no tape (what median() etc. return)."""
    return _core.tensor(np.array(_core.value_of(x), dtype=np.float64))


@contextmanager
def off_step():
    """Run one-time work (an autoguide tracing its model, Predictive's runs)
    on a tape of its own, thrown away afterwards: nothing joins the SVI step
    being recorded or compiled, and nothing accumulates on the default tape."""
    tape = _core.Tape()
    try:
        with _core.recording(tape):
            yield
    finally:
        _core.unwind_recording(tape)
        tape.clear()


@contextmanager
def side_generator():
    """Draw from a stream jumped off csvi's generator, leaving the generator
    itself untouched: an autoguide's one-time set-up (its prior draws for
    initial values) then shifts no draw of the SVI steps, so a compiled run
    and eager steps from one seed still agree."""
    main = _core.get_generator()
    bits = main.bit_generator
    if hasattr(bits, "jumped"):
        side, state = np.random.Generator(bits.jumped()), None
    else:  # a bit generator that cannot jump: draw from it, then rewind it
        side, state = main, bits.state
    _core.set_generator(side)
    try:
        yield
    finally:
        _core.set_generator(main)
        if state is not None:
            bits.state = state


def _shape(value):
    return tuple(np.shape(_core.value_of(value)))
