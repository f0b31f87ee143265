"""The benchmark models in Pyro (same definitions as models_csvi)."""
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from pyro.optim import Adam

import data

torch.set_default_dtype(torch.float64)


def coin_loop(obs):
    f = pyro.sample("latent_fairness", dist.Beta(torch.tensor(10.0), torch.tensor(10.0)))
    for i in range(len(obs)):
        pyro.sample(f"obs_{i}", dist.Bernoulli(f), obs=obs[i])


def coin_plate(obs):
    f = pyro.sample("latent_fairness", dist.Beta(torch.tensor(10.0), torch.tensor(10.0)))
    with pyro.plate("data", len(obs)):
        pyro.sample("obs", dist.Bernoulli(f), obs=obs)


def coin_guide(obs):
    a = pyro.param("alpha_q", torch.tensor(15.0), constraint=constraints.positive)
    b = pyro.param("beta_q", torch.tensor(15.0), constraint=constraints.positive)
    pyro.sample("latent_fairness", dist.Beta(a, b))


def logreg_model(x, y, subsample_size=None, elementwise=False):
    d = x.shape[1]
    w = pyro.sample("w", dist.Normal(torch.zeros(d), 1.0).to_event(1))
    b = pyro.sample("b", dist.Normal(torch.tensor(0.0), 1.0))
    with pyro.plate("data", x.shape[0], subsample_size=subsample_size) as idx:
        xb = x if subsample_size is None else x[idx]
        yb = y if subsample_size is None else y[idx]
        logits = (xb * w).sum(-1) + b if elementwise else xb @ w + b
        pyro.sample("y", dist.Bernoulli(logits=logits), obs=yb)


def logreg_guide(x, y, subsample_size=None, elementwise=False):
    d = x.shape[1]
    w_loc = pyro.param("w_loc", torch.zeros(d))
    w_scale = pyro.param("w_scale", torch.full((d,), 0.1), constraint=constraints.positive)
    b_loc = pyro.param("b_loc", torch.tensor(0.0))
    b_scale = pyro.param("b_scale", torch.tensor(0.1), constraint=constraints.positive)
    pyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
    pyro.sample("b", dist.Normal(b_loc, b_scale))


def eight_schools(y, sigma):
    mu = pyro.sample("mu", dist.Normal(torch.tensor(0.0), 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(torch.tensor(5.0)))
    with pyro.plate("schools", len(y)):
        theta = pyro.sample("theta", dist.Normal(mu, tau))
        pyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def eight_schools_guide(y, sigma):
    j = len(y)
    mu_loc = pyro.param("mu_loc", torch.tensor(0.0))
    mu_scale = pyro.param("mu_scale", torch.tensor(1.0), constraint=constraints.positive)
    tau_loc = pyro.param("tau_loc", torch.tensor(0.0))
    tau_scale = pyro.param("tau_scale", torch.tensor(1.0), constraint=constraints.positive)
    theta_loc = pyro.param("theta_loc", torch.zeros(j))
    theta_scale = pyro.param("theta_scale", torch.ones(j), constraint=constraints.positive)
    pyro.sample("mu", dist.Normal(mu_loc, mu_scale))
    pyro.sample("tau", dist.LogNormal(tau_loc, tau_scale))
    with pyro.plate("schools", j):
        pyro.sample("theta", dist.Normal(theta_loc, theta_scale))


def hierarchical(y, group, groups):
    mu = pyro.sample("mu", dist.Normal(torch.tensor(0.0), 5.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(torch.tensor(2.0)))
    with pyro.plate("groups", groups):
        a = pyro.sample("a", dist.Normal(mu, sigma))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(a[group], 1.0), obs=y)


def regression100(x, y):
    w = pyro.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Normal(x @ w, 1.0), obs=y)



def regression100_vectorizable(x, y):
    """regression100 with x @ w written to broadcast over sample dims of w
    (Predictive's vectorized pass)."""
    w = pyro.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Normal((x * w.unsqueeze(-2)).sum(-1), 1.0), obs=y)


def regression100_batched(x, y):
    """regression100 with x @ w as a batched matrix-vector product, which
    broadcasts over sample dims of w without the (samples, N, D) product the
    elementwise form makes (Predictive's vectorized pass)."""
    w = pyro.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Normal((x @ w.unsqueeze(-1)).squeeze(-1), 1.0), obs=y)


def build(name):
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    loss = Trace_ELBO()
    if name in ("coin_loop", "coin_plate"):
        model = coin_loop if name == "coin_loop" else coin_plate
        guide, args = coin_guide, (torch.tensor(data.COIN),)
        optim = Adam({"lr": 0.0005, "betas": (0.90, 0.999)})
    elif name.startswith("logreg"):
        n = 1_000_000 if name == "logreg_subsample" else 10_000
        x, y, _, _ = data.logreg(n)
        sub = 1000 if name == "logreg_subsample" else None
        particles = name == "logreg_particles10"
        if particles:
            loss = Trace_ELBO(num_particles=10, vectorize_particles=True, max_plate_nesting=1)
        model, guide = logreg_model, logreg_guide
        # vectorized particles add a batch dim at -2, so X @ w must become (X * w).sum(-1)
        args = (torch.tensor(x), torch.tensor(y), sub, particles)
        optim = Adam({"lr": 0.01})
    elif name == "eight_schools":
        model, guide = eight_schools, eight_schools_guide
        args = (torch.tensor(data.EIGHT_SCHOOLS_Y), torch.tensor(data.EIGHT_SCHOOLS_SIGMA))
        optim = Adam({"lr": 0.01})
    elif name == "hier_autonormal":
        y, group = data.hierarchical()
        model, args = hierarchical, (torch.tensor(y), torch.tensor(group), 1000)
        guide, optim = AutoNormal(model), Adam({"lr": 0.01})
    elif name == "mvn_autoguide":
        x, y = data.correlated_regression()
        model, args = regression100, (torch.tensor(x), torch.tensor(y))
        guide, optim = AutoMultivariateNormal(model), Adam({"lr": 0.01})
    else:
        raise ValueError(f"unknown model {name!r}")
    svi = SVI(model, guide, optim, loss)

    def read():
        store = pyro.get_param_store()
        return {k: store[k].detach().numpy().copy() for k in store.keys()}

    return svi, args, read
