"""Pyro's Jit* ELBO names: svi.step() runs a compiled step, equal to the
eager ELBO's from the same seed, re-traced when the arguments' shapes
change, and fed a new minibatch of the same shape without re-tracing."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi.distributions.testing.fakes import NonreparameterizedNormal
from csvi.infer import (SVI, JitTrace_ELBO, JitTraceGraph_ELBO, JitTraceMeanField_ELBO,
                        Trace_ELBO, TraceGraph_ELBO, TraceMeanField_ELBO)
from csvi.optim import Adam


def model(x):
    loc = csvi.sample("loc", dist.Normal(0.0, 3.0))
    with csvi.plate("data", len(x)):
        csvi.sample("x", dist.Normal(loc, 1.0), obs=x)


def guide(x):
    m = csvi.param("m", 0.0)
    s = csvi.param("s", 1.0, constraint=dist.constraints.positive)
    csvi.sample("loc", dist.Normal(m, s))


def score_guide(x):
    csvi.sample("loc", NonreparameterizedNormal(csvi.param("m", 0.0), 1.0))


def run(elbo, guide, batches):
    csvi.clear_param_store()
    csvi.set_rng_seed(11)
    svi = SVI(model, guide, Adam({"lr": 0.05}), elbo)
    losses = [svi.step(b) for b in batches]
    return np.array(losses), csvi.get_param_store()["m"].numpy(), svi


BATCHES = [np.random.default_rng(k).normal(1.0, 1.0, 20) for k in range(30)]


@pytest.mark.parametrize("jit, eager, g", [
    (JitTrace_ELBO, Trace_ELBO, guide),
    (JitTraceMeanField_ELBO, TraceMeanField_ELBO, guide),
    (JitTraceGraph_ELBO, TraceGraph_ELBO, score_guide),
])
def test_jit_steps_equal_eager_steps_with_a_new_minibatch_each_step(fresh_store, jit, eager, g):
    jit_losses, jit_m, svi = run(jit(), g, BATCHES)
    eager_losses, eager_m, _ = run(eager(), g, BATCHES)
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-12)
    np.testing.assert_allclose(jit_m, eager_m, rtol=1e-12)
    assert len(svi._compiled_steps._programs) == 1  # one trace served every batch


def indexed_model(x):
    """Data indexed by a plate's indices: integer data is converted to float64
    when indexed, so a compiled step must convert each new minibatch."""
    loc = csvi.sample("loc", dist.Normal(0.0, 3.0))
    with csvi.plate("data", len(x), subsample_size=len(x)) as idx:
        csvi.sample("x", dist.Normal(loc, 1.0), obs=x[idx])


@pytest.mark.parametrize("dtype", [np.int64, np.float32])
def test_jit_steps_read_each_new_minibatch_of_integer_or_float32_data(fresh_store, dtype):
    batches = [np.random.default_rng(k).integers(-3, 9, 12).astype(dtype) for k in range(6)]
    losses = {}
    for elbo in (JitTrace_ELBO(), Trace_ELBO()):
        csvi.clear_param_store()
        csvi.set_rng_seed(3)
        svi = SVI(indexed_model, guide, Adam({"lr": 0.05}), elbo)
        losses[type(elbo)] = [svi.step(b) for b in batches]
    np.testing.assert_allclose(losses[JitTrace_ELBO], losses[Trace_ELBO], rtol=1e-12)


def test_a_compiled_run_reads_integer_data_changed_in_place(fresh_store):
    data = np.arange(12)
    losses = []
    for compile in (True, False):
        csvi.clear_param_store()
        csvi.set_rng_seed(3)
        svi = SVI(indexed_model, guide, Adam({"lr": 0.0}), Trace_ELBO())
        step = svi.compile(data).step if compile else (lambda: svi.step(data))
        data[:] = np.arange(12)
        first = step()
        data[:] = 40 + np.arange(12)
        losses.append((first, step()))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-12)
    assert losses[0][1] > losses[0][0] + 100  # the new values were read


def test_a_new_shape_retraces(fresh_store):
    batches = [BATCHES[0], BATCHES[1][:7], BATCHES[2], BATCHES[3][:7]]
    jit_losses, jit_m, svi = run(JitTrace_ELBO(), guide, batches)
    eager_losses, eager_m, _ = run(Trace_ELBO(), guide, batches)
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-12)
    assert len(svi._compiled_steps._programs) == 2


def test_jit_step_refuses_python_control_flow_on_draws(fresh_store):
    def branching_model(x):
        loc = csvi.sample("loc", dist.Normal(0.0, 3.0))
        if float(loc) > 0:
            csvi.sample("x", dist.Normal(loc, 1.0), obs=x)

    svi = SVI(branching_model, guide, Adam({"lr": 0.05}), JitTrace_ELBO())
    with pytest.raises(Exception, match="compil|traced|freez"):
        svi.step(BATCHES[0])
