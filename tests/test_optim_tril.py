"""A compiled step updates a unit lower Cholesky factor's param (UNIT_TRIL's
only input, e.g. AutoMultivariateNormal's scale_tril) below the diagonal
only, where its gradient can be nonzero (src_c/program.c, mark_tril;
src_c/optim.c, csvi_optim_step_tril).  That is exact only for Adam on the raw
gradient with eps > 0 and moments +0 on and above the diagonal: these tests
hold the compiled run to the eager one bit for bit, params and optimizer
state, on the fast path and on every fallback."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.infer.autoguide import AutoMultivariateNormal
from csvi.optim import Adam, ClippedAdam

RNG = np.random.default_rng(3)
X = RNG.normal(size=(40, 6))
Y = X @ RNG.normal(size=6) + RNG.normal(size=40)
SCALE_TRIL = "AutoMultivariateNormal.scale_tril"


def regression(x, y):
    w = csvi.sample("w", dist.Normal(np.zeros(6), 1.0).to_event(1))
    with csvi.plate("data", len(y)):
        csvi.sample("y", dist.Normal(x @ w, 1.0), obs=y)


def stacked_model():
    csvi.sample("z", dist.Normal(np.zeros((2, 3)), 1.0).to_event(2))


def stacked_guide():
    """Two 3 x 3 unit lower factors in one param (n / (d * d) = 2 matrices)."""
    loc = csvi.param("loc", np.zeros((2, 3)))
    tril = csvi.param("tril", np.broadcast_to(np.eye(3), (2, 3, 3)).copy(),
                      constraint=constraints.unit_lower_cholesky)
    csvi.sample("z", dist.MultivariateNormal(loc, scale_tril=tril).to_event(1))


def run_both(model, guide, make_optim, steps=25, state=None, args=()):
    """(eager, compiled) runs from one seed, held equal: params and optimizer
    state.  Returns the compiled program's tril_updates (by param name)
    after its first step and after the rest."""
    out = []
    for compiled in (False, True):
        csvi.clear_param_store()
        csvi.set_rng_seed(11)
        svi = SVI(model, guide(), make_optim(), Trace_ELBO())
        svi.step(*args)  # params and optimizer state exist from here
        if state is not None:
            svi.optim.set_state(state(svi.optim.get_state()))
        updates = None
        if compiled:
            program = svi.compile(*args)
            updates = []
            for n in (1, steps - 1):
                program.run(n)
                updates.append({program._names[k]: d
                                for k, d in program._program.tril_updates().items()})
        else:
            for _ in range(steps):
                svi.step(*args)
        store = csvi.get_param_store()
        params = {n: store.unconstrained(n).copy() for n in store.names()}
        out.append((params, svi.optim.get_state(), updates))
    (eager, eager_state, _), (params, state, updates) = out
    assert sorted(params) == sorted(eager)
    for name in eager:
        np.testing.assert_array_equal(params[name], eager[name], err_msg=name)
        assert np.array_equal(np.signbit(params[name]), np.signbit(eager[name])), name
    assert_same_state(state, eager_state)
    return updates


def assert_same_state(a, b):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_state(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
        assert np.array_equal(np.signbit(a), np.signbit(b))
    else:
        assert a == b


def mvn_guide():
    return AutoMultivariateNormal(regression)


@pytest.mark.parametrize("optim_args", [
    {"lr": 0.05},
    {"lr": 0.05, "amsgrad": True},
    {"lr": 0.02, "betas": (0.5, 0.9), "eps": 1e-3},
])
def test_adam_updates_below_the_diagonal_only_and_matches_eager(fresh_store, optim_args):
    updates = run_both(regression, mvn_guide, lambda: Adam(optim_args), args=(X, Y))
    assert updates == [{SCALE_TRIL: 6}] * 2


def test_stacked_factors_update_each_matrix_below_its_diagonal(fresh_store):
    updates = run_both(stacked_model, lambda: stacked_guide, lambda: Adam({"lr": 0.05}))
    assert updates == [{"tril": 3}] * 2


@pytest.mark.parametrize("make_optim", [
    lambda: Adam({"lr": 0.05, "weight_decay": 0.1}),      # decay moves the upper part
    lambda: Adam({"lr": 0.05}, clip_args={"clip_norm": 0.5}),
    lambda: ClippedAdam({"lr": 0.05}),
    lambda: Adam({"lr": 0.05, "maximize": True}),
])
def test_other_updates_run_whole_and_match_eager(fresh_store, make_optim):
    assert run_both(regression, mvn_guide, make_optim, args=(X, Y)) == [{}] * 2


@pytest.mark.parametrize("upper,later", [(-0.0, {SCALE_TRIL: 6}), (1e-3, {})])
def test_moments_above_the_diagonal_make_the_run_update_whole(fresh_store, upper, later):
    """Moments loaded with anything but +0 on or above the diagonal keep a
    run on the whole update: a -0 (which the update turns +0) for one step,
    a number for as long as it decays."""
    def load(state):
        moments = [v for v in state[SCALE_TRIL].values() if isinstance(v, np.ndarray)]
        assert len(moments) == 2  # exp_avg, exp_avg_sq
        moments[1][0, 3] = upper
        return state
    updates = run_both(regression, mvn_guide, lambda: Adam({"lr": 0.05}), state=load,
                       args=(X, Y))
    assert updates == [{}, later]
