"""MultivariateNormal log_prob + gradient (w.r.t. loc and scale_tril) in csvi,
torch.distributions (Pyro's) and NumPyro (jax.jit of value_and_grad), at
dims 10, 100 and 500.

    python benchmarks/mvn.py [--dims 10,100,500] [--points 100] [--repeats 7]
                             [--out FILE]

The work: the summed log-density of `points` vectors under one MVN(loc,
scale_tril) and its gradient, what an SVI step does at an MVN site over a
data plate.  csvi records it on a `record_all` tape and sweeps back as
`SVI.step` does; torch runs `log_prob(x).sum().backward()`; NumPyro calls the
jitted function (first call excluded) and blocks until ready.  Each BLAS
setting (one thread, the default) runs in its own process, since BLAS reads
its thread count at load; within it the libraries take turns in every repeat
(the machine is noisy) and a cell is the median.  The libraries must agree
on value and gradients before they are timed.  Peers that cannot be imported
are left out with a note.  Prints a markdown table (and writes it to --out).
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

PEERS = {"torch": ["torch"], "numpyro": ["jax", "numpyro"]}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def problem(dim, points, seed=0):
    rng = np.random.default_rng(seed)
    L = np.tril(rng.standard_normal((dim, dim)), -1) / np.sqrt(dim)
    L[np.diag_indices(dim)] = rng.uniform(0.5, 1.5, dim)
    return {"loc": rng.standard_normal(dim), "scale_tril": L,
            "x": rng.standard_normal((points, dim))}


# Each case returns (run, check): run() is the timed call, check() gives
# (log-density, loc gradient, scale_tril gradient) as NumPy.

def csvi_case(p):
    import csvi
    from csvi import _core
    from csvi.distributions import MultivariateNormal

    loc = csvi.tensor(p["loc"], requires_grad=True)
    L = csvi.tensor(p["scale_tril"], requires_grad=True)
    tape = _core.Tape(record_all=True)

    def total():
        return _core.sum_all([MultivariateNormal(loc, scale_tril=L).log_prob(p["x"])])

    def run():
        tape.clear()
        lp = _core.record_call(tape, total)
        tape.backward(lp, False)
        return lp

    def check():
        lp = run()
        out = (float(_core.value_of(lp)), tape.grad_of(loc).copy(), tape.grad_of(L).copy())
        tape.clear()
        return out

    return run, check


def torch_case(p):
    import torch
    from torch.distributions import MultivariateNormal  # what pyro.distributions wraps

    loc = torch.tensor(p["loc"], requires_grad=True)
    L = torch.tensor(p["scale_tril"], requires_grad=True)
    x = torch.tensor(p["x"])

    def run():
        loc.grad = L.grad = None
        lp = MultivariateNormal(loc, scale_tril=L).log_prob(x).sum()
        lp.backward()
        return lp.detach()

    def check():
        lp = run()
        return lp.item(), loc.grad.numpy().copy(), L.grad.numpy().copy()

    return run, check


def numpyro_case(p):
    import jax
    jax.config.update("jax_enable_x64", True)
    from numpyro.distributions import MultivariateNormal

    def total(loc, L, x):
        return MultivariateNormal(loc, scale_tril=L).log_prob(x).sum()

    f = jax.jit(jax.value_and_grad(total, argnums=(0, 1)))
    args = [jax.device_put(p[k]) for k in ("loc", "scale_tril", "x")]

    def run():
        return jax.block_until_ready(f(*args))

    def check():
        lp, (gl, gL) = run()
        return float(lp), np.asarray(gl), np.asarray(gL)

    return run, check


CASES = {"csvi": csvi_case, "torch": torch_case, "numpyro": numpyro_case}


def per_call(run, min_time=0.02):
    """Seconds per call, over enough calls to last min_time."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            run()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / number
        number *= 2 if elapsed < min_time / 8 else 4


def child(dims, points, repeats, libraries):
    """Times every library at every dim in this process (one BLAS setting)."""
    rows = []
    for dim in dims:
        p = problem(dim, points)
        runs, ref = {}, None
        for lib in libraries:
            run, check = CASES[lib](p)
            lp, gl, gL = check()
            if ref is None:
                ref = (lp, gl, gL)
            else:  # lower triangles: torch leaves its gradient's upper part to autograd
                ok = (abs(lp - ref[0]) <= 1e-8 * abs(ref[0]) and np.allclose(gl, ref[1], 1e-7)
                      and np.allclose(np.tril(gL), np.tril(ref[2]), 1e-7, 1e-10))
                if not ok:
                    raise SystemExit(f"mvn.py: {lib} disagrees with {libraries[0]} at dim {dim}")
            run()  # warm (NumPyro compiles on its first call)
            runs[lib] = run
        times = {lib: [] for lib in libraries}
        for _ in range(repeats):
            for lib in libraries:
                times[lib].append(per_call(runs[lib]))
        rows.append({"dim": dim, **{lib: statistics.median(t) for lib, t in times.items()}})
    return rows


def fmt_us(s):
    return "-" if s is None else f"{s * 1e6:,.0f}" if s >= 1e-4 else f"{s * 1e6:.1f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}"


def table(results, points):
    lines = [f"MultivariateNormal log_prob of {points} points + gradient w.r.t. loc and "
             "scale_tril (median µs per call)", "",
             "| BLAS threads | dim | csvi µs | torch µs | numpyro µs | csvi/torch | "
             "csvi/numpyro |", "|---|---|---|---|---|---|---|"]
    for threads, rows in results:
        for r in rows:
            c, t, n = r.get("csvi"), r.get("torch"), r.get("numpyro")
            lines.append(f"| {threads} | {r['dim']} | {fmt_us(c)} | {fmt_us(t)} | {fmt_us(n)} "
                         f"| {ratio(c, t)} | {ratio(c, n)} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", default="10,100,500")
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--libraries", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    dims = [int(d) for d in a.dims.split(",")]
    if a.child:
        print(json.dumps(child(dims, a.points, a.repeats, a.libraries.split(","))))
        return
    libraries = ["csvi"]
    for lib, modules in PEERS.items():
        if all(importlib.util.find_spec(m) is not None for m in modules):
            libraries.append(lib)
        else:
            print(f"note: {lib} is not installed; its column is left empty", file=sys.stderr)
    results = []
    for threads in ("1", "default"):
        env = dict(os.environ)
        for var in THREAD_VARS:
            env.pop(var, None)
            if threads == "1":
                env[var] = "1"
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--dims", a.dims,
               "--points", str(a.points), "--repeats", str(a.repeats),
               "--libraries", ",".join(libraries)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr.strip() or f"mvn.py: the {threads}-thread run failed")
        results.append((threads, json.loads(proc.stdout.strip().splitlines()[-1])))
    text = table(results, a.points)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
