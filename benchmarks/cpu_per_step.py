"""CPU time per SVI step, one thread per library, for a loaded machine.

run.py's wall-clock medians are what the goals are stated in, but when other
processes hold the cores a wall-clock step is mostly waiting for a core (and
a multi-threaded library waits for each of its threads).  This script times
the same models in each library pinned to one thread (csvi's pool,
OpenBLAS, torch, XLA) and reports process CPU time per step, each repeat of
each (library, mode) in a fresh subprocess, the libraries taking turns:

    python benchmarks/cpu_per_step.py --models hier_autonormal,mvn_autoguide --repeats 3

Modes: csvi eager and compiled, Pyro eager, NumPyro scan (the scan jitted
once, then timed on a second call, as worker.py's per-step time)."""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = [("csvi", "eager"), ("csvi", "compiled"), ("pyro", "eager"), ("numpyro", "scan")]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def child(library, model, mode, steps):
    """Times one (library, model, mode) in this process; prints CPU s/step."""
    import time

    sys.path.insert(0, HERE)
    if library == "numpyro":
        import jax
        from jax import lax

        import models_numpyro as models

        svi, args = models.build(model)
        scan = jax.jit(lambda state: lax.scan(lambda s, _: svi.update(s, *args), state, None,
                                              length=steps))
        state = svi.init(jax.random.PRNGKey(0), *args)
        jax.block_until_ready(scan(state)[1])
        start = time.process_time()
        jax.block_until_ready(scan(state)[1])
        return (time.process_time() - start) / steps
    if library == "pyro":
        import torch

        torch.set_num_threads(1)
        import models_pyro as models
    else:
        import models_csvi as models
    svi, args, _ = models.build(model)
    if mode == "compiled":
        compiled = svi.compile(*args)
        compiled.run(10)
        start = time.process_time()
        compiled.run(steps)
        return (time.process_time() - start) / steps
    for _ in range(10):
        svi.step(*args)
    start = time.process_time()
    for _ in range(steps):
        svi.step(*args)
    return (time.process_time() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="hier_autonormal,mvn_autoguide")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("LIBRARY", "MODEL", "MODE"))
    a = parser.parse_args()
    if a.child:
        print(json.dumps(child(*a.child, a.steps)))
        return
    env = dict(os.environ, **ONE_THREAD)
    times = {}
    for _ in range(a.repeats):
        for model in a.models.split(","):
            for library, mode in RUNS:
                out = subprocess.run([sys.executable, __file__, "--steps", str(a.steps),
                                      "--child", library, model, mode],
                                     env=env, capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{library} {model} {mode} failed:\n{out.stderr[-2000:]}")
                times.setdefault((model, library, mode), []).append(
                    json.loads(out.stdout.splitlines()[-1]))
    print("| model | library | mode | CPU per step, median [min-max] | x csvi eager | "
          "x csvi compiled |")
    print("|---|---|---|---|---|---|")
    for (model, library, mode), ts in times.items():
        med = statistics.median(ts)
        eager = statistics.median(times[(model, "csvi", "eager")])
        comp = statistics.median(times[(model, "csvi", "compiled")])
        print(f"| {model} | {library} | {mode} | {med * 1e6:.1f} µs [{min(ts) * 1e6:.1f}-"
              f"{max(ts) * 1e6:.1f}] | {med / eager:.1f} | {med / comp:.1f} |")


if __name__ == "__main__":
    main()
