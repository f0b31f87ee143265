"""The HMM example's first vectorized model (Pyro's examples/hmm.py model_1:
88 tones, 16 hidden states, minibatches of 8 sequences, 100 steps each,
MAP Baum-Welch through TraceEnum_ELBO) per SVI step: csvi eager and jitted
(JitTraceEnum_ELBO), Pyro's JitTraceEnum_ELBO (torch, float32 as its
default) and NumPyro's TraceEnum_ELBO under jax.jit (float32; funsor).

Each (library, repeat) runs in its own subprocess, one thread each, the
libraries interleaved; the table gives medians of the per-step times and the
peak RSS of each process.

    OPENBLAS_NUM_THREADS=1 python benchmarks/hmm.py [--repeats 3] [--steps 20]
"""
import argparse
import importlib.util
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
HIDDEN, LENGTH, BATCH, SEQUENCES = 16, 100, 8, 100
LIBRARIES = ("csvi-eager", "csvi-jit", "pyro-jit", "numpyro-jit")


def data():
    spec = importlib.util.spec_from_file_location("hmm_example", ROOT / "examples" / "hmm.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    sequences, lengths = example.make_data(SEQUENCES, LENGTH, seed=0)
    lengths[:] = LENGTH  # every minibatch the same program
    return example, sequences, lengths


def csvi_step(jit):
    import csvi
    from csvi import handlers
    from csvi.infer import SVI, JitTraceEnum_ELBO, TraceEnum_ELBO
    from csvi.infer.autoguide import AutoDelta
    from csvi.optim import Adam
    example, sequences, lengths = data()
    args = argparse.Namespace(hidden_dim=HIDDEN, jit=True)
    csvi.set_rng_seed(0)
    guide = AutoDelta(handlers.block(example.model_1,
                                     expose_fn=lambda msg: msg["name"].startswith("probs_")))
    elbo = (JitTraceEnum_ELBO if jit else TraceEnum_ELBO)(max_plate_nesting=2)
    svi = SVI(example.model_1, guide, Adam({"lr": 0.05}), elbo)
    return lambda: svi.step(sequences, lengths, args=args, batch_size=BATCH)


def pyro_step():
    import torch
    import pyro
    import pyro.distributions as dist
    from pyro import poutine
    from pyro.infer import SVI, JitTraceEnum_ELBO
    from pyro.infer.autoguide import AutoDelta
    from pyro.optim import Adam
    torch.set_num_threads(1)
    _, sequences, lengths = data()
    sequences, lengths = torch.tensor(sequences, dtype=torch.float32), torch.tensor(lengths)

    def model(sequences, lengths, batch_size=None):
        num_sequences, max_length, data_dim = map(int, sequences.shape)
        probs_x = pyro.sample("probs_x",
                              dist.Dirichlet(0.9 * torch.eye(HIDDEN) + 0.1).to_event(1))
        probs_y = pyro.sample("probs_y",
                              dist.Beta(0.1, 0.9).expand([HIDDEN, data_dim]).to_event(2))
        tones_plate = pyro.plate("tones", data_dim, dim=-1)
        with pyro.plate("sequences", num_sequences, batch_size, dim=-2) as batch:
            lengths = lengths[batch]
            x = 0
            for t in pyro.markov(range(max_length)):
                with poutine.mask(mask=(t < lengths).unsqueeze(-1)):
                    x = pyro.sample(f"x_{t}", dist.Categorical(probs_x[x]),
                                    infer={"enumerate": "parallel"})
                    with tones_plate:
                        pyro.sample(f"y_{t}", dist.Bernoulli(probs_y[x.squeeze(-1)]),
                                    obs=sequences[batch, t])

    pyro.set_rng_seed(0)
    guide = AutoDelta(poutine.block(model, expose_fn=lambda m: m["name"].startswith("probs_")))
    svi = SVI(model, guide, Adam({"lr": 0.05}), JitTraceEnum_ELBO(max_plate_nesting=2))
    return lambda: svi.step(sequences, lengths, batch_size=BATCH)


def numpyro_step():
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro import handlers
    from numpyro.contrib.funsor import config_enumerate, markov  # noqa: F401 (enum support)
    from numpyro.infer import SVI, TraceEnum_ELBO
    from numpyro.infer.autoguide import AutoDelta
    from numpyro.optim import Adam
    _, sequences, lengths = data()
    sequences, lengths = jnp.asarray(sequences, jnp.float32), jnp.asarray(lengths)

    def model(sequences, lengths, batch_size=None):
        num_sequences, max_length, data_dim = sequences.shape
        probs_x = numpyro.sample("probs_x",
                                 dist.Dirichlet(0.9 * jnp.eye(HIDDEN) + 0.1).to_event(1))
        probs_y = numpyro.sample("probs_y",
                                 dist.Beta(0.1, 0.9).expand([HIDDEN, data_dim]).to_event(2))
        tones_plate = numpyro.plate("tones", data_dim, dim=-1)
        with numpyro.plate("sequences", num_sequences, batch_size, dim=-2) as batch:
            lengths = lengths[batch]
            x = 0
            for t in markov(range(max_length)):
                with handlers.mask(mask=(t < lengths)[..., None]):
                    x = numpyro.sample(f"x_{t}", dist.Categorical(probs_x[x]),
                                       infer={"enumerate": "parallel"})
                    with tones_plate:
                        numpyro.sample(f"y_{t}", dist.Bernoulli(probs_y[x.squeeze(-1)]),
                                       obs=sequences[batch, t])

    guide = AutoDelta(handlers.block(
        model, hide_fn=lambda m: not str(m.get("name") or "").startswith("probs_")))
    svi = SVI(model, guide, Adam(0.05), TraceEnum_ELBO(max_plate_nesting=2))
    state = svi.init(jax.random.PRNGKey(0), sequences, lengths, batch_size=BATCH)
    update = jax.jit(lambda s: svi.update(s, sequences, lengths, batch_size=BATCH))
    box = [state]

    def step():
        box[0], loss = update(box[0])
        return float(loss)

    return step


def worker(library, steps):
    start = time.perf_counter()
    step = {"csvi-eager": lambda: csvi_step(False), "csvi-jit": lambda: csvi_step(True),
            "pyro-jit": pyro_step, "numpyro-jit": numpyro_step}[library]()
    first = step()  # traces / compiles
    setup = time.perf_counter() - start
    times, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({"library": library, "setup_s": setup, "first_loss": first,
                      "per_step_s": statistics.median(times),
                      "cpu_per_step_s": statistics.median(cpu),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--worker")
    a = parser.parse_args(argv)
    if a.worker:
        return worker(a.worker, a.steps)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
               PYTHONPATH=str(ROOT))
    runs = {lib: [] for lib in a.libraries.split(",")}
    load = os.getloadavg()
    for _ in range(a.repeats):
        for lib in runs:
            proc = subprocess.run([sys.executable, __file__, "--worker", lib, "--steps",
                                   str(a.steps)], capture_output=True, text=True, env=env)
            if proc.returncode:
                print(f"{lib} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            runs[lib].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"HMM model_1: {HIDDEN} states, 88 tones, batch {BATCH}, length {LENGTH}; medians of "
          f"{a.repeats} interleaved repeats x {a.steps} steps, one thread each\n")
    print(f"Load average before/after: {load[0]:.1f} / {os.getloadavg()[0]:.1f} (2 cores). "
          "CPU: process CPU time per step (every thread), which waiting for a core "
          "does not stretch.\n")
    print("| library | per step | CPU per step | setup (incl. first step) | peak RSS "
          "| csvi-jit faster by (wall / CPU) |")
    print("|---|---|---|---|---|---|")

    def median(lib, key):
        return statistics.median(r[key] for r in runs[lib]) if runs.get(lib) else None

    jit, jit_cpu = median("csvi-jit", "per_step_s"), median("csvi-jit", "cpu_per_step_s")
    for lib, rs in runs.items():
        if not rs:
            continue
        step, cpu = median(lib, "per_step_s"), median(lib, "cpu_per_step_s")
        setup, rss = median(lib, "setup_s"), median(lib, "peak_rss_mb")
        ratio = f"{step / jit:.1f}x / {cpu / jit_cpu:.1f}x" if jit else "-"
        print(f"| {lib} | {step * 1e3:.2f} ms | {cpu * 1e3:.2f} ms | {setup:.2f} s "
              f"| {rss:.0f} MB | {ratio} |")


if __name__ == "__main__":
    main()
