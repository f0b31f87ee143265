"""The benchmark data sets, made with NumPy only, so every library sees the
same numbers."""
import numpy as np

COIN = np.array([1.0] * 6 + [0.0] * 4)
COIN_POSTERIOR = (16.0, 14.0)  # exact Beta posterior of the coin models

EIGHT_SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
EIGHT_SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def logreg(n, d=20, seed=0):
    """Synthetic logistic-regression data: X (n, d), y (n,), true (w, b)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    b = 0.5
    x = rng.normal(size=(n, d)) / np.sqrt(d)
    p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    y = (rng.random(n) < p).astype(np.float64)
    return x, y, w, b


def beta_mean_std(a, b):
    mean = a / (a + b)
    return mean, float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0))))


def hierarchical(groups=1000, per_group=10, seed=0):
    """Group intercepts: y (groups * per_group,) and each row's group index."""
    rng = np.random.default_rng(seed)
    intercepts = rng.normal(1.0, 0.5, groups)
    group = np.repeat(np.arange(groups), per_group)
    return intercepts[group] + rng.normal(size=group.size), group


def correlated_regression(n=500, d=100, seed=0):
    """A linear regression whose 100 weights have a correlated posterior."""
    rng = np.random.default_rng(seed)
    mix = np.eye(d) + 0.5 * rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(n, d)) @ mix / np.sqrt(d)
    return x, x @ rng.normal(size=d) + rng.normal(size=n)
