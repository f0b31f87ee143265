"""Every family's log_prob + backward in csvi, torch.distributions (through
Pyro) and NumPyro (jitted), at 1, 10^3 and 10^6 batch elements.

    python benchmarks/distributions.py [--families Normal,Laplace] [--sizes 1,1000,1000000]
                                       [--repeats R] [--budget S] [--threads 1,default]
                                       [--peers] [--out FILE]

One call = build the distribution from its parameters, log_prob of a value in
its support, sum, and the gradient w.r.t. every continuous parameter; that is
what an SVI step does at each site.  csvi records it on a `record_all` tape and
sweeps back as `SVI.step` does (`record_call`, `Tape.backward`, `grad_of`);
torch runs `log_prob(x).sum().backward()`; NumPyro calls
`jax.jit(jax.value_and_grad(...))` (parameters and value as arguments, so
nothing is folded into the compiled program; the compiling first call is not
timed) and waits with `block_until_ready`.  Argument validation is off in all
three.  Before timing, the three must agree on the total and the gradients.

Each thread setting runs in its own subprocess (`1`: OMP/BLAS/XLA/torch
limited to one thread, timed by the process's CPU time, which a busy machine
does not inflate; `default`: each library's own choice, timed by the wall
clock).  Within it the libraries take turns within each repeat (the machine
has slow spells) and the time is the median over repeats of the mean over a
batch of calls.  A family
csvi does not have yet gets a note instead of a row, so the script runs as
families land.  The table (Markdown) goes to stdout and to --out.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

SIZES = (1, 1_000, 1_000_000)
LIBRARIES = ("csvi", "torch", "numpyro")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                  "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
# One thread is timed by the process's CPU time, which other processes on a
# busy machine cannot inflate (every thread of the process counts, so
# nothing a library does off the calling thread is missed); default threads
# by wall time, since there the point is what the threads buy.
CLOCKS = {"1": time.process_time, "default": time.perf_counter}
# goals of issue 13 for a family composed of several ops: its time over the
# fused Normal's at the same size
GOALS = {1: 2.0, 1_000_000: 3.0}
K = 4  # categories / event size of the vector families
MIN_REPEATS = 5


# ---- the families ----------------------------------------------------------
# Each: parameters of batch n (`grad` names the differentiable ones; the rest
# stay constants), a value in the support, and one `build(D, p)` written
# against the API the three libraries share (D is csvi.distributions,
# pyro.distributions or numpyro.distributions).

def _pos(rng, n, lo=0.5, hi=2.0, shape=()):
    return rng.uniform(lo, hi, size=(n,) + shape)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _corr_cholesky(rng, n, dim):
    """Cholesky factors of random correlation matrices: lower triangles with a
    positive diagonal, each row scaled to unit norm."""
    a = np.tril(rng.normal(size=(n, dim, dim)))
    idx = np.arange(dim)
    a[:, idx, idx] = np.abs(a[:, idx, idx]) + 0.1
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


class Family:
    def __init__(self, name, params, value, build, grad=None, needs=None, skip=None):
        self.name = name
        self.params = params          # (rng, n) -> {name: array or number}
        self.value = value            # (rng, params) -> array
        self.build = build            # (D, params) -> distribution
        self.grad = grad              # differentiable parameter names (default: all arrays)
        self.needs = needs or (name,)  # csvi.distributions names it is made of
        self.skip = skip              # a reason never to run it here


def _plain(name, value, **params):
    """A family built as D.<name>(**params)."""
    return Family(name, lambda rng, n: {k: f(rng, n) for k, f in params.items()}, value,
                  lambda D, p: getattr(D, name)(**p, validate_args=False))


def _counts(name, value, params, grad):
    f = _plain(name, value, **params)
    f.grad = grad
    return f


FAMILIES = [
    _plain("Normal", lambda rng, p: rng.normal(size=p["loc"].shape),
           loc=lambda rng, n: rng.normal(size=n), scale=_pos),
    _plain("LogNormal", lambda rng, p: rng.lognormal(size=p["loc"].shape),
           loc=lambda rng, n: rng.normal(size=n), scale=_pos),
    _plain("HalfNormal", lambda rng, p: np.abs(rng.normal(size=p["scale"].shape)), scale=_pos),
    _plain("HalfCauchy", lambda rng, p: np.abs(rng.standard_cauchy(size=p["scale"].shape)),
           scale=_pos),
    _plain("Exponential", lambda rng, p: rng.exponential(size=p["rate"].shape), rate=_pos),
    _plain("Uniform", lambda rng, p: rng.uniform(-1.0, 1.0, size=p["low"].shape),
           low=lambda rng, n: _pos(rng, n, -2.0, -1.0), high=lambda rng, n: _pos(rng, n, 1.0, 2.0)),
    _plain("Gamma", lambda rng, p: rng.gamma(p["concentration"]) / p["rate"] + 1e-3,
           concentration=lambda rng, n: _pos(rng, n, 0.5, 3.0), rate=_pos),
    _plain("Beta", lambda rng, p: np.clip(rng.beta(p["concentration1"], p["concentration0"]),
                                          1e-6, 1 - 1e-6),
           concentration1=lambda rng, n: _pos(rng, n, 0.5, 3.0),
           concentration0=lambda rng, n: _pos(rng, n, 0.5, 3.0)),
    _plain("Bernoulli", lambda rng, p: (rng.uniform(size=p["probs"].shape) < p["probs"]) * 1.0,
           probs=lambda rng, n: _pos(rng, n, 0.1, 0.9)),
    _plain("Categorical", lambda rng, p: rng.integers(K, size=p["logits"].shape[:-1]),
           logits=lambda rng, n: rng.normal(size=(n, K))),
    _plain("Poisson", lambda rng, p: rng.poisson(p["rate"]) * 1.0,
           rate=lambda rng, n: _pos(rng, n, 0.5, 5.0)),
    Family("Delta", lambda rng, n: {"v": rng.normal(size=n), "log_density": rng.normal(size=n)},
           lambda rng, p: p["v"].copy(),
           lambda D, p: D.Delta(p["v"], log_density=p["log_density"], validate_args=False),
           grad=("log_density",)),
    _plain("Cauchy", lambda rng, p: rng.standard_cauchy(size=p["loc"].shape),
           loc=lambda rng, n: rng.normal(size=n), scale=_pos),
    _plain("StudentT", lambda rng, p: rng.standard_t(3.0, size=p["loc"].shape),
           df=lambda rng, n: _pos(rng, n, 1.0, 10.0), loc=lambda rng, n: rng.normal(size=n),
           scale=_pos),
    _plain("Laplace", lambda rng, p: rng.laplace(size=p["loc"].shape),
           loc=lambda rng, n: rng.normal(size=n), scale=_pos),
    _plain("Logistic", lambda rng, p: rng.logistic(size=p["loc"].shape),
           loc=lambda rng, n: rng.normal(size=n), scale=_pos),
    _plain("Gumbel", lambda rng, p: rng.gumbel(size=p["loc"].shape),
           loc=lambda rng, n: rng.normal(size=n), scale=_pos),
    _plain("InverseGamma", lambda rng, p: 1.0 / (rng.gamma(p["concentration"]) + 1e-3),
           concentration=lambda rng, n: _pos(rng, n, 1.0, 3.0), rate=_pos),
    _plain("Chi2", lambda rng, p: rng.chisquare(p["df"]) + 1e-3,
           df=lambda rng, n: _pos(rng, n, 1.0, 5.0)),
    _plain("Weibull", lambda rng, p: rng.weibull(1.5, size=p["scale"].shape) + 1e-3,
           scale=_pos, concentration=lambda rng, n: _pos(rng, n, 0.5, 3.0)),
    _plain("Pareto", lambda rng, p: p["scale"] * (1.0 + rng.pareto(p["alpha"])),
           scale=_pos, alpha=lambda rng, n: _pos(rng, n, 1.0, 3.0)),
    _plain("VonMises", lambda rng, p: rng.uniform(-np.pi, np.pi, size=p["loc"].shape),
           loc=lambda rng, n: rng.uniform(-np.pi, np.pi, size=n),
           concentration=lambda rng, n: _pos(rng, n, 0.5, 5.0)),
    _plain("Dirichlet",
           lambda rng, p: _softmax(np.log(rng.gamma(p["concentration"]) + 1e-6)),
           concentration=lambda rng, n: _pos(rng, n, 0.5, 3.0, (K,))),
    Family("MultivariateNormal", None, None, None,
           skip="dims 10/100/500 in benchmarks/mvn.py"),
    Family("LowRankMultivariateNormal",
           lambda rng, n: {"loc": rng.normal(size=(n, K)),
                           "cov_factor": 0.5 * rng.normal(size=(n, K, 2)),
                           "cov_diag": _pos(rng, n, shape=(K,))},
           lambda rng, p: rng.normal(size=p["loc"].shape),
           lambda D, p: D.LowRankMultivariateNormal(p["loc"], p["cov_factor"], p["cov_diag"],
                                                    validate_args=False)),
    Family("LKJCholesky", lambda rng, n: {"concentration": _pos(rng, n, 0.5, 3.0)},
           lambda rng, p: _corr_cholesky(rng, p["concentration"].shape[0], 3),
           lambda D, p: D.LKJCholesky(3, p["concentration"], validate_args=False)),
    _counts("Binomial", lambda rng, p: rng.binomial(10, p["probs"]) * 1.0,
            {"total_count": lambda rng, n: 10, "probs": lambda rng, n: _pos(rng, n, 0.1, 0.9)},
            ("probs",)),
    _counts("Multinomial", lambda rng, p: rng.multinomial(10, _softmax(p["logits"])) * 1.0,
            {"total_count": lambda rng, n: 10, "logits": lambda rng, n: rng.normal(size=(n, K))},
            ("logits",)),
    _counts("NegativeBinomial",
            lambda rng, p: rng.negative_binomial(p["total_count"], 1.0 - p["probs"]) * 1.0,
            {"total_count": lambda rng, n: _pos(rng, n, 1.0, 5.0),
             "probs": lambda rng, n: _pos(rng, n, 0.1, 0.9)},
            ("total_count", "probs")),
    _plain("GammaPoisson",
           lambda rng, p: rng.poisson(rng.gamma(p["concentration"]) / p["rate"]) * 1.0,
           concentration=lambda rng, n: _pos(rng, n, 0.5, 3.0), rate=_pos),
    _counts("BetaBinomial",
            lambda rng, p: rng.binomial(10, rng.beta(p["concentration1"],
                                                     p["concentration0"])) * 1.0,
            {"concentration1": lambda rng, n: _pos(rng, n, 0.5, 3.0),
             "concentration0": lambda rng, n: _pos(rng, n, 0.5, 3.0),
             "total_count": lambda rng, n: 10},
            ("concentration1", "concentration0")),
    _plain("Geometric", lambda rng, p: rng.geometric(p["probs"]) - 1.0,
           probs=lambda rng, n: _pos(rng, n, 0.1, 0.9)),
    _plain("OneHotCategorical",
           lambda rng, p: np.eye(K)[rng.integers(K, size=p["logits"].shape[:-1])],
           logits=lambda rng, n: rng.normal(size=(n, K))),
    Family("MixtureSameFamily",
           lambda rng, n: {"logits": rng.normal(size=(n, 3)), "loc": rng.normal(size=(n, 3)),
                           "scale": _pos(rng, n, shape=(3,))},
           lambda rng, p: rng.normal(size=p["loc"].shape[:-1]),
           lambda D, p: D.MixtureSameFamily(
               D.Categorical(logits=p["logits"], validate_args=False),
               D.Normal(p["loc"], p["scale"], validate_args=False), validate_args=False),
           needs=("MixtureSameFamily", "Categorical", "Normal")),
]
FAMILY = {f.name: f for f in FAMILIES}


# ---- one call per library ----------------------------------------------------
# Each maker returns (run, check): run() is the timed call; check() returns
# (total log-density, {param: gradient}) as NumPy for the agreement test.

def _split(family, p):
    grad = family.grad or tuple(k for k, v in p.items() if isinstance(v, np.ndarray))
    return {k: p[k] for k in grad}, {k: v for k, v in p.items() if k not in grad}


def csvi_case(family, p, value):
    import csvi
    import csvi.distributions as D
    from csvi import _core

    wrt, const = _split(family, p)
    leaves = {k: csvi.tensor(v, requires_grad=True) for k, v in wrt.items()}
    args = dict(const, **leaves)
    tape = _core.Tape(record_all=True)

    def total():
        return _core.sum_all([family.build(D, args).log_prob(value)])

    def run():
        tape.clear()
        lp = _core.record_call(tape, total)
        tape.backward(lp, False)
        return [tape.grad_of(t) for t in leaves.values()]

    def check():
        tape.clear()
        lp = _core.record_call(tape, total)
        num_ops = tape.num_ops - 1  # less the sum
        tape.backward(lp, False)
        grads = {k: tape.grad_of(t) for k, t in leaves.items()}
        grads = {k: None if g is None else g.copy() for k, g in grads.items()}
        out = float(_core.value_of(lp)), grads, num_ops
        tape.clear()
        return out

    return run, check


def torch_case(family, p, value):
    import torch
    import pyro.distributions as D

    def as_torch(v, grad=False):
        if not isinstance(v, np.ndarray):
            return v
        return torch.tensor(v, dtype=torch.float64 if v.dtype.kind == "f" else torch.int64,
                            requires_grad=grad)

    wrt, const = _split(family, p)
    leaves = {k: as_torch(v, True) for k, v in wrt.items()}
    args = dict({k: as_torch(v) for k, v in const.items()}, **leaves)
    x = as_torch(value)

    def run():
        for t in leaves.values():
            t.grad = None
        lp = family.build(D, args).log_prob(x).sum()
        lp.backward()
        return lp

    def check():
        lp = run()
        return float(lp.detach()), {k: None if t.grad is None else t.grad.numpy().copy()
                           for k, t in leaves.items()}, None

    return run, check


def numpyro_case(family, p, value):
    import jax
    import numpyro.distributions as D

    wrt, const = _split(family, p)

    def total(wrt, const, x):
        return family.build(D, dict(const, **wrt)).log_prob(x).sum()

    f = jax.jit(jax.value_and_grad(total))
    args = (jax.device_put(wrt), jax.device_put(const), jax.device_put(value))

    def run():
        return jax.block_until_ready(f(*args))

    def check():
        lp, grads = run()
        return float(lp), {k: np.asarray(g) for k, g in grads.items()}, None

    return run, check


MAKERS = {"csvi": csvi_case, "torch": torch_case, "numpyro": numpyro_case}


def disagreement(ref, other):
    """Why two (total, gradients) results differ, or None."""
    (lp0, g0, _), (lp1, g1, _) = ref, other
    if not np.isclose(lp0, lp1, rtol=1e-6, atol=1e-8):
        return f"log_prob sum {lp0:.10g} vs {lp1:.10g}"
    for k, a in g0.items():
        b = g1.get(k)
        if a is None or b is None:
            return f"no gradient for {k}"
        scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-7 * scale):
            return f"gradient of {k} differs"
    return None


def per_call(run, number, clock=time.perf_counter):
    start = clock()
    for _ in range(number):
        run()
    return (clock() - start) / number


def bench_cell(family, n, libraries, repeats, target, budget, seed, clock):
    """One (family, size): every library's median seconds per call by
    `clock` over `repeats` rounds (fewer when a round of all libraries
    takes longer than budget / repeats), the number of ops csvi records,
    and notes."""
    rng = np.random.default_rng(seed)
    p = family.params(rng, n)
    value = family.value(rng, p)
    runs, checks, notes = {}, {}, []
    for lib in libraries:
        try:
            run, check = MAKERS[lib](family, p, value)
            run()  # NumPyro compiles here; the others warm up
            checks[lib] = check()
            runs[lib] = run
        except ImportError as e:
            notes.append(f"{lib}: not installed ({e.name})")
        except Exception as e:  # a family a library lacks or rejects: a note, not a crash
            notes.append(f"{lib}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    for lib in checks:
        if lib != "csvi" and "csvi" in checks:
            why = disagreement(checks["csvi"], checks[lib])
            if why:
                notes.append(f"{lib} disagrees with csvi: {why}")
    if "csvi" in runs and family.name != "Normal":
        # csvi's fused Normal at the same size, timed in the same rounds: the
        # ×Normal ratio then compares like with like on a noisy machine
        normal = FAMILY["Normal"]
        q = normal.params(rng, n)
        runs["Normal"] = csvi_case(normal, q, normal.value(rng, q))[0]
        runs["Normal"]()
    once = {lib: max(per_call(run, 1, clock), 1e-7) for lib, run in runs.items()}
    number = {lib: max(1, int(target / once[lib])) for lib in runs}
    # slow cells (10^6 elements) get fewer repeats, never fewer than MIN_REPEATS
    round_s = sum(number[lib] * once[lib] for lib in runs)
    repeats = max(min(repeats, MIN_REPEATS), min(repeats, int(budget / max(round_s, 1e-9))))
    times = {lib: [] for lib in runs}
    order = list(runs)
    for r in range(repeats):
        for lib in order[r % len(order):] + order[:r % len(order)]:
            times[lib].append(per_call(runs[lib], number[lib], clock))
    ops = checks["csvi"][2] if "csvi" in checks else None
    return {lib: statistics.median(t) for lib, t in times.items()}, ops, repeats, notes


def worker(a):
    """Times every (family, size) in this process and prints one JSON line."""
    if a.threads == "1":
        try:
            import torch
            torch.set_num_threads(1)
        except ImportError:
            pass
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platform_name", "cpu")
    except ImportError:
        pass
    import csvi.distributions

    libraries = ["csvi"] + (["torch", "numpyro"] if a.peers else [])
    # first calls in a fresh process are slow (caches, lazy imports): not timed
    bench_cell(FAMILY["Normal"], 1, libraries, 1, a.target, 0.0, a.seed, CLOCKS[a.threads])
    rows = []
    for name in a.families:
        family = FAMILY[name]
        missing = [n for n in family.needs if not hasattr(csvi.distributions, n)]
        if family.skip or missing:
            rows.append({"family": name, "skip": family.skip or
                         f"csvi.distributions has no {', '.join(missing)} yet"})
            continue
        for n in a.sizes:
            start = time.perf_counter()
            times, ops, repeats, notes = bench_cell(family, n, libraries, a.repeats, a.target,
                                                    a.budget, a.seed, CLOCKS[a.threads])
            rows.append({"family": name, "size": n, "times": times, "ops": ops, "notes": notes})
            shown = ", ".join(f"{lib} {fmt_us(t)}" for lib, t in times.items())
            print(f"[threads {a.threads}] {name:26s} {n:>8}: {shown}  "
                  f"({repeats} repeats, {time.perf_counter() - start:.1f} s)", file=sys.stderr)
            for note in notes:
                print(f"    {note}", file=sys.stderr)
    print(json.dumps(rows))


# ---- the report ----------------------------------------------------------------

def fmt_us(s):
    if s is None:
        return "-"
    us = s * 1e6
    return f"{us:.1f}" if us < 1e4 else f"{us:,.0f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}"


def table(rows):
    """Markdown: one row per (family, size); ratios are csvi time / other time
    (below 1: csvi is faster); ×Normal is csvi's time over csvi's fused
    Normal at the same size (timed in the same rounds), and `goal` checks it
    for composed families."""
    head = ["family", "size", "csvi ops", "csvi µs", "torch µs", "numpyro µs", "csvi/torch",
            "csvi/numpyro", "×Normal", "goal"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes, skipped = {}, []
    for r in rows:
        if "skip" in r:
            skipped.append(f"- {r['family']}: {r['skip']}")
            continue
        t = r["times"]
        c = t.get("csvi")
        x_normal, goal = "-", "-"
        if c is not None and t.get("Normal"):
            x = c / t["Normal"]
            x_normal = f"{x:.2f}"
            if r["ops"] and r["ops"] > 1 and r["size"] in GOALS:
                goal = "ok" if x <= GOALS[r["size"]] else f"miss (≤{GOALS[r['size']]:g})"
        lines.append(
            f"| {r['family']} | {r['size']:,} | {r['ops'] if r['ops'] is not None else '-'} | "
            f"{fmt_us(c)} | {fmt_us(t.get('torch'))} | {fmt_us(t.get('numpyro'))} | "
            f"{ratio(c, t.get('torch'))} | {ratio(c, t.get('numpyro'))} | {x_normal} | {goal} |")
        for note in r["notes"]:
            notes.setdefault((r["family"], note), []).append(f"{r['size']:,}")
    return "\n".join(lines), skipped + [f"- {family} ({', '.join(sizes)}): {note}"
                               for (family, note), sizes in notes.items()]


def versions(peers):
    import csvi
    out = [f"csvi {csvi.__version__}", f"numpy {np.__version__}"]
    if peers:
        for mod in ("torch", "pyro", "jax", "numpyro"):
            try:
                out.append(f"{mod} {__import__(mod).__version__}")
            except ImportError:
                out.append(f"{mod} not installed")
    return ", ".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILY),
                        help="comma-separated subset of " + ", ".join(FAMILY))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="batch sizes (default 1,1000,1000000)")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--target", type=float, default=0.005,
                        help="seconds each timed batch of calls aims at")
    parser.add_argument("--budget", type=float, default=2.0,
                        help=f"seconds of timed calls per (family, size); slower cells get "
                             f"fewer repeats, at least {MIN_REPEATS}")
    parser.add_argument("--threads", default="1,default",
                        help="thread settings, each in its own process: 1, default or both")
    parser.add_argument("--peers", action="store_true", help="also time torch and NumPyro")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the Markdown report here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    a.families = [f for f in a.families.split(",") if f]
    unknown = [f for f in a.families if f not in FAMILY]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {list(FAMILY)}")
    a.sizes = [int(s) for s in a.sizes.split(",") if s]
    if a.worker:
        return worker(a)
    settings = [s for s in a.threads.split(",") if s]
    if any(s not in ("1", "default") for s in settings):
        parser.error("--threads takes 1 and/or default")

    report = [f"`python benchmarks/distributions.py {' '.join(argv or sys.argv[1:])}`: "
              f"{versions(a.peers)}; float64, {os.cpu_count()} cores ({platform.machine()}); "
              f"medians of {MIN_REPEATS} to {a.repeats} interleaved repeats (fewer for slow cells, "
              f"{a.budget:g} s of timed calls each); times in µs per call "
              "(build + log_prob + sum + gradient of every continuous parameter); "
              "ratios are csvi time / other time (below 1: csvi faster); "
              "×Normal is csvi's time over csvi's fused Normal at the same size, "
              f"goal ≤{GOALS[1]:g}× at 1 element and ≤{GOALS[1_000_000]:g}× at 10⁶ "
              "for families csvi composes of several ops."]
    for threads in settings:
        env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
        if threads == "1":
            env.update(ONE_THREAD_ENV)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", threads,
               "--families", ",".join(a.families), "--sizes", ",".join(map(str, a.sizes)),
               "--repeats", str(a.repeats), "--target", str(a.target), "--budget", str(a.budget),
               "--seed", str(a.seed)]
        if a.peers:
            cmd.append("--peers")
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"the worker for threads={threads} failed (exit {proc.returncode})")
        md, notes = table(json.loads(proc.stdout.strip().splitlines()[-1]))
        title = ("One thread (process CPU time)" if threads == "1"
                 else "Default threads (wall time)")
        report.append(f"### {title}\n\n{md}")
        if notes:
            report.append("\n".join(notes))
    text = "\n\n".join(report) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
