"""How a compiled step keeps the gradients float32 dense records write
(src_c/program.c):

- uncleared buffers (mark_uncleared): a slot whose gradient only float32
  dense records write (as their x or W), or a flat Bernoulli's row sums
  (its probs), gets no memset each step; the first
  VJP to write it stores the widened product (0.0 + v, the bits an add into
  zeros gives), the later ones add, and a buffer no VJP reaches is zeroed
  after the sweep;
- the inputs' float32 copies (mark_x32): rounded once for all the records
  reading one x, by the forward of the record that computes it; and the
  inputs' gradients (mark_dx32): the readers' float32 products, widened and
  added by the VJP of the record that computes x, with no float64 buffer;
- float32 weight gradients (mark_grad32): a weight only one such record
  reads keeps its gradient as that record's float32 product, which Adam
  reads (widened in registers); other optimizers, and a gradient hook, get
  it widened into the float64 buffer first.

The buffers keep the previous step's gradients, so a write that added where
it should store (or an update that read a stale buffer) would change the
next step: compiled == eager bit for bit over many steps shows it does
not.  Which slots take which path is checked too, so each comparison runs
the path it is meant to."""
import os
import sys

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core, nn
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import SGD, Adam, ClippedAdam

sys.path.insert(0, os.path.dirname(__file__))
from compiled_check import assert_compiled_matches_eager  # noqa: E402


def networks():
    """An encoder whose hidden layer feeds two float32 Linears (the VAE
    tutorial's fc21/fc22), a float32 decoder, a float64 Linear, a float32
    Linear whose weight a prior also reads, and one whose output the loss
    never reads."""
    csvi.set_rng_seed(0)
    hidden = nn.Sequential(nn.Linear(6, 8), nn.Softplus()).float()
    loc, log_scale = nn.Linear(8, 2).float(), nn.Linear(8, 2).float()
    decoder = nn.Sequential(nn.Linear(2, 8), nn.Softplus(), nn.Linear(8, 6),
                            nn.Sigmoid()).float()
    extra64 = nn.Linear(6, 6)
    penalised = nn.Linear(6, 6).float()
    unused = nn.Linear(6, 3).float()
    return hidden, loc, log_scale, decoder, extra64, penalised, unused


def svi_parts():
    data = (np.random.default_rng(3).random((40, 6)) < 0.4).astype(float)
    hidden, loc, log_scale, decoder, extra64, penalised, unused = networks()
    mods = {"hidden": hidden, "loc": loc, "log_scale": log_scale, "decoder": decoder,
            "extra64": extra64, "penalised": penalised, "unused": unused}
    start = {k: {n: np.array(v) for n, v in m.state_dict().items()} for k, m in mods.items()}

    def model(data):
        csvi.module("decoder", decoder)
        csvi.module("penalised", penalised)
        csvi.factor("prior", -0.5 * (penalised.weight ** 2).sum())
        with csvi.plate("data", 40, subsample_size=10) as idx:
            z = csvi.sample("z", dist.Normal(np.zeros((10, 2)), 1.0).to_event(1))
            probs = decoder(z)
            csvi.sample("x", dist.Bernoulli(probs, validate_args=False).to_event(1),
                        obs=data[idx])

    def guide(data):
        for name in ("hidden", "loc", "log_scale", "extra64", "unused"):
            csvi.module(name, mods[name])
        with csvi.plate("data", 40, subsample_size=10) as idx:
            x = data[idx]
            h = hidden(x + 0.01 * csvi.sigmoid(extra64(x)))
            unused(x)  # recorded; nothing the loss reads depends on it
            csvi.sample("z", dist.Normal(loc(h), csvi.exp(log_scale(h))).to_event(1))

    def fresh_guide():
        for k, m in mods.items():
            m.load_state_dict(start[k])
        return guide

    return model, fresh_guide, data


OPTIMIZERS = {
    "adam": lambda: Adam({"lr": 0.01}),  # reads the float32 gradients
    "amsgrad": lambda: Adam({"lr": 0.01, "amsgrad": True}),  # so does this
    "adam-weight-decay": lambda: Adam({"lr": 0.01, "weight_decay": 0.1}),  # widened first
    "adam-clip-norm": lambda: Adam({"lr": 0.01}, {"clip_norm": 0.5}),
    "clipped-adam": lambda: ClippedAdam({"lr": 0.01, "clip_norm": 0.5}),
    "sgd-momentum": lambda: SGD({"lr": 0.01, "momentum": 0.9}),
}


@pytest.mark.parametrize("optim", list(OPTIMIZERS))
def test_compiled_matches_eager_bit_for_bit(optim):
    model, fresh_guide, data = svi_parts()
    assert_compiled_matches_eager(model, fresh_guide, OPTIMIZERS[optim], Trace_ELBO,
                                  args=(data,), steps=25, rtol=0.0)


def test_a_gradient_hook_sees_the_widened_gradients():
    """With a hook, the float32 gradients are widened into the buffer it
    gets: an identity hook leaves the run equal to the eager one, and the
    buffer holds each weight's gradient."""
    model, fresh_guide, data = svi_parts()
    runs = []
    for compiled in (False, True):
        csvi.clear_param_store()
        csvi.set_rng_seed(5)
        svi = SVI(model, fresh_guide(), Adam({"lr": 0.01}), Trace_ELBO())
        if compiled:
            step = svi.compile(data)
            seen = []
            step._program.set_grad_hook(lambda buffer: seen.append(buffer.copy()))
            losses = step.run(8)
            assert step._program.gradient_buffers()["float32"]
            assert all(np.any(b[:-2] != 0.0) for b in seen) and len(seen) == 8
        else:
            losses = [svi.step(data) for _ in range(8)]
        store = csvi.get_param_store()
        runs.append((np.asarray(losses), {n: store.unconstrained(n).copy()
                                          for n in store.names()}))
    np.testing.assert_array_equal(runs[1][0], runs[0][0])
    for name, value in runs[0][1].items():
        np.testing.assert_array_equal(runs[1][1][name], value, err_msg=name)


def test_which_gradients_are_left_uncleared():
    model, fresh_guide, data = svi_parts()
    csvi.clear_param_store()
    csvi.set_rng_seed(5)
    compiled = SVI(model, fresh_guide(), Adam({"lr": 0.01}), Trace_ELBO()).compile(data)
    layout = compiled._program.gradient_buffers()
    names = sorted(compiled._names[k] for k in layout["uncleared"])
    # every float32 weight but the penalised one (a prior reads it too);
    # no bias (its gradient is a sum over rows), no float64 weight -- but
    # the unused layer's bias: only a record the step skips reads it, so no
    # VJP writes it, and it is zeroed after the sweep
    weights = sorted(["decoder$$$0.weight", "decoder$$$2.weight", "hidden$$$0.weight",
                      "loc$$$weight", "log_scale$$$weight", "unused$$$weight"])
    assert names == sorted(weights + ["unused$$$bias"])
    # each of them has one reader: its gradient stays float32
    assert sorted(compiled._names[k] for k in layout["float32"]) == weights
    # the encoder's input (x + 0.01 sigmoid(extra64(x)), which wants a
    # gradient for extra64); not z (the Normal's log-density reads it too);
    # the hidden layers have no float64 gradient buffer at all (their
    # readers' float32 products are read where they are: mark_dx32), nor
    # the decoder's pixel probabilities (their gradient is formed in the
    # decoder's VJP: mark_probs_into_dense)
    assert layout["others"] == 1


def test_which_input_copies_and_gradients_are_shared():
    """The float32 copies of the dense records' inputs (mark_x32): loc and
    log_scale read the hidden layer's copy, which the hidden layer's own
    forward writes, as the decoder's first layer writes its second's; and
    their gradients (mark_dx32), which the layer computing each input reads
    as its readers' float32 products.  The runs above compare such steps
    with eager ones bit for bit."""
    model, fresh_guide, data = svi_parts()
    csvi.clear_param_store()
    csvi.set_rng_seed(5)
    compiled = SVI(model, fresh_guide(), Adam({"lr": 0.01}), Trace_ELBO()).compile(data)
    table = compiled.op_table()
    copies = compiled._program.dense_input_copies()
    dense = [i for i, row in enumerate(table) if row[0] in ("DENSE", "DENSE_ACT")]
    hidden = next(i for i in dense if table[i][1][1] == (8, 6) and table[i][0] == "DENSE_ACT")
    loc, log_scale = [i for i in dense if table[i][1][1] == (2, 8)]
    dec0 = next(i for i in dense if table[i][1][1] == (8, 2))
    dec2 = next(i for i in dense if table[i][1][1] == (6, 8))
    assert copies["shared"] == {log_scale: loc}
    assert copies["written"] == {hidden: loc, dec0: dec2}
    # the hidden layers' gradients: loc's and log_scale's products, added in
    # the reverse sweep's order (log_scale's VJP first), and dec2's
    assert copies["gradients"] == {hidden: [log_scale, loc], dec0: [dec2]}
    # the decoder's pixel probabilities: their gradient formed by dec2's VJP
    # from the fused Bernoulli's row gradients (mark_probs_into_dense)
    assert copies["probs"] == {dec2: table.index(next(
        row for row in table if row[0] == "BERNOULLI_PROBS_ROWSUM"))}


def test_a_buffer_no_vjp_reaches_is_zeroed_not_left():
    """W2's dense output is recorded but never read: its VJP does not run,
    and its uncleared buffer must be zeroed after the sweep.  An eager sweep
    on the same tape first fills the arena with 3.0s (the gradient of
    sum(3 p) over a leaf larger than the program's buffers), so a buffer
    left as it was would move W2."""
    rng = np.random.default_rng(0)
    tape = _core.Tape(record_all=True)
    with _core.recording(tape):
        p = csvi.tensor(np.ones(4000), requires_grad=True)
        poison = (p * 3.0).sum()
        x = csvi.tensor(rng.standard_normal((5, 4)))
        w1 = csvi.tensor(rng.standard_normal((3, 4)), requires_grad=True)
        w2 = csvi.tensor(rng.standard_normal((2, 4)), requires_grad=True)
        root = _core.dense(x, w1, None, None, 20.0, True).sum()
        _core.dense(x, w2, None, None, 20.0, True)
    kernels = Adam({"lr": 0.1}).kernels_for([("w1", w1.numpy()), ("w2", w2.numpy())])
    program = _core.Program(tape, root, root, [(w1, kernels[0]), (w2, kernels[1])])
    assert program.gradient_buffers() == {"uncleared": [0, 1], "others": 0, "float32": [0, 1]}
    tape.backward(poison, set_leaf_grads=False)
    before1, before2 = w1.numpy().copy(), w2.numpy().copy()
    losses, status = program.run(3)
    assert status == "done" and np.all(np.isfinite(losses))
    np.testing.assert_array_equal(w2.numpy(), before2)
    assert not np.array_equal(w1.numpy(), before1)


def test_particles_keep_clearing():
    """More than one particle: every buffer is cleared, as before."""
    model, fresh_guide, data = svi_parts()
    csvi.clear_param_store()
    csvi.set_rng_seed(5)
    elbo = Trace_ELBO(num_particles=2)
    compiled = SVI(model, fresh_guide(), Adam({"lr": 0.01}), elbo).compile(data)
    assert compiled._program.gradient_buffers() == {"uncleared": [], "others": 0, "float32": []}


def test_weights_written_between_runs_are_rounded_afresh():
    """The program keeps each such weight's float32 copy (Adam writes it as
    it updates the weight, so the forward does not round it again); a
    weight written outside the loop -- here in place, between two runs --
    is rounded again when the next run starts.  Compiled (in runs of 1, 3
    and 4 steps) == eager, bit for bit."""
    model, fresh_guide, data = svi_parts()
    runs = []
    for compiled in (False, True):
        csvi.clear_param_store()
        csvi.set_rng_seed(5)
        svi = SVI(model, fresh_guide(), Adam({"lr": 0.01}), Trace_ELBO())
        step = svi.compile(data) if compiled else None
        losses = []
        for n, scale in ((1, 0.5), (3, 2.0), (4, None)):
            losses += list(step.run(n)) if compiled else [svi.step(data) for _ in range(n)]
            if scale is not None:
                store = csvi.get_param_store()
                for name in ("decoder$$$2.weight", "hidden$$$0.weight"):
                    store.unconstrained(name)[...] *= scale  # the leaf's own buffer
        if compiled:
            assert len(step._program.gradient_buffers()["float32"]) == 6
        store = csvi.get_param_store()
        runs.append((np.asarray(losses), {n: store.unconstrained(n).copy()
                                          for n in store.names()}))
    np.testing.assert_array_equal(runs[1][0], runs[0][0])
    for name, value in runs[0][1].items():
        np.testing.assert_array_equal(runs[1][1][name], value, err_msg=name)


@pytest.mark.parametrize("shape", [(3, 8), (256, 256)])  # the check on one thread, over the pool
def test_a_non_finite_float32_gradient_stops_the_run(shape):
    """The finiteness check reads a float32 weight gradient where it lies:
    sqrt at 0 has an infinite derivative, so dW is not finite while the
    loss is; the run stops before the update, the weight unchanged."""
    rng = np.random.default_rng(1)
    tape = _core.Tape(record_all=True)
    with _core.recording(tape):
        x = csvi.tensor(rng.standard_normal((4, shape[1])))
        w = csvi.tensor(np.zeros(shape), requires_grad=True)
        root = csvi.sqrt(_core.dense(x, w, None, None, 20.0, True)).sum()
    kernel = Adam({"lr": 0.1}).kernels_for([("w", w.numpy())])[0]
    program = _core.Program(tape, root, root, [(w, kernel)])
    assert program.gradient_buffers()["float32"] == [0]
    losses, status = program.run(3)
    assert status == "grad_not_finite:0" and len(losses) == 0
    np.testing.assert_array_equal(w.numpy(), 0.0)


@pytest.mark.parametrize("shape", [(3, 7), (257, 259)])  # one thread; over the pool, odd tails
@pytest.mark.parametrize("rows", [1, 2])
def test_the_float32_check_takes_the_largest_finite_and_stops_at_overflow(shape, rows):
    """x holds 3e38 (finite in float32) in the last column of `rows` rows and
    W is zero, so the loss is finite and dW's last column (which ends the
    buffer) is 3e38 for one row and overflows to inf for two: the check
    passes the one and stops at the other, element by element to the end."""
    m, k = shape
    tape = _core.Tape(record_all=True)
    x_value = np.zeros((4, k))
    x_value[:rows, k - 1] = 3e38
    with _core.recording(tape):
        x = csvi.tensor(x_value)
        w = csvi.tensor(np.zeros((m, k)), requires_grad=True)
        root = _core.dense(x, w, None, None, 20.0, True).sum()
    kernel = Adam({"lr": 0.1}).kernels_for([("w", w.numpy())])[0]
    program = _core.Program(tape, root, root, [(w, kernel)])
    assert program.gradient_buffers()["float32"] == [0]
    losses, status = program.run(1)
    if rows == 1:
        assert status == "done" and len(losses) == 1
        assert np.all(w.numpy()[:, :-1] == 0.0)
        np.testing.assert_allclose(w.numpy()[:, -1], -0.1, rtol=1e-6)  # Adam's first step
    else:
        assert status == "grad_not_finite:0" and len(losses) == 0
        np.testing.assert_array_equal(w.numpy(), 0.0)
