"""Data-parallel SVI (csvi.distributed) on this machine: compiled steps per
second with 1 and 2 MPI ranks, the break-even batch, the cost of the
gradient exchange against MPI's Allreduce alone, and a projection to 8, 64
and 512 ranks from the measured compute and allreduce costs.

    python benchmarks/distributed.py [--repeats 5] [--features 50]
        [--batches 256,1024,4096,16384,65536] [--seconds 1.0] [--rows-per-rank 200000]
        [--markdown FILE]
        [--json RAW.json]            # and later: --from-json RAW.json (report only)

Every measurement is one `mpiexec -n K` launch of this file in worker mode
(`--worker`); the launches for 1 rank, 2 ranks and 1 rank with 2 threads
take turns within each repeat (the machine is shared; slow spells then hit
all configurations), and each number is the median over repeats.  Ranks use
one thread each (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1); "1 rank x 2
threads" is csvi's own worker pool on the same two cores, for comparison.

Workload: Bayesian logistic regression (mean-field Normal guide on D weights
and a bias), each rank holding `--rows-per-rank` rows of its shard (200,000
by default) and drawing `batch` rows per step.  Throughput is global rows
per second: K * batch * steps/s.

"2 processes, no exchange" runs the same two processes with plain SVI (no
gradient exchange, nothing shared): the most two ranks can give on this
machine, whose two cores share one memory system -- a random gather of rows
from a shard larger than the caches slows when both cores do it.  "2 ranks /
2 processes" is then what the data-parallel step itself keeps of that.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- worker: runs under mpiexec -------------------------------------------------

def worker(args):
    import csvi
    import csvi.distributions as dist
    from csvi import constraints, distributed
    from csvi.infer import SVI, Trace_ELBO
    from csvi.optim import Adam
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    ranks, rank = comm.Get_size(), comm.Get_rank()
    d, batch = args.features, args.batch
    rng = np.random.default_rng([1, rank])
    X = rng.normal(size=(args.rows_per_rank, d))
    y = (rng.random(args.rows_per_rank) < 0.5).astype(np.float64)
    n_global = args.rows_per_rank * ranks

    def model(X, y):
        w = csvi.sample("w", dist.Normal(np.zeros(d), 1.0).to_event(1))
        b = csvi.sample("b", dist.Normal(0.0, 1.0))
        with distributed.plate("data", n_global, subsample_size=batch) as idx:
            csvi.sample("y", dist.Bernoulli(logits=X[idx] @ w + b), obs=y[idx])

    def guide(X, y):
        loc = csvi.param("w_loc", np.zeros(d))
        scale = csvi.param("w_scale", np.full(d, 0.1), constraint=constraints.positive)
        csvi.sample("w", dist.Normal(loc, scale).to_event(1))
        csvi.sample("b", dist.Normal(csvi.param("b_loc", 0.0),
                                     csvi.param("b_scale", 0.1, constraint=constraints.positive)))

    distributed.set_rng_seed(0)
    if args.plain:  # no MPI in the step: the one-process baseline
        compiled = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO()).compile(X, y)
    else:
        svi = distributed.DistributedSVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
        compiled = svi.compile(X, y)
    compiled.run(20)  # warm up
    n = 20
    while True:  # steps for about args.seconds / 4, the same count on every rank
        elapsed = _time_steps(comm, compiled, n)
        if elapsed > args.seconds / 4 or n > 10 ** 7:
            break
        n = int(n * max(2.0, args.seconds / 4 / max(elapsed, 1e-9)))
    hooked, unhooked = [], []
    for _ in range(4):  # 1 rank: with and without the hook, alternately
        hooked.append(_time_steps(comm, compiled, n) / n)
        if ranks == 1 and not args.plain:
            compiled._program.set_grad_hook(None)
            unhooked.append(_time_steps(comm, compiled, n) / n)
            compiled._program.set_grad_hook(compiled._exchange)
    result = {"ranks": ranks, "batch": batch, "features": d, "plain": args.plain,
              "threads": int(os.environ.get("OMP_NUM_THREADS", "0")),
              "step_seconds": statistics.median(hooked)}
    if unhooked:
        result["unhooked_step_seconds"] = statistics.median(unhooked)
        result["hook_seconds"] = statistics.median(h - u for h, u in zip(hooked, unhooked))
    if not args.plain:
        size = compiled._program.hook_size
        buffer = np.zeros(size)
        result["buffer_doubles"] = size
        result["exchange_seconds"] = _time_collective(comm, lambda: compiled._exchange(buffer))
        result["allreduce_seconds"] = _time_collective(
            comm, lambda: comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM))
        if args.sizes:  # Allreduce alone over message sizes: latency and bandwidth
            result["allreduce_by_size"] = {
                str(m): _time_collective(comm, lambda b=np.zeros(m): comm.Allreduce(
                    MPI.IN_PLACE, b, op=MPI.SUM), budget=0.2)
                for m in (1, 16, 256, 4096, 65536, 1 << 20)}
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def _time_steps(comm, compiled, n):
    """Seconds for n compiled steps, the slowest rank's."""
    from mpi4py import MPI
    comm.Barrier()
    start = time.perf_counter()
    compiled.run(n)
    return comm.allreduce(time.perf_counter() - start, op=MPI.MAX)


def _time_collective(comm, fn, budget=0.3):
    """Median over blocks of the seconds per call of a collective `fn`."""
    for _ in range(20):
        fn()
    reps, blocks = 100, []
    deadline = time.perf_counter() + budget
    while len(blocks) < 5 or (time.perf_counter() < deadline and len(blocks) < 30):
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        blocks.append(comm.allreduce(time.perf_counter() - start, op=_max()) / reps)
    return statistics.median(blocks)


def _max():
    from mpi4py import MPI
    return MPI.MAX


# ---- driver -------------------------------------------------------------------

def launch(ranks, batch, args, threads=1, plain=False, sizes=False):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.access(mpiexec, os.X_OK):
        mpiexec = "mpiexec"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1")
    cmd = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker",
           "--batch", str(batch), "--features", str(args.features), "--seconds", str(args.seconds),
           "--rows-per-rank", str(args.rows_per_rank)]
    if plain:
        cmd.append("--plain")
    if sizes:
        cmd.append("--sizes")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker failed: {out.stderr[-2000:]}")


LABELS = ["1 rank, no hook", "1 rank", "2 ranks", "1 rank x 2 threads",
          "2 processes, no exchange"]
CONFIGS = [  # (label, ranks, threads per rank, plain SVI without the hook)
    ("1 rank", 1, 1, False),
    ("2 ranks", 2, 1, False),
    ("1 rank x 2 threads", 1, 2, True),
    ("2 processes, no exchange", 2, 1, True),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--sizes", action="store_true")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--batches", default="256,1024,4096,16384,65536")
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rows-per-rank", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown")
    parser.add_argument("--json", help="also write the raw measurements here")
    parser.add_argument("--from-json", help="only print the report of a --json file")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        runs = {(label, batch): v for label, batch, v in saved["runs"]}
        saved_args = argparse.Namespace(**saved["args"])
        batches = [int(b) for b in saved_args.batches.split(",")]
        return print(report(runs, batches, saved_args, saved["load"]))
    batches = [int(b) for b in args.batches.split(",")]
    load = os.getloadavg()
    runs = {}
    for repeat in range(args.repeats):
        for batch in batches:
            for label, ranks, threads, plain in CONFIGS:
                r = launch(ranks, batch, args, threads, plain,
                           sizes=(ranks == 2 and not plain and batch == batches[0]))
                runs.setdefault((label, batch), []).append(r)
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    load = (load, os.getloadavg())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "load": load,
                       "runs": [[k[0], k[1], v] for k, v in runs.items()]}, f)
    text = report(runs, batches, args, load)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n" + text)


def _median(runs, key):
    return statistics.median(r[key] for r in runs)


def report(runs, batches, args, load):
    rows = getattr(args, "rows_per_rank", 200_000)
    lines = [f"Logistic regression, D={args.features}, {rows:,} rows per rank, "
             f"compiled steps; {args.repeats} "
             "interleaved repeats, medians. Load average before/after: "
             f"{load[0][0]:.1f} / {load[1][0]:.1f} (2 cores).", "",
             "| rows per rank per step | " + " | ".join(
                 f"{label} steps/s" for label in LABELS)
             + " | 2 ranks / 1 rank (rows/s) | 2 ranks / 1 rank x 2 threads"
             " | 2 processes / 1 rank | 2 ranks / 2 processes |",
             "|---" * (len(LABELS) + 5) + "|"]
    speedups = {}
    for batch in batches:
        rate = {label: 1.0 / _median(runs[(label, batch)], "step_seconds")
                for label, *_ in CONFIGS}
        rate["1 rank, no hook"] = 1.0 / _median(runs[("1 rank", batch)], "unhooked_step_seconds")
        speedup = 2 * rate["2 ranks"] / rate["1 rank, no hook"]
        speedups[batch] = speedup
        ceiling = 2 * rate["2 processes, no exchange"] / rate["1 rank, no hook"]
        lines.append(f"| {batch:,} | " + " | ".join(f"{rate[label]:,.0f}" for label in LABELS)
                     + f" | {speedup:.2f}x | {2 * rate['2 ranks'] / rate['1 rank x 2 threads']:.2f}x"
                     f" | {ceiling:.2f}x | {speedup / ceiling:.0%} |")
    lines.append("")
    even = [b for b in batches if speedups[b] >= 1.0]
    good = [b for b in batches if speedups[b] >= 1.7]
    lines.append(f"Break-even (2 ranks at least as many rows/s as 1): batch "
                 f"{even[0] if even else 'none measured'}; 1.7x from batch "
                 f"{good[0] if good else 'none measured'}.")
    two = runs[("2 ranks", batches[0])]
    exchange = _median(two, "exchange_seconds")
    allreduce = _median(two, "allreduce_seconds")
    plain1 = {b: _median(runs[("1 rank", b)], "unhooked_step_seconds") for b in batches}
    hook1 = {b: _median(runs[("1 rank", b)], "hook_seconds") for b in batches}
    lines += ["", f"Gradient exchange on 2 ranks ({two[0]['buffer_doubles']} doubles): "
              f"{exchange * 1e6:.1f} us per step through the hook's Python "
              f"(Allreduce + average) vs {allreduce * 1e6:.1f} us for `MPI.Allreduce` "
              "alone. The hook's cost on one rank (the same program with and without it, "
              "alternately in one process): " + ", ".join(
                  f"batch {b:,}: {hook1[b] * 1e6:+.1f} us" for b in batches)
              + " per step."]
    sizes = {int(m): statistics.median(r["allreduce_by_size"][m] for r in two)
             for m in two[0]["allreduce_by_size"]}
    alpha, beta = _fit_latency_bandwidth(sizes)
    lines += ["", "Allreduce alone on 2 ranks (shared memory), by message size: " + ", ".join(
        f"{m:,} doubles {t * 1e6:.1f} us" for m, t in sorted(sizes.items()))
        + f". Latency a = the 1-double time = {alpha * 1e6:.2f} us; b = the slope between "
        f"the two largest sizes = {beta * 1e9:.3f} ns/double."]
    lines += ["", projection(plain1, two[0]["buffer_doubles"], alpha, beta,
                             max(hook1[batches[0]] - sizes[min(sizes)], 0.0))]
    return "\n".join(lines) + "\n"


def _fit_latency_bandwidth(sizes):
    """t = a + n b: a from the smallest message, b from the two largest (a
    least-squares fit would let the large messages set a)."""
    n = sorted(sizes)
    return sizes[n[0]], max((sizes[n[-1]] - sizes[n[-2]]) / (n[-1] - n[-2]), 0.0)


def _allreduce_model(ranks, n, alpha, beta):
    """Best of recursive doubling (log2 P rounds of the whole vector) and ring
    (reduce-scatter + allgather: 2 (P-1) rounds of n/P), as MPI picks."""
    doubling = math.ceil(math.log2(ranks)) * (alpha + n * beta)
    ring = 2 * (ranks - 1) * alpha + 2 * (ranks - 1) / ranks * n * beta
    return min(doubling, ring)


def projection(step_seconds, n, alpha, beta, python_overhead):
    """Speedup over one rank, per batch, at 8/64/512 ranks, for this
    machine's shared-memory alpha/beta and for a cluster network."""
    networks = [("measured here (shared memory)", alpha, beta),
                ("cluster network, assumed a=5 us, 10 GB/s", 5e-6, 8 / 10e9)]
    lines = ["Projection (weak scaling: each rank keeps its batch; speedup = P x one-rank "
             "step time / (one-rank step time + the hook's Python overhead -- measured on one "
             "rank at the smallest batch, less a 1-double Allreduce -- + modelled Allreduce "
             f"of the {n}-double buffer)); it assumes one rank per core with the compute "
             "measured here and no stragglers:", "",
             "| network | rows per rank per step | 2 ranks | 8 ranks | 64 ranks | 512 ranks |",
             "|---|---|---|---|---|---|"]
    for name, a, b in networks:
        for batch, t in step_seconds.items():
            cells = []
            for p in (2, 8, 64, 512):
                step = t + python_overhead + _allreduce_model(p, n, a, b)
                cells.append(f"{p * t / step:,.0f}x ({p * t / step / p:.0%})")
            lines.append(f"| {name} | {batch:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
