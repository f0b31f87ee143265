"""`plot_losses`: a fit's loss curve with a smoothed line, and the convergence
checks' ELBO estimates when the run had a stop rule.  matplotlib is an
optional extra (`pip install csvi[plot]`), imported only here, on call."""
import numpy as np

__all__ = ["plot_losses", "smoothed"]


def smoothed(losses, window):
    """The trailing moving average of `losses` over `window` steps (shorter
    at the start), so a step's smoothed value uses no later loss."""
    losses = np.asarray(losses, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(losses)])
    ends = np.arange(1, losses.size + 1)
    starts = np.maximum(ends - window, 0)
    return (csum[ends] - csum[starts]) / (ends - starts)


def plot_losses(result, ax=None, smooth=None, log_scale=None):
    """Draw the losses of `result` (an SVIRunResult, or an array of losses)
    on `ax` (a new figure's axes when None); returns the axes.

    `smooth`: the moving-average window in steps (default: 2% of the steps,
    at least 1).  `log_scale`: a symlog y axis (default: when the losses span
    more than two orders of magnitude)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("csvi.plot_losses needs matplotlib: pip install 'csvi[plot]' "
                          "(or pip install matplotlib)") from None
    losses = np.asarray(getattr(result, "losses", result), dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"plot_losses: needs a nonempty 1-d array of losses, got shape "
                         f"{losses.shape}")
    if smooth is None:
        smooth = max(losses.size // 50, 1)
    if isinstance(smooth, bool) or int(smooth) != smooth or smooth < 1:
        raise ValueError(f"plot_losses: smooth must be a positive integer, got {smooth!r}")
    if ax is None:
        ax = plt.subplots(figsize=(6.4, 3.6))[1]
    steps = np.arange(1, losses.size + 1)
    ax.plot(steps, losses, color="0.75", linewidth=0.6, label="loss")
    ax.plot(steps, smoothed(losses, int(smooth)), color="C0", linewidth=1.5,
            label=f"moving average ({int(smooth)} steps)")
    checks = getattr(result, "convergence", None)
    if checks:
        check_steps = [row[0] for row in checks]
        ax.plot(check_steps, [-row[1] for row in checks], "o", color="C1", markersize=3,
                label="-ELBO check")
    stop_reason = getattr(result, "stop_reason", "")
    if stop_reason.startswith("converged"):
        ax.axvline(losses.size, color="C2", linestyle="--", linewidth=1, label="converged")
    finite = losses[np.isfinite(losses)]
    if log_scale is None:
        log_scale = finite.size > 0 and np.ptp(finite) > 100 * max(np.min(np.abs(finite)), 1)
    if log_scale:
        ax.set_yscale("symlog")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (-ELBO)")
    ax.legend(frameon=False, fontsize="small")
    return ax
