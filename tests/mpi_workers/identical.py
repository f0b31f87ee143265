"""Every rank fits its shard eagerly, then compiled from the same start;
reports its params and losses (the test checks they are bit-identical across
ranks, and compiled == eager)."""
from common import data, guide, model, params, report  # first: puts the csvi under test on the path

import csvi
from csvi import distributed
from csvi.infer import Trace_ELBO
from csvi.optim import Adam

STEPS = 20
lo, hi = distributed.shard_range(2000)
X, y = data(lo, hi)
result = {"rank": distributed.world().Get_rank(), "shard": [lo, hi]}
for mode in ("eager", "compiled"):
    csvi.clear_param_store()
    distributed.set_rng_seed(3)
    svi = distributed.DistributedSVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    if mode == "eager":
        losses = [svi.step(X, y) for _ in range(STEPS)]
    else:
        losses = svi.compile(X, y).run(STEPS).tolist()
    result[mode] = {"params": params(), "losses": losses}
report(result)
