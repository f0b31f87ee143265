"""Conjugate models with exact posteriors, which the autoguide, Predictive
and example tests check against (import with `import conjugate`).

Each model comes with a function giving its exact posterior; for Gaussian
posteriors also the mean-field optimum a diagonal (mean-field) Normal guide
converges to: the exact means with sds 1/sqrt(diag(precision))."""
import numpy as np

import csvi
import csvi.distributions as dist

# Normal-Normal with known variance: z ~ N(M0, S0), x_i ~ N(z, SIGMA).
M0, S0, SIGMA = 1.0, 2.0, 1.5
NN_DATA = np.random.default_rng(10).normal(3.0, SIGMA, 12)


def normal_normal(x):
    z = csvi.sample("z", dist.Normal(M0, S0))
    with csvi.plate("data", len(x)):
        csvi.sample("x", dist.Normal(z, SIGMA), obs=x)


def normal_normal_posterior(x):
    """(mean, sd) of z."""
    prec = 1.0 / S0 ** 2 + len(x) / SIGMA ** 2
    return (M0 / S0 ** 2 + np.sum(x) / SIGMA ** 2) / prec, prec ** -0.5


# Bayesian linear regression with a correlated design: w ~ N(0, TAU^2 I),
# y ~ N(X w, NOISE).
TAU, NOISE = 2.0, 0.5
_rng = np.random.default_rng(11)
REG_X = _rng.multivariate_normal(np.zeros(3), [[1, .8, .5], [.8, 1, .6], [.5, .6, 1]], 30)
REG_Y = REG_X @ np.array([1.0, -1.0, 0.5]) + NOISE * _rng.standard_normal(30)


def regression(X, y):
    w = csvi.sample("w", dist.Normal(np.zeros(X.shape[1]), TAU).to_event(1))
    with csvi.plate("data", X.shape[0]):
        return csvi.sample("y", dist.Normal(csvi.sum(X * w, -1), NOISE), obs=y)


def regression_posterior(X, y):
    """(mean, precision) of w."""
    prec = X.T @ X / NOISE ** 2 + np.eye(X.shape[1]) / TAU ** 2
    return np.linalg.solve(prec, X.T @ y / NOISE ** 2), prec


# Gamma-Poisson: rate ~ Gamma(A, B), counts_i ~ Poisson(rate).
A, B = 3.0, 2.0
COUNTS = np.array([2.0, 4.0, 1.0, 3.0, 5.0, 2.0, 3.0, 4.0])


def gamma_poisson(counts):
    rate = csvi.sample("rate", dist.Gamma(A, B))
    with csvi.plate("data", len(counts)):
        csvi.sample("counts", dist.Poisson(rate), obs=counts)


def gamma_poisson_posterior(counts):
    """(shape, rate) of the Gamma posterior of `rate`."""
    return A + np.sum(counts), B + len(counts)


def lognormal_optimum(alpha, beta):
    """(loc, scale) of the LogNormal q closest (KL(q || p)) to Gamma(alpha,
    beta): setting the derivatives of E_q[alpha u - beta e^u] + log scale
    (u = log rate) to zero gives scale^2 = 1/alpha and
    loc = log(alpha/beta) - 1/(2 alpha), so E_q[rate] = alpha/beta exactly."""
    return np.log(alpha / beta) - 0.5 / alpha, alpha ** -0.5


# A hierarchical Gaussian with local latents: mu ~ N(0, 3), z_i ~ N(mu, 1),
# x_i ~ N(z_i, 0.5), optionally subsampled.
H_DATA = np.random.default_rng(12).normal(1.0, 1.5, 8)


def hierarchical(x, subsample_size=None):
    mu = csvi.sample("mu", dist.Normal(0.0, 3.0))
    with csvi.plate("data", len(x), subsample_size=subsample_size) as idx:
        z = csvi.sample("z", dist.Normal(mu, 1.0))
        csvi.sample("x", dist.Normal(z, 0.5), obs=csvi.as_tensor(x)[idx])


def hierarchical_posterior(x):
    """(mean, precision) of (mu, z_1, ..., z_n)."""
    n = len(x)
    prec = np.zeros((n + 1, n + 1))
    prec[0, 0] = 1.0 / 9.0 + n
    prec[0, 1:] = prec[1:, 0] = -1.0
    prec[1:, 1:] = np.eye(n) * (1.0 + 4.0)
    rhs = np.concatenate([[0.0], 4.0 * x])
    return np.linalg.solve(prec, rhs), prec
