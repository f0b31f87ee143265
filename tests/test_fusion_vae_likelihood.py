"""Fusion of a VAE step's likelihood and minibatch (src_c/csvi_fuse.h):

- `Bernoulli(probs).to_event(1).log_prob(x)` with probs of x's shape (a
  decoder's pixels against its images) runs as one BERNOULLI_PROBS_ROWSUM in
  its flat form: the log-densities summed row by row and never stored, the
  probs' gradient stored by its first write (no clearing);
- a second `data[idx]` of the same data and indices (the guide's and the
  model's, also when each converts the NumPy argument itself) is read from
  the first TAKE's output;
- when a dense record computes the probs, its VJP forms their gradient from
  the row sums' gradients, with no buffer for it.

The flat kernel pads a run's last elements to whole vectors, so an
element's log-density does not depend on where its run starts or ends (the
row sums see the flat op's values).  A fused program equals the unfused
one and the eager steps bit for bit over rows whose length crosses the SIMD
widths, its loss matches scipy, also when something else reads the probs."""
import numpy as np
import pytest
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi import _core, handlers, nn
from csvi.infer import SVI, Trace_ELBO
from csvi.infer.compiled import CompiledSVI
from csvi.optim import Adam

ROWSUM = "BERNOULLI_PROBS_ROWSUM"
N, BATCH = 30, 7


def problem(length, seed=0):
    rng = np.random.default_rng(seed)
    data = (rng.random((N, length)) < 0.3).astype(float)
    data[0, 0] = 0.25  # a grey level: the value's continuous extension (its row's
    # VJP takes the formula's two divisions; the binary rows take one)
    return data, rng.standard_normal((2, length)), rng.standard_normal((length, 2))


def vae_parts(length, penalise_probs=False, decoder=None):
    data, w0, v0 = problem(length)

    def model(data):
        w = csvi.param("w", w0)
        if decoder is not None:
            csvi.module("decoder", decoder)
        with csvi.plate("data", N, subsample_size=BATCH) as idx:
            z = csvi.sample("z", dist.Normal(np.zeros((BATCH, 2)), 1.0).to_event(1))
            probs = csvi.sigmoid(z @ w) if decoder is None else decoder(z)
            if penalise_probs:  # a second reader of the probs
                csvi.factor("penalty", -(probs * probs).sum())
            csvi.sample("x", dist.Bernoulli(probs, validate_args=False).to_event(1),
                        obs=csvi.as_tensor(data)[idx])

    def guide(data):
        v = csvi.param("v", v0)
        with csvi.plate("data", N, subsample_size=BATCH) as idx:
            csvi.sample("z", dist.Normal(csvi.as_tensor(data)[idx] @ v, 0.5).to_event(1))

    return model, guide, data


def run(length, how, steps=6, penalise_probs=False, dense=None):
    decoder = None
    if dense is not None:  # a fused Linear + Sigmoid record computes the probs
        csvi.set_rng_seed(2)
        decoder = nn.Sequential(nn.Linear(2, length), nn.Sigmoid())
        if dense == "float32":
            decoder.float()
    model, guide, data = vae_parts(length, penalise_probs, decoder)
    csvi.clear_param_store()
    csvi.set_rng_seed(11)
    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    if how == "eager":
        losses, ops = np.array([svi.step(data) for _ in range(steps)]), None
    else:
        program = CompiledSVI(svi, (data,), {}, fuse=how == "fused")
        ops = program.op_names()
        if how == "fused" and dense is not None:  # the probs' gradient formed by the dense VJP
            ops = ops + ["probs:%d" % len(program._program.dense_input_copies()["probs"])]
        losses = program.run(steps)
    store = csvi.get_param_store()
    return losses, {k: store.unconstrained(k).copy() for k in store.names()}, ops


@pytest.mark.parametrize("length", [1, 6, 8, 13, 37])
def test_fused_likelihood_changes_no_bit(length):
    fused, fused_params, ops = run(length, "fused")
    assert ROWSUM in ops
    for how in ("unfused", "eager"):
        losses, params, other_ops = run(length, how)
        assert other_ops is None or ROWSUM not in other_ops
        np.testing.assert_array_equal(fused, losses, err_msg=how)
        for k in params:
            np.testing.assert_array_equal(fused_params[k], params[k], err_msg=f"{how} {k}")


@pytest.mark.parametrize("dense", ["float64", "float32"])
@pytest.mark.parametrize("length", [6, 13])
def test_probs_gradient_formed_by_the_dense_record_changes_no_bit(length, dense):
    """The decoder's Linear + Sigmoid record forms the probs' gradient in
    its own VJP from the row sums' gradients (mark_probs_into_dense): the
    bits of the Bernoulli VJP's stores, binary rows and the grey one."""
    fused, fused_params, ops = run(length, "fused", dense=dense)
    assert ROWSUM in ops and "probs:1" in ops
    for how in ("unfused", "eager"):
        losses, params, _ = run(length, how, dense=dense)
        np.testing.assert_array_equal(fused, losses, err_msg=how)
        for k in params:
            np.testing.assert_array_equal(fused_params[k], params[k], err_msg=f"{how} {k}")


def test_fused_loss_matches_scipy():
    """One compiled step's loss is -ELBO; with the guide's draw fixed by a
    seed, the likelihood part is recomputed with scipy from the same z."""
    model, guide, data = vae_parts(13)
    csvi.clear_param_store()
    csvi.set_rng_seed(3)
    svi = SVI(model, guide, Adam({"lr": 0.0}), Trace_ELBO())
    program = svi.compile(data)
    assert ROWSUM in program.op_names()
    loss = program.run(1)[0]
    csvi.set_rng_seed(3)
    tr_guide = handlers.trace(guide).get_trace(data)
    tr_model = handlers.trace(handlers.replay(model, trace=tr_guide)).get_trace(data)
    z = tr_guide.nodes["z"]["value"].numpy()
    x = tr_model.nodes["x"]["value"].numpy()
    loc = tr_guide.nodes["z"]["fn"].base_dist.loc.numpy()
    probs = 1.0 / (1.0 + np.exp(-(z @ csvi.get_param_store().unconstrained("w"))))
    # Bernoulli's continuous extension in x: x log p + (1 - x) log1p(-p)
    lik = np.sum(x * np.log(probs) + (1 - x) * np.log1p(-probs)) * N / BATCH
    kl = np.sum(st.norm.logpdf(z, loc, 0.5) - st.norm.logpdf(z)) * N / BATCH
    np.testing.assert_allclose(loss, -(lik - kl), rtol=1e-12)


def test_probs_read_elsewhere_are_added_into_in_order():
    """A penalty on the probs reads them too: the likelihood still fuses,
    their gradient buffer is cleared (the penalty's VJP adds), and the two
    gradients add in the eager order."""
    fused, fused_params, ops = run(6, "fused", penalise_probs=True)
    assert ROWSUM in ops
    for how in ("unfused", "eager"):
        losses, params, _ = run(6, how, penalise_probs=True)
        np.testing.assert_array_equal(fused, losses, err_msg=how)
        for k in params:
            np.testing.assert_array_equal(fused_params[k], params[k], err_msg=f"{how} {k}")


def numpy_indexing_parts():
    """examples/vae.py's form: the guide and the model each index the NumPy
    argument, so each converts it into a slot of its own over the same
    memory."""
    data, w0, v0 = problem(13)

    def model(data):
        w = csvi.param("w", w0)
        with csvi.plate("data", N, subsample_size=BATCH) as idx:
            x = data[idx]
            z = csvi.sample("z", dist.Normal(np.zeros((BATCH, 2)), 1.0).to_event(1))
            csvi.sample("x", dist.Bernoulli(csvi.sigmoid(z @ w), validate_args=False)
                        .to_event(1), obs=x)

    def guide(data):
        v = csvi.param("v", v0)
        with csvi.plate("data", N, subsample_size=BATCH) as idx:
            csvi.sample("z", dist.Normal(data[idx] @ v, 0.5).to_event(1))

    return model, guide, data


def test_the_model_reads_the_guides_minibatch_rows():
    """Two TAKEs of one argument's rows by one index: a step runs the first
    only, and its losses and params are those of the unfused program (which
    runs both) and of eager steps, bit for bit -- also after the program is
    pointed at another array (both slots move with it)."""
    model, guide, data = numpy_indexing_parts()
    fresh = data.copy()
    fresh[:, 0] = 1.0 - fresh[:, 0]
    results = {}
    for how in ("fused", "unfused", "eager"):
        csvi.clear_param_store()
        csvi.set_rng_seed(5)
        svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
        if how == "eager":
            losses = [svi.step(data) for _ in range(4)] + [svi.step(fresh) for _ in range(3)]
        else:
            args, kwargs = _core.data_args((data,), {})  # as svi.compile's
            program = CompiledSVI(svi, args, kwargs, fuse=how == "fused")
            names, runs = program.op_names(), program._program.ops_run()
            takes = [runs[i] for i, name in enumerate(names) if name == "TAKE"]
            assert takes == ([True, False] if how == "fused" else [True, True])
            losses = list(program.run(4))
            program.read(args[0], fresh)
            losses += list(program.run(3))
        store = csvi.get_param_store()
        results[how] = losses, {k: store.unconstrained(k).copy() for k in store.names()}
    for how in ("unfused", "eager"):
        np.testing.assert_array_equal(results["fused"][0], results[how][0], err_msg=how)
        for k, value in results[how][1].items():
            np.testing.assert_array_equal(results["fused"][1][k], value, err_msg=f"{how} {k}")


@pytest.mark.parametrize("n", [5, 8, 13, 1029])
def test_an_elements_log_density_does_not_depend_on_its_position(n):
    """The flat kernel's last elements, padded to a whole vector, get the
    bits the same (x, p) get anywhere else in a run."""
    rng = np.random.default_rng(n)
    p = rng.uniform(0.0, 1.0, n)
    x = (rng.random(n) < 0.5).astype(float)
    x[::5] = 0.3
    base = dist.Bernoulli(p, validate_args=False).log_prob(x).numpy()
    for shift in (1, 3, 8, 11):
        pad_p = np.concatenate([rng.uniform(0.0, 1.0, shift), p])
        pad_x = np.concatenate([np.zeros(shift), x])
        shifted = dist.Bernoulli(pad_p, validate_args=False).log_prob(pad_x).numpy()
        np.testing.assert_array_equal(shifted[shift:], base)
