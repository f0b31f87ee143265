"""What the fit diagnostics cost (issue 17), medians of interleaved repeats,
each repeat of each case in its own process:

- `step_off` / `step_on`: an eager AutoNormal step on the 100-weight
  regression (data.correlated_regression, written `sum(x * w, -1)` so that
  the ELBO checks' and PSIS's particle plate broadcasts) without and with
  `track_gradients=100` (each step copies every param's gradient);
- `compiled` / `compiled_stop`: 5,000 compiled steps without and with a
  ConvergenceStop that never fires (eval_every=100, 100 particles: 50 ELBO
  checks, one vectorized run each);
- `psis_csvi` / `psis_pyro`: psis_diagnostic with 1,000 particles of that
  model's AutoNormal guide (at its initial params), csvi against Pyro (when
  installed; both vectorized).

    OPENBLAS_NUM_THREADS=1 python benchmarks/diagnostics.py [--repeats 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 300


def csvi_model(x, y):
    import csvi
    import csvi.distributions as dist
    w = csvi.sample("w", dist.Normal(np.zeros(x.shape[1]), 1.0).to_event(1))
    with csvi.plate("data", x.shape[0]):
        csvi.sample("y", dist.Normal(csvi.sum(x * w, -1), 1.0), obs=y)


def pyro_model(x, y):
    import pyro
    import pyro.distributions as dist
    import torch
    w = pyro.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Normal((x * w).sum(-1), 1.0), obs=y)


def csvi_svi():
    import csvi
    from csvi.infer import SVI, Trace_ELBO
    from csvi.infer.autoguide import AutoNormal
    from csvi.optim import Adam
    import data

    csvi.clear_param_store()
    csvi.set_rng_seed(0)
    x, y = data.correlated_regression()
    model = csvi_model
    guide = AutoNormal(model)
    return SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO()), (x, y)


def run_case(case):
    """Seconds per step (step_*, compiled*) or per call (psis_*)."""
    if case == "psis_pyro":
        import torch
        from pyro.infer.autoguide import AutoNormal
        from pyro.infer.importance import psis_diagnostic
        import data

        x, y = (torch.tensor(a) for a in data.correlated_regression())
        guide = AutoNormal(pyro_model)
        guide(x, y)
        psis_diagnostic(pyro_model, guide, x, y, num_particles=1000, max_plate_nesting=1)
        start = time.perf_counter()
        psis_diagnostic(pyro_model, guide, x, y, num_particles=1000, max_plate_nesting=1)
        return time.perf_counter() - start
    from csvi.infer import ConvergenceStop, psis_diagnostic
    svi, args = csvi_svi()
    if case == "psis_csvi":
        svi.guide(*args)
        psis_diagnostic(svi.model, svi.guide, *args, num_particles=1000, max_plate_nesting=1)
        start = time.perf_counter()
        psis_diagnostic(svi.model, svi.guide, *args, num_particles=1000, max_plate_nesting=1)
        return time.perf_counter() - start
    if case.startswith("step"):
        track = 100 if case == "step_on" else None
        svi.run(50, *args, progress_bar=False, track_gradients=track)  # warm up
        start = time.perf_counter()
        svi.run(STEPS, *args, progress_bar=False, track_gradients=track)
        return (time.perf_counter() - start) / STEPS
    stop = ConvergenceStop(tol=1e-12, eval_every=100, num_particles=100) \
        if case == "compiled_stop" else None
    svi.run(100, *args, compile=True, progress_bar=False)  # warm up
    start = time.perf_counter()
    svi.run(5000, *args, compile=True, progress_bar=False, stop=stop)
    return (time.perf_counter() - start) / 5000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(args.worker)))
        return
    cases = ["step_off", "step_on", "compiled", "compiled_stop", "psis_csvi", "psis_pyro"]
    times = {case: [] for case in cases}
    for _ in range(args.repeats):
        for case in cases:
            proc = subprocess.run([sys.executable, __file__, "--worker", case],
                                  capture_output=True, text=True, cwd=HERE)
            if proc.returncode == 0:
                times[case].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {case: statistics.median(t) for case, t in times.items() if t}
    for case in cases:
        if case in med:
            unit = "s/call" if case.startswith("psis") else "us/step"
            value = med[case] if case.startswith("psis") else med[case] * 1e6
            print(f"{case:14} {value:10.4g} {unit}  ({len(times[case])} repeats)")
        else:
            print(f"{case:14} not run (import failed)")
    for a, b in (("step_on", "step_off"), ("compiled_stop", "compiled"),
                 ("psis_pyro", "psis_csvi")):
        if a in med and b in med:
            print(f"{a} / {b}: {med[a] / med[b]:.3f}")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
