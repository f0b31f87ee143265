"""Learning-rate schedulers in Pyro's style: a scheduler wraps an optimizer and
moves each param's learning rate once per `step()` (an epoch).

    scheduler = csvi.optim.ExponentialLR(
        {"optimizer": csvi.optim.Adam, "optim_args": {"lr": 0.01}, "gamma": 0.9})
    svi = SVI(model, guide, scheduler, loss=Trace_ELBO())
    for epoch in range(n):
        for batch in batches:
            svi.step(batch)          # calls scheduler(params): an optimizer update
        scheduler.step()             # next epoch: adjust every param's lr

As in Pyro, every param has its own schedule that starts (epoch 0) when the
param is first updated, and its epoch count is part of the saved state.
"""
import math

from csvi.optim.optim import PyroOptim, finite, nonnegative, positive

__all__ = ["PyroLRScheduler", "ExponentialLR", "StepLR", "MultiStepLR", "LambdaLR",
           "MultiplicativeLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


class PyroLRScheduler:
    """Base: `optim_args` holds "optimizer" (a csvi.optim optimizer class),
    "optim_args" (its dict or per-param callable) and the scheduler's own
    arguments (`args`: name -> (default or REQUIRED, check))."""

    REQUIRED = object()
    args = {}

    def __init__(self, optim_args, clip_args=None):
        name = type(self).__name__
        if not isinstance(optim_args, dict):
            raise TypeError(f"{name}: expected a dict with keys 'optimizer', 'optim_args' and "
                            f"the scheduler's arguments, got {type(optim_args).__name__}")
        rest = dict(optim_args)
        optimizer = rest.pop("optimizer", None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, PyroOptim)):
            raise ValueError(f"{name}: 'optimizer' must be a csvi.optim optimizer class such "
                             f"as csvi.optim.Adam, got {optimizer!r}")
        if "optim_args" not in rest:
            raise ValueError(f"{name}: missing 'optim_args' (the optimizer's arguments)")
        inner_args = rest.pop("optim_args")
        unknown = sorted(set(rest) - set(self.args))
        if unknown:
            raise ValueError(f"{name}: unknown argument {unknown[0]!r}; valid keys are "
                             f"optimizer, optim_args, {', '.join(sorted(self.args))}")
        self.kwargs = {}
        for key, (default, check) in self.args.items():
            if key not in rest and default is self.REQUIRED:
                raise ValueError(f"{name}: missing required argument {key!r}")
            value = rest.get(key, default)
            try:
                self.kwargs[key] = check(key, value) if check is not None else value
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        self.optim = optimizer(inner_args, clip_args)
        self.optim._new_param_hook = self._start

    # ---- per-param schedule -----------------------------------------------------
    def _start(self, slot):
        slot.extra["epoch"] = 0
        slot.extra["base_lr"] = slot.kernel.lr
        self.initial(slot)

    def initial(self, slot):
        """Set a new param's lr at epoch 0 (most schedules keep the optimizer's)."""

    def update(self, slot, *args):
        """Set slot.kernel.lr for epoch slot.extra["epoch"] (already advanced)."""
        raise NotImplementedError

    # ---- Pyro's interface -----------------------------------------------------------
    def __call__(self, params):
        """An optimizer update of `(name, value, grad)` triples (what SVI calls)."""
        self.optim.step(params)

    def step(self, *args):
        """Advance every param's schedule by one epoch.  (Given a list of
        `(name, value, grad)` triples instead, do an optimizer update.)"""
        if args and isinstance(args[0], (list, tuple)):
            return self.optim.step(*args)
        for slot in self.optim._slots.values():
            slot.extra["epoch"] += 1
            self.update(slot, *args)

    def kernels_for(self, params):
        """The wrapped optimizer's kernels (what a compiled SVI loop runs)."""
        return self.optim.kernels_for(params)

    def get_state(self):
        return self.optim.get_state()

    def set_state(self, state):
        self.optim.set_state(state)

    def state_of(self, name):
        return self.optim.state_of(name)

    def save(self, filename):
        self.optim.save(filename)

    def load(self, filename):
        self.optim.load(filename)


def _callable(name, value):
    if not callable(value):
        raise ValueError(f"invalid {name}={value!r}: must be a function of the epoch")
    return value


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"invalid {name}={value!r}: must be a positive integer")
    return value


def _milestones(name, value):
    try:
        ms = sorted(int(m) for m in value)
    except (TypeError, ValueError):
        raise ValueError(f"invalid {name}={value!r}: must be a list of epochs") from None
    return ms


class ExponentialLR(PyroLRScheduler):
    """lr *= gamma every epoch."""

    args = {"gamma": (PyroLRScheduler.REQUIRED, positive)}

    def update(self, slot):
        slot.kernel.lr *= self.kwargs["gamma"]


class StepLR(PyroLRScheduler):
    """lr *= gamma every `step_size` epochs."""

    args = {"step_size": (PyroLRScheduler.REQUIRED, _positive_int), "gamma": (0.1, positive)}

    def update(self, slot):
        if slot.extra["epoch"] % self.kwargs["step_size"] == 0:
            slot.kernel.lr *= self.kwargs["gamma"]


class MultiStepLR(PyroLRScheduler):
    """lr *= gamma at each epoch listed in `milestones`."""

    args = {"milestones": (PyroLRScheduler.REQUIRED, _milestones), "gamma": (0.1, positive)}

    def update(self, slot):
        hits = self.kwargs["milestones"].count(slot.extra["epoch"])
        if hits:
            slot.kernel.lr *= self.kwargs["gamma"] ** hits


class LambdaLR(PyroLRScheduler):
    """lr = initial lr * lr_lambda(epoch)."""

    args = {"lr_lambda": (PyroLRScheduler.REQUIRED, _callable)}

    def initial(self, slot):
        self.update(slot)

    def update(self, slot):
        slot.kernel.lr = slot.extra["base_lr"] * float(self.kwargs["lr_lambda"](slot.extra["epoch"]))


class MultiplicativeLR(PyroLRScheduler):
    """lr *= lr_lambda(epoch) every epoch."""

    args = {"lr_lambda": (PyroLRScheduler.REQUIRED, _callable)}

    def update(self, slot):
        slot.kernel.lr *= float(self.kwargs["lr_lambda"](slot.extra["epoch"]))


class CosineAnnealingLR(PyroLRScheduler):
    """lr = eta_min + (initial lr - eta_min) (1 + cos(pi epoch / T_max)) / 2."""

    args = {"T_max": (PyroLRScheduler.REQUIRED, _positive_int), "eta_min": (0.0, nonnegative)}

    def update(self, slot):
        eta_min, t_max = self.kwargs["eta_min"], self.kwargs["T_max"]
        cos = math.cos(math.pi * slot.extra["epoch"] / t_max)
        slot.kernel.lr = eta_min + (slot.extra["base_lr"] - eta_min) * (1.0 + cos) / 2.0


def _mode(name, value):
    if value not in ("min", "max"):
        raise ValueError(f"invalid {name}={value!r}: must be 'min' or 'max'")
    return value


def _threshold_mode(name, value):
    if value not in ("rel", "abs"):
        raise ValueError(f"invalid {name}={value!r}: must be 'rel' or 'abs'")
    return value


def _factor(name, value):
    value = positive(name, value)
    if value >= 1.0:
        raise ValueError(f"invalid {name}={value!r}: must be < 1")
    return value


def _count(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"invalid {name}={value!r}: must be an integer >= 0")
    return value


class ReduceLROnPlateau(PyroLRScheduler):
    """lr *= factor when the metric passed to `step(metric)` has not improved
    for more than `patience` epochs (torch.optim.lr_scheduler.ReduceLROnPlateau)."""

    args = {
        "mode": ("min", _mode),
        "factor": (0.1, _factor),
        "patience": (10, _count),
        "threshold": (1e-4, nonnegative),
        "threshold_mode": ("rel", _threshold_mode),
        "cooldown": (0, _count),
        "min_lr": (0.0, nonnegative),
        "eps": (1e-8, nonnegative),
    }

    def initial(self, slot):
        slot.extra["best"] = math.inf if self.kwargs["mode"] == "min" else -math.inf
        slot.extra["num_bad_epochs"] = 0
        slot.extra["cooldown_counter"] = 0

    def _better(self, a, best):
        k = self.kwargs
        if k["mode"] == "min":
            return a < (best * (1.0 - k["threshold"]) if k["threshold_mode"] == "rel"
                        else best - k["threshold"])
        return a > (best * (1.0 + k["threshold"]) if k["threshold_mode"] == "rel"
                    else best + k["threshold"])

    def step(self, *args):
        if args and isinstance(args[0], (list, tuple)):
            return self.optim.step(*args)
        if len(args) != 1:
            raise TypeError("ReduceLROnPlateau.step(metric): pass the epoch's metric (e.g. the loss)")
        finite("metric", args[0])
        return super().step(float(args[0]))

    def update(self, slot, metric):
        x = slot.extra
        if self._better(metric, x["best"]):
            x["best"] = metric
            x["num_bad_epochs"] = 0
        else:
            x["num_bad_epochs"] += 1
        if x["cooldown_counter"] > 0:
            x["cooldown_counter"] -= 1
            x["num_bad_epochs"] = 0
        if x["num_bad_epochs"] > self.kwargs["patience"]:
            old = slot.kernel.lr
            new = max(old * self.kwargs["factor"], self.kwargs["min_lr"])
            if old - new > self.kwargs["eps"]:
                slot.kernel.lr = new
            x["cooldown_counter"] = self.kwargs["cooldown"]
            x["num_bad_epochs"] = 0
