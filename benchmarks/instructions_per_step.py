"""Instructions per csvi SVI step, counted by valgrind: a measure that a
loaded machine does not move, for comparing two builds when wall-clock and
CPU time swing by 1.5x from minute to minute.

Each (tree, model, mode) runs twice under `valgrind --tool=cachegrind` (no
cache simulation), with 20 warm-up steps and then `--steps` more or none;
the difference of the two totals divided by `--steps` is one step's
instructions, with imports, tracing and compiling cancelled out:

    python benchmarks/instructions_per_step.py --models hier_autonormal \\
        --modes eager,compiled --trees /work/main,.

`--trees`: source trees with a built csvi (each run with PYTHONPATH set to
it).  Instructions are not time -- a vector loop retires more per cycle than
the interpreter, and a cache miss costs no instructions -- so read them
beside a timing, for the Python-side and per-op costs they pin down."""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WARMUP = 20


def child(model, mode, steps):
    """The measured program: build, compile or not, take WARMUP + steps steps."""
    sys.path.insert(0, HERE)
    import models_csvi as models

    svi, args, _ = models.build(model)
    if mode == "compiled":
        svi.compile(*args).run(WARMUP + steps)
    else:
        for _ in range(WARMUP + steps):
            svi.step(*args)


def instructions(tree, model, mode, steps):
    """Total instructions of one child run under cachegrind."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), PYTHONHASHSEED="0",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
           "--cachegrind-out-file=/dev/null", os.path.realpath(sys.executable),
           os.path.abspath(__file__), "--child", model, mode, str(steps)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="hier_autonormal")
    parser.add_argument("--modes", default="eager,compiled")
    parser.add_argument("--trees", default=".")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "MODE", "STEPS"))
    a = parser.parse_args()
    if a.child:
        child(a.child[0], a.child[1], int(a.child[2]))
        return
    trees = a.trees.split(",")
    print("| model | mode | " + " | ".join(trees) + " |")
    print("|---|---|" + "---|" * len(trees))
    for model in a.models.split(","):
        for mode in a.modes.split(","):
            per_step = [(instructions(t, model, mode, a.steps) - instructions(t, model, mode, 0))
                        / a.steps for t in trees]
            cells = [f"{per_step[0]:,.0f}"] + [
                f"{n:,.0f} ({n / per_step[0]:.3f})" for n in per_step[1:]]
            print(f"| {model} | {mode} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
