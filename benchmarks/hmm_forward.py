"""DiscreteHMM log_prob + gradient at T = 1,000 steps and K = 32 states, in
csvi, Pyro (torch autograd) and NumPyro (jax.jit of value_and_grad), against
two floors measured in the same run.

    python benchmarks/hmm_forward.py [--steps 1000] [--states 32] [--batches 1,8]
                                     [--repeats 7] [--out FILE]

The work: the log-likelihood of `batch` sequences of `steps` scalar
observations under one HMM (initial logits (K,), transition logits (K, K)
"homogeneous" or (T, K, K) "per-step", Normal(loc (K,), 0.8) observations),
summed, and its gradient w.r.t. initial logits, transition logits and loc.

- csvi: `DiscreteHMM(...).log_prob(x).sum()` on a `record_all` tape and the
  reverse sweep, as `SVI.step` runs it (one MARKOV_FORWARD op normalizes
  the transition logits and does the chain).
- Pyro: `pyro.distributions.DiscreteHMM(...).log_prob(x).sum().backward()`.
- NumPyro has no DiscreteHMM; its HMM example's forward algorithm is
  written here the same way (`lax.scan` of a logsumexp step over NumPyro's
  Normal log-densities), `jax.jit(jax.value_and_grad(...))`, first call
  excluded, blocked until ready.
- floor "C fwd": the T log-space vector-matrix products alone, in C, no
  autodiff: csvi's MARKOV_FORWARD forward on precomputed observation
  log-densities and normalized logits with nothing requiring grad (per
  step: the K^2 exps of the transitions once for all the sequences that
  share them, K exps, K^2 multiply-adds and K logs per sequence, plus one
  op's Python call).  log_prob + gradient cannot beat it: it reads the same
  logits and must exponentiate each once, then also runs the backward pass
  and writes the (T, K, K) gradient.
- floor "NumPy fwd": the same recursion as a NumPy loop (per step:
  max-shift, exp, a K x K mat-vec, log), the arithmetic a user would write.

The libraries must agree on the value and every gradient before they are
timed.  Every thread variable (OMP, OpenBLAS, MKL) is 1 and torch uses one
thread; within a repeat the cases take turns (the machine is shared) and a
cell is the median of the repeats, in CPU time of the process (what the
work costs, which a loaded machine's queueing does not inflate) and in
wall time.  Peak RSS is measured per library in its
own process (import, build, 20 calls): the O(T K) of the chain versus the
O(K^T) a naive sum over paths would need.  Prints a markdown table (and
writes it to --out).
"""
import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PEERS = {"pyro": ["torch", "pyro"], "numpyro": ["jax", "numpyro"]}
SCALE = 0.8


def problem(steps, states, batch, per_step, seed=0):
    rng = np.random.default_rng(seed)
    trans_shape = (steps, states, states) if per_step else (states, states)
    return {"init": rng.standard_normal(states), "trans": rng.standard_normal(trans_shape),
            "loc": 2.0 * rng.standard_normal(states),
            "x": 2.0 * rng.standard_normal((batch, steps))}


# Each case returns (run, check): run() is the timed call; check() gives
# (log-likelihood, d init, d trans, d loc) as NumPy.

def csvi_case(p):
    import csvi
    from csvi import _core
    from csvi.distributions import DiscreteHMM, Normal

    init, trans, loc = (csvi.tensor(p[k], requires_grad=True) for k in ("init", "trans", "loc"))
    tape = _core.Tape(record_all=True)

    def total():
        hmm = DiscreteHMM(init, trans, Normal(loc, SCALE))
        return _core.sum_all([hmm.log_prob(p["x"])])

    def run():
        tape.clear()
        lp = _core.record_call(tape, total)
        tape.backward(lp, False)
        return lp

    def check():
        lp = run()
        out = (float(_core.value_of(lp)),) + tuple(tape.grad_of(t).copy()
                                                    for t in (init, trans, loc))
        tape.clear()
        return out

    return run, check


def pyro_case(p):
    import torch
    import pyro.distributions as pdist

    torch.set_num_threads(1)
    init, trans, loc = (torch.tensor(p[k], requires_grad=True) for k in ("init", "trans", "loc"))
    x = torch.tensor(p["x"])

    def run():
        init.grad = trans.grad = loc.grad = None
        lp = pdist.DiscreteHMM(init, trans, pdist.Normal(loc, SCALE)).log_prob(x).sum()
        lp.backward()
        return lp.detach()

    def check():
        lp = run()
        return (lp.item(),) + tuple(t.grad.numpy().copy() for t in (init, trans, loc))

    return run, check


def numpyro_case(p):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp
    from numpyro.distributions import Normal

    per_step = p["trans"].ndim == 3

    def total(init, trans, loc, x):
        init = init - logsumexp(init)
        trans = trans - logsumexp(trans, -1, keepdims=True)
        obs = Normal(loc, SCALE).log_prob(x[..., None])            # (B, T, K)

        def one(seq_obs):
            def step(alpha, inputs):
                lp, tr = inputs
                return logsumexp(alpha[:, None] + tr, 0) + lp, None
            trs = trans if per_step else jnp.broadcast_to(trans, (seq_obs.shape[0],) + trans.shape)
            alpha, _ = jax.lax.scan(step, init, (seq_obs, trs))
            return logsumexp(alpha)
        return jax.vmap(one)(obs).sum()

    f = jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2)))
    args = [jax.device_put(p[k]) for k in ("init", "trans", "loc", "x")]

    def run():
        return jax.block_until_ready(f(*args))

    def check():
        lp, grads = run()
        return (float(lp),) + tuple(np.asarray(g) for g in grads)

    return run, check


def observation_logits(p):
    init = p["init"] - np.logaddexp.reduce(p["init"])
    trans = p["trans"] - np.logaddexp.reduce(p["trans"], axis=-1, keepdims=True)
    z = (p["x"][..., None] - p["loc"]) / SCALE
    obs = -0.5 * z * z - np.log(SCALE) - 0.5 * np.log(2 * np.pi)
    return init, trans, obs


def floor_c_case(p):
    from csvi.ops.contract import markov_forward

    init, trans, obs = observation_logits(p)
    trans3 = trans if trans.ndim == 3 else trans[None]

    def run():
        return markov_forward(init, trans3, obs)

    return run, None


def floor_numpy_case(p):
    init, trans, obs = observation_logits(p)
    T = obs.shape[-2]

    def run():
        a = np.broadcast_to(init, obs.shape[:-2] + init.shape)
        for t in range(T):
            m = trans[t] if trans.ndim == 3 else trans
            top = a.max(-1, keepdims=True)
            a = np.log(np.exp(a - top) @ np.exp(m)) + top + obs[..., t, :]
        return a

    return run, None


CASES = {"csvi": csvi_case, "pyro": pyro_case, "numpyro": numpyro_case,
         "floor_c": floor_c_case, "floor_numpy": floor_numpy_case}


def per_call(run, min_time=0.05):
    """(wall, CPU) seconds per call, over enough calls to last min_time."""
    number = 1
    while True:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(number):
            run()
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        if elapsed >= min_time:
            return elapsed / number, used / number
        number *= 2 if elapsed < min_time / 8 else 4


def agree(a, b):
    return (abs(a[0] - b[0]) <= 1e-9 * abs(b[0])
            and all(np.allclose(x, y, rtol=1e-7, atol=1e-9) for x, y in zip(a[1:], b[1:])))


def child_time(a, libraries):
    rows = []
    for per_step in (False, True):
        for batch in a.batches:
            p = problem(a.steps, a.states, batch, per_step)
            runs, ref = {}, None
            for lib in libraries + ["floor_c", "floor_numpy"]:
                run, check = CASES[lib](p)
                if check is not None:
                    got = check()
                    if ref is None:
                        ref = got
                    elif not agree(got, ref):
                        raise SystemExit(f"hmm_forward.py: {lib} disagrees with csvi "
                                         f"(batch {batch}, per_step {per_step})")
                run()  # warm (NumPyro compiles on its first call)
                runs[lib] = run
            times = {lib: [] for lib in runs}
            for _ in range(a.repeats):
                for lib, run in runs.items():
                    times[lib].append(per_call(run))
            row = {"trans": "per-step" if per_step else "homogeneous", "batch": batch}
            for kind, k in (("cpu", 1), ("wall", 0)):
                row[kind] = {lib: statistics.median(t[k] for t in ts) for lib, ts in times.items()}
            rows.append(row)
    return rows


def child_memory(a, lib):
    """Peak RSS (MiB) of this process after importing `lib`, building the
    largest problem and calling it 20 times."""
    p = problem(a.steps, a.states, max(a.batches), True)
    run, _ = CASES[lib](p)
    for _ in range(20):
        run()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fmt_ms(s):
    return "-" if s is None else f"{s * 1e3:.2f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}"


def table(a, rows, memory):
    lines = []
    for kind, words in (("cpu", "CPU ms per call (process time: the work, not the machine's "
                                "queue)"), ("wall", "wall ms per call")):
        lines += [f"DiscreteHMM log_prob + gradient, T = {a.steps}, K = {a.states}, Normal "
                  f"observations, 1 thread: median {words}; ratios = other / csvi", "",
                  "| transitions | batch | csvi | floor C fwd | floor NumPy fwd | Pyro | NumPyro "
                  "| csvi / floor C | Pyro / csvi | NumPyro / csvi |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            r = row[kind]
            c = r["csvi"]
            lines.append(f"| {row['trans']} | {row['batch']} | {fmt_ms(c)} "
                         f"| {fmt_ms(r['floor_c'])} | {fmt_ms(r['floor_numpy'])} "
                         f"| {fmt_ms(r.get('pyro'))} | {fmt_ms(r.get('numpyro'))} "
                         f"| {ratio(c, r['floor_c'])} | {ratio(r.get('pyro'), c)} "
                         f"| {ratio(r.get('numpyro'), c)} |")
        lines.append("")
    lines += [f"Peak RSS (MiB, own process: import + per-step transitions, batch "
              f"{max(a.batches)}, 20 calls): " +
              ", ".join(f"{lib} {mib:.0f}" for lib, mib in memory.items())]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--states", type=int, default=32)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--child", choices=["time", "memory"], help=argparse.SUPPRESS)
    ap.add_argument("--libraries", default="csvi", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.batches = [int(b) for b in a.batches.split(",")]
    if a.child == "time":
        print(json.dumps(child_time(a, a.libraries.split(","))))
        return
    if a.child == "memory":
        print(json.dumps(child_memory(a, a.libraries)))
        return
    libraries = ["csvi"]
    for lib, modules in PEERS.items():
        if all(importlib.util.find_spec(m) is not None for m in modules):
            libraries.append(lib)
        else:
            print(f"note: {lib} is not installed; its column is left empty", file=sys.stderr)
    env = dict(os.environ)
    env.update({var: "1" for var in THREAD_VARS})
    common = [sys.executable, os.path.abspath(__file__), "--steps", str(a.steps), "--states",
              str(a.states), "--batches", ",".join(map(str, a.batches)), "--repeats",
              str(a.repeats)]

    def child(kind, libs):
        proc = subprocess.run(common + ["--child", kind, "--libraries", libs], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr.strip() or f"hmm_forward.py: the {kind} run failed")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    rows = child("time", ",".join(libraries))
    memory = {lib: child("memory", lib) for lib in libraries}
    text = table(a, rows, memory)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
