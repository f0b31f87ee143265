"""config_enumerate: mark a model's or guide's discrete sites for
enumeration (Pyro's `pyro.infer.config_enumerate`)."""
import functools

from csvi.handlers.infer_config_messenger import InferConfigMessenger

__all__ = ["config_enumerate"]

_STRATEGIES = ("parallel", "sequential", None)


def config_enumerate(guide=None, default="parallel", expand=False):
    """Set `infer={"enumerate": default, "expand": expand}` on every
    unobserved sample site whose distribution can enumerate its support
    (a site's own `infer` setting wins).  Use as `config_enumerate(fn)`, as
    a decorator, or as `@config_enumerate(default="sequential")`."""
    if default not in _STRATEGIES:
        raise ValueError(f"config_enumerate: default must be one of {_STRATEGIES}, "
                         f"got {default!r}")
    if guide is None:
        return functools.partial(config_enumerate, default=default, expand=expand)
    if not callable(guide):
        raise TypeError(f"config_enumerate: expected a model or guide function, got {guide!r}")
    config_fn = functools.partial(_config_fn, default, bool(expand))
    return InferConfigMessenger(guide, config_fn)


def _config_fn(default, expand, site):
    if site.type != "sample" or site.is_observed:
        return {}
    if not getattr(site.fn, "has_enumerate_support", False):
        return {}
    return {"enumerate": site.infer.get("enumerate", default),
            "expand": site.infer.get("expand", expand)}
