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


def assert_jit_steps_equal_eager(model, batches):
    losses = {}
    for elbo in (JitTrace_ELBO(), Trace_ELBO()):
        csvi.clear_param_store()
        csvi.set_rng_seed(3)
        svi = SVI(model, guide, Adam({"lr": 0.05}), elbo)
        losses[type(elbo)] = [svi.step(b) for b in batches]
    np.testing.assert_allclose(losses[JitTrace_ELBO], losses[Trace_ELBO], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.int64, np.float32])
def test_jit_steps_read_each_new_minibatch_of_integer_or_float32_data(fresh_store, dtype):
    batches = [np.random.default_rng(k).integers(-3, 9, 12).astype(dtype) for k in range(6)]
    assert_jit_steps_equal_eager(indexed_model, batches)


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


def column_model(table):
    """Reads a dataset's rows by a subsample and a non-contiguous column (a
    float64 copy the trace makes, refreshed each step)."""
    loc = csvi.sample("loc", dist.Normal(0.0, 3.0))
    with csvi.plate("rows", table.shape[0], subsample_size=5) as idx:
        csvi.sample("x", dist.Normal(loc, 1.0), obs=table[idx, 1])
    with csvi.plate("all", table.shape[0]):
        csvi.sample("first", dist.Normal(loc, 2.0), obs=table[:, 0])


def run_tables(elbo, tables):
    csvi.clear_param_store()
    csvi.set_rng_seed(5)
    svi = SVI(column_model, guide, Adam({"lr": 0.05}), elbo)
    losses = []
    for table, change in tables:
        table[:] += change  # changed in place before the step reads it
        losses.append(svi.step(table))
    return np.array(losses), svi


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("particles", [1, 3])
def test_jit_steps_read_datasets_in_place_and_leave_them_alone(fresh_store, layout, particles):
    """The same dataset passed each step is read where it lies (no copy a
    step), datasets passed in turn are each read as they are now and never
    written to, and arrays of another layout are copied: equal to eager."""
    def tables():
        a = np.random.default_rng(0).normal(size=(12, 3))
        b = np.random.default_rng(1).normal(size=(12, 3))
        if layout == "F":
            a, b = np.asfortranarray(a), np.asfortranarray(b)
        elif layout == "strided":
            a, b = np.repeat(a, 2, axis=0)[::2], np.repeat(b, 2, axis=0)[::2]
        return a, b, [(a, 0.0), (a, 0.5), (b, 0.0), (a, 0.0), (b, -1.0), (b, 0.0), (a, 2.0)]

    kw = dict(num_particles=particles, vectorize_particles=particles > 1)
    a, b, order = tables()
    jit_losses, svi = run_tables(JitTrace_ELBO(**kw), order)
    jit_tables, last = (a.copy(), b.copy()), order[-1][0]
    a, b, order = tables()
    eager_losses, _ = run_tables(Trace_ELBO(**kw), order)
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-12 if particles == 1 else 1e-9)
    np.testing.assert_array_equal(jit_tables[0], a)  # only the caller's changes
    np.testing.assert_array_equal(jit_tables[1], b)
    (compiled, (traced,), _), = svi._compiled_steps._programs.values()
    bound = compiled._arguments[id(traced)].bound
    assert (bound is last) if layout == "C" else (bound is traced)


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


def test_a_program_refuses_to_read_an_array_too_small_for_its_slots(fresh_store):
    eager_losses = run(Trace_ELBO(), guide, BATCHES[:2])[0]
    csvi.clear_param_store()
    csvi.set_rng_seed(11)
    svi = SVI(model, guide, Adam({"lr": 0.05}), JitTrace_ELBO())
    svi.step(BATCHES[0])
    (compiled, (traced,), _), = svi._compiled_steps._programs.values()
    binding = compiled._arguments[id(traced)]
    slots, offsets = binding.slots, binding.offsets
    assert slots.size >= 1 and binding.bound is BATCHES[0]
    with pytest.raises(ValueError, match="reaches past"):
        compiled._program.bind(slots, offsets, np.zeros(3))
    with pytest.raises(ValueError, match="C-contiguous, aligned float64"):
        compiled._program.bind(slots, offsets, np.zeros(20, dtype=np.float32))
    assert svi.step(BATCHES[1]) == eager_losses[1]  # nothing was re-pointed


def centred_model(x):
    loc = csvi.sample("loc", dist.Normal(0.0, 3.0))
    with csvi.plate("data", len(x)):
        csvi.sample("x", dist.Normal(loc, 1.0), obs=x - x.mean())


def test_jit_step_refuses_an_array_numpy_computed_from_the_data(fresh_store):
    """`x - x.mean()` in NumPy would be frozen at the traced step's values:
    compiling refuses it, eager steps run it."""
    svi = SVI(centred_model, guide, Adam({"lr": 0.05}), JitTrace_ELBO())
    with pytest.raises(ValueError, match=r"shape \(20,\) that NumPy computed from the step's "
                                         r"data .* csvi.as_tensor"):
        svi.step(BATCHES[0])
    assert np.isfinite(SVI(centred_model, guide, Adam({"lr": 0.05}), Trace_ELBO())
                       .step(BATCHES[0]))


def views_model(counts):
    """Views of the data and torch's `.float()` of integer data: read afresh
    by every compiled step."""
    loc = csvi.sample("loc", dist.Normal(0.0, 3.0))
    with csvi.plate("rows", counts.shape[0]):
        csvi.sample("x", dist.Normal(loc, 1.0).expand([2]).to_event(1),
                    obs=counts.float()[:, ::2])
        csvi.sample("y", dist.Normal(loc, 2.0), obs=counts.T[1])


def test_jit_steps_read_views_and_float_of_integer_data_afresh(fresh_store):
    batches = [np.random.default_rng(k).integers(-3, 9, (6, 4)) for k in range(5)]
    assert_jit_steps_equal_eager(views_model, batches)
