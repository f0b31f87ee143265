"""Predictive with 1,000 samples from an AutoMultivariateNormal guide (the
100-latent regression of run.py's mvn_autoguide, written to broadcast over
sample dims), csvi against Pyro and
NumPyro, each in its own process, medians of interleaved repeats.

    python benchmarks/predictive.py [--repeats 5] [--samples 1000] [--form batched|elementwise]

`--form`: the model's x @ w as a batched matrix-vector product (`batched`,
the default: `(x @ w[..., None])[..., 0]`) or as `sum(x * w[..., None, :], -1)`
(`elementwise`), which makes a (samples, 500, 100) product -- 400 MB at
1,000 samples, whose fresh pages then dominate every library's vectorized
pass.

Pyro runs its default (a Python loop over samples) and parallel=True; csvi
and NumPyro their vectorized pass.  The guide's params are the initial ones:
the timing does not depend on them.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


MODELS = {"batched": "regression100_batched", "elementwise": "regression100_vectorizable"}


def run_csvi(samples, form):
    import csvi
    from csvi.infer import Predictive
    from csvi.infer.autoguide import AutoMultivariateNormal
    import data
    import models_csvi

    model = getattr(models_csvi, MODELS[form])
    x, y = data.correlated_regression()
    guide = AutoMultivariateNormal(model)
    guide(x, y)  # set up its params
    predictive = Predictive(model, guide=guide, num_samples=samples,
                            parallel=True, return_sites=["w", "y"])
    predictive(x, y)
    start = time.perf_counter()
    out = predictive(x, y)
    return time.perf_counter() - start, list(out["w"].shape)


def run_pyro(samples, parallel, form):
    import torch
    from pyro.infer import Predictive
    from pyro.infer.autoguide import AutoMultivariateNormal
    import data
    import models_pyro

    model = getattr(models_pyro, MODELS[form])
    x, y = (torch.tensor(a) for a in data.correlated_regression())
    guide = AutoMultivariateNormal(model)
    guide(x, y)
    predictive = Predictive(model, guide=guide, num_samples=samples,
                            parallel=parallel, return_sites=["w", "y"])
    predictive(x, y)
    start = time.perf_counter()
    with torch.no_grad():
        out = predictive(x, y)
    return time.perf_counter() - start, list(out["w"].shape)


def run_numpyro(samples, form):
    import jax
    from numpyro.infer import SVI, Predictive, Trace_ELBO
    from numpyro.infer.autoguide import AutoMultivariateNormal
    from numpyro.optim import Adam
    import data
    import models_numpyro

    model = getattr(models_numpyro, MODELS[form])
    x, y = (jax.numpy.asarray(a) for a in data.correlated_regression())
    guide = AutoMultivariateNormal(model)
    key = jax.random.PRNGKey(0)
    svi = SVI(model, guide, Adam(0.01), Trace_ELBO())
    params = svi.get_params(svi.init(key, x, y))  # the guide's initial params
    # include the jit compile in a warm-up, as every library's first call is untimed
    predictive = Predictive(model, guide=guide, params=params,
                            num_samples=samples, return_sites=["w", "y"])
    jax.block_until_ready(predictive(key, x, y)["w"])
    start = time.perf_counter()
    out = predictive(jax.random.PRNGKey(1), x, y)
    jax.block_until_ready(out["w"])
    return time.perf_counter() - start, list(out["w"].shape)


def worker(library, samples, form):
    sys.path.insert(0, HERE)
    if library == "csvi":
        seconds, shape = run_csvi(samples, form)
    elif library == "pyro":
        seconds, shape = run_pyro(samples, False, form)
    elif library == "pyro_parallel":
        seconds, shape = run_pyro(samples, True, form)
    else:
        seconds, shape = run_numpyro(samples, form)
    print(json.dumps({"library": library, "seconds": seconds, "shape": shape}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--form", choices=sorted(MODELS), default="batched")
    parser.add_argument("--worker", nargs=1)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], args.samples, args.form)
    times = {lib: [] for lib in ("csvi", "pyro", "pyro_parallel", "numpyro")}
    for _ in range(args.repeats):
        for lib in times:
            proc = subprocess.run([sys.executable, __file__, "--worker", lib, "--samples",
                                   str(args.samples), "--form", args.form],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                times[lib].append(tail)
                continue
            times[lib].append(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])
    csvi_median = statistics.median(times["csvi"])
    print(f"| library | Predictive, {args.samples} samples, {args.form} x @ w "
          f"(median of {args.repeats}) | × csvi |\n|---|---|---|")
    for lib, ts in times.items():
        good = [t for t in ts if isinstance(t, float)]
        if not good:
            print(f"| {lib} | failed: {ts[0]} | - |")
            continue
        m = statistics.median(good)
        print(f"| {lib} | {m * 1e3:.2f} ms | {m / csvi_median:.1f} |")


if __name__ == "__main__":
    main()
