"""Bayesian logistic regression on a few million synthetic rows, sharded
across MPI processes: each rank holds and subsamples only its rows, and the
ranks average their gradients every step (csvi.distributed).

    mpiexec -n 2 python examples/distributed_logreg.py [--rows 4000000]
        [--features 20] [--batch 1024] [--steps 3000] [--eager] [--seed 0]

The data set is the same whatever the number of ranks: it is made in blocks
of rows, each from its own seed, and every rank makes only the blocks its
shard covers.  With K ranks the fit sees K * batch rows per step.  Rank 0
prints the fitted weights next to the true ones.  On a cluster, see the
README ("Running on a cluster").
"""
import argparse
import time

import numpy as np

import csvi
import csvi.distributions as dist
from csvi import distributed
from csvi.infer import Trace_ELBO
from csvi.infer.autoguide import AutoNormal
from csvi.optim import Adam

BLOCK = 1 << 16  # rows per seeded block of the synthetic data


def true_weights(features, seed):
    rng = np.random.default_rng([seed, 0])
    return rng.normal(size=features), 0.5


def make_rows(lo, hi, features, seed):
    """Rows lo..hi of the synthetic data set (X, y): the same rows whichever
    process makes them."""
    w, b = true_weights(features, seed)
    X = np.empty((hi - lo, features))
    y = np.empty(hi - lo)
    for block in range(lo // BLOCK, (hi - 1) // BLOCK + 1 if hi > lo else 0):
        rng = np.random.default_rng([seed, 1, block])
        start = block * BLOCK
        Xb = rng.normal(size=(BLOCK, features))
        yb = (rng.random(BLOCK) < 1.0 / (1.0 + np.exp(-(Xb @ w + b)))).astype(np.float64)
        a, z = max(lo, start), min(hi, start + BLOCK)
        X[a - lo:z - lo] = Xb[a - start:z - start]
        y[a - lo:z - lo] = yb[a - start:z - start]
    return X, y


def make_model(num_rows, batch):
    def model(X, y):
        w = csvi.sample("w", dist.Normal(np.zeros(X.shape[1]), 1.0).to_event(1))
        b = csvi.sample("b", dist.Normal(0.0, 1.0))
        with distributed.plate("data", num_rows, subsample_size=batch) as idx:
            csvi.sample("y", dist.Bernoulli(logits=X[idx] @ w + b), obs=y[idx])
    return model


def fit(rows=4_000_000, features=20, batch=1024, steps=3000, compile=True, seed=0,
        lr=0.02, log=print):
    """Fit on this rank's shard; returns (guide, losses), the same on every rank."""
    comm = distributed.world()
    lo, hi = distributed.shard_range(rows)
    X, y = make_rows(lo, hi, features, seed)
    csvi.clear_param_store()
    distributed.set_rng_seed(seed)
    model = make_model(rows, batch)
    guide = AutoNormal(model)
    svi = distributed.DistributedSVI(model, guide, Adam({"lr": lr}), Trace_ELBO())
    log(f"{comm.Get_size()} rank(s), {rows:,} rows x {features} features, "
        f"{batch} rows per rank per step")
    start = time.perf_counter()
    if compile:
        compiled = svi.compile(X, y)
        losses = np.concatenate([compiled.run(n) for n in _chunks(steps, max(steps // 5, 1))])
    else:
        losses = np.array([svi.step(X, y) for _ in range(steps)])
    seconds = time.perf_counter() - start
    log(f"{steps} steps in {seconds:.2f} s ({steps / seconds:,.0f} steps/s); "
        f"loss per row {losses[:100].mean() / rows:.4f} -> {losses[-100:].mean() / rows:.4f}")
    return guide, losses


def _chunks(total, size):
    while total > 0:
        yield min(size, total)
        total -= size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eager", action="store_true", help="eager steps, not compiled")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rank = distributed.world().Get_rank()
    log = print if rank == 0 else (lambda *a: None)
    guide, _ = fit(args.rows, args.features, args.batch, args.steps, not args.eager,
                   args.seed, log=log)
    w, b = true_weights(args.features, args.seed)
    medians = guide.median()
    log("true   b", b, "w", np.round(w[:5], 3))
    log("fitted b", np.round(float(medians["b"]), 3), "w", np.round(np.asarray(medians["w"])[:5], 3))


if __name__ == "__main__":
    main()
