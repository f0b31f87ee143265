"""Gradient noise: how much each param's stochastic gradient varies from step
to step, over the last `window` steps of a run.

A param whose gradient is mostly noise (signal-to-noise ratio well below 1
near the end of a fit) is either converged or starved of particles; one
whose gradient is still mostly signal is still moving.  Recording copies each
step's gradients into a ring buffer (`window` x param size): turned on per run
(`svi.run(..., track_gradients=window)`), free when off.  The statistics come
from the buffer directly (a two-pass mean and variance), so they are exactly
those of the recorded draws.
"""
import numpy as np

__all__ = ["GradientNoise", "GradientRecorder", "param_sites"]


class GradientRecorder:
    """Keeps the last `window` gradients of every param a step updates."""

    def __init__(self, window):
        if isinstance(window, bool) or int(window) != window or window < 2:
            raise ValueError(f"track_gradients: the window must be an integer >= 2 (steps), "
                             f"got {window!r}")
        self.window = int(window)
        self._buffers = {}
        self._counts = {}

    def record(self, name, grad):
        """Copy one step's gradient of `name` (an array it does not keep)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape[1:] != np.shape(grad):
            buf = self._buffers[name] = np.empty((self.window,) + np.shape(grad))
            self._counts[name] = 0
        count = self._counts[name]
        buf[count % self.window] = grad
        self._counts[name] = count + 1

    def result(self, guide=None):
        """The statistics of what was recorded (a GradientNoise)."""
        draws = {}
        for name, buf in self._buffers.items():
            count = self._counts[name]
            if count < 2:
                continue
            if count < self.window:
                draws[name] = buf[:count].copy()
            else:  # oldest first
                draws[name] = np.roll(buf, -(count % self.window), axis=0)
        shapes = {n: d.shape[1:] for n, d in draws.items()}
        return GradientNoise(draws, {} if guide is None else param_sites(guide, shapes))


class GradientNoise:
    """Per-param (and, for autoguides, per-site) gradient statistics over the
    recorded steps.

    `mean[name]`, `variance[name]`: elementwise mean and sample variance
    (ddof=1) of the gradient over the `num_steps[name]` recorded steps.
    `table()`: one row per param and per site with the mean elementwise
    variance and the signal-to-noise ratio |mean| / sd, where |mean| is the
    norm of the mean gradient and sd the square root of the summed
    elementwise variances (so SNR is 1 when signal and noise are equally
    large, whatever the param's size)."""

    def __init__(self, draws, sites):
        self.draws = draws  # {param: array (steps, *shape)}, oldest first
        self.mean = {n: d.mean(axis=0) for n, d in draws.items()}
        self.variance = {n: d.var(axis=0, ddof=1) for n, d in draws.items()}
        self.num_steps = {n: d.shape[0] for n, d in draws.items()}
        self.sites = sites  # {site: [(param, index along the param's first axis or None)]}

    def snr(self, name):
        """Signal-to-noise ratio of param `name` (see the class docstring)."""
        return _snr(self.mean[name].ravel(), self.variance[name].ravel())

    def site_stats(self, site):
        """(mean elementwise variance, SNR) over the gradient entries of
        every param entry belonging to `site`."""
        means, variances = [], []
        for name, index in self.sites[site]:
            m, v = self.mean[name], self.variance[name]
            if index is not None:
                m, v = m[index], v[index]
            means.append(np.ravel(m))
            variances.append(np.ravel(v))
        means, variances = np.concatenate(means), np.concatenate(variances)
        return float(variances.mean()), _snr(means, variances)

    def table(self):
        """[(kind, name, steps, mean variance, SNR)] for every param, then every site."""
        rows = [("param", n, self.num_steps[n], float(self.variance[n].mean()), self.snr(n))
                for n in self.draws]
        for site, parts in self.sites.items():
            variance, snr = self.site_stats(site)
            rows.append(("site", site, self.num_steps[parts[0][0]], variance, snr))
        return rows

    def __repr__(self):
        lines = [f"{'':5} {'name':32} {'steps':>6} {'grad variance':>14} {'SNR':>8}"]
        for kind, name, steps, variance, snr in self.table():
            lines.append(f"{kind:5} {name:32} {steps:6d} {variance:14.4g} {snr:8.3g}")
        return "\n".join(lines)


def _snr(mean, variance):
    noise = float(np.sqrt(np.sum(variance)))
    signal = float(np.linalg.norm(mean))
    return signal / noise if noise > 0 else float("inf")


def param_sites(guide, shapes):
    """{site: [(param name, index or None)]} for the params (given as {name:
    shape}) an autoguide owns: AutoNormal-style guides name a param
    '<guide>.<kind>.<site>' (the whole param belongs to the site);
    AutoContinuous guides hold one latent vector whose first-axis entries map
    to sites in order (loc, scale, the rows of scale_tril / cov_factor).
    Other guides: {} (per-param statistics only)."""
    parts = list(guide) if hasattr(guide, "_parts") else [guide]
    sites = {}
    for part in parts:
        trace = getattr(part, "prototype_trace", None)
        if trace is None:
            continue
        latent = [n for n, s in trace.nodes.items() if s.type == "sample" and not s.is_observed]
        prefix = getattr(part, "_pyro_name", type(part).__name__) + "."
        vector_shapes = getattr(part, "_unconstrained_shapes", None)
        for name, shape in shapes.items():
            if not name.startswith(prefix):
                continue
            if vector_shapes is None:
                kind_and_site = name[len(prefix):]
                for site in latent:
                    if kind_and_site.endswith("." + site) and "." not in \
                            kind_and_site[:-len(site) - 1]:
                        sites.setdefault(site, []).append((name, None))
                continue
            if not shape or shape[0] != getattr(part, "latent_dim", None):
                continue
            start = 0
            for site in latent:
                size = int(np.prod(vector_shapes[site], dtype=np.int64))
                sites.setdefault(site, []).append((name, slice(start, start + size)))
                start += size
    return sites
