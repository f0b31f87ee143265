"""examples/hmm.py (Pyro's examples/hmm.py, models 0-3): with the probability
tables fixed, TraceEnum_ELBO's loss equals the forward algorithm run in
NumPy on every sequence; a few training steps lower the loss, and jitted
steps equal eager ones."""
import argparse

import numpy as np
import pytest
from scipy.special import logsumexp

import csvi
from csvi import handlers
from csvi.infer import SVI, JitTraceEnum_ELBO, TraceEnum_ELBO
from csvi.optim import Adam

from example_loader import load_example


EXAMPLE = load_example("hmm")
SEQUENCES, LENGTHS = EXAMPLE.make_data(num_sequences=6, max_length=12, data_dim=10, seed=3)
RNG = np.random.default_rng(0)


def bernoulli_loglik(probs, y):
    return (y * np.log(probs) + (1 - y) * np.log1p(-probs)).sum(-1)


def forward(log_init, log_trans, log_emit):
    """log p(y) of one sequence: log_emit (T, S), log_trans (S, S) (or (T, S, S))."""
    alpha = log_init + log_emit[0]
    for t in range(1, len(log_emit)):
        trans = log_trans[t] if log_trans.ndim == 3 else log_trans
        alpha = logsumexp(alpha[:, None] + trans, axis=0) + log_emit[t]
    return logsumexp(alpha)


def tables(model_name, hidden):
    d = SEQUENCES.shape[-1]
    if model_name == "3":
        h = int(hidden ** 0.5)
        return {"probs_w": RNG.dirichlet(np.ones(h), h), "probs_x": RNG.dirichlet(np.ones(h), h),
                "probs_y": RNG.uniform(0.05, 0.95, (h, h, d))}
    shape = (hidden, 2, d) if model_name == "2" else (hidden, d)
    return {"probs_x": RNG.dirichlet(np.ones(hidden), hidden),
            "probs_y": RNG.uniform(0.05, 0.95, shape)}


def reference(model_name, t):
    """Σ over sequences of the forward algorithm (states before the first
    step are 0, as the example's `x = 0`)."""
    total = 0.0
    for seq, length in zip(SEQUENCES, LENGTHS):
        y = seq[:length]
        if model_name == "3":
            h = len(t["probs_w"])
            trans = np.log(np.kron(t["probs_w"], t["probs_x"]))  # state (w, x) -> w * h + x
            emit = np.stack([bernoulli_loglik(t["probs_y"].reshape(h * h, -1), yt) for yt in y])
            init = trans[0]
        elif model_name == "2":
            prev = np.vstack([np.zeros(y.shape[1]), y[:-1]]).astype(int)
            tones = np.arange(y.shape[1])
            emit = np.stack([bernoulli_loglik(t["probs_y"][:, prev[k], tones], y[k])
                             for k in range(len(y))])
            trans = np.log(t["probs_x"])
            init = trans[0]
        else:
            trans = np.log(t["probs_x"])
            emit = np.stack([bernoulli_loglik(t["probs_y"], yt) for yt in y])
            init = trans[0]
        total += forward(init, trans, emit)
    return total


@pytest.mark.parametrize("model_name", ["0", "1", "2", "3"])
def test_loss_equals_the_forward_algorithm(fresh_store, model_name):
    hidden = 4
    args = argparse.Namespace(hidden_dim=hidden, jit=False)
    t = tables(model_name, hidden)
    model = EXAMPLE.models[model_name]
    conditioned = handlers.condition(model, data=t)
    # every sequence in one minibatch, so no subsampling scale; the masked
    # steps past each length add log(hidden) per sequence, as in Pyro
    vectorized = model_name != "0"
    masked_steps = (LENGTHS.max() - LENGTHS).sum() if vectorized else 0
    elbo = TraceEnum_ELBO(max_plate_nesting=2 if vectorized else 1)
    loss = elbo.loss(conditioned, lambda *a, **k: None, SEQUENCES, LENGTHS, args,
                     include_prior=False)
    expected = reference(model_name, t) + masked_steps * np.log(hidden)
    assert loss == pytest.approx(-expected, rel=1e-10)


def test_training_lowers_the_loss_and_jit_equals_eager(fresh_store):
    """The example's training loop, eager (TraceEnum_ELBO) and jitted
    (JitTraceEnum_ELBO), on the same fixed-length program (args.jit)."""
    args = argparse.Namespace(hidden_dim=4, jit=True)
    runs = []
    for Elbo in (TraceEnum_ELBO, JitTraceEnum_ELBO):
        csvi.clear_param_store()
        csvi.set_rng_seed(0)
        guide = EXAMPLE.AutoDelta(handlers.block(
            EXAMPLE.model_1, expose_fn=lambda msg: msg["name"].startswith("probs_")))
        svi = SVI(EXAMPLE.model_1, guide, Adam({"lr": 0.05}), Elbo(max_plate_nesting=2))
        losses = [svi.step(SEQUENCES, LENGTHS, args=args, batch_size=3) for _ in range(8)]
        store = csvi.get_param_store()
        runs.append((losses, {n: store.unconstrained(n).copy() for n in store.names()}))
    (eager_losses, eager), (jit_losses, jitted) = runs
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-10)
    for name in eager:
        np.testing.assert_allclose(jitted[name], eager[name], rtol=1e-10, err_msg=name)
    assert np.mean(eager_losses[-3:]) < np.mean(eager_losses[:3])


def test_jit_model_runs_a_fixed_number_of_steps(fresh_store):
    """Under --jit the chain runs to max_length with masks; the loss then
    differs from the eager program's only by the masked steps' log K."""
    args = argparse.Namespace(hidden_dim=4, jit=True)
    t = tables("1", 4)
    conditioned = handlers.condition(EXAMPLE.model_1, data=t)
    elbo = TraceEnum_ELBO(max_plate_nesting=2)
    loss = elbo.loss(conditioned, lambda *a, **k: None, SEQUENCES, LENGTHS, args,
                     include_prior=False)
    masked_steps = (SEQUENCES.shape[1] - LENGTHS).sum()
    assert loss == pytest.approx(-(reference("1", t) + masked_steps * np.log(4)), rel=1e-10)

