"""csvi, Pyro and NumPyro side by side on the same models, in one run.

    python benchmarks/run.py [--models coin_loop,logreg] [--steps N] [--repeats R]
                             [--peers] [--out DIR] [--markdown FILE]

Each repeat of each (library, model, mode) runs in its own subprocess
(benchmarks/worker.py), the libraries taking turns within a repeat so that a
slow spell of a noisy machine does not land on one library only.
Peers (with --peers) are optional: a library that cannot be imported gets a
row saying so.  float64 and fixed seeds throughout.  Prints one table and
writes it as JSON and Markdown.
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from worker import MODES  # noqa: E402

DEFAULT_STEPS = {
    "coin_loop": 2000, "coin_plate": 2000, "logreg": 1000, "logreg_subsample": 1000,
    "logreg_particles10": 1000, "eight_schools": 2000, "hier_autonormal": 1000,
    "mvn_autoguide": 1000,
}
PEER_MODULES = {"pyro": ["torch", "pyro"], "numpyro": ["jax", "numpyro"]}


def installed(library):
    return all(importlib.util.find_spec(m) is not None for m in PEER_MODULES.get(library, []))


def run_one(library, model, mode, steps, repeats):
    cmd = [sys.executable, os.path.join(HERE, "worker.py"), library, model, mode,
           "--steps", str(steps), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"library": library, "model": model, "mode": mode, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def merge_repeats(runs):
    """One row from repeats run in separate processes: medians of the
    per-step time, compile, import and time to result; the first run's
    losses and accuracy; the largest peak RSS."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    row = dict(runs[0])
    row["per_step_s"] = [t for r in runs for t in r["per_step_s"]]
    row["per_step_median_s"] = statistics.median(row["per_step_s"])
    for key in ("compile_s", "import_s", "time_to_result_s"):
        row[key] = statistics.median(r[key] for r in runs)
    row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return row


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def table(rows):
    """Markdown table; a ratio is peer time / csvi time (how many times faster
    csvi is), per step and to result, for csvi's eager and compiled modes."""
    head = ["model", "library", "mode", "per step median [min–max]", "compile", "import",
            "time to result", "peak RSS", "final loss", "accuracy",
            "csvi eager speedup (step / result)", "csvi compiled speedup (step / result)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    csvi = {(r["model"], r["mode"]): r for r in rows
            if r["library"] == "csvi" and "error" not in r}

    def ratio(r, mode):
        c = csvi.get((r["model"], mode))
        if c is None or r["library"] == "csvi":
            return "-"
        return (f"{r['per_step_median_s'] / c['per_step_median_s']:.1f}x / "
                f"{r['time_to_result_s'] / c['time_to_result_s']:.1f}x")

    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['library']} | {r['mode']} | "
                         f"{r['error']} |" + " |" * (len(head) - 4))
            continue
        ps = r["per_step_s"]
        acc = "-"
        if r.get("accuracy"):
            a = r["accuracy"]
            acc = (f"mean {a['posterior_mean']:.4f} ({100 * a['mean_rel_err']:.1f}%), "
                   f"std {a['posterior_std']:.4f} ({100 * a['std_rel_err']:.1f}%)")
        lines.append(
            f"| {r['model']} | {r['library']} | {r['mode']} | "
            f"{fmt_time(r['per_step_median_s'])} [{fmt_time(min(ps))}–{fmt_time(max(ps))}] | "
            f"{fmt_time(r['compile_s'])} | {fmt_time(r['import_s'])} | "
            f"{fmt_time(r['time_to_result_s'])} | {r['peak_rss_mb']:.0f} MB | "
            f"{r['final_loss']:.4g} | {acc} | {ratio(r, 'eager')} | {ratio(r, 'compiled')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_STEPS),
                        help="comma-separated subset of " + ", ".join(DEFAULT_STEPS))
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run (default: each model's own)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peers", action="store_true", help="also run Pyro and NumPyro")
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="directory for results.json and results.md")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    a = parser.parse_args(argv)
    models = [m for m in a.models.split(",") if m]
    unknown = [m for m in models if m not in DEFAULT_STEPS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(DEFAULT_STEPS)}")
    libraries = ["csvi"] + (["pyro", "numpyro"] if a.peers else [])
    rows = []
    for model in models:
        steps = a.steps or DEFAULT_STEPS[model]
        cells = [(lib, mode) for lib in libraries for mode in MODES[lib]]
        runs = {cell: [] for cell in cells}
        for repeat in range(a.repeats):
            # one repeat of every library in turn: a slow spell of a noisy
            # machine then hits all of them, not one library's whole run
            for library, mode in cells:
                if not installed(library):
                    continue
                start = time.perf_counter()
                row = run_one(library, model, mode, steps, 1)
                runs[(library, mode)].append(row)
                status = row.get("error") or fmt_time(row["per_step_median_s"]) + "/step"
                print(f"{model:20s} {library:8s} {mode:8s} repeat {repeat + 1}: {status}  "
                      f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
        for library, mode in cells:
            if not installed(library):
                rows.append({"library": library, "model": model, "mode": mode,
                             "error": f"{library} is not installed"})
            else:
                rows.append(merge_repeats(runs[(library, mode)]))
    md = table(rows)
    print(md)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    header = (f"Medians over {a.repeats} repeats, each a fresh subprocess, the libraries taking "
              f"turns within a repeat; float64, on {os.cpu_count()} cores.\n\n")
    for path in [os.path.join(a.out, "results.md")] + ([a.markdown] if a.markdown else []):
        with open(path, "w") as f:
            f.write(header + md + "\n")
    return rows


if __name__ == "__main__":
    main()
