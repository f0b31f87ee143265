"""Rank 1 gets bad data (NaN rows, or indices its model rejects) after a few
good steps, eagerly and in a compiled run: every rank must raise
DistributedStepError (not hang), with params unchanged, and go on after."""
import json

import numpy as np

from common import N, data, guide, model, params, report

import csvi
from csvi import distributed
from csvi.infer import Trace_ELBO
from csvi.optim import Adam

rank = distributed.world().Get_rank()
X, y = data(*distributed.shard_range(N))
distributed.set_rng_seed(0)
svi = distributed.DistributedSVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
result = {}


def state():
    """Params and optimizer state (moments, step counts), comparable."""
    return params(), json.dumps(svi.optim.get_state(), sort_keys=True,
                                default=lambda a: np.asarray(a).tolist())


def attempt(name, fn):
    before = state()
    try:
        fn()
        result[name] = {"raised": None}
    except distributed.DistributedStepError as e:
        result[name] = {"raised": type(e).__name__, "failed_ranks": sorted(e.failures),
                        "message": str(e), "unchanged": state() == before,
                        "losses": len(getattr(e, "losses", []))}


for _ in range(3):
    svi.step(X, y)
bad_X = X.copy()
if rank == 1:
    bad_X[:] = np.nan
attempt("eager_nan", lambda: svi.step(bad_X, y))
bad_idx = np.array([0, 1, 10 ** 6 if rank == 1 else 2])
attempt("eager_exception", lambda: svi.step(X, y, idx=bad_idx))
result["eager_after"] = np.isfinite(svi.step(X, y)).item()

compiled = svi.compile(X, y)
compiled.run(3)
saved = X.copy()
if rank == 1:
    X[:] = np.nan  # the program reads X's buffer: rank 1's next step fails
attempt("compiled_nan", lambda: compiled.run(5))
X[:] = saved
result["compiled_after"] = bool(np.isfinite(compiled.run(2)).all())
report(result)
