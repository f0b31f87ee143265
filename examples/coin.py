"""The coin example from Pyro's "SVI Part I" tutorial, on csvi.

Ten flips, six heads; a Beta(10, 10) prior on the coin's fairness and a Beta
guide.  The exact posterior is Beta(16, 14): mean 0.5333, std 0.0896.

    python examples/coin.py [--steps 2000] [--plate]
"""
import argparse
import math

import numpy as np

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam

DATA = [1.0] * 6 + [0.0] * 4


def model(data):
    alpha0, beta0 = 10.0, 10.0
    f = csvi.sample("latent_fairness", dist.Beta(alpha0, beta0))
    for i in range(len(data)):
        csvi.sample(f"obs_{i}", dist.Bernoulli(f), obs=data[i])


def model_plate(data):
    f = csvi.sample("latent_fairness", dist.Beta(10.0, 10.0))
    with csvi.plate("data", len(data)):
        csvi.sample("obs", dist.Bernoulli(f), obs=np.asarray(data))


def guide(data):
    alpha_q = csvi.param("alpha_q", 15.0, constraint=constraints.positive)
    beta_q = csvi.param("beta_q", 15.0, constraint=constraints.positive)
    csvi.sample("latent_fairness", dist.Beta(alpha_q, beta_q))


def fit(num_steps=2000, plate=False, seed=0, progress_bar=True):
    """Runs the tutorial's SVI; returns (posterior mean, posterior std, losses)."""
    csvi.clear_param_store()
    csvi.set_rng_seed(seed)
    optimizer = Adam({"lr": 0.0005, "betas": (0.90, 0.999)})
    svi = SVI(model_plate if plate else model, guide, optimizer, loss=Trace_ELBO())
    losses = svi.run(num_steps, DATA, progress_bar=progress_bar).losses
    a = csvi.param("alpha_q").item()
    b = csvi.param("beta_q").item()
    mean = a / (a + b)
    std = mean * math.sqrt(b / (a * (1.0 + a + b)))
    return mean, std, losses


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--plate", action="store_true", help="observations in one plate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    mean, std, _ = fit(args.steps, args.plate, args.seed)
    print(f"based on the data and our prior belief, the fairness of the coin is "
          f"{mean:.3f} +- {std:.3f}")
    print("exact posterior Beta(16, 14):                                      0.533 +- 0.090")


if __name__ == "__main__":
    main()
