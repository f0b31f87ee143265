"""A compiled program's table-form Bernoulli ops share their tables
(csvi_bernoulli_link_tables, dist_bernoulli.c): an HMM's emission probs,
gathered afresh at each time step, are the same numbers each time, so the
tables are worked out once per step -- but only while the numbers are the
same.  Emission tables that alternate between two params of one size must
give the eager steps' losses and params bit for bit, and the exact marginal
likelihood by brute-force summation; a table the guide draws (one per
particle) must too."""
import itertools

import numpy as np
import pytest
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi import constraints, handlers
from csvi.infer import SVI, TraceEnum_ELBO
from csvi.infer.autoguide import AutoNormal
from csvi.infer.compiled import CompiledSVI
from csvi.optim import Adam

STATES, TONES, LENGTH = 2, 3, 4
TRANS = np.array([[0.7, 0.3], [0.2, 0.8]])
TONES_DATA = (np.random.default_rng(0).random((2, LENGTH, TONES)) < 0.5).astype(float)
PROBS = {name: np.linspace(lo, hi, STATES * TONES).reshape(STATES, TONES)
         for name, lo, hi in [("even", 0.1, 0.9), ("odd", 0.8, 0.3)]}


def chain(tones, table_at):
    """The HMM over `tones`, emitting from the table `table_at(t)` at step t."""
    tones_plate = csvi.plate("tones", TONES, dim=-1)
    with csvi.plate("sequences", tones.shape[0], dim=-2):
        x = 0
        for t in csvi.markov(range(LENGTH)):
            x = csvi.sample(f"x_{t}", dist.Categorical(csvi.as_tensor(TRANS)[x]),
                            infer={"enumerate": "parallel"})
            with tones_plate:
                csvi.sample(f"y_{t}", dist.Bernoulli(table_at(t)[x.squeeze(-1)]),
                            obs=tones[:, t])


def hmm(tones, shared):
    """An HMM whose emission table is one param at every step (`shared`) or
    alternates between two params of the same shape."""
    probs = {k: csvi.param(f"probs_{k}", v, constraint=constraints.unit_interval)
             for k, v in PROBS.items()}
    chain(tones, lambda t: probs["even" if shared or t % 2 == 0 else "odd"])


def no_guide(*args):
    pass


def run(shared, compiled, steps=6):
    csvi.clear_param_store()
    svi = SVI(hmm, no_guide, Adam({"lr": 0.05}), TraceEnum_ELBO(max_plate_nesting=2))
    if compiled:
        losses = CompiledSVI(svi, (TONES_DATA, shared), {}).run(steps)
    else:
        losses = np.array([svi.step(TONES_DATA, shared) for _ in range(steps)])
    store = csvi.get_param_store()
    return losses, {k: store.unconstrained(k).copy() for k in store.names()}


def brute_force_loss(shared):
    total = 0.0
    for seq in TONES_DATA:
        paths = []
        for states in itertools.product(range(STATES), repeat=LENGTH):
            lp, prev = 0.0, 0
            for t, s in enumerate(states):
                table = PROBS["even" if shared or t % 2 == 0 else "odd"]
                lp += np.log(TRANS[prev, s]) + st.bernoulli.logpmf(seq[t], table[s]).sum()
                prev = s
            paths.append(lp)
        total += np.logaddexp.reduce(paths)
    return -total


@pytest.mark.parametrize("shared", [True, False], ids=["one table", "alternating tables"])
def test_compiled_steps_equal_eager_bit_for_bit_and_the_exact_likelihood(shared):
    compiled, compiled_params = run(shared, compiled=True)
    eager, eager_params = run(shared, compiled=False)
    np.testing.assert_allclose(compiled[0], brute_force_loss(shared), rtol=1e-12)
    np.testing.assert_array_equal(compiled, eager)
    for k in eager_params:
        np.testing.assert_array_equal(compiled_params[k], eager_params[k])


def drawn_table_hmm(tones):
    """The emission table drawn by the guide: one table per particle."""
    z = csvi.sample("z", dist.Normal(np.zeros((STATES, TONES)), 1.0).to_event(2))
    table = csvi.sigmoid(z)
    chain(tones, lambda t: table)


def test_tables_drawn_per_particle_equal_eager_bit_for_bit():
    def run_particles(compiled, steps=4):
        csvi.clear_param_store()
        csvi.set_rng_seed(1)
        guide = AutoNormal(handlers.block(drawn_table_hmm, expose=["z"]))
        svi = SVI(drawn_table_hmm, guide, Adam({"lr": 0.05}),
                  TraceEnum_ELBO(max_plate_nesting=2, num_particles=3))
        if compiled:
            return CompiledSVI(svi, (TONES_DATA,), {}).run(steps)
        return np.array([svi.step(TONES_DATA) for _ in range(steps)])

    np.testing.assert_array_equal(run_particles(True), run_particles(False))
