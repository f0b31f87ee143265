"""Times one (library, model, mode) in this process and prints one JSON line.

Run by benchmarks/run.py, one subprocess per library and model, so that one
library's threads, import cost and memory never touch another's measurement:

    python benchmarks/worker.py LIBRARY MODEL MODE --steps N --repeats R
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODES = {"csvi": ["eager", "compiled"], "pyro": ["eager"], "numpyro": ["jit", "scan"]}


def import_library(library):
    start = time.perf_counter()
    if library == "csvi":
        import models_csvi as models
    elif library == "pyro":
        import models_pyro as models
    elif library == "numpyro":
        import models_numpyro as models
    else:
        raise ValueError(f"unknown library {library!r}")
    return models, time.perf_counter() - start


def time_eager(models, model, steps, repeats):
    """csvi / Pyro: svi.step() from a Python loop; no separate compile phase."""
    per_step, first = [], None
    for _ in range(repeats):
        svi, args, read = models.build(model)
        start = time.perf_counter()
        losses = [float(svi.step(*args)) for _ in range(steps)]
        elapsed = time.perf_counter() - start
        per_step.append(elapsed / steps)
        if first is None:
            first = (elapsed, losses, read())
    elapsed, losses, params = first
    return {"compile_s": 0.0, "per_step_s": per_step, "run_s": elapsed,
            "losses": losses, "params": params}


def time_csvi_compiled(models, model, steps, repeats):
    """csvi: svi.compile() (trace + freeze), then all steps in one C loop."""
    per_step, first = [], None
    for _ in range(repeats):
        svi, args, read = models.build(model)
        start = time.perf_counter()
        compiled = svi.compile(*args)
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        losses = compiled.run(steps)
        elapsed = time.perf_counter() - start
        per_step.append(elapsed / steps)
        if first is None:
            first = (compile_s, compile_s + elapsed, [float(x) for x in losses], read())
    compile_s, run_s, losses, params = first
    return {"compile_s": compile_s, "per_step_s": per_step, "run_s": run_s,
            "losses": losses, "params": params}


def time_numpyro_jit(models, model, steps, repeats):
    """NumPyro: jitted svi.update called from a Python loop."""
    import jax

    per_step, first = [], None
    for r in range(repeats):
        svi, args = models.build(model)
        update = jax.jit(svi.update)
        start = time.perf_counter()
        state = svi.init(jax.random.PRNGKey(0), *args)
        state, loss = update(state, *args)
        jax.block_until_ready(loss)
        compile_s = time.perf_counter() - start
        losses = [loss]
        start = time.perf_counter()
        for _ in range(steps - 1):
            state, loss = update(state, *args)
            losses.append(loss)
        jax.block_until_ready(loss)
        elapsed = time.perf_counter() - start
        per_step.append(elapsed / max(steps - 1, 1))
        if first is None:
            params = {k: jax.device_get(v) for k, v in svi.get_params(state).items()}
            first = (compile_s, compile_s + elapsed, [float(x) for x in losses], params)
    compile_s, run_s, losses, params = first
    return {"compile_s": compile_s, "per_step_s": per_step, "run_s": run_s,
            "losses": losses, "params": params}


def time_numpyro_scan(models, model, steps, repeats):
    """NumPyro: svi.run (one lax.scan, compiled on every call).  Time to result
    is svi.run's own time; the per-step time comes from the same scan jitted
    once and called again (so compile time is excluded)."""
    import jax
    from jax import lax

    svi, args = models.build(model)
    start = time.perf_counter()
    result = svi.run(jax.random.PRNGKey(0), steps, *args, progress_bar=False)
    jax.block_until_ready(result.losses)
    run_s = time.perf_counter() - start
    params = {k: jax.device_get(v) for k, v in result.params.items()}
    losses = [float(x) for x in result.losses]

    def body(state, _):
        return svi.update(state, *args)

    scan = jax.jit(lambda state: lax.scan(body, state, None, length=steps))
    state = svi.init(jax.random.PRNGKey(0), *args)
    jax.block_until_ready(scan(state)[1])
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(scan(state)[1])
        per_step.append((time.perf_counter() - start) / steps)
    compile_s = max(run_s - steps * min(per_step), 0.0)
    return {"compile_s": compile_s, "per_step_s": per_step, "run_s": run_s,
            "losses": losses, "params": params}


def accuracy(model, params):
    """Error against the exact posterior, where one exists."""
    import numpy as np

    import data

    if model in ("coin_loop", "coin_plate"):
        a, b = float(np.asarray(params["alpha_q"])), float(np.asarray(params["beta_q"]))
        mean, std = data.beta_mean_std(a, b)
        exact_mean, exact_std = data.beta_mean_std(*data.COIN_POSTERIOR)
        return {"posterior_mean": mean, "posterior_std": std,
                "mean_rel_err": abs(mean - exact_mean) / exact_mean,
                "std_rel_err": abs(std - exact_std) / exact_std}
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("library")
    parser.add_argument("model")
    parser.add_argument("mode")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    models, import_s = import_library(a.library)
    timer = {"eager": time_eager, "compiled": time_csvi_compiled, "jit": time_numpyro_jit,
             "scan": time_numpyro_scan}[a.mode]
    out = timer(models, a.model, a.steps, a.repeats)
    losses = out.pop("losses")
    params = out.pop("params")
    tail = losses[-100:]
    out.update(
        library=a.library, model=a.model, mode=a.mode, steps=a.steps,
        import_s=import_s,
        per_step_median_s=statistics.median(out["per_step_s"]),
        time_to_result_s=import_s + out["run_s"],
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        final_loss=sum(tail) / len(tail),
        accuracy=accuracy(a.model, params),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
