"""The benchmark models in NumPyro (same definitions as models_csvi)."""
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.distributions import constraints  # noqa: E402
from numpyro.infer import SVI, Trace_ELBO  # noqa: E402
from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal  # noqa: E402
from numpyro.optim import Adam  # noqa: E402

import data  # noqa: E402


def coin_loop(obs):
    f = numpyro.sample("latent_fairness", dist.Beta(10.0, 10.0))
    for i in range(len(obs)):
        numpyro.sample(f"obs_{i}", dist.Bernoulli(f), obs=obs[i])


def coin_plate(obs):
    f = numpyro.sample("latent_fairness", dist.Beta(10.0, 10.0))
    with numpyro.plate("data", len(obs)):
        numpyro.sample("obs", dist.Bernoulli(f), obs=obs)


def coin_guide(obs):
    a = numpyro.param("alpha_q", 15.0, constraint=constraints.positive)
    b = numpyro.param("beta_q", 15.0, constraint=constraints.positive)
    numpyro.sample("latent_fairness", dist.Beta(a, b))


def logreg_model(x, y, subsample_size=None):
    d = x.shape[1]
    w = numpyro.sample("w", dist.Normal(jnp.zeros(d), 1.0).to_event(1))
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0], subsample_size=subsample_size) as idx:
        xb = x if subsample_size is None else x[idx]
        yb = y if subsample_size is None else y[idx]
        logits = xb @ w + b
        numpyro.sample("y", dist.Bernoulli(logits=logits), obs=yb)


def logreg_guide(x, y, subsample_size=None):
    d = x.shape[1]
    w_loc = numpyro.param("w_loc", jnp.zeros(d))
    w_scale = numpyro.param("w_scale", jnp.full(d, 0.1), constraint=constraints.positive)
    b_loc = numpyro.param("b_loc", 0.0)
    b_scale = numpyro.param("b_scale", 0.1, constraint=constraints.positive)
    numpyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
    numpyro.sample("b", dist.Normal(b_loc, b_scale))


def eight_schools(y, sigma):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("schools", len(y)):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def eight_schools_guide(y, sigma):
    j = len(y)
    mu_loc = numpyro.param("mu_loc", 0.0)
    mu_scale = numpyro.param("mu_scale", 1.0, constraint=constraints.positive)
    tau_loc = numpyro.param("tau_loc", 0.0)
    tau_scale = numpyro.param("tau_scale", 1.0, constraint=constraints.positive)
    theta_loc = numpyro.param("theta_loc", jnp.zeros(j))
    theta_scale = numpyro.param("theta_scale", jnp.ones(j), constraint=constraints.positive)
    numpyro.sample("mu", dist.Normal(mu_loc, mu_scale))
    numpyro.sample("tau", dist.LogNormal(tau_loc, tau_scale))
    with numpyro.plate("schools", j):
        numpyro.sample("theta", dist.Normal(theta_loc, theta_scale))


def hierarchical(y, group, groups):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    with numpyro.plate("groups", groups):
        a = numpyro.sample("a", dist.Normal(mu, sigma))
    with numpyro.plate("data", len(y)):
        numpyro.sample("y", dist.Normal(a[group], 1.0), obs=y)


def regression100(x, y):
    w = numpyro.sample("w", dist.Normal(jnp.zeros(x.shape[1]), 1.0).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(x @ w, 1.0), obs=y)



def regression100_vectorizable(x, y):
    """regression100 with x @ w written to broadcast over sample dims of w
    (Predictive's vectorized pass)."""
    w = numpyro.sample("w", dist.Normal(jnp.zeros(x.shape[1]), 1.0).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(jnp.sum(x * w[..., None, :], -1), 1.0), obs=y)


def regression100_batched(x, y):
    """regression100 with x @ w as a batched matrix-vector product, which
    broadcasts over sample dims of w without the (samples, N, D) product the
    elementwise form makes (Predictive's vectorized pass)."""
    w = numpyro.sample("w", dist.Normal(jnp.zeros(x.shape[1]), 1.0).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal((x @ w[..., None])[..., 0], 1.0), obs=y)


def build(name):
    """(svi, args); NumPyro keeps params in the SVI state, read via svi.get_params."""
    loss = Trace_ELBO()
    static = {}
    if name in ("coin_loop", "coin_plate"):
        model = coin_loop if name == "coin_loop" else coin_plate
        guide, args = coin_guide, (jnp.asarray(data.COIN),)
        optim = Adam(0.0005, b1=0.90, b2=0.999)
    elif name.startswith("logreg"):
        n = 1_000_000 if name == "logreg_subsample" else 10_000
        x, y, _, _ = data.logreg(n)
        sub = 1000 if name == "logreg_subsample" else None
        if name == "logreg_particles10":
            loss = Trace_ELBO(num_particles=10)
        model, guide = logreg_model, logreg_guide
        args = (jnp.asarray(x), jnp.asarray(y))
        static = {"subsample_size": sub}  # vmap hides particles: X @ w as written
        optim = Adam(0.01)
    elif name == "eight_schools":
        model, guide = eight_schools, eight_schools_guide
        args = (jnp.asarray(data.EIGHT_SCHOOLS_Y), jnp.asarray(data.EIGHT_SCHOOLS_SIGMA))
        optim = Adam(0.01)
    elif name == "hier_autonormal":
        y, group = data.hierarchical()
        model, args = hierarchical, (jnp.asarray(y), jnp.asarray(group))
        static = {"groups": 1000}
        guide, optim = AutoNormal(model), Adam(0.01)
    elif name == "mvn_autoguide":
        x, y = data.correlated_regression()
        model, args = regression100, (jnp.asarray(x), jnp.asarray(y))
        guide, optim = AutoMultivariateNormal(model), Adam(0.01)
    else:
        raise ValueError(f"unknown model {name!r}")
    # shape-deciding arguments must be static under jit
    return SVI(model, guide, optim, loss, **static), args
