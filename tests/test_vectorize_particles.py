"""vectorize_particles=True: all particles in one run inside an outermost
plate at dim -(max_plate_nesting + 1), for every ELBO; values against scipy
from the same draws, max_plate_nesting guessed or respected, compiled ==
eager."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import csvi
import csvi.distributions as dist
from csvi import handlers
from csvi.infer import SVI, RenyiELBO, Trace_ELBO, TraceGraph_ELBO
from csvi.optim import Adam
from compiled_check import assert_compiled_matches_eager

X = np.array([0.7, -0.2, 1.4, 0.1])


def model(x):
    loc = csvi.sample("loc", dist.Normal(0.0, 2.0))
    with csvi.plate("data", len(x)):
        csvi.sample("x", dist.Normal(loc, 1.0), obs=x)


def guide(x):
    csvi.sample("loc", dist.Normal(csvi.param("m", 0.3), 0.5))


def log_weights(traces):
    """Per-particle log p - log q from a vectorized trace, by scipy."""
    (model_tr, guide_tr), = traces
    loc = np.asarray(guide_tr.nodes["loc"].value).reshape(-1)
    assert loc.shape == (6,)
    return (stats.norm(0, 2).logpdf(loc) + stats.norm(loc[:, None], 1).logpdf(X).sum(-1)
            - stats.norm(0.3, 0.5).logpdf(loc))


@pytest.mark.parametrize("nesting", [float("inf"), 1, 3])
def test_trace_elbo_averages_the_vectorized_particles(fresh_store, nesting):
    elbo = Trace_ELBO(num_particles=6, vectorize_particles=True, max_plate_nesting=nesting)
    with handlers.seed(rng_seed=0):
        loss, _, traces = elbo.loss_tensors(model, guide, (X,), {})
    assert len(traces) == 1
    particle_dim = -(1 if nesting == float("inf") else nesting) - 1
    assert traces[0][1].nodes["loc"].value.shape[particle_dim] == 6
    assert float(loss) == pytest.approx(-log_weights(traces).mean(), rel=1e-12)
    assert elbo.max_plate_nesting == (1 if nesting == float("inf") else nesting)


def test_renyi_takes_the_log_mean_exp_over_the_particle_dim(fresh_store):
    elbo = RenyiELBO(alpha=0.5, num_particles=6, vectorize_particles=True)
    with handlers.seed(rng_seed=1):
        loss, _, traces = elbo.loss_tensors(model, guide, (X,), {})
    w = 0.5 * log_weights(traces)
    assert float(loss) == pytest.approx(-(logsumexp(w) - np.log(6)) / 0.5, rel=1e-12)


def test_tracegraph_vectorized_loss(fresh_store):
    from csvi.distributions.testing.fakes import NonreparameterizedNormal

    def score_guide(x):
        csvi.sample("loc", NonreparameterizedNormal(csvi.param("m", 0.3), 0.5))

    elbo = TraceGraph_ELBO(num_particles=6, vectorize_particles=True)
    with handlers.seed(rng_seed=2):
        loss, _, traces = elbo.loss_tensors(model, score_guide, (X,), {})
    assert float(loss) == pytest.approx(-log_weights(traces).mean(), rel=1e-12)


def test_a_model_plate_on_the_particle_dim_is_an_error(fresh_store):
    def deep_model(x):
        loc = csvi.sample("loc", dist.Normal(0.0, 2.0))
        with csvi.plate("data", len(x), dim=-2):
            csvi.sample("x", dist.Normal(loc, 1.0), obs=x[:, None])

    svi = SVI(deep_model, guide, Adam({"lr": 0.1}),
              Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1))
    with pytest.raises(ValueError, match="data|num_particles_vectorized"):
        svi.step(X)


def test_bad_max_plate_nesting_and_unknown_arguments_are_refused():
    with pytest.raises(ValueError, match="max_plate_nesting"):
        Trace_ELBO(max_plate_nesting=-1)
    with pytest.raises(TypeError):
        Trace_ELBO(strict_enumeration_warning=False)


def test_enumerated_guide_sites_warn(fresh_store):
    def enum_guide(x):
        csvi.sample("loc", dist.Normal(0.0, 1.0), infer={"enumerate": "parallel"})

    with pytest.warns(RuntimeWarning, match="TraceEnum_ELBO"):
        Trace_ELBO().loss(model, enum_guide, X)


def test_compiled_equals_eager(fresh_store):
    assert_compiled_matches_eager(model, lambda: guide, lambda: Adam({"lr": 0.05}),
                                  lambda: Trace_ELBO(num_particles=4, vectorize_particles=True),
                                  (X,))
