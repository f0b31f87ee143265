"""Trace: the record of one run of a model or guide, site by site."""
from csvi import _core

__all__ = ["Trace"]


class Trace:
    """`nodes` maps site name to its Message (dict-style access works:
    `trace.nodes["z"]["value"]`), in execution order: a dict, which keeps
    insertion order (Pyro's OrderedDict costs ~1% of an eager step to fill
    and walk, and no caller reorders a trace)."""

    def __init__(self):
        self.nodes = {}

    def copy(self):
        """A new Trace with the same sites (the messages are shared)."""
        tr = Trace()
        tr.nodes.update(self.nodes)
        return tr

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

    def format_shapes(self, title="Trace Shapes:", last_site=None):
        """A table of every param's shape and every sample site's distribution,
        value and log_prob shapes, batch dims left of `|` and event dims right
        of it (Pyro's `Trace.format_shapes`, the tensor-shapes tutorial's
        debugging aid)."""
        if not self.nodes:
            return title
        rows = [[title], ["Param Sites:"]]
        for name, site in self.nodes.items():
            if site.type == "param":
                rows.append(([name], [str(n) for n in _shape_of(site.value)], None))
            if name == last_site:
                break
        rows.append(["Sample Sites:"])
        for name, site in self.nodes.items():
            if site.type == "sample":
                batch = tuple(getattr(site.fn, "batch_shape", ()))
                event = tuple(getattr(site.fn, "event_shape", ()))
                rows.append(([name + " dist"], [str(n) for n in batch],
                             [str(n) for n in event]))
                shape = _shape_of(site.value)
                split = len(shape) - len(event)
                rows.append((["value"], [str(n) for n in shape[:split]],
                             [str(n) for n in shape[split:]]))
                if site.log_prob is not None:
                    rows.append((["log_prob"], [str(n) for n in _shape_of(site.log_prob)], []))
            if name == last_site:
                break
        return _format_table(rows)

    def compute_log_prob(self, site_filter=None):
        """Fill `log_prob` (scaled, masked) on every sample site (for which
        site_filter(name, site) holds, if given); errors name the site."""
        _core.compute_log_probs(self.nodes, site_filter, scale_and_mask)

    def log_prob_sum(self, site_filter=None):
        """Sum of every sample site's log_prob (a scalar Tensor)."""
        self.compute_log_prob(site_filter)
        return _core.sum_all([site.log_prob for name, site in self.nodes.items()
                              if site.type == "sample"
                              and (site_filter is None or site_filter(name, site))])


def _shape_of(value):
    return tuple(getattr(value, "shape", ()))


def _format_table(rows):
    """Lay out rows of (name cells, batch cells, event cells) -- or a single
    heading cell -- as Pyro does: the name and batch groups right-aligned,
    `|` before the event group (left-aligned), every column as wide as its
    widest cell."""
    groups = [r for r in rows if isinstance(r, tuple)]
    n_batch = max((len(r[1]) for r in groups), default=0)
    n_event = max((len(r[2]) for r in groups if r[2] is not None), default=0)
    cells = []
    for r in rows:
        if not isinstance(r, tuple):
            cells.append(list(r))
            continue
        names, batch, event = r
        line = names + [""] * (n_batch - len(batch)) + batch
        if event is None:
            line += [""] * (1 + n_event)
        else:
            line += ["|"] + event + [""] * (n_event - len(event))
        cells.append(line)
    width = max(len(c) for c in cells)
    cells = [c + [""] * (width - len(c)) for c in cells]
    widths = [max(len(c[j]) for c in cells) for j in range(width)]
    return "\n".join(" ".join(cell.rjust(w) for cell, w in zip(c, widths)).rstrip()
                     for c in cells)


def check_mask_shape(mask, log_prob, name):
    """A site's mask must broadcast with its log_prob."""
    m = _core.value_of(mask)
    try:
        _core.broadcast_shapes(tuple(m.shape), tuple(log_prob.shape))
    except ValueError:
        raise ValueError(f"site '{name}': mask of shape {tuple(m.shape)} does not "
                         f"broadcast with the log_prob's shape {tuple(log_prob.shape)}") from None


def scale_and_mask(log_prob, scale, mask, name="?"):
    """log_prob * scale with masked-out entries set to 0 (they get no gradient)."""
    if mask is not None and mask is not True:
        check_mask_shape(mask, log_prob, name)
        log_prob = _core.where(mask, log_prob, 0.0)
    if scale is not None and not (type(scale) is float and scale == 1.0):
        log_prob = log_prob * scale
    return log_prob
