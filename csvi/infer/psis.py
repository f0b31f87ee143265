"""Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao and
Gabry, "Pareto smoothed importance sampling", JMLR 2024, arXiv 1507.02646).

The importance ratios p(x, z) / q(z) of a guide's draws have a right tail
that a generalized Pareto distribution fits; its shape k-hat says how heavy
the tail is, hence whether importance sampling (and, as Yao et al. 2018
argue, the guide itself) can be trusted.  Smoothing replaces the M largest
weights by the fitted distribution's quantiles.

Choices, as the paper and ArviZ (`psislw`) make them: M = ceil(min(0.2 S,
3 sqrt(S))) tail draws, the fit is Zhang and Stephens' (2009) empirical-Bayes
estimate with the paper's weakly informative prior shrinking k-hat towards
0.5 (10 pseudo-observations), and the thresholds are 0.5 / 0.7 and the
sample-size-aware min(1 - 1/log10(S), 0.7).  These are pure NumPy over one
vector of S numbers: nothing here is a hot loop.
"""
import math
import warnings

import numpy as np

__all__ = ["pareto_smooth", "fit_generalized_pareto", "khat_threshold", "tail_length"]


def tail_length(num_draws):
    """M: how many of the largest weights the Pareto fit uses."""
    return int(math.ceil(min(0.2 * num_draws, 3.0 * math.sqrt(num_draws))))


def khat_threshold(num_draws):
    """Above this k-hat, S draws are too few for a reliable importance-sampling
    estimate (Vehtari et al. 2024, sec. 3.2.4)."""
    if num_draws <= 10:
        return 0.0  # 1 - 1/log10(S) <= 0: no k-hat is small enough
    return min(1.0 - 1.0 / math.log10(num_draws), 0.7)


def fit_generalized_pareto(x):
    """(k, sigma) of a generalized Pareto distribution (location 0) fitted to
    the positive values `x` by Zhang and Stephens' posterior-mean estimate
    over a grid of theta = -k/sigma, then k shrunk towards 0.5 by a prior
    worth 10 observations (Vehtari et al. 2024, appendix C)."""
    x = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n = x.size
    if n < 2 or not np.all(np.isfinite(x)) or x[0] < 0:
        raise ValueError(f"fit_generalized_pareto: needs at least 2 finite nonnegative "
                         f"values, got {n} values (min {x.min() if n else None})")
    grid_size = 30 + int(math.sqrt(n))
    quartile = x[int(n / 4 + 0.5) - 1]
    # theta candidates spread between -1/x_max and 1/(3 * first quartile)
    theta = 1.0 / x[-1] + (1.0 - np.sqrt(grid_size / (np.arange(1, grid_size + 1) - 0.5))) \
        / (3.0 * quartile)
    k_of_theta = np.mean(np.log1p(-theta[:, None] * x[None, :]), axis=1)  # sigma = -k/theta
    profile_loglik = n * (np.log(-theta / k_of_theta) - k_of_theta - 1.0)
    weights = np.exp(profile_loglik - np.logaddexp.reduce(profile_loglik))  # posterior
    keep = weights >= 10.0 * np.finfo(np.float64).eps
    theta, weights = theta[keep], weights[keep] / weights[keep].sum()
    theta_hat = np.sum(theta * weights)
    k = np.mean(np.log1p(-theta_hat * x))
    sigma = -k / theta_hat
    prior_n = 10.0
    k = (n * k + prior_n * 0.5) / (n + prior_n)
    return float(k), float(sigma)


def _pareto_quantiles(p, k, sigma):
    """The generalized Pareto distribution's inverse cdf at p."""
    if k == 0.0:
        return -sigma * np.log1p(-p)
    return sigma * np.expm1(-k * np.log1p(-p)) / k


def pareto_smooth(log_weights):
    """(smoothed log weights normalized to log-sum-exp 0, k-hat) of a vector
    of S log importance weights.

    The M = tail_length(S) largest weights (those above the (M+1)-th largest)
    are replaced by the fitted Pareto distribution's quantiles at (i - 1/2)/M,
    in their order, and capped at the largest raw weight.  With 4 or fewer
    tail weights (or a failed fit) k-hat is inf and nothing is smoothed."""
    lw = np.array(log_weights, dtype=np.float64).ravel()
    num_draws = lw.size
    if num_draws < 2:
        raise ValueError(f"pareto_smooth: needs at least 2 log weights, got {num_draws}")
    if np.isnan(lw).any() or np.isposinf(lw).any():
        raise ValueError("pareto_smooth: the log weights contain NaN or +inf")
    lw -= lw.max()
    order = np.argsort(lw)
    cutoff = max(lw[order[-tail_length(num_draws) - 1]], math.log(np.finfo(np.float64).tiny))
    tail = np.flatnonzero(lw > cutoff)
    k = math.inf
    if tail.size <= 4:
        warnings.warn(f"pareto_smooth: only {tail.size} weights in the tail of {num_draws}; "
                      "k-hat is inf. Use more draws", RuntimeWarning, stacklevel=2)
    else:
        tail = tail[np.argsort(lw[tail])]
        k, sigma = fit_generalized_pareto(np.exp(lw[tail]) - math.exp(cutoff))
        if math.isfinite(k):
            probs = (np.arange(tail.size) + 0.5) / tail.size
            lw[tail] = np.log(_pareto_quantiles(probs, k, sigma) + math.exp(cutoff))
            np.minimum(lw, 0.0, out=lw)  # no smoothed weight above the largest raw one
    lw -= np.logaddexp.reduce(lw)
    return lw, k
