"""SVI: one gradient step of an ELBO on the params a model and guide use."""
import math
import sys
import time

import numpy as np

from csvi import _core
from csvi.infer.compiled import CompiledSVI
from csvi.infer.custom_loss import CustomLoss
from csvi.infer.gradient_noise import GradientRecorder
from csvi.infer.jit import CompiledSteps
from csvi.infer.run_result import SVIRunResult
from csvi.infer.elbo import checked_value
from csvi.params import get_param_store

__all__ = ["SVI"]


class SVI:
    """Stochastic variational inference: `step()` estimates the loss and its
    gradient in one taped run of guide and model, then updates every param the
    run touched with `optim`.

    Each step records on one tape owned by this SVI object (cleared, not
    reallocated, between steps)."""

    def __init__(self, model, guide, optim, loss, **static_kwargs):
        if not callable(model) or not callable(guide):
            raise TypeError("SVI: model and guide must be callables")
        if not (hasattr(loss, "loss") and hasattr(loss, "loss_tensors")):
            loss = CustomLoss(loss)  # fn(model, guide, *args, **kwargs) -> loss Tensor
        if not hasattr(optim, "step"):
            raise TypeError(f"SVI: optim must be a csvi.optim optimizer, got {optim!r}")
        self.model = model
        self.guide = guide
        self.optim = optim
        self.loss = loss
        self.static_kwargs = static_kwargs
        self._tape = _core.Tape(record_all=True)
        self._lock = _core.StepLock()  # its tape serves one step at a time
        self._compiled_steps = None
        self._gradient_recorder = None  # a GradientRecorder while a run tracks gradients

    def step(self, *args, **kwargs):
        """One gradient step; returns the loss before the step.  The step
        updates every param or none (an error or a Ctrl-C before the update
        leaves params and optimizer state as they were).

        Float and integer NumPy arrays among the arguments reach model and
        guide as `DataArray` views (no copy): NumPy arrays in every respect,
        except that indexing one with a csvi Tensor (`X[idx]` with a plate's
        indices, `locs[k]` with a discrete draw) is recorded on the tape."""
        kwargs.update(self.static_kwargs)
        if getattr(self.loss, "compiled_steps", False):  # a Jit* ELBO
            return self._compiled_step(args, kwargs)
        args, kwargs = _core.data_args(args, kwargs)
        store = get_param_store()
        with self._lock:
            tape = self._tape
            tape.clear()
            try:
                loss, traces = self._loss_and_gradients(tape, args, kwargs)
                updates = _core.step_updates(tape, store, traces)  # checked finite
                if self._gradient_recorder is not None:
                    for name, _, grad in updates:
                        self._gradient_recorder.record(name, grad)
                self.optim.step(updates)  # the grads are views of the tape's arena
            finally:
                tape.clear()
        return loss

    def _compiled_step(self, args, kwargs):
        """A Jit* ELBO's step: compiled per argument signature (infer/jit.py)."""
        if self._compiled_steps is None:
            self._compiled_steps = CompiledSteps(self)
        return self._compiled_steps.step(args, kwargs)

    def _loss_and_gradients(self, tape, args, kwargs):
        """Records one step's loss on `tape` and sweeps back from its
        surrogate: (loss, traces), the params' gradients left on the tape."""
        loss_t, surrogate, traces = _core.record_call(
            tape, self.loss.loss_tensors, self.model, self.guide, args, kwargs)
        loss = checked_value(loss_t, traces)
        if surrogate.requires_grad:
            tape.backward(surrogate, False, intermediate_grads=False)
        return loss, traces

    def evaluate_loss(self, *args, **kwargs):
        """The loss estimate, with no gradient step."""
        kwargs.update(self.static_kwargs)
        with self._lock:
            tape = self._tape
            tape.clear()
            try:
                return _core.record_call(tape, self.loss.loss, self.model, self.guide,
                                         *args, **kwargs)
            finally:
                tape.clear()

    def compile(self, *args, **kwargs):
        """Freeze one traced step into a C program (see csvi.infer.compiled):
        `compiled.run(n)` then runs n steps without Python."""
        kwargs.update(self.static_kwargs)
        args, kwargs = _core.data_args(args, kwargs)  # as in step: X[idx] replays
        return CompiledSVI(self, args, kwargs)

    def run(self, num_steps, *args, progress_bar=True, compile=False, stop=None,
            track_gradients=None, **kwargs):
        """Up to `num_steps` steps; returns an `SVIRunResult` (`.losses`,
        `.params`, `.stop_reason`, `.steps_per_second`, `.summary()`,
        `.plot()`).

        `stop`: a `ConvergenceStop`, checked every `stop.eval_every` steps; the
        run ends early when it says the fit has converged.  `track_gradients`:
        a window of steps (an integer >= 2) over which to record every param's
        gradient, reported as `result.gradient_noise` (eager steps only).
        With `compile=True` the steps run in a compiled C loop, in chunks (of
        `stop.eval_every` steps with a stop rule, so it is checked between
        them).  A progress bar on a terminal shows steps/s, the running loss
        and the latest relative ELBO change.  If a step fails or Ctrl-C stops
        the run, the exception carries the losses of the steps done as
        `.losses`; params and optimizer state are those of those steps."""
        if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 0:
            raise ValueError(f"SVI.run: num_steps must be a nonnegative integer, "
                             f"got {num_steps!r}")
        if stop is not None and not (hasattr(stop, "check") and hasattr(stop, "start")):
            raise TypeError(f"SVI.run: stop must be a csvi.infer.ConvergenceStop, got {stop!r}")
        recorder = None
        if track_gradients is not None:
            if compile or getattr(self.loss, "compiled_steps", False):
                raise ValueError("SVI.run: track_gradients reads each step's gradients in "
                                 "Python, which a compiled run never returns; run eager steps "
                                 "(compile=False and a non-Jit ELBO) to track them")
            recorder = GradientRecorder(track_gradients)
        num_steps = int(num_steps)
        losses = np.empty(num_steps)
        bar = _progress(num_steps) if progress_bar and sys.stderr.isatty() else None
        compiled = self.compile(*args, **kwargs) if compile else None
        chunk = stop.eval_every if stop is not None else max(num_steps // 100, 1000)
        check_kwargs = dict(kwargs)
        check_kwargs.update(self.static_kwargs)
        if stop is not None:
            stop.start(num_steps)
        stop_reason = f"num_steps ({num_steps}) reached"
        self._gradient_recorder = recorder
        started = time.perf_counter()
        i = 0
        try:
            while i < num_steps:
                if compiled is not None:
                    n = min(chunk, num_steps - i)
                    losses[i:i + n] = compiled.run(n)
                else:
                    n = 1
                    losses[i] = self.step(*args, **kwargs)
                i += n
                if stop is not None and i % stop.eval_every == 0:
                    reason = stop.check(i, self, args, check_kwargs)
                    if reason is not None:
                        stop_reason = reason
                        break
                if bar is not None:
                    bar.update(i - 1, losses[max(0, i - 100):i].mean(),
                               None if stop is None else stop.last_change)
        except BaseException as e:
            done = getattr(e, "losses", np.empty(0)) if compiled is not None else np.empty(0)
            e.losses = np.concatenate([losses[:i], done])
            raise
        finally:
            self._gradient_recorder = None
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - started
        store = get_param_store()
        params = {name: np.array(_core.value_of(store[name])) for name in store.keys()}
        return SVIRunResult(losses[:i], params, stop_reason, elapsed,
                            convergence=stop.history if stop is not None else (),
                            gradient_noise=None if recorder is None else
                            recorder.result(self.guide),
                            compiled=compiled is not None)


def _progress(total):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainProgress(total)
    return _TqdmProgress(tqdm(total=total, unit="step"))


class _TqdmProgress:
    def __init__(self, bar):
        self.bar = bar
        self.last = 0

    def update(self, i, running_loss, change=None):
        if i - self.last >= 50 or i == self.bar.total - 1:
            self.bar.update(i + 1 - self.bar.n)
            postfix = {"loss": f"{running_loss:.4g}"}
            if change is not None:
                postfix["rel_change"] = f"{change:.3g}"
            self.bar.set_postfix(postfix, refresh=False)
            self.last = i

    def close(self):
        self.bar.close()


class _PlainProgress:
    """A one-line progress display on stderr, redrawn at most 10 times a second."""

    def __init__(self, total):
        self.total = total
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, i, running_loss, change=None):
        now = time.perf_counter()
        if now - self.last < 0.1 and i != self.total - 1:
            return
        self.last = now
        rate = (i + 1) / max(now - self.start, 1e-9)
        loss = f"{running_loss:.4g}" if math.isfinite(running_loss) else "nan"
        change = "" if change is None else f"  ELBO change {change:.3g}"
        sys.stderr.write(f"\r{i + 1}/{self.total} steps  loss {loss}  {rate:,.0f} steps/s"
                         f"{change} ")
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()
