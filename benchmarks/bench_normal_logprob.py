"""Micro-benchmark: one Normal log_prob + sum + backward (gradients w.r.t. loc
and scale Tensors) on 1, 1e3 and 1e6 elements, against the same forward and
hand-written gradient in plain NumPy, and PyTorch when it is installed.

    python benchmarks/bench_normal_logprob.py

Prints the median time per call over repeated runs (timeit.repeat).
"""
import math
import timeit

import numpy as np

import csvi
import csvi.distributions as dist

try:
    import torch
except ImportError:
    torch = None

SIZES = (1, 1_000, 1_000_000)
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def csvi_case(n, rng):
    x = rng.normal(size=n)
    loc = csvi.tensor(rng.normal(size=n), requires_grad=True)
    scale = csvi.tensor(rng.uniform(0.5, 2.0, size=n), requires_grad=True)

    def run():
        loc.grad = scale.grad = None
        dist.Normal(loc, scale).log_prob(x).sum().backward()
        return loc.grad, scale.grad

    return run


def numpy_case(n, rng):
    x = rng.normal(size=n)
    loc = rng.normal(size=n)
    scale = rng.uniform(0.5, 2.0, size=n)

    def run():
        inv = 1.0 / scale
        z = (x - loc) * inv
        total = np.sum(-0.5 * z * z - np.log(scale) - LOG_SQRT_2PI)
        return total, z * inv, (z * z - 1.0) * inv

    return run


def torch_case(n, rng):
    x = torch.tensor(rng.normal(size=n), dtype=torch.float64)
    loc = torch.tensor(rng.normal(size=n), dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(rng.uniform(0.5, 2.0, size=n), dtype=torch.float64,
                         requires_grad=True)

    def run():
        loc.grad = scale.grad = None
        torch.distributions.Normal(loc, scale, validate_args=False).log_prob(x).sum().backward()
        return loc.grad, scale.grad

    return run


def median_seconds(fn, target=0.2, repeat=15):
    """Median time of one call, with calls batched so each timing takes ~target/repeat s."""
    fn()
    once = min(timeit.repeat(fn, number=1, repeat=3))
    number = max(1, int(target / repeat / max(once, 1e-9)))
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return float(np.median(times)) / number


def fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:9.2f} us"
    return f"{seconds * 1e3:9.2f} ms"


def main():
    rng = np.random.default_rng(0)
    cases = [("csvi", csvi_case), ("numpy (by hand)", numpy_case)]
    if torch is not None:
        cases.append((f"torch {torch.__version__}", torch_case))
    header = f"{'elements':>10} | " + " | ".join(f"{name:>16}" for name, _ in cases)
    print("Normal log_prob + sum + backward (d/dloc, d/dscale), median per call")
    print(header)
    print("-" * len(header))
    for n in SIZES:
        row = [fmt(median_seconds(make(n, rng))) for _, make in cases]
        print(f"{n:>10} | " + " | ".join(f"{r:>16}" for r in row))
    if torch is None:
        print("(PyTorch is not installed: its column is omitted)")


if __name__ == "__main__":
    main()
