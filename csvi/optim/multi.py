"""Optimizers over named param groups for hand-written loops, as
pyro.optim.multi: `optim.step(loss, params)` with `params` a dict of name ->
unconstrained leaf (`csvi.param(name).unconstrained()`).

    optim = MixedMultiOptimizer([(["loc"], Adam({"lr": 0.1})),
                                 (["scale"], SGD({"lr": 0.01}))])
    loss = Trace_ELBO().differentiable_loss(model, guide, data)
    optim.step(loss, {name: csvi.param(name).unconstrained() for name in names})

The gradient of the loss is taken once, for every param, and each group's
optimizer updates its own params in place.
"""
import numpy as np

from csvi import _core
from csvi.optim.optim import PyroOptim

__all__ = ["MultiOptimizer", "PyroMultiOptimizer", "MixedMultiOptimizer"]


class MultiOptimizer:
    """Base: `step(loss, params)` updates the params in place; `get_step`
    does the same and returns the new values.  Subclasses implement
    `_update(params, grads)` for dicts of name -> leaf and name -> gradient."""

    def step(self, loss, params):
        self._update(params, _gradients(loss, params))

    def get_step(self, loss, params):
        self.step(loss, params)
        return {name: _core.tensor(leaf) for name, leaf in params.items()}

    def _update(self, params, grads):
        raise NotImplementedError


class PyroMultiOptimizer(MultiOptimizer):
    """A csvi.optim optimizer (Adam, SGD, ...) in the MultiOptimizer interface."""

    def __init__(self, optim):
        if not isinstance(optim, PyroOptim):
            raise TypeError(f"PyroMultiOptimizer expects a csvi.optim optimizer (e.g. "
                            f"Adam({{'lr': 0.01}})), got {type(optim).__name__}")
        self.optim = optim

    def _update(self, params, grads):
        self.optim.step([(name, _core.value_of(leaf), grads[name])
                         for name, leaf in params.items()])


class MixedMultiOptimizer(MultiOptimizer):
    """Different optimizers for different params: `parts` is a list of
    (names, optimizer) with each name in one part only; an optimizer is a
    MultiOptimizer or a csvi.optim optimizer."""

    def __init__(self, parts):
        self.parts = []
        owner = {}
        for names, optim in parts:
            names = [names] if isinstance(names, str) else list(names)
            for name in names:
                if name in owner:
                    raise ValueError(f"MixedMultiOptimizer: param {name!r} is in two parts")
                owner[name] = len(self.parts)
            if isinstance(optim, PyroOptim):
                optim = PyroMultiOptimizer(optim)
            if not isinstance(optim, MultiOptimizer):
                raise TypeError(f"MixedMultiOptimizer: the optimizer for {names} must be a "
                                f"csvi.optim optimizer or a MultiOptimizer, got "
                                f"{type(optim).__name__}")
            self.parts.append((names, optim))
        self._owner = owner

    def _update(self, params, grads):
        unknown = sorted(set(params) - set(self._owner))
        if unknown:
            raise ValueError(f"MixedMultiOptimizer: no part optimizes the params {unknown}")
        for names, optim in self.parts:
            group = {name: params[name] for name in names if name in params}
            if group:
                optim._update(group, {name: grads[name] for name in group})


def _gradients(loss, params):
    """d loss / d leaf for every named leaf, from one backward sweep; the
    leaves' `.grad` (which torch's form of the optimizers accumulates into)
    are left as they were."""
    if not isinstance(params, dict):
        raise TypeError(f"MultiOptimizer.step: params must be a dict of name -> "
                        f"unconstrained leaf, got {type(params).__name__}")
    leaves = list(params.values())
    for name, leaf in params.items():
        if not _core.is_tensor(leaf) or not leaf.is_leaf or not leaf.requires_grad:
            raise TypeError(f"MultiOptimizer.step: params[{name!r}] must be a leaf Tensor "
                            "with requires_grad (csvi.param(name).unconstrained())")
    saved = [leaf.grad for leaf in leaves]
    for leaf in leaves:
        leaf.grad = None
    try:
        loss.backward()
        return {name: (np.zeros(leaf.shape) if leaf.grad is None else leaf.grad)
                for name, leaf in params.items()}
    finally:
        for leaf, grad in zip(leaves, saved):
            leaf.grad = grad
