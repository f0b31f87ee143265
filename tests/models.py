"""The small models and guides the tests share (import with `import models`;
tests/ is on sys.path under pytest).  Each pair takes the same arguments."""
import numpy as np
from scipy import stats

import csvi
import csvi.distributions as dist
from csvi import constraints

COIN = np.array([1.0] * 6 + [0.0] * 4)


def two_site(x=None):
    """z ~ Normal(0, 1), x ~ Normal(z, 2): the smallest model with a latent."""
    z = csvi.sample("z", dist.Normal(0.0, 1.0))
    return csvi.sample("x", dist.Normal(z, 2.0), obs=x)


def coin(data):
    """Pyro's SVI tutorial: a coin's fairness under a Beta(10, 10) prior."""
    f = csvi.sample("f", dist.Beta(10.0, 10.0))
    with csvi.plate("data", len(data)):
        csvi.sample("obs", dist.Bernoulli(f), obs=data)


def coin_loop(data):
    """The coin with one site per toss (a Python loop, no plate)."""
    f = csvi.sample("f", dist.Beta(10.0, 10.0))
    for i in range(len(data)):
        csvi.sample(f"obs_{i}", dist.Bernoulli(f), obs=data[i])


def coin_guide(data):
    a = csvi.param("a", 15.0, constraint=constraints.positive)
    b = csvi.param("b", 15.0, constraint=constraints.positive)
    csvi.sample("f", dist.Beta(a, b))


def logreg(x, y, subsample_size=None):
    """Bayesian logistic regression, Bernoulli(logits=x @ w + b); with
    `subsample_size`, x and y are csvi tensors indexed by the plate."""
    w = csvi.sample("w", dist.Normal(np.zeros(x.shape[1]), 1.0).to_event(1))
    b = csvi.sample("b", dist.Normal(0.0, 1.0))
    with csvi.plate("data", x.shape[0], subsample_size=subsample_size) as idx:
        xb = x if subsample_size is None else x[idx]
        yb = y if subsample_size is None else y[idx]
        csvi.sample("y", dist.Bernoulli(logits=xb @ w + b), obs=yb)


def logreg_guide(x, y, subsample_size=None):
    d = x.shape[1]
    w_loc = csvi.param("w_loc", np.zeros(d))
    w_scale = csvi.param("w_scale", np.full(d, 0.1), constraint=constraints.positive)
    csvi.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
    csvi.sample("b", dist.Normal(csvi.param("b_loc", 0.0),
                                 csvi.param("b_scale", 0.1, constraint=constraints.positive)))


def eight_schools(y, sigma):
    mu = csvi.sample("mu", dist.Normal(0.0, 5.0))
    tau = csvi.sample("tau", dist.HalfCauchy(5.0))
    with csvi.plate("schools", len(y)):
        theta = csvi.sample("theta", dist.Normal(mu, tau))
        csvi.sample("obs", dist.Normal(theta, sigma), obs=y)


def eight_schools_guide(y, sigma):
    csvi.sample("mu", dist.Normal(csvi.param("mu_loc", 0.0),
                                  csvi.param("mu_scale", 1.0, constraint=constraints.positive)))
    csvi.sample("tau", dist.LogNormal(csvi.param("tau_loc", 0.0),
                                      csvi.param("tau_scale", 1.0,
                                                 constraint=constraints.positive)))
    with csvi.plate("schools", len(y)):
        csvi.sample("theta", dist.Normal(
            csvi.param("theta_loc", np.zeros(len(y))),
            csvi.param("theta_scale", np.ones(len(y)), constraint=constraints.positive)))


def mixture(x):
    """A discrete latent: z ~ Bernoulli(0.3), x ~ Normal(3 z - 1, 1)."""
    z = csvi.sample("z", dist.Bernoulli(0.3))
    csvi.sample("x", dist.Normal(3.0 * z - 1.0, 1.0), obs=x)


def mixture_guide(x, q_init=0.5):
    q = csvi.param("q", q_init, constraint=constraints.unit_interval)
    csvi.sample("z", dist.Bernoulli(q))


def linear_gaussian(y):
    """A param matrix times a latent vector: with particles, the particle
    mat-vec path with gradients into both operands."""
    w = csvi.param("W", np.arange(6.0).reshape(3, 2) / 6.0)
    z = csvi.sample("z", dist.Normal(np.zeros(2), 1.0).to_event(1))
    csvi.sample("y", dist.Normal(w @ z, 0.5).to_event(1), obs=y)


def linear_gaussian_guide(y):
    loc = csvi.param("z_loc", np.zeros(2))
    scale = csvi.param("z_scale", np.ones(2), constraint=constraints.positive)
    csvi.sample("z", dist.Normal(loc, scale).to_event(1))


SIBLING_Y = np.array([0.3, 1.2, -0.4, 0.9, 1.5, -1.0])


def sibling_plates(y):
    """Two sibling plates on dim -1 of different sizes (a stick-breaking
    mixture's shape), each with a non-reparameterized latent."""
    with csvi.plate("sticks", 5):  # dim -1, size 5
        csvi.sample("b", dist.Bernoulli(0.4))
    with csvi.plate("data", len(y)):  # also dim -1, size 6
        z = csvi.sample("z", dist.Bernoulli(0.3))
        csvi.sample("obs", dist.Normal(z, 1.0), obs=y)


def sibling_plates_guide(y):
    qb = csvi.param("qb", np.linspace(0.2, 0.6, 5), constraint=constraints.unit_interval)
    qz = csvi.param("qz", np.linspace(0.1, 0.9, len(y)), constraint=constraints.unit_interval)
    with csvi.plate("sticks", 5):
        csvi.sample("b", dist.Bernoulli(qb))
    with csvi.plate("data", len(y)):
        csvi.sample("z", dist.Bernoulli(qz))


def sibling_plates_terms(guide_trace, y=SIBLING_Y):
    """Each site's log p and log q at the guide's draws (initial params), by scipy."""
    b = np.asarray(guide_trace.nodes["b"].value)
    z = np.asarray(guide_trace.nodes["z"].value)
    qb = np.linspace(0.2, 0.6, 5)
    qz = np.linspace(0.1, 0.9, len(y))
    return dict(b=b, qb=qb,
                lp_b=stats.bernoulli(0.4).logpmf(b), lq_b=stats.bernoulli(qb).logpmf(b),
                lp_z=stats.bernoulli(0.3).logpmf(z), lq_z=stats.bernoulli(qz).logpmf(z),
                lp_obs=stats.norm(z, 1.0).logpdf(y))
