"""The benchmark models in csvi (same definitions as models_pyro / models_numpyro)."""
import numpy as np

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.infer.autoguide import AutoMultivariateNormal, AutoNormal
from csvi.optim import Adam

import data


def coin_loop(obs):
    f = csvi.sample("latent_fairness", dist.Beta(10.0, 10.0))
    for i in range(len(obs)):
        csvi.sample(f"obs_{i}", dist.Bernoulli(f), obs=obs[i])


def coin_plate(obs):
    f = csvi.sample("latent_fairness", dist.Beta(10.0, 10.0))
    with csvi.plate("data", len(obs)):
        csvi.sample("obs", dist.Bernoulli(f), obs=obs)


def coin_guide(obs):
    a = csvi.param("alpha_q", 15.0, constraint=constraints.positive)
    b = csvi.param("beta_q", 15.0, constraint=constraints.positive)
    csvi.sample("latent_fairness", dist.Beta(a, b))


def logreg_model(x, y, subsample_size=None):
    d = x.shape[1]
    w = csvi.sample("w", dist.Normal(np.zeros(d), 1.0).to_event(1))
    b = csvi.sample("b", dist.Normal(0.0, 1.0))
    with csvi.plate("data", x.shape[0], subsample_size=subsample_size) as idx:
        xb = x if subsample_size is None else x[idx]
        yb = y if subsample_size is None else y[idx]
        logits = xb @ w + b
        csvi.sample("y", dist.Bernoulli(logits=logits), obs=yb)


def logreg_guide(x, y, subsample_size=None):
    d = x.shape[1]
    w_loc = csvi.param("w_loc", np.zeros(d))
    w_scale = csvi.param("w_scale", np.full(d, 0.1), constraint=constraints.positive)
    b_loc = csvi.param("b_loc", 0.0)
    b_scale = csvi.param("b_scale", 0.1, constraint=constraints.positive)
    csvi.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
    csvi.sample("b", dist.Normal(b_loc, b_scale))


def eight_schools(y, sigma):
    mu = csvi.sample("mu", dist.Normal(0.0, 5.0))
    tau = csvi.sample("tau", dist.HalfCauchy(5.0))
    with csvi.plate("schools", len(y)):
        theta = csvi.sample("theta", dist.Normal(mu, tau))
        csvi.sample("obs", dist.Normal(theta, sigma), obs=y)


def eight_schools_guide(y, sigma):
    j = len(y)
    mu_loc = csvi.param("mu_loc", 0.0)
    mu_scale = csvi.param("mu_scale", 1.0, constraint=constraints.positive)
    tau_loc = csvi.param("tau_loc", 0.0)
    tau_scale = csvi.param("tau_scale", 1.0, constraint=constraints.positive)
    theta_loc = csvi.param("theta_loc", np.zeros(j))
    theta_scale = csvi.param("theta_scale", np.ones(j), constraint=constraints.positive)
    csvi.sample("mu", dist.Normal(mu_loc, mu_scale))
    csvi.sample("tau", dist.LogNormal(tau_loc, tau_scale))
    with csvi.plate("schools", j):
        csvi.sample("theta", dist.Normal(theta_loc, theta_scale))


def hierarchical(y, group, groups):
    mu = csvi.sample("mu", dist.Normal(0.0, 5.0))
    sigma = csvi.sample("sigma", dist.HalfNormal(2.0))
    with csvi.plate("groups", groups):
        a = csvi.sample("a", dist.Normal(mu, sigma))
    with csvi.plate("data", len(y)):
        csvi.sample("y", dist.Normal(a[group], 1.0), obs=y)


def regression100(x, y):
    w = csvi.sample("w", dist.Normal(np.zeros(x.shape[1]), 1.0).to_event(1))
    with csvi.plate("data", x.shape[0]):
        csvi.sample("y", dist.Normal(x @ w, 1.0), obs=y)


def regression100_vectorizable(x, y):
    """regression100 with x @ w written to broadcast over sample dims of w
    (Predictive's vectorized pass)."""
    w = csvi.sample("w", dist.Normal(np.zeros(x.shape[1]), 1.0).to_event(1))
    with csvi.plate("data", x.shape[0]):
        csvi.sample("y", dist.Normal(csvi.sum(x * w[..., None, :], -1), 1.0), obs=y)


def regression100_batched(x, y):
    """regression100 with x @ w as a batched matrix-vector product, which
    broadcasts over sample dims of w without the (samples, N, D) product the
    elementwise form makes (Predictive's vectorized pass)."""
    w = csvi.sample("w", dist.Normal(np.zeros(x.shape[1]), 1.0).to_event(1))
    with csvi.plate("data", x.shape[0]):
        csvi.sample("y", dist.Normal((x @ w[..., None])[..., 0], 1.0), obs=y)


def build(name):
    """(svi, args, read) for one benchmark model; read() gives the params."""
    csvi.clear_param_store()
    csvi.set_rng_seed(0)
    particles = 1
    if name in ("coin_loop", "coin_plate"):
        model = coin_loop if name == "coin_loop" else coin_plate
        guide, args = coin_guide, (data.COIN,)
        optim = Adam({"lr": 0.0005, "betas": (0.90, 0.999)})
    elif name.startswith("logreg"):
        n = 1_000_000 if name == "logreg_subsample" else 10_000
        x, y, _, _ = data.logreg(n)
        x, y = csvi.as_tensor(x), csvi.as_tensor(y)  # no copy; indexable inside a compiled loop
        sub = 1000 if name == "logreg_subsample" else None
        particles = 10 if name == "logreg_particles10" else 1
        model, guide = logreg_model, logreg_guide
        args = (x, y, sub)  # particles never reach the model: X @ w as written
        optim = Adam({"lr": 0.01})
    elif name == "eight_schools":
        model, guide = eight_schools, eight_schools_guide
        args = (data.EIGHT_SCHOOLS_Y, data.EIGHT_SCHOOLS_SIGMA)
        optim = Adam({"lr": 0.01})
    elif name == "hier_autonormal":
        y, group = data.hierarchical()
        model, args = hierarchical, (y, group, 1000)
        guide, optim = AutoNormal(model), Adam({"lr": 0.01})
    elif name == "mvn_autoguide":
        model, args = regression100, data.correlated_regression()
        guide, optim = AutoMultivariateNormal(model), Adam({"lr": 0.01})
    else:
        raise ValueError(f"unknown model {name!r}")
    svi = SVI(model, guide, optim, Trace_ELBO(num_particles=particles))

    def read():
        store = csvi.get_param_store()
        return {k: np.asarray(store[k].numpy()) for k in store.keys()}

    return svi, args, read
