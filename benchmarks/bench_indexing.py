"""Micro-benchmark: the indexing of Pyro's examples/hmm.py with enumerated
values, forward + sum + backward, csvi against PyTorch (and NumPy's forward
fancy indexing alone, as a floor).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_indexing.py

Cases (hidden dim 16 enumerated at dim -3, a batch of 20 sequences at dim -2,
88 tones at dim -1):
  probs_y[x, y, tones]         model 2: enum x, observed y, plate indices
  Vindex(probs_y)[w, x, tones] model 4: two enumerated dims
  probs_x[x]                   every model: one index, whole rows
The libraries take turns within each repeat; prints the median time per call
and csvi's ratio to torch.
"""
import statistics
import timeit

import numpy as np

import csvi
from csvi.ops.indexing import Vindex

try:
    import torch
    from pyro.ops.indexing import Vindex as PyroVindex
except ImportError:
    torch = None

HIDDEN, BATCH, TONES = 16, 20, 88
REPEATS, NUMBER = 15, 200


def arrays(rng):
    return {
        "probs_y2": rng.random((HIDDEN, 2, TONES)),
        "probs_y3": rng.random((HIDDEN, HIDDEN, TONES)),
        "probs_x": rng.random((HIDDEN, HIDDEN)),
        "x": np.arange(HIDDEN).reshape(HIDDEN, 1, 1),
        "w": np.arange(HIDDEN).reshape(HIDDEN, 1, 1, 1),
        "y": rng.integers(0, 2, (BATCH, TONES)),
        "tones": np.arange(TONES),
    }


def csvi_cases(a):
    p2 = csvi.tensor(a["probs_y2"], requires_grad=True)
    p3 = csvi.tensor(a["probs_y3"], requires_grad=True)
    px = csvi.tensor(a["probs_x"], requires_grad=True)
    x, w, y = (csvi.tensor(a[k]).long() for k in ("x", "w", "y"))
    tones = a["tones"]

    def run(p, fn):
        def go():
            p.grad = None
            fn().sum().backward()
        return go

    return {"probs_y[x, y, tones]": run(p2, lambda: p2[x, y, tones]),
            "Vindex(probs_y)[w, x, tones]": run(p3, lambda: Vindex(p3)[w, x, tones]),
            "probs_x[x]": run(px, lambda: px[x])}


def torch_cases(a):
    p2 = torch.tensor(a["probs_y2"], requires_grad=True)
    p3 = torch.tensor(a["probs_y3"], requires_grad=True)
    px = torch.tensor(a["probs_x"], requires_grad=True)
    x, w, y, tones = (torch.tensor(a[k]) for k in ("x", "w", "y", "tones"))

    def run(p, fn):
        def go():
            p.grad = None
            fn().sum().backward()
        return go

    return {"probs_y[x, y, tones]": run(p2, lambda: p2[x, y, tones]),
            "Vindex(probs_y)[w, x, tones]": run(p3, lambda: PyroVindex(p3)[w, x, tones]),
            "probs_x[x]": run(px, lambda: px[x])}


def numpy_cases(a):
    return {"probs_y[x, y, tones]": lambda: a["probs_y2"][a["x"], a["y"], a["tones"]],
            "Vindex(probs_y)[w, x, tones]": lambda: a["probs_y3"][a["w"], a["x"], a["tones"]],
            "probs_x[x]": lambda: a["probs_x"][a["x"]]}


def main():
    a = arrays(np.random.default_rng(0))
    libraries = {"csvi": csvi_cases(a), "numpy (forward only)": numpy_cases(a)}
    if torch is not None:
        torch.set_num_threads(1)
        libraries["torch"] = torch_cases(a)
    times = {(lib, case): [] for lib, cases in libraries.items() for case in cases}
    for _ in range(REPEATS):  # interleaved: a slow spell of the machine hits every library
        for lib, cases in libraries.items():
            for case, fn in cases.items():
                times[lib, case].append(min(timeit.repeat(fn, number=NUMBER, repeat=1)) / NUMBER)
    for case in libraries["csvi"]:
        line = [f"{case:30s}"]
        for lib in libraries:
            line.append(f"{lib} {statistics.median(times[lib, case]) * 1e6:8.1f} us")
        if "torch" in libraries:
            ratio = statistics.median(times["torch", case]) / statistics.median(times["csvi", case])
            line.append(f"torch/csvi {ratio:.2f}x")
        print("  ".join(line))


if __name__ == "__main__":
    main()
