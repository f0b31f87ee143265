"""Bayesian linear regression with an AutoNormal guide and Predictive, on
csvi, checked against the exact Gaussian posterior.

Thirty points from y = X w + b + noise with correlated columns of X and a
known noise level, so the posterior of (w, b) is Gaussian and known in closed
form.  AutoNormal is a mean-field guide: it converges to the exact posterior
means with sds 1/sqrt(diag(precision)) -- smaller than the exact marginal sds
when the columns are correlated.  Predictive then draws the regression line at
new inputs through the fitted guide, in one vectorized pass.

    python examples/bayesian_regression.py [--steps 8000] [--eager] [--seed 0]
"""
import argparse

import numpy as np

import csvi
import csvi.distributions as dist
from csvi.infer import SVI, Predictive, Trace_ELBO
from csvi.infer.autoguide import AutoNormal
from csvi.optim import ClippedAdam

NOISE = 0.5              # known noise sd
W_SCALE, B_SCALE = 2.0, 5.0  # prior sds of the weights and the intercept


def make_data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    cov = [[1.0, 0.8, 0.5], [0.8, 1.0, 0.6], [0.5, 0.6, 1.0]]
    X = rng.multivariate_normal(np.zeros(3), cov, n)
    y = X @ np.array([1.0, -1.0, 0.5]) + 0.3 + NOISE * rng.standard_normal(n)
    return X, y


def model(X, y=None):
    w = csvi.sample("w", dist.Normal(np.zeros(X.shape[1]), W_SCALE).to_event(1))
    b = csvi.sample("b", dist.Normal(0.0, B_SCALE))
    with csvi.plate("data", X.shape[0]):
        # w[..., None, :] keeps any sample dims of w left of the data dim, so
        # Predictive can run the model for all samples at once
        mean = csvi.deterministic("mean", csvi.sum(X * w[..., None, :], -1) + b)
        return csvi.sample("obs", dist.Normal(mean, NOISE), obs=y)


def exact_posterior(X, y):
    """Mean and precision of (w, b): a Gaussian prior with a Gaussian likelihood."""
    A = np.column_stack([X, np.ones(len(X))])
    prior_prec = np.diag([W_SCALE ** -2] * X.shape[1] + [B_SCALE ** -2])
    prec = A.T @ A / NOISE ** 2 + prior_prec
    return np.linalg.solve(prec, A.T @ y / NOISE ** 2), prec


def fit(X, y, num_steps=8000, seed=0, compile=True, progress_bar=True):
    """AutoNormal fitted by SVI (4 particles, learning rate decaying 100-fold);
    returns the guide."""
    csvi.clear_param_store()
    csvi.set_rng_seed(seed)
    guide = AutoNormal(model)
    optim = ClippedAdam({"lr": 0.05, "lrd": 0.01 ** (1.0 / max(num_steps, 1))})
    svi = SVI(model, guide, optim, Trace_ELBO(num_particles=4))
    svi.run(num_steps, X, y, compile=compile, progress_bar=progress_bar)
    return guide


def guide_moments(guide):
    """Fitted (loc, scale) of (w, b): the sites are Normal on the reals (identity map)."""
    store = csvi.get_param_store()
    loc = np.concatenate([store["AutoNormal.locs.w"].numpy(), [store["AutoNormal.locs.b"].item()]])
    scale = np.concatenate([store["AutoNormal.scales.w"].numpy(),
                            [store["AutoNormal.scales.b"].item()]])
    return loc, scale


def predict(guide, X_new, num_samples=2000):
    """Predictive draws of the regression line (site "mean") and of new
    observations at X_new, all samples in one vectorized run."""
    predictive = Predictive(model, guide=guide, num_samples=num_samples, parallel=True,
                            return_sites=["mean", "obs"])
    return predictive(X_new)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--eager", action="store_true", help="run the steps eagerly")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X, y = make_data()
    guide = fit(X, y, args.steps, args.seed, compile=not args.eager)
    loc, scale = guide_moments(guide)
    mean, prec = exact_posterior(X, y)
    names = ["w[0]", "w[1]", "w[2]", "b"]
    print("site   AutoNormal loc +- scale    exact mean +- mean-field sd (exact sd)")
    for k, name in enumerate(names):
        print(f"{name:5s}  {loc[k]:8.4f} +- {scale[k]:.4f}      {mean[k]:8.4f} +- "
              f"{prec[k, k] ** -0.5:.4f} ({np.linalg.inv(prec)[k, k] ** 0.5:.4f})")

    X_new = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, -1.0, 0.0]])
    draws = predict(guide, X_new)
    A_new = np.column_stack([X_new, np.ones(len(X_new))])
    line = A_new @ mean
    exact_sd = np.sqrt(np.einsum("ij,jk,ik->i", A_new, np.linalg.inv(prec), A_new))
    mf_sd = np.sqrt(A_new ** 2 @ (1.0 / np.diag(prec)))
    print("\nthe line at new inputs: Predictive mean +- sd    exact mean +- mean-field sd "
          "(exact sd)")
    for i in range(len(X_new)):
        m, sd = draws["mean"][:, i].mean(), draws["mean"][:, i].std()
        print(f"x = {str(X_new[i]):14s}  {m:7.4f} +- {sd:.4f}     {line[i]:7.4f} +- "
              f"{mf_sd[i]:.4f} ({exact_sd[i]:.4f})")


if __name__ == "__main__":
    main()
