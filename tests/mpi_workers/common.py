"""Shared by the MPI worker scripts: a sharded logistic regression (model,
guide, data) and a way to report one rank's results to the test."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.environ.get("CSVI_HOME", ""))  # the csvi under test

import csvi  # noqa: E402
import csvi.distributions as dist  # noqa: E402
from csvi import constraints, distributed  # noqa: E402

N, D, BATCH = 2000, 4, 50


def data(lo=0, hi=N):
    """Rows lo..hi of one fixed synthetic data set (the same rows whatever
    the sharding)."""
    rng = np.random.default_rng(12345)
    X = rng.normal(size=(N, D))
    w = np.linspace(-1.0, 1.0, D)
    y = (rng.random(N) < 1.0 / (1.0 + np.exp(-(X @ w + 0.3)))).astype(np.float64)
    return X[lo:hi].copy(), y[lo:hi].copy()


def model(X, y, idx=None, plate=None):
    """Logistic regression; `plate(...)` is csvi.plate or distributed.plate,
    `idx` explicit (local, for distributed.plate) subsample indices."""
    w = csvi.sample("w", dist.Normal(np.zeros(D), 1.0).to_event(1))
    b = csvi.sample("b", dist.Normal(0.0, 1.0))
    kwargs = {"subsample": idx} if idx is not None else {"subsample_size": BATCH}
    with (plate or distributed.plate)("data", N, **kwargs) as i:
        csvi.sample("obs", dist.Bernoulli(logits=X[i] @ w + b), obs=y[i])


def guide(X, y, idx=None, plate=None):
    w_loc = csvi.param("w_loc", np.zeros(D))
    w_scale = csvi.param("w_scale", np.full(D, 0.5), constraint=constraints.positive)
    csvi.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
    csvi.sample("b", dist.Normal(csvi.param("b_loc", 0.0),
                                 csvi.param("b_scale", 0.5, constraint=constraints.positive)))


def params():
    """Every param's unconstrained value, as lists (JSON-able)."""
    store = csvi.get_param_store()
    return {n: store.unconstrained(n).ravel().tolist() for n in sorted(store.keys())}


def report(result):
    """Write this rank's results as JSON to `<argv[1]>.<rank>.json` (the
    test reads them), or print them when no path is given."""
    text = json.dumps(result)
    if len(sys.argv) > 1:
        with open(f"{sys.argv[1]}.{distributed.world().Get_rank()}.json", "w") as f:
            f.write(text)
    else:
        print(text, flush=True)
