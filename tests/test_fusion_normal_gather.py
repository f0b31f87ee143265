"""Fusion of an observed `Normal(a[group], s)` summed by the ELBO into one
kernel, NORMAL_GATHER_SUM (fuse.c, dist_normal.c): its value against
scipy.stats, its gradients against central differences, and fused programs
against unfused ones and eager steps, bit for bit; and an eager sweep for
the leaves only (an SVI step), which runs the chain as that kernel's VJP."""
import numpy as np
import pytest
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi import _core, constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.infer.autoguide import AutoNormal
from csvi.infer.compiled import CompiledSVI
from csvi.optim import SGD, Adam

FUSED = "NORMAL_GATHER_SUM"


ORDERS = ["sorted", "shuffled", "runs", "sorted_uneven"]


def data(groups, per_group, order, seed=0):
    """order "runs": runs of 1-7 equal indices in a shuffled order, so runs
    differ in length and a position's runs lie apart (the VJP sums runs side
    by side).  "sorted_uneven": sorted, groups of 1 to 2 * per_group points
    and one of half the points, which spans whole stretches of the VJP's
    side-by-side walk (dist_normal.c, GATHER_VJP_LANES)."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), per_group)
    if order == "sorted_uneven":
        counts = rng.integers(1, 2 * per_group + 1, size=groups)
        counts[groups // 3] = max(groups * per_group // 2, 1)
        group = np.repeat(np.arange(groups), counts)
    elif order == "shuffled":
        rng.shuffle(group)
    elif order == "runs":
        cuts = np.cumsum(rng.integers(1, 8, size=group.size))
        pieces = np.split(group, cuts[cuts < group.size])
        group = np.concatenate([pieces[i] for i in rng.permutation(len(pieces))])
    y = rng.normal(size=groups)[group] + rng.normal(size=group.size)
    return y, group


def params_model(learned_scale):
    """Params only: the loss is minus the likelihood itself."""
    def model(y, group, a0):
        a = csvi.param("a", a0)
        s = csvi.param("s", 1.7, constraint=constraints.positive) if learned_scale else 1.7
        with csvi.plate("data", len(y)):
            csvi.sample("y", dist.Normal(a[group], s), obs=y)
    return model


def no_guide(*args):
    pass


def one_step(model, *args):
    """(loss, {param: lr-1 SGD step}, op names) of one compiled step."""
    csvi.clear_param_store()
    program = SVI(model, no_guide, SGD({"lr": 1.0}), Trace_ELBO()).compile(*args)
    store = csvi.get_param_store()
    before = {k: store.unconstrained(k).copy() for k in store.names()}
    loss = program.run(1)[0]
    steps = {k: before[k] - store.unconstrained(k) for k in store.names()}
    return loss, steps, program._tape.op_names()


@pytest.mark.parametrize("learned_scale", [False, True])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n_groups,per_group", [(1, 1), (7, 3), (300, 20)])
def test_value_matches_scipy_and_gradients_match_central_differences(
        n_groups, per_group, order, learned_scale):
    y, group = data(n_groups, per_group, order)
    a0 = np.linspace(-1.0, 1.0, n_groups)
    loss, steps, ops = one_step(params_model(learned_scale), y, group, a0)
    assert FUSED in ops and "GATHER" not in ops

    def reference(a, s=1.7):
        return -st.norm.logpdf(y, a[group], s).sum()

    np.testing.assert_allclose(loss, reference(a0), rtol=1e-12)
    h = 1e-6
    for i in np.random.default_rng(1).choice(n_groups, size=min(n_groups, 5), replace=False):
        yi = y[group == i]  # the loss is a sum over points: difference group i's terms
        fd = (-st.norm.logpdf(yi, a0[i] + h, 1.7).sum()
              + st.norm.logpdf(yi, a0[i] - h, 1.7).sum()) / (2 * h)
        np.testing.assert_allclose(steps["a"][i], fd, rtol=1e-6, atol=1e-7)
    if learned_scale:  # unconstrained u = log s: d/du = s d/ds
        fd = (reference(a0, 1.7 + h) - reference(a0, 1.7 - h)) / (2 * h)
        np.testing.assert_allclose(steps["s"], 1.7 * fd, rtol=1e-6)


def test_an_empty_likelihood_is_not_fused():
    # the fused op's output reuses the log-density's slot as the scalar sum,
    # which an empty plate's slot cannot hold
    empty = np.zeros(0)
    loss, steps, ops = one_step(params_model(False), empty, empty.astype(int), np.zeros(3))
    assert FUSED not in ops and loss == 0.0
    np.testing.assert_array_equal(steps["a"], 0.0)


def hierarchical(y, group, groups, learned_scale=False):
    mu = csvi.sample("mu", dist.Normal(0.0, 5.0))
    sigma = csvi.sample("sigma", dist.HalfNormal(2.0))
    with csvi.plate("groups", groups):
        a = csvi.sample("a", dist.Normal(mu, sigma))
    s = csvi.param("s", 1.0, constraint=constraints.positive) if learned_scale else 1.0
    with csvi.plate("data", len(y)):
        csvi.sample("y", dist.Normal(a[group], s), obs=y)


def run(how, args, particles, steps=12):
    csvi.clear_param_store()
    csvi.set_rng_seed(3)
    svi = SVI(hierarchical, AutoNormal(hierarchical), Adam({"lr": 0.05}),
              Trace_ELBO(num_particles=particles))
    if how == "eager":
        losses = np.array([svi.step(*args) for _ in range(steps)])
    else:
        program = CompiledSVI(svi, args, {}, fuse=how == "fused")
        assert (FUSED in program._tape.op_names()) == (how == "fused")
        losses = program.run(steps)
    store = csvi.get_param_store()
    return losses, {k: store.unconstrained(k).copy() for k in store.names()}


@pytest.mark.parametrize("learned_scale", [False, True])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("particles", [1, 3])
def test_fusion_changes_no_bit_of_a_compiled_run(particles, order, learned_scale):
    y, group = data(40, 130, order)  # 5,200 points: the sum runs in chunks
    args = (y, group, 40, learned_scale)
    runs = {how: run(how, args, particles) for how in ("fused", "unfused", "eager")}
    hows = ("unfused", "eager") if particles == 1 else ("unfused",)
    for how in hows:
        np.testing.assert_array_equal(runs["fused"][0], runs[how][0], err_msg=how)
        for k, v in runs[how][1].items():
            np.testing.assert_array_equal(runs["fused"][1][k], v, err_msg=f"{how} {k}")


def ops_of(model, *args):
    csvi.clear_param_store()
    return SVI(model, no_guide, SGD({"lr": 0.1}), Trace_ELBO()).compile(*args)._tape.op_names()


def test_chains_that_cannot_fuse_stay_as_they_are():
    y, group = data(5, 4, False)
    a0 = np.zeros(5)

    def locs_read_elsewhere(y):
        locs = csvi.param("a", a0)[group]
        csvi.sample("y", dist.Normal(locs, 1.0), obs=y)
        csvi.factor("penalty", -(locs * locs).sum())

    def value_with_gradient(y):
        a = csvi.param("a", a0)
        csvi.factor("y", dist.Normal(a[group], 1.0).log_prob(csvi.param("v", y)))

    def scale_per_point(y):
        csvi.sample("y", dist.Normal(csvi.param("a", a0)[group], np.full(len(y), 2.0)), obs=y)

    def scaled(y):
        with csvi.plate("data", len(y), subsample_size=len(y) // 2) as idx:
            csvi.sample("y", dist.Normal(csvi.param("a", a0)[group][idx], 1.0), obs=y[idx])

    def scale_with_prior(y):
        # the scale's prior reads it between the gather and the likelihood: its
        # gradient would be summed in another order, so this stays unfused
        s = csvi.param("s", 1.0, constraint=constraints.positive)
        locs = csvi.param("a", a0)[group]
        csvi.factor("prior", dist.HalfNormal(1.0).log_prob(s))
        csvi.sample("y", dist.Normal(locs, s), obs=y)

    for model in (locs_read_elsewhere, value_with_gradient, scale_per_point, scaled,
                  scale_with_prior):
        ops = ops_of(model, y)
        assert FUSED not in ops, model.__name__
        assert "NORMAL_LP" in ops, model.__name__


def sweep_grads(model, guide, args, intermediate_grads):
    """The leaves' gradients of one recorded ELBO, swept with or without the
    intermediates' (the fused sweep an SVI step runs), and the chains fused."""
    csvi.clear_param_store()
    csvi.set_rng_seed(3)
    tape = _core.Tape(record_all=True)
    _, surrogate, _ = _core.record_call(tape, Trace_ELBO().loss_tensors, model, guide, args, {})
    store = csvi.get_param_store()
    tape.backward(surrogate, False, intermediate_grads=intermediate_grads)
    grads = {k: np.array(tape.grad_of(store.leaf(k))) for k in store.names()}
    return grads, tape.fused_in_last_sweep


@pytest.mark.parametrize("learned_scale", [False, True])
@pytest.mark.parametrize("order", ORDERS)
def test_an_eager_sweep_for_the_leaves_runs_the_chain_fused_with_the_same_bits(
        order, learned_scale):
    y, group = data(40, 130, order)
    args = (y, group, 40, learned_scale)
    guide = AutoNormal(hierarchical)
    full, none_fused = sweep_grads(hierarchical, guide, args, True)
    leaves, fused = sweep_grads(hierarchical, guide, args, False)
    assert (none_fused, fused) == (0, 1)
    assert full.keys() == leaves.keys()
    for k in full:
        np.testing.assert_array_equal(leaves[k], full[k], err_msg=k)


def test_an_eager_sweep_leaves_chains_that_cannot_fuse_as_they_are():
    y, group = data(5, 4, "sorted")
    a0 = np.linspace(-1.0, 1.0, 5)

    def locs_read_elsewhere(y):
        locs = csvi.param("a", a0)[group]
        csvi.sample("y", dist.Normal(locs, 1.0), obs=y)
        csvi.factor("penalty", -(locs * locs).sum())

    def scale_with_prior(y):
        s = csvi.param("s", 1.3, constraint=constraints.positive)
        locs = csvi.param("a", a0)[group]
        csvi.factor("prior", dist.HalfNormal(1.0).log_prob(s))
        csvi.sample("y", dist.Normal(locs, s), obs=y)

    for model in (locs_read_elsewhere, scale_with_prior):
        full, _ = sweep_grads(model, no_guide, (y,), True)
        leaves, fused = sweep_grads(model, no_guide, (y,), False)
        assert fused == 0, model.__name__
        for k in full:
            np.testing.assert_array_equal(leaves[k], full[k], err_msg=f"{model.__name__} {k}")
