"""csvi: stochastic variational inference with Pyro's API and a C hot loop.

    import csvi
    import csvi.distributions as dist
    from csvi.infer import SVI, Trace_ELBO
    from csvi.optim import Adam
"""
from csvi import constraints, cpu_quota, distributions, handlers, infer, optim, transforms
from csvi._core import (
    Tensor,
    abs_ as abs,
    amax as max,
    amin as min,
    astensor as as_tensor,
    clip,
    concatenate,
    cumprod,
    cumsum,
    diag,
    einsum,
    exp,
    expand_dims,
    expm1,
    log,
    log1p,
    logsumexp,
    matmul,
    mean,
    pad,
    relu,
    reshape,
    set_rng_seed,
    sigmoid,
    softplus,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    tensor,
    transpose,
    tril,
    triu,
    var,
    where,
)
# special functions (csvi/_special.pxi)
from csvi._core import (
    betaln, digamma, erf, erfc, i0e, i1e, lgamma, log_ndtr, log_sigmoid, logit, ndtr,
    polygamma, xlog1py, xlogy,
)
# the families' cdf/icdf ops (csvi/_families.pxi)
from csvi._core import arctan, ndtri, tan
from csvi.distributions import enable_validation
from csvi.params import clear_param_store, get_param_store
from csvi.primitives import deterministic, factor, param, plate, sample, subsample
from csvi.handlers.markov_messenger import markov
from csvi import nn
from csvi import linalg
from csvi.nn.primitive import module
from csvi.plot import plot_losses
# the BLAS thread policy (csvi/blas_threads.py)
from csvi.blas_threads import get_blas_threads, set_blas_threads

cpu_quota.apply_default()  # a container's CPU quota caps the pool (csvi/cpu_quota.py)

__version__ = "0.1.0"

__all__ = [
    "Tensor", "abs", "as_tensor", "clear_param_store", "clip", "concatenate", "constraints",
    "cumprod", "cumsum", "deterministic", "diag", "distributions", "einsum", "enable_validation", "exp",
    "expand_dims", "expm1", "factor", "get_param_store", "handlers", "infer", "log", "log1p",
    "logsumexp", "markov", "matmul", "max", "mean", "min", "module", "nn", "optim", "pad", "param", "plate", "relu",
    "reshape", "sample", "set_rng_seed", "sigmoid", "softplus", "sqrt", "squeeze", "stack",
    "std", "subsample", "sum", "tanh", "tensor", "transforms", "transpose", "tril", "triu",
    "var", "where",
    "betaln", "digamma", "erf", "erfc", "i0e", "i1e", "lgamma", "log_ndtr", "log_sigmoid",
    "logit", "ndtr", "polygamma", "xlog1py", "xlogy",
    "arctan", "ndtri", "tan",
    "linalg",
    "plot_losses",
    "get_blas_threads", "set_blas_threads",
]
