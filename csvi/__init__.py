"""csvi: stochastic variational inference with Pyro's API and a C hot loop."""
from csvi._core import (
    Tensor,
    abs_ as abs,
    clip,
    concatenate,
    exp,
    expm1,
    log,
    log1p,
    logsumexp,
    matmul,
    mean,
    relu,
    reshape,
    set_rng_seed,
    sigmoid,
    softplus,
    sqrt,
    stack,
    sum,
    tanh,
    tensor,
    transpose,
    where,
)

__version__ = "0.1.0"
