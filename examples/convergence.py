"""A fit that stops itself and says whether to trust it.

Bayesian linear regression with an unknown noise scale, fitted by an
AutoNormal guide in a compiled run that stops by Stan's ADVI rule (the
relative ELBO change); then the run's summary, the PSIS k-hat of the fitted
guide, and the loss curve saved as a PNG (the README's figure).

    python examples/convergence.py [--steps 20000] [--out docs/convergence.png]
"""
import argparse

import numpy as np

import csvi
import csvi.distributions as dist
from csvi.infer import SVI, ConvergenceStop, Trace_ELBO, khat_threshold, psis_diagnostic
from csvi.infer.autoguide import AutoNormal
from csvi.optim import Adam

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 3))
Y = X @ np.array([1.5, -2.0, 0.5]) + 0.3 + RNG.normal(0.0, 0.8, 200)


def model(X, y):
    """`csvi.sum(X * w, -1)` rather than `X @ w`: with draws of w stacked on
    the left (the ELBO checks' particle plate) it still broadcasts."""
    w = csvi.sample("w", dist.Normal(np.zeros(X.shape[1]), 2.0).to_event(1))
    b = csvi.sample("b", dist.Normal(0.0, 2.0))
    sigma = csvi.sample("sigma", dist.HalfNormal(2.0))
    with csvi.plate("data", X.shape[0]):
        csvi.sample("y", dist.Normal(csvi.sum(X * w, -1) + b, sigma), obs=y)


def fit(num_steps=20000, seed=0, progress_bar=True):
    """Returns (guide, run result, k-hat)."""
    csvi.clear_param_store()
    csvi.set_rng_seed(seed)
    guide = AutoNormal(model)
    svi = SVI(model, guide, Adam({"lr": 0.02}), Trace_ELBO())
    stop = ConvergenceStop(tol=0.001, eval_every=200, num_particles=200)
    result = svi.run(num_steps, X, Y, compile=True, stop=stop, progress_bar=progress_bar)
    khat = psis_diagnostic(model, guide, X, Y, num_particles=2000)
    return guide, result, khat


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="save the loss plot to this PNG")
    args = parser.parse_args()
    _, result, khat = fit(args.steps, args.seed)
    print(result.summary())
    print(f"PSIS k-hat of the guide: {khat:.2f} (threshold for 2000 draws: "
          f"{khat_threshold(2000):.2f})")
    if args.out:
        import matplotlib
        matplotlib.use("Agg")
        ax = result.plot()
        ax.set_title(f"{result.num_steps} steps, {result.stop_reason.split(':')[0]}; "
                     f"k-hat {khat:.2f}", fontsize="medium")
        ax.figure.tight_layout()
        ax.figure.savefig(args.out, dpi=100)
        print(f"loss plot: {args.out}")


if __name__ == "__main__":
    main()
