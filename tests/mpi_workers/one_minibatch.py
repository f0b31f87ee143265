"""One global minibatch, two ways: `distributed` (run on 2 ranks, each
taking its half of the minibatch from its shard, every rank seeded alike so
the guide's draws agree) and `reference` (one plain process, csvi.plate over
all N rows with the whole minibatch).  The test checks both give the same
losses and params up to the reduction's rounding."""
import sys

import numpy as np

from common import BATCH, N, data, guide, model, params, report

import csvi
from csvi import distributed
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam

STEPS = 10
mode = sys.argv[2]
halves = np.random.default_rng(99)
minibatches = [[halves.choice(N // 2, BATCH, replace=False) for _ in range(2)]
               for _ in range(STEPS)]
result = {}
for run in ("eager", "compiled"):
    csvi.clear_param_store()
    csvi.set_rng_seed(5)  # the same guide draws on every rank and in the reference
    optim = Adam({"lr": 0.05})
    if mode == "reference":
        X, y = data()
        svi = SVI(model, guide, optim, Trace_ELBO())
        global_idx = [np.concatenate([a, N // 2 + b]) for a, b in minibatches]
        batches = [dict(idx=g, plate=csvi.plate) for g in global_idx]
    else:
        rank = distributed.world().Get_rank()
        X, y = data(*distributed.shard_range(N))
        svi = distributed.DistributedSVI(model, guide, optim, Trace_ELBO())
        batches = [dict(idx=pair[rank]) for pair in minibatches]
    if run == "eager":
        losses = [svi.step(X, y, **batch) for batch in batches]
    else:  # the first minibatch, frozen into the program
        losses = svi.compile(X, y, **batches[0]).run(STEPS).tolist()
    result[run] = {"params": params(), "losses": losses}
report(result)
