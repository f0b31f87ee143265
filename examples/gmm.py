"""Pyro's Gaussian mixture tutorial (tutorial/source/gmm.ipynb) with csvi:
MAP estimates of the global variables with AutoDelta while the assignments
are summed out by TraceEnum_ELBO, then the assignments inferred with
infer_discrete (MAP and posterior draws), then a full guide that enumerates
the assignments itself.  The code follows the tutorial's cells; only the
imports (and torch's tensor ops, as NumPy's) change.

    python examples/gmm.py [--steps 200] [--inits 100]
"""
import argparse

import numpy as np

import csvi as pyro
import csvi.distributions as dist
from csvi import handlers as poutine
from csvi.distributions import constraints
from csvi.infer import SVI, TraceEnum_ELBO, config_enumerate, infer_discrete
from csvi.infer.autoguide import AutoDelta
from csvi.optim import Adam

data = np.array([0.0, 1.0, 10.0, 11.0, 12.0])
K = 2  # Fixed number of components.


@config_enumerate
def model(data):
    # Global variables.
    weights = pyro.sample("weights", dist.Dirichlet(0.5 * np.ones(K)))
    scale = pyro.sample("scale", dist.LogNormal(0.0, 2.0))
    with pyro.plate("components", K):
        locs = pyro.sample("locs", dist.Normal(0.0, 10.0))

    with pyro.plate("data", len(data)):
        # Local variables.
        assignment = pyro.sample("assignment", dist.Categorical(weights))
        pyro.sample("obs", dist.Normal(locs[assignment], scale), obs=data)


def init_loc_fn(site):
    if site["name"] == "weights":
        # Initialize weights to uniform.
        return np.ones(K) / K
    if site["name"] == "scale":
        return np.sqrt(data.var(ddof=1) / 2)
    if site["name"] == "locs":
        return data[np.random.choice(len(data), K, replace=False)]
    raise ValueError(site["name"])


def initialize(seed, optim, elbo):
    pyro.set_rng_seed(seed)
    np.random.seed(seed)
    pyro.clear_param_store()
    global_guide = AutoDelta(poutine.block(model, expose=["weights", "locs", "scale"]),
                             init_loc_fn=init_loc_fn)
    svi = SVI(model, global_guide, optim, loss=elbo)
    return svi.loss(model, global_guide, data), global_guide, svi


def fit_map(steps=200, inits=100):
    """The tutorial's first part: the best of `inits` initializations, then
    `steps` SVI steps; returns (global_guide, losses)."""
    optim = Adam({"lr": 0.1, "betas": [0.8, 0.99]})
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    loss, seed = min((initialize(seed, optim, elbo)[0], seed) for seed in range(inits))
    _, global_guide, svi = initialize(seed, optim, elbo)
    losses = [svi.step(data) for _ in range(steps)]
    return global_guide, losses


def classifier(global_guide, data, temperature=0):
    guide_trace = poutine.trace(global_guide).get_trace(data)  # record the globals
    trained_model = poutine.replay(model, trace=guide_trace)  # replay the globals
    inferred_model = infer_discrete(trained_model, temperature=temperature,
                                    first_available_dim=-2)  # avoid conflict with data plate
    trace = poutine.trace(inferred_model).get_trace(data)
    return trace.nodes["assignment"]["value"]


def fit_full_guide(global_guide, steps=200):
    """The tutorial's second part: a guide that enumerates the assignments
    with learned probabilities, the globals kept at their MAP values."""
    @config_enumerate
    def full_guide(data):
        # Global variables.
        with poutine.block(hide_types=["param"]):  # Keep our learned values of global parameters.
            global_guide(data)

        # Local variables.
        with pyro.plate("data", len(data)):
            assignment_probs = pyro.param("assignment_probs", np.ones((len(data), K)) / K,
                                          constraint=constraints.simplex)
            pyro.sample("assignment", dist.Categorical(assignment_probs))

    optim = Adam({"lr": 0.2, "betas": [0.8, 0.99]})
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    svi = SVI(model, full_guide, optim, loss=elbo)
    losses = [svi.step(data) for _ in range(steps)]
    return np.asarray(pyro.param("assignment_probs")), losses


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--inits", type=int, default=100)
    args = parser.parse_args()
    global_guide, losses = fit_map(args.steps, args.inits)
    map_estimates = global_guide(data)
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    for name in ("weights", "locs", "scale"):
        print(f"{name} = {np.asarray(map_estimates[name]).round(3)}")
    print("MAP assignment:", np.asarray(classifier(global_guide, data)))
    print("a posterior draw:", np.asarray(classifier(global_guide, data, temperature=1)))
    assignment_probs, losses = fit_full_guide(global_guide, args.steps)
    print("assignment probabilities (component 0):", assignment_probs[:, 0].round(3))


if __name__ == "__main__":
    main()
