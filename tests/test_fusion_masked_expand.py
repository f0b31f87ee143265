"""Fusion of a masked site's plate broadcast (fuse.c, fuse_expand_into_where):
a log-density broadcast to its plates (DIST_EXPAND) and read only by the
mask's WHERE is read by the WHERE itself.  A compiled program with the rule
must equal the unfused program and the eager steps bit for bit -- the
expand's VJP summed the gradient over the broadcast dims, and the WHERE's
now does -- and the rule must fire only where nothing else reads the
broadcast."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints, handlers
from csvi.infer import SVI, Trace_ELBO, TraceEnum_ELBO
from csvi.infer.compiled import CompiledSVI
from csvi.optim import Adam

STATES, TONES = 3, 4


def hmm_data(sequences=5, length=6, seed=0):
    rng = np.random.default_rng(seed)
    tones = (rng.random((sequences, length, TONES)) < 0.4).astype(float)
    lengths = np.array([6, 2, 4, 1, 5][:sequences])
    return tones, lengths


def masked_hmm(tones, lengths):
    """Pyro's HMM example model_1 in small: Categorical transitions masked
    past each sequence's length, inside the sequences plate."""
    probs_x = csvi.param("probs_x", np.full((STATES, STATES), 1.0 / STATES) + np.eye(STATES),
                         constraint=constraints.simplex)
    probs_y = csvi.param("probs_y", np.linspace(0.2, 0.8, STATES * TONES).reshape(STATES, TONES),
                         constraint=constraints.unit_interval)
    tones_plate = csvi.plate("tones", TONES, dim=-1)
    with csvi.plate("sequences", tones.shape[0], dim=-2):
        x = 0
        for t in csvi.markov(range(tones.shape[1])):
            with handlers.mask(mask=(t < lengths)[:, None]):
                x = csvi.sample(f"x_{t}", dist.Categorical(probs_x[x]),
                                infer={"enumerate": "parallel"})
                with tones_plate:
                    csvi.sample(f"y_{t}", dist.Bernoulli(probs_y[x.squeeze(-1)]),
                                obs=tones[:, t])


def masked_normal(y, mask):
    """A Normal expanded over a plate, observed at one value and masked: its
    one log-density is broadcast to the plate before the mask reads it."""
    loc = csvi.param("loc", 0.3)
    with csvi.plate("data", mask.shape[0]), handlers.mask(mask=mask):
        csvi.sample("y", dist.Normal(loc, 1.5), obs=y)


def no_guide(*args):
    pass


def run(model, elbo, args, how, steps=8):
    csvi.clear_param_store()
    csvi.set_rng_seed(3)
    svi = SVI(model, no_guide, Adam({"lr": 0.05}), elbo)
    if how == "eager":
        losses = np.array([svi.step(*args) for _ in range(steps)])
        table = None
    else:
        program = CompiledSVI(svi, args, {}, fuse=how == "fused")
        table = program.op_table()
        losses = program.run(steps)
    store = csvi.get_param_store()
    return losses, {k: store.unconstrained(k).copy() for k in store.names()}, table


def expand_read_by_where(table):
    """Whether some WHERE(mask, x, y) broadcasts x to its output's shape
    itself: the fused form (unfused, the DIST_EXPAND did)."""
    return any(name == "WHERE" and ins[1] != out for name, ins, out in table)


CASES = {
    "masked hmm": (masked_hmm, lambda: TraceEnum_ELBO(max_plate_nesting=2), hmm_data),
    "masked normal": (masked_normal, Trace_ELBO,
                      lambda: (np.float64(0.4), np.array([1, 0, 1, 1, 0, 0, 1], bool))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_program_equals_unfused_and_eager_bit_for_bit(case):
    model, elbo, data = CASES[case]
    args = data()
    fused, fused_params, table = run(model, elbo(), args, "fused")
    plain, plain_params, plain_table = run(model, elbo(), args, "unfused")
    eager, eager_params, _ = run(model, elbo(), args, "eager")
    assert expand_read_by_where(table) and not expand_read_by_where(plain_table)
    np.testing.assert_array_equal(fused, plain)
    np.testing.assert_array_equal(fused, eager)
    for k in plain_params:
        np.testing.assert_array_equal(fused_params[k], plain_params[k])
        np.testing.assert_array_equal(fused_params[k], eager_params[k])


def test_masked_normal_loss_is_the_kept_terms():
    """The fused program's loss against the kept copies' log-density by hand."""
    y, mask = CASES["masked normal"][2]()
    losses, _, table = run(masked_normal, Trace_ELBO(), (y, mask), "fused", steps=1)
    assert expand_read_by_where(table)
    z = (y - 0.3) / 1.5
    expected = mask.sum() * (0.5 * z * z + np.log(1.5) + 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(losses[0], expected, rtol=1e-13)


def test_a_broadcast_read_elsewhere_is_not_fused():
    y, mask = CASES["masked normal"][2]()

    def also_read(y, mask):
        loc = csvi.param("loc", 0.3)
        lp = dist.Normal(loc, 1.5).expand([mask.shape[0]]).log_prob(y)  # broadcast ...
        csvi.factor("kept", csvi.where(mask, lp, 0.0).sum())
        csvi.factor("all", lp.sum())                                     # ... read twice
    fused, _, table = run(also_read, Trace_ELBO(), (y, mask), "fused")
    eager, _, _ = run(also_read, Trace_ELBO(), (y, mask), "eager")
    assert any(name == "DIST_EXPAND" for name, _, _ in table)
    assert not expand_read_by_where(table)
    np.testing.assert_array_equal(fused, eager)
