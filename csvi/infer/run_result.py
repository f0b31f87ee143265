"""SVIRunResult: what `svi.run` returns (NumPyro's `SVIRunResult` idea) --
the losses, the params it ended with, why it stopped, how fast it ran, and
whatever diagnostics the run was asked for -- with a readable summary."""
import numpy as np

__all__ = ["SVIRunResult"]


class SVIRunResult:
    """`losses` (one per step done, a NumPy array), `params` ({name:
    constrained value as a NumPy array} of the param store at the end),
    `stop_reason` (a str), `num_steps` (steps done), `elapsed` (seconds of
    the steps and stop checks; a compiled run's tracing is not counted),
    `steps_per_second`, `convergence` (the ConvergenceStop's
    (step, ELBO, relative change, mean, median) rows, or []) and
    `gradient_noise` (a GradientNoise, or None without `track_gradients`)."""

    def __init__(self, losses, params, stop_reason, elapsed, convergence=(),
                 gradient_noise=None, compiled=False):
        self.losses = losses
        self.params = params
        self.stop_reason = stop_reason
        self.elapsed = elapsed
        self.convergence = list(convergence)
        self.gradient_noise = gradient_noise
        self.compiled = compiled

    @property
    def num_steps(self):
        return len(self.losses)

    @property
    def steps_per_second(self):
        return self.num_steps / self.elapsed if self.elapsed > 0 else float("inf")

    def summary(self):
        """A few lines for a person: steps, speed, stop reason, the loss at the
        start and end (means of the first and last 10% of steps), the ELBO
        checks, each param's shape and value (or its mean and range), and the
        gradient noise when recorded."""
        lines = [f"SVI run: {self.num_steps} steps in {self.elapsed:.3g} s "
                 f"({self.steps_per_second:,.0f} steps/s, "
                 f"{'compiled' if self.compiled else 'eager'})",
                 f"stopped: {self.stop_reason}"]
        if self.num_steps:
            tenth = max(self.num_steps // 10, 1)
            lines.append(f"loss: {np.mean(self.losses[:tenth]):.6g} (first {tenth} steps) -> "
                         f"{np.mean(self.losses[-tenth:]):.6g} (last {tenth} steps)")
        if self.convergence:
            step, elbo, change, mean, median = self.convergence[-1]
            lines.append(f"ELBO checks: {len(self.convergence)}, last at step {step}: ELBO "
                         f"{elbo:.6g}, relative change {change:.3g} (window mean "
                         f"{mean:.3g}, median {median:.3g})")
        if self.params:
            lines.append("params:")
            width = max(len(name) for name in self.params)
            for name, value in self.params.items():
                lines.append(f"  {name:{width}}  {_describe(value)}")
        if self.gradient_noise is not None:
            lines.append("gradient noise (last steps):")
            lines.extend("  " + line for line in repr(self.gradient_noise).splitlines())
        return "\n".join(lines)

    def __repr__(self):
        return (f"SVIRunResult(num_steps={self.num_steps}, stop_reason={self.stop_reason!r}, "
                f"final_loss={self.losses[-1] if self.num_steps else None!r})")

    def plot(self, ax=None, smooth=None):
        """The loss curve with a smoothed line (matplotlib; see csvi.plot)."""
        from csvi.plot import plot_losses
        return plot_losses(self, ax=ax, smooth=smooth)


def _describe(value):
    value = np.asarray(value)
    if value.size <= 4:
        return f"{tuple(value.shape)}  {np.array2string(value, precision=4, separator=', ')}"
    return (f"{tuple(value.shape)}  mean {value.mean():.4g}, range [{value.min():.4g}, "
            f"{value.max():.4g}]")
