"""Every rank fits its shard eagerly, then compiled (compile().run, a
JitTrace_ELBO's steps, svi.run(compile=True)) from the same start; reports
its params and losses (the test checks they are bit-identical across ranks,
and compiled == eager)."""
from common import data, guide, model, params, report  # first: puts the csvi under test on the path

import csvi
from csvi import distributed
from csvi.infer import JitTrace_ELBO, Trace_ELBO
from csvi.optim import Adam

STEPS = 20
lo, hi = distributed.shard_range(2000)
X, y = data(lo, hi)
result = {"rank": distributed.world().Get_rank(), "shard": [lo, hi]}
for mode in ("eager", "compiled", "jit", "run"):
    csvi.clear_param_store()
    distributed.set_rng_seed(3)
    elbo = JitTrace_ELBO() if mode == "jit" else Trace_ELBO()
    svi = distributed.DistributedSVI(model, guide, Adam({"lr": 0.05}), elbo)
    if mode in ("eager", "jit"):
        losses = [svi.step(X, y) for _ in range(STEPS)]
    elif mode == "compiled":
        losses = svi.compile(X, y).run(STEPS).tolist()
    else:  # SVI.run's compiled chunks; its return value is not relied on
        svi.run(STEPS, X, y, compile=True, progress_bar=False)
        losses = None
    result[mode] = {"params": params(), "losses": losses}
report(result)
