"""Optimizers with Pyro's faces (`csvi.optim.Adam({"lr": 0.01})`) over C updates;
torch's form (`Adam(params, lr=0.01)`) and csvi.optim.multi for hand-written loops.

The SVI layer calls `optim(params)` with `(name, value, grad)` triples; each
param gets its own optimizer state the first time it is seen.
"""
from csvi.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    MultiplicativeLR,
    MultiStepLR,
    PyroLRScheduler,
    ReduceLROnPlateau,
    StepLR,
)
from csvi.optim.multi import MixedMultiOptimizer, MultiOptimizer, PyroMultiOptimizer
from csvi.optim.optim import PyroOptim
from csvi.optim.optimizers import SGD, Adagrad, Adam, ClippedAdam, RMSprop

__all__ = [
    "PyroOptim", "Adam", "ClippedAdam", "SGD", "RMSprop", "Adagrad",
    "PyroLRScheduler", "ExponentialLR", "StepLR", "MultiStepLR", "LambdaLR",
    "MultiplicativeLR", "CosineAnnealingLR", "ReduceLROnPlateau",
    "MultiOptimizer", "PyroMultiOptimizer", "MixedMultiOptimizer",
]
