"""The VAE tutorial's step side by side: csvi (eager and compiled), Pyro, NumPyro
and the floor, the step's matrix products alone through SciPy's BLAS.

    python benchmarks/vae.py [--repeats 5] [--steps 20] [--epochs 3] [--out FILE]
                             [--configs a,b,...] [--baseline OTHER_TREE]

The architecture is Pyro's VAE tutorial: encoder 784-400-(50, 50) and decoder
50-400-784 with softplus hidden layers, exp for the guide's scale, a sigmoid
Bernoulli likelihood, Trace_ELBO, Adam(lr=1e-3), minibatches of 256 drawn by a
subsampled plate over N synthetic binary images of MNIST's shape (blurred
prototypes with jitter, `synthetic_images`, seed 0).

Every (library, setting) runs in its own process (BLAS and torch read their
thread counts at load; peak RSS is per process); the repeats interleave the
configurations, and a cell is the median over repeats of each process's median
step; "CPU ms/step" is the process's CPU time (every thread's, a pool's
spinning included) over its timed steps, per step.  Configurations:

- csvi eager (`svi.step`) and compiled (`svi.compile(...).run`), float64:
  examples/vae.py's tutorial classes (each layer its own records) with BLAS on
  one thread, with csvi's default thread policy and with two BLAS threads;
  and the same networks as Sequential blocks (Linear + activation fused);
- the same with float32 products (`vae.float()`: sgemm, params and Adam in
  float64), eager, compiled, and compiled with fused layers (also with csvi's
  own pool on one thread, OMP_NUM_THREADS=1, beside Pyro's one torch thread,
  and with two BLAS threads, CSVI_BLAS_THREADS=2, with csvi's pool on two
  threads or one: the thread policy's evidence; and with the products split
  in two over csvi's own pool, CSVI_PRODUCT_TASKS=2, on its two threads or
  one);
- Pyro `svi.step`, torch float32 (its default), torch's default threads and one;
- NumPyro `jax.jit(svi.update)`, float32 (its default), on every core and
  pinned to one (`CSVI_BENCH_CPUS=1`, as `taskset`);
- the floor: the step's 14 GEMMs (5 forward, 5 weight gradients, 4 input
  gradients) through scipy.linalg.blas.dgemm (float64) and sgemm (float32),
  one BLAS thread (sgemm also two), into preallocated outputs.

`--epochs` also trains csvi (compiled) and Pyro for a few epochs over the same
data and prints the train ELBO per image per epoch of each.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

N_IMAGES, X_DIM, Z_DIM, HIDDEN, BATCH, LR = 8192, 784, 50, 400, 256, 1e-3
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (worker, extra environment, description)
CONFIGS = {
    "csvi-eager": ("csvi_eager", {"OPENBLAS_NUM_THREADS": "1"}, "csvi eager, float64, BLAS 1 thread"),
    "csvi-compiled": ("csvi_compiled", {"OPENBLAS_NUM_THREADS": "1"},
                      "csvi compiled, float64, BLAS 1 thread"),
    "csvi-compiled-fused": ("csvi_compiled", {"OPENBLAS_NUM_THREADS": "1",
                                              "CSVI_BENCH_FUSED": "1"},
                            "csvi compiled, Sequential (fused) layers, BLAS 1 thread"),
    "csvi-eager-f32": ("csvi_eager", {"OPENBLAS_NUM_THREADS": "1", "CSVI_BENCH_FLOAT32": "1"},
                       "csvi eager, float32 products, BLAS 1 thread"),
    "csvi-compiled-f32": ("csvi_compiled", {"OPENBLAS_NUM_THREADS": "1",
                                            "CSVI_BENCH_FLOAT32": "1"},
                          "csvi compiled, float32 products, BLAS 1 thread"),
    "csvi-compiled-fused-f32": ("csvi_compiled", {"OPENBLAS_NUM_THREADS": "1",
                                                  "CSVI_PRODUCT_TASKS": "1",
                                                  "CSVI_BENCH_FUSED": "1",
                                                  "CSVI_BENCH_FLOAT32": "1"},
                                "csvi compiled, Sequential (fused) layers, float32 products "
                                "unsplit (CSVI_PRODUCT_TASKS=1), BLAS 1 thread"),
    "csvi-compiled-fused-f32-1": ("csvi_compiled", dict(ONE_THREAD, CSVI_BENCH_FUSED="1",
                                                      CSVI_PRODUCT_TASKS="1",
                                                      CSVI_BENCH_FLOAT32="1"),
                                  "csvi compiled, fused, float32 products unsplit, BLAS and "
                                  "csvi's pool 1 thread"),
    "csvi-compiled-fused-f32-blas2": ("csvi_compiled", {"CSVI_BLAS_THREADS": "2",
                                                        "CSVI_BENCH_FUSED": "1",
                                                        "CSVI_BENCH_FLOAT32": "1"},
                                      "csvi compiled, fused, float32 products, 2 BLAS threads"),
    "csvi-compiled-fused-f32-blas2-pool1": ("csvi_compiled", {"CSVI_BLAS_THREADS": "2",
                                                              "OMP_NUM_THREADS": "1",
                                                              "CSVI_BENCH_FUSED": "1",
                                                              "CSVI_BENCH_FLOAT32": "1"},
                                            "csvi compiled, fused, float32 products, 2 BLAS "
                                            "threads, csvi's pool 1 thread"),
    "csvi-compiled-fused-f32-split2": ("csvi_compiled", {"OPENBLAS_NUM_THREADS": "1",
                                                         "CSVI_PRODUCT_TASKS": "2",
                                                         "CSVI_BENCH_FUSED": "1",
                                                         "CSVI_BENCH_FLOAT32": "1"},
                                       "csvi compiled, fused, float32 products split in 2 "
                                       "over csvi's pool (CSVI_PRODUCT_TASKS=2, the default), "
                                       "BLAS 1 thread"),
    "csvi-compiled-fused-f32-split2-1": ("csvi_compiled", dict(ONE_THREAD, CSVI_PRODUCT_TASKS="2",
                                                             CSVI_BENCH_FUSED="1",
                                                             CSVI_BENCH_FLOAT32="1"),
                                         "csvi compiled, fused, float32 products split in 2, "
                                         "BLAS and csvi's pool 1 thread"),
    "csvi-compiled-default": ("csvi_compiled", {}, "csvi compiled, float64, default threads"),
    "csvi-compiled-blas2": ("csvi_compiled", {"CSVI_BLAS_THREADS": "2"},
                            "csvi compiled, float64, 2 BLAS threads (the old default)"),
    "pyro": ("pyro", {}, "Pyro svi.step, float32, torch default threads"),
    "pyro-1": ("pyro", {"CSVI_BENCH_TORCH_THREADS": "1"}, "Pyro svi.step, float32, torch 1 thread"),
    "numpyro": ("numpyro", {}, "NumPyro jit(svi.update), float32"),
    "numpyro-1core": ("numpyro", {"CSVI_BENCH_CPUS": "1"},
                      "NumPyro jit(svi.update), float32, pinned to one core"),
    "floor-64": ("floor", dict(ONE_THREAD, CSVI_BENCH_DTYPE="float64"),
                 "floor: the 14 GEMMs, dgemm, 1 thread"),
    "floor-32": ("floor", dict(ONE_THREAD, CSVI_BENCH_DTYPE="float32"),
                 "floor: the 14 GEMMs, sgemm, 1 thread"),
    "floor-32-2": ("floor", dict(ONE_THREAD, OPENBLAS_NUM_THREADS="2", CSVI_BENCH_DTYPE="float32"),
                   "floor: the 14 GEMMs, sgemm, 2 threads"),
}


def synthetic_images(n=N_IMAGES, seed=0):
    """n binary 28x28 images (rows of 784 zeros and ones): each a Bernoulli draw
    around one of ten blurred random prototypes shifted by up to 2 pixels, so a
    VAE has structure to learn."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((10, 7, 7)) < 0.35
    protos = np.kron(coarse, np.ones((4, 4))).astype(float)
    for _ in range(2):  # a little blur: neighbours' average
        protos = (protos + np.roll(protos, 1, 1) + np.roll(protos, -1, 1)
                  + np.roll(protos, 1, 2) + np.roll(protos, -1, 2)) / 5.0
    probs = 0.03 + 0.94 * protos
    which, dx, dy = rng.integers(10, size=n), rng.integers(-2, 3, n), rng.integers(-2, 3, n)
    images = np.empty((n, 28, 28))
    for i in range(n):
        images[i] = np.roll(probs[which[i]], (dy[i], dx[i]), (0, 1))
    return (rng.random(images.shape) < images).reshape(n, X_DIM).astype(np.float64)


# ---- csvi ----------------------------------------------------------------

def _csvi_svi(data):
    """examples/vae.py's VAE (the tutorial's classes, layers called one by
    one); with CSVI_BENCH_FUSED=1 its networks rebuilt from Sequential blocks,
    so each Linear + activation runs as one fused record; with
    CSVI_BENCH_FLOAT32=1 every Linear multiplies in float32 (`vae.float()`)."""
    import importlib.util
    import csvi
    from csvi import nn
    from csvi.infer import SVI, Trace_ELBO
    from csvi.optim import Adam
    spec = importlib.util.spec_from_file_location(
        "vae_example", os.path.join(HERE, "..", "examples", "vae.py"))
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    csvi.set_rng_seed(0)
    csvi.clear_param_store()
    vae = example.VAE(X_DIM, Z_DIM, HIDDEN)
    if os.environ.get("CSVI_BENCH_FUSED") == "1":
        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden = nn.Sequential(nn.Linear(X_DIM, HIDDEN), nn.Softplus())
                self.fc21, self.fc22 = nn.Linear(HIDDEN, Z_DIM), nn.Linear(HIDDEN, Z_DIM)

            def forward(self, x):
                hidden = self.hidden(x)
                return self.fc21(hidden), csvi.exp(self.fc22(hidden))

        vae.encoder = Encoder()
        vae.decoder = nn.Sequential(nn.Linear(Z_DIM, HIDDEN), nn.Softplus(),
                                    nn.Linear(HIDDEN, X_DIM), nn.Sigmoid())
    if os.environ.get("CSVI_BENCH_FLOAT32") == "1":
        vae.float()  # every Linear's products through sgemm
    return SVI(vae.model, vae.guide, Adam({"lr": LR}), loss=Trace_ELBO())


def timed(step, calls, steps_per_call=1):
    """Each call's wall time per step, and the process's CPU time (all its
    threads, spinning included) per step over the calls: a step that is fast
    on idle cores but costs more CPU loses its lead when the cores are busy."""
    times = []
    cpu = time.process_time()
    for _ in range(calls):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) / steps_per_call)
    return times, (time.process_time() - cpu) / (calls * steps_per_call)


def csvi_eager(data, steps, warmup):
    svi = _csvi_svi(data)
    for _ in range(warmup):
        svi.step(data, BATCH)
    return timed(lambda: svi.step(data, BATCH), steps)


def csvi_compiled(data, steps, warmup, chunk=5):
    compiled = _csvi_svi(data).compile(data, BATCH)
    compiled.run(warmup)
    return timed(lambda: compiled.run(chunk), max(steps // chunk, 1), chunk)


def csvi_epochs(data, epochs):
    compiled = _csvi_svi(data).compile(data, BATCH)
    per_epoch = len(data) // BATCH
    return [-float(np.mean(compiled.run(per_epoch))) / len(data) for _ in range(epochs)]


# ---- Pyro ----------------------------------------------------------------

def _pyro_svi(data):
    import torch
    import torch.nn as tnn
    import pyro
    import pyro.distributions as pdist
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam
    if "CSVI_BENCH_TORCH_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["CSVI_BENCH_TORCH_THREADS"]))
    pyro.set_rng_seed(0)
    pyro.clear_param_store()

    class Encoder(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21 = tnn.Linear(X_DIM, HIDDEN), tnn.Linear(HIDDEN, Z_DIM)
            self.fc22, self.softplus = tnn.Linear(HIDDEN, Z_DIM), tnn.Softplus()

        def forward(self, x):
            hidden = self.softplus(self.fc1(x))
            return self.fc21(hidden), torch.exp(self.fc22(hidden))

    class Decoder(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21 = tnn.Linear(Z_DIM, HIDDEN), tnn.Linear(HIDDEN, X_DIM)
            self.softplus, self.sigmoid = tnn.Softplus(), tnn.Sigmoid()

        def forward(self, z):
            return self.sigmoid(self.fc21(self.softplus(self.fc1(z))))

    encoder, decoder = Encoder(), Decoder()
    x_all = torch.tensor(data, dtype=torch.float32)

    def model(x_all):
        pyro.module("decoder", decoder)
        with pyro.plate("data", len(x_all), subsample_size=BATCH) as idx:
            x = x_all[idx]
            z_loc = x.new_zeros((len(idx), Z_DIM))
            z = pyro.sample("latent", pdist.Normal(z_loc, 1.0).to_event(1))
            pyro.sample("obs", pdist.Bernoulli(decoder(z), validate_args=False).to_event(1),
                        obs=x)

    def guide(x_all):
        pyro.module("encoder", encoder)
        with pyro.plate("data", len(x_all), subsample_size=BATCH) as idx:
            z_loc, z_scale = encoder(x_all[idx])
            pyro.sample("latent", pdist.Normal(z_loc, z_scale).to_event(1))

    return SVI(model, guide, Adam({"lr": LR}), loss=Trace_ELBO()), x_all


def pyro(data, steps, warmup):
    svi, x_all = _pyro_svi(data)
    for _ in range(warmup):
        svi.step(x_all)
    return timed(lambda: svi.step(x_all), steps)


def pyro_epochs(data, epochs):
    svi, x_all = _pyro_svi(data)
    per_epoch = len(data) // BATCH
    return [-float(np.mean([svi.step(x_all) for _ in range(per_epoch)])) / len(data)
            for _ in range(epochs)]


# ---- NumPyro -------------------------------------------------------------

def numpyro(data, steps, warmup):
    import jax
    import jax.numpy as jnp
    import numpyro as npy
    import numpyro.distributions as ndist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.optim import Adam

    def linear_params(prefix, n_in, n_out, key):
        """torch's default initialisation, as numpyro.param sites."""
        bound = 1.0 / np.sqrt(n_in)
        kw, kb = jax.random.split(key)
        w = npy.param(prefix + ".weight", lambda _: jax.random.uniform(
            kw, (n_out, n_in), minval=-bound, maxval=bound))
        b = npy.param(prefix + ".bias", lambda _: jax.random.uniform(
            kb, (n_out,), minval=-bound, maxval=bound))
        return lambda x: x @ w.T + b

    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    x_all = jnp.asarray(data, dtype=jnp.float32)

    def model(x_all):
        fc1 = linear_params("decoder$$$fc1", Z_DIM, HIDDEN, keys[0])
        fc21 = linear_params("decoder$$$fc21", HIDDEN, X_DIM, keys[1])
        with npy.plate("data", x_all.shape[0], subsample_size=BATCH) as idx:
            x = x_all[idx]
            z = npy.sample("latent", ndist.Normal(jnp.zeros((BATCH, Z_DIM)), 1.0).to_event(1))
            probs = jax.nn.sigmoid(fc21(jax.nn.softplus(fc1(z))))
            npy.sample("obs", ndist.Bernoulli(probs=probs).to_event(1), obs=x)

    def guide(x_all):
        fc1 = linear_params("encoder$$$fc1", X_DIM, HIDDEN, keys[2])
        fc21 = linear_params("encoder$$$fc21", HIDDEN, Z_DIM, keys[3])
        fc22 = linear_params("encoder$$$fc22", HIDDEN, Z_DIM, keys[4])
        with npy.plate("data", x_all.shape[0], subsample_size=BATCH) as idx:
            hidden = jax.nn.softplus(fc1(x_all[idx]))
            npy.sample("latent", ndist.Normal(fc21(hidden), jnp.exp(fc22(hidden))).to_event(1))

    svi = SVI(model, guide, Adam(LR), Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(1), x_all)
    update = jax.jit(svi.update)
    for _ in range(warmup):
        state, loss = update(state, x_all)
    jax.block_until_ready(loss)

    def step():
        nonlocal state
        state, loss = update(state, x_all)
        jax.block_until_ready(loss)

    return timed(step, steps)


# ---- the floor -----------------------------------------------------------

def gemm_plan(dtype):
    """The step's GEMMs as (run, check) on preallocated row-major arrays: each
    product a @ op(b) is BLAS's column-major (op(b)^T a^T), so no operand is
    copied.  Layers: (n_in, n_out) for x @ W.T (W is (n_out, n_in))."""
    from scipy.linalg import blas
    gemm = blas.dgemm if dtype == np.float64 else blas.sgemm
    rng = np.random.default_rng(0)
    layers = [(X_DIM, HIDDEN), (HIDDEN, Z_DIM), (HIDDEN, Z_DIM), (Z_DIM, HIDDEN), (HIDDEN, X_DIM)]
    calls = []  # (a, b, trans_a, trans_b, out): out = op(a) @ op(b)

    def arr(*shape):
        return np.ascontiguousarray(rng.standard_normal(shape), dtype=dtype)

    for i, (n_in, n_out) in enumerate(layers):
        x, w, g = arr(BATCH, n_in), arr(n_out, n_in), arr(BATCH, n_out)
        calls.append((x, w, 0, 1, np.zeros((BATCH, n_out), dtype)))      # y = x W^T
        calls.append((g, x, 1, 0, np.zeros((n_out, n_in), dtype)))       # dW = g^T x
        if i != 0:  # the first layer's input is data: no gradient
            calls.append((g, w, 0, 0, np.zeros((BATCH, n_in), dtype)))   # dx = g W

    def run():
        for a, b, ta, tb, out in calls:
            gemm(1.0, b.T, a.T, 0.0, out.T, trans_a=tb, trans_b=ta, overwrite_c=1)

    def check():
        run()
        for a, b, ta, tb, out in calls:
            ref = (a.T if ta else a) @ (b.T if tb else b)
            assert np.allclose(out, ref, rtol=1e-3, atol=1e-3), "floor GEMM disagrees with NumPy"
        return len(calls)

    return run, check


def floor(data, steps, warmup):
    run, check = gemm_plan(np.dtype(os.environ.get("CSVI_BENCH_DTYPE", "float64")).type)
    check()
    for _ in range(warmup):
        run()
    return timed(run, steps)


WORKERS = {"csvi_eager": csvi_eager, "csvi_compiled": csvi_compiled, "pyro": pyro,
           "numpyro": numpyro, "floor": floor}
EPOCH_WORKERS = {"csvi_epochs": csvi_epochs, "pyro_epochs": pyro_epochs}
# the ELBO-by-epoch rows: (label, worker, extra environment)
EPOCH_ROWS = [("csvi (compiled, float64)", "csvi_epochs", {}),
              ("csvi (compiled, float32 products)", "csvi_epochs", {"CSVI_BENCH_FLOAT32": "1"}),
              ("pyro (float32)", "pyro_epochs", {})]


def worker(args):
    if "CSVI_BENCH_CPUS" in os.environ:  # as `taskset`: the first n CPUs we may use
        cpus = sorted(os.sched_getaffinity(0))[:int(os.environ["CSVI_BENCH_CPUS"])]
        os.sched_setaffinity(0, cpus)
    data = synthetic_images()
    if args.worker in EPOCH_WORKERS:
        result = {"elbo": EPOCH_WORKERS[args.worker](data, args.epochs)}
    else:
        times, cpu_s = WORKERS[args.worker](data, args.steps, args.warmup)
        result = {"median_s": statistics.median(times), "cpu_s": cpu_s}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("RESULT " + json.dumps(result), flush=True)


def spawn(worker_name, env_extra, args, epochs=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", worker_name,
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **env_extra))
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def available(worker_name):
    import importlib.util
    needs = {"pyro": ["torch", "pyro"], "numpyro": ["jax", "numpyro"]}.get(worker_name, [])
    return all(importlib.util.find_spec(m) is not None for m in needs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3, help="ELBO agreement epochs (0: none)")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--out", help="also write the markdown here")
    p.add_argument("--baseline", help="a source tree of csvi (its csvi/ built) to run each "
                   "csvi configuration on too, interleaved: rows 'baseline: ...'")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)

    names = [n for n in args.configs.split(",") if n]
    unknown = set(names) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configs {sorted(unknown)}; choose from {list(CONFIGS)}")
    if args.baseline:  # each csvi row also on the other tree, next to it
        tree = os.path.abspath(args.baseline)
        for n in [n for n in names if n.startswith("csvi")]:
            worker_name, env, label = CONFIGS[n]
            CONFIGS[n + "@baseline"] = (worker_name, dict(env, PYTHONPATH=tree),
                                        "baseline: " + label)
            names.insert(names.index(n), n + "@baseline")
    results = {n: [] for n in names}
    skipped = {n: "not installed" for n in names if not available(CONFIGS[n][0])}
    for r in range(args.repeats):
        for n in names:
            if n in skipped:
                continue
            res = spawn(CONFIGS[n][0], CONFIGS[n][1], args)
            if "error" in res:
                skipped[n] = res["error"]
            else:
                results[n].append(res)
        print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    def median_ms(n):
        return 1e3 * statistics.median(x["median_s"] for x in results[n])

    ref = {k: median_ms(k) for k in ("csvi-compiled", "floor-64", "floor-32", "pyro", "numpyro")
           if k in names and results[k]}
    lines = [f"VAE {X_DIM}-{HIDDEN}-{Z_DIM}, batch {BATCH}, N={N_IMAGES}; "
             f"median over {args.repeats} interleaved processes of each one's median of "
             f"{args.steps} steps", "",
             "| configuration | ms/step | CPU ms/step | × csvi compiled (1 BLAS thread) "
             "| × floor (dgemm) | × floor (sgemm) | Pyro's step ÷ this | NumPyro's step ÷ this "
             "| peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        if n in skipped:
            lines.append(f"| {CONFIGS[n][2]} | skipped: {skipped[n]} | | | | | | | |")
            continue
        ms = median_ms(n)
        rss = statistics.median(x["peak_rss_mb"] for x in results[n])
        cpu_ms = 1e3 * statistics.median(x["cpu_s"] for x in results[n])
        cells = [f"{ms / ref[k]:.2f}" if k in ref else "" for k in
                 ("csvi-compiled", "floor-64", "floor-32")]
        cells += [f"{ref[k] / ms:.2f}" if k in ref else "" for k in ("pyro", "numpyro")]
        lines.append(f"| {CONFIGS[n][2]} | {ms:.2f} | {cpu_ms:.2f} | " + " | ".join(cells)
                     + f" | {rss:.0f} |")

    if args.epochs > 0:
        elbos = {label: spawn(name, dict(env, OPENBLAS_NUM_THREADS="1"), args, args.epochs)
                 for label, name, env in EPOCH_ROWS if available(name.split("_")[0])}
        lines += ["", f"Train ELBO per image by epoch ({N_IMAGES // BATCH} steps each; "
                  "independent initialisations)", "",
                  "| library | " + " | ".join(f"epoch {e + 1}" for e in range(args.epochs)) + " |",
                  "|---|" + "---|" * args.epochs]
        for lib, res in elbos.items():
            cells = ([f"{v:.1f}" for v in res["elbo"]] if "elbo" in res
                     else [res["error"]] + [""] * (args.epochs - 1))
            lines.append(f"| {lib} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
