"""`save <path>`: fit, checkpoint from rank 0, fit on; `restore <path>`:
load the checkpoint on however many ranks this runs on and fit on.  Each
rank reports its params and optimizer state at the checkpoint and after."""
import json
import sys

import numpy as np

from common import N, data, guide, model, params, report

from csvi import distributed
from csvi.infer import Trace_ELBO
from csvi.optim import Adam

STEPS = 5
mode, path = sys.argv[2], sys.argv[3]
X, y = data(*distributed.shard_range(N))
svi = distributed.DistributedSVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())


def optim_state():
    return json.loads(json.dumps(svi.optim.get_state(), sort_keys=True,
                                 default=lambda a: np.asarray(a).tolist()))


if mode == "save":
    distributed.set_rng_seed(11)
    for _ in range(STEPS):
        svi.step(X, y)
    distributed.save_checkpoint(path, svi)
else:
    distributed.load_checkpoint(path, svi)
result = {"ranks": distributed.world().Get_size(), "at_checkpoint": params(),
          "optim_at_checkpoint": optim_state()}
for _ in range(STEPS):
    svi.step(X, y)
result["continued"] = params()
report(result)
