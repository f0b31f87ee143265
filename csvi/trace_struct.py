"""Trace: the record of one run of a model or guide, site by site."""
from collections import OrderedDict

from csvi import _core

__all__ = ["Trace"]


class Trace:
    """`nodes` maps site name to its Message (dict-style access works:
    `trace.nodes["z"]["value"]`), in execution order."""

    def __init__(self):
        self.nodes = OrderedDict()

    def add_node(self, msg):
        old = self.nodes.get(msg.name)
        if old is not None:
            if old.type == "param" and msg.type == "param":
                return  # a param read twice is the same param
            raise ValueError(f"Multiple {msg.type} sites named '{msg.name}': site names must "
                             "be unique within a model or guide")
        self.nodes[msg.name] = msg

    def __contains__(self, name):
        return name in self.nodes

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    @property
    def stochastic_nodes(self):
        """Names of latent (unobserved) sample sites."""
        return [n for n, s in self.nodes.items() if s.type == "sample" and not s.is_observed]

    @property
    def observation_nodes(self):
        return [n for n, s in self.nodes.items() if s.type == "sample" and s.is_observed]

    @property
    def param_nodes(self):
        return [n for n, s in self.nodes.items() if s.type == "param"]

    def compute_log_prob(self, site_filter=None):
        """Fill `log_prob` (scaled, masked) on every sample site (for which
        site_filter(name, site) holds, if given); errors name the site."""
        for name, site in self.nodes.items():
            if site.type != "sample" or site.log_prob is not None:
                continue
            if site_filter is not None and not site_filter(name, site):
                continue
            try:
                lp = site.fn.log_prob(site.value, *site.args, **site.kwargs)
            except (ValueError, TypeError) as e:
                raise type(e)(f"site '{name}': {e}") from e
            site.unscaled_log_prob = lp
            if site.mask is None and type(site.scale) is float and site.scale == 1.0:
                site.log_prob = lp
            else:
                site.log_prob = scale_and_mask(lp, site.scale, site.mask, name)

    def log_prob_sum(self, site_filter=None):
        """Sum of every sample site's log_prob (a scalar Tensor)."""
        self.compute_log_prob(site_filter)
        return _core.sum_all([site.log_prob for name, site in self.nodes.items()
                              if site.type == "sample"
                              and (site_filter is None or site_filter(name, site))])


def scale_and_mask(log_prob, scale, mask, name="?"):
    """log_prob * scale with masked-out entries set to 0 (they get no gradient)."""
    if mask is not None and mask is not True:
        m = _core.value_of(mask)
        try:
            _core.broadcast_shapes(tuple(m.shape), tuple(log_prob.shape))
        except ValueError:
            raise ValueError(f"site '{name}': mask of shape {tuple(m.shape)} does not "
                             f"broadcast with the log_prob's shape {tuple(log_prob.shape)}") from None
        log_prob = _core.where(m, log_prob, 0.0)
    if scale is not None and not (type(scale) is float and scale == 1.0):
        log_prob = log_prob * scale
    return log_prob
