"""ConvergenceStop: stop a run when the ELBO stops changing, by Stan's ADVI
rule (Kucukelbir et al. 2017; Stan's `advi::stochastic_gradient_ascent`).

Every `eval_every` steps the ELBO is estimated from `num_particles` fresh
guide draws (the mean of the importance log weights: one vectorized run
where the model allows it; after a vectorized run fails, with a warning, one
run per particle for the rest of the run), and its relative change from the
previous estimate, |ELBO_prev - ELBO| / |ELBO|, joins a circular buffer of
the last `window` changes.  The run stops when the mean *or* the median of
the buffer is below `tol`.  From the third evaluation on, a mean or median
above 0.5 means the fit may be diverging: a RuntimeWarning says so (once per
run), and the run goes on, as Stan's does.  (As in Stan, a fit that starts far from its
optimum may be flagged early, while the ELBO still changes fast.)

As in Stan: the first evaluation has no previous estimate and records a
change of 1; the median of an even-sized buffer is its upper middle value;
the window defaults to max(0.1 * num_steps / eval_every, 2) evaluations
(10 for Stan's 10,000 steps evaluated every 100).  The estimate draws from
a stream jumped off csvi's generator, so checking the ELBO shifts no draw
of the steps: a run that stops at step n has the losses and params of an
unstopped run's first n steps.
"""
import math
import warnings

import numpy as np

from csvi.infer.autoguide.utils import side_generator
from csvi.infer.importance import log_weights_and_mode

__all__ = ["ConvergenceStop"]

DIVERGING = 0.5


class ConvergenceStop:
    """`svi.run(num_steps, ..., stop=ConvergenceStop(tol=0.01, eval_every=100,
    num_particles=100, window=None))`: stop once the mean or median relative
    ELBO change over the last `window` evaluations is below `tol`.

    A check costs about `num_particles` forward passes of guide and model
    (one vectorized run): with the defaults, about as much as the 100 steps
    between checks of a compiled run (benchmarks/diagnostics.py).

    One object may serve several runs; each run starts afresh.  After a run,
    `history` holds (step, ELBO estimate, relative change, mean, median) per
    evaluation.

        >>> import numpy as np, csvi, csvi.distributions as dist
        >>> from csvi.infer import SVI, ConvergenceStop, Trace_ELBO
        >>> from csvi.infer.autoguide import AutoNormal
        >>> from csvi.optim import Adam
        >>> def model(x):
        ...     z = csvi.sample("z", dist.Normal(0.0, 1.0))
        ...     with csvi.plate("data", len(x)):
        ...         csvi.sample("x", dist.Normal(z, 1.0), obs=x)
        >>> svi = SVI(model, AutoNormal(model), Adam({"lr": 0.05}), Trace_ELBO())
        >>> result = svi.run(20000, np.ones(10), compile=True, progress_bar=False,
        ...                  stop=ConvergenceStop(tol=0.01, eval_every=100))
        >>> result.stop_reason.startswith("converged"), result.num_steps < 20000
        (True, True)
    """

    def __init__(self, tol=0.01, eval_every=100, num_particles=100, window=None):
        if not (isinstance(tol, (int, float)) and not isinstance(tol, bool)
                and math.isfinite(tol) and tol > 0):
            raise ValueError(f"ConvergenceStop: tol must be a positive number, got {tol!r}")
        for arg, value in (("eval_every", eval_every), ("num_particles", num_particles)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"ConvergenceStop: {arg} must be a positive integer, "
                                 f"got {value!r}")
        if window is not None and (isinstance(window, bool) or int(window) != window
                                   or window < 1):
            raise ValueError(f"ConvergenceStop: window must be a positive integer (a number "
                             f"of evaluations) or None, got {window!r}")
        self.tol = float(tol)
        self.eval_every = int(eval_every)
        self.num_particles = int(num_particles)
        self.window = None if window is None else int(window)
        self.history = []

    def start(self, num_steps):
        """Reset for a run of `num_steps` steps."""
        self._size = self.window or max(int(0.1 * num_steps / self.eval_every), 2)
        self._changes = []
        self._previous = 0.0  # Stan's first change: |0 - ELBO| / |ELBO| = 1
        self._warned = False
        self._vectorize = None  # None: try a vectorized run; False after one failed
        self.history = []

    @property
    def last_change(self):
        """The latest relative ELBO change (None before the first evaluation)."""
        return self.history[-1][2] if self.history else None

    def check(self, step, svi, args, kwargs):
        """Called after step `step` (counted from 1) when step % eval_every
        == 0: the stop reason (a str) if the fit has converged, else None."""
        with side_generator():
            log_weights, _, self._vectorize = log_weights_and_mode(
                svi.model, svi.guide, args, kwargs, self.num_particles, None, self._vectorize)
        return self.update(step, float(np.mean(log_weights)))

    def update(self, step, elbo):
        """Record one ELBO estimate; the stop reason or None (Stan's rule)."""
        if not math.isfinite(elbo):
            raise ValueError(f"ConvergenceStop: the ELBO estimate at step {step} is {elbo}; "
                             "check the model and guide (the run stops here)")
        change = abs(self._previous - elbo) / abs(elbo) if elbo != 0 else \
            (0.0 if self._previous == 0 else math.inf)
        self._previous = elbo
        self._changes.append(change)
        del self._changes[:-self._size]
        mean = float(np.mean(self._changes))
        median = float(np.sort(self._changes)[len(self._changes) // 2])
        self.history.append((step, elbo, change, mean, median))
        if step > 2 * self.eval_every and not self._warned and \
                (mean > DIVERGING or median > DIVERGING):
            self._warned = True
            warnings.warn(f"ConvergenceStop: the fit may be diverging: at step {step} the "
                          f"relative ELBO change over the last {len(self._changes)} "
                          f"evaluations has mean {mean:.3g} and median {median:.3g} (> "
                          f"{DIVERGING}); inspect the losses, or lower the learning rate",
                          RuntimeWarning, stacklevel=4)
        rules = [f"{label} relative ELBO change {value:.3g} < tol {self.tol:g}"
                 for label, value in (("mean", mean), ("median", median)) if value < self.tol]
        if rules:
            return f"converged at step {step}: " + " and ".join(rules)
        return None
