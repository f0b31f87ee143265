"""TraceGraph_ELBO: each score-function term multiplies only the costs that
depend on its site (Pyro's provenance), checked against the surrogate written
out with scipy; its gradient is unbiased (against the exact ELBO gradient)
and has lower variance than Trace_ELBO's; baselines as in Pyro's SVI Part
III."""
import numpy as np
import pytest
from scipy import stats

import csvi
import csvi.distributions as dist
from csvi import _core, handlers
from csvi.distributions.testing.fakes import NonreparameterizedNormal
from csvi.infer import SVI, Trace_ELBO, TraceGraph_ELBO
from csvi.optim import Adam, SGD

import models

Y = models.SIBLING_Y


def test_provenance_follows_data_flow():
    tape = _core.Tape(record_all=True)

    def body():
        a = csvi.tensor([1.0, 2.0])
        b = csvi.tensor(3.0)
        c = csvi.exp(a) + 1.0
        d = b * 2.0
        e = csvi.sum(c) + d
        return _core.provenance([a, b], [a, c, d, e, csvi.tensor(0.0) * 0.0])

    assert _core.record_call(tape, body) == [
        frozenset({0}), frozenset({0}), frozenset({1}), frozenset({0, 1}), frozenset()]


sibling_model, sibling_guide = models.sibling_plates, models.sibling_plates_guide


def test_surrogate_keeps_only_downstream_costs(fresh_store):
    with handlers.seed(rng_seed=3):
        loss, surrogate, traces = TraceGraph_ELBO().loss_tensors(sibling_model, sibling_guide,
                                                                 (Y,), {})
    t = models.sibling_plates_terms(traces[0][1])
    lp_b, lq_b, lp_z, lq_z, lp_obs = t["lp_b"], t["lq_b"], t["lp_z"], t["lq_z"], t["lp_obs"]
    model_lp = lp_b.sum() + lp_z.sum() + lp_obs.sum()
    # b's cost is its own log p/q; z's is its own and its observation's, per element
    expected = model_lp + (lq_b * (lp_b - lq_b)).sum() + (lq_z * (lp_z - lq_z + lp_obs)).sum()
    assert float(loss) == pytest.approx(-(model_lp - lq_b.sum() - lq_z.sum()), rel=1e-12)
    assert float(surrogate) == pytest.approx(-expected, rel=1e-12)


X_OBS = np.array([0.8, -0.3])


def two_latent_model():
    a = csvi.sample("a", dist.Normal(0.0, 1.0))
    b = csvi.sample("b", dist.Normal(0.0, 1.0))
    csvi.sample("xa", dist.Normal(a, 1.0), obs=X_OBS[0])
    csvi.sample("xb", dist.Normal(b, 1.0), obs=X_OBS[1])


def two_latent_guide(baseline=None):
    loc_a = csvi.param("loc_a", 0.2)
    loc_b = csvi.param("loc_b", -0.1)
    csvi.sample("a", NonreparameterizedNormal(loc_a, 1.0),
                infer={} if baseline is None else {"baseline": baseline})
    csvi.sample("b", NonreparameterizedNormal(loc_b, 1.0))


def gradients(elbo, n, guide=two_latent_guide, seed=0):
    """n single-particle gradient estimates of d(-ELBO)/d(loc_a, loc_b)."""
    csvi.clear_param_store()
    csvi.set_rng_seed(seed)
    svi = SVI(two_latent_model, guide, SGD({"lr": 0.0}), elbo)
    store = csvi.get_param_store()
    out = np.empty((n, 2))
    for i in range(n):
        tape = _core.Tape(record_all=True)
        _, surrogate, _ = _core.record_call(tape, elbo.loss_tensors, two_latent_model, guide,
                                            (), {})
        tape.backward(surrogate, False)
        out[i] = [float(tape.grad_of(store.leaf("loc_a"))), float(tape.grad_of(store.leaf("loc_b")))]
    del svi
    return out


def test_gradient_is_unbiased_and_less_noisy_than_trace_elbo(fresh_store):
    # d(-ELBO)/d loc = 2 loc - x for this Normal-Normal pair with unit scales
    exact = np.array([2 * 0.2 - X_OBS[0], 2 * -0.1 - X_OBS[1]])
    graph = gradients(TraceGraph_ELBO(), 4000)
    trace = gradients(Trace_ELBO(), 4000)
    for g in (graph, trace):
        sem = g.std(0) / np.sqrt(len(g))
        assert np.all(np.abs(g.mean(0) - exact) < 4 * sem), (g.mean(0), exact, sem)
    # Trace_ELBO multiplies each score by the other latent's cost too
    assert np.all(graph.var(0) < 0.8 * trace.var(0)), (graph.var(0), trace.var(0))


def test_decaying_average_baseline_lowers_variance_and_keeps_the_mean(fresh_store):
    exact = 2 * 0.2 - X_OBS[0]
    plain = gradients(TraceGraph_ELBO(), 3000)[:, 0]
    based = gradients(TraceGraph_ELBO(), 3000, guide=lambda: two_latent_guide(
        {"use_decaying_avg_baseline": True, "baseline_beta": 0.95}))[:, 0]
    assert abs(based.mean() - exact) < 4 * based.std() / np.sqrt(len(based))
    assert based.var() < 0.7 * plain.var(), (based.var(), plain.var())
    assert "__baseline_avg_downstream_cost_a" in csvi.get_param_store()


def test_baseline_value_is_trained_towards_the_cost(fresh_store):
    """A learnable baseline_value: (cost - b)^2 in the loss moves b to the
    mean downstream cost, and the ELBO's own params still get their gradient."""
    def guide():
        baseline = csvi.param("baseline", 0.0)
        two_latent_guide({"baseline_value": baseline})

    csvi.set_rng_seed(1)
    svi = SVI(two_latent_model, guide, Adam({"lr": 0.05}), TraceGraph_ELBO())
    for _ in range(600):
        svi.step()
    store = csvi.get_param_store()
    loc_a = float(store["loc_a"].numpy())
    assert loc_a == pytest.approx(X_OBS[0] / 2, abs=0.15)
    # the mean downstream cost of a at q = N(loc_a, 1): E[log p(a) + log p(xa|a) - log q(a)]
    a = np.random.default_rng(0).normal(loc_a, 1.0, 200000)
    mean_cost = (stats.norm(0, 1).logpdf(a) + stats.norm(a, 1).logpdf(X_OBS[0])
                 - stats.norm(loc_a, 1).logpdf(a)).mean()
    assert float(store["baseline"].numpy()) == pytest.approx(mean_cost, abs=0.3)


def test_nn_baseline_module_is_trained(fresh_store):
    from csvi import nn

    net = nn.Linear(1, 1)

    def guide():
        csvi.module("baseline_net", net)
        two_latent_guide({"nn_baseline": lambda x: net(x).reshape(()),
                          "nn_baseline_input": np.ones(1)})

    csvi.set_rng_seed(2)
    svi = SVI(two_latent_model, guide, Adam({"lr": 0.05}), TraceGraph_ELBO())
    before = net.bias.numpy().copy()
    for _ in range(50):
        svi.step()
    assert not np.allclose(net.bias.numpy(), before)


@pytest.mark.parametrize("baseline, match", [
    ({"use_decaying_avg_baselin": True}, "unrecognized baseline options"),
    ({"baseline_value": 0.0, "nn_baseline": lambda x: x}, "not both"),
    ({"baseline_value": np.zeros(3)}, r"baseline has shape \(3,\)"),
    ({"use_decaying_avg_baseline": True, "baseline_beta": 1.5}, "baseline_beta"),
    ({"nn_baseline": lambda x: x}, "nn_baseline_input"),
])
def test_bad_baseline_options_name_the_site(fresh_store, baseline, match):
    svi = SVI(two_latent_model, lambda: two_latent_guide(baseline), Adam({"lr": 0.1}),
              TraceGraph_ELBO())
    with pytest.raises(ValueError, match="site 'a'.*" + match):
        svi.step()


def test_compiled_equals_eager_and_refuses_the_decaying_average(fresh_store):
    losses = {}
    for compile in (False, True):
        csvi.clear_param_store()
        csvi.set_rng_seed(5)
        svi = SVI(sibling_model, sibling_guide, Adam({"lr": 0.01}), TraceGraph_ELBO())
        losses[compile] = svi.run(30, Y, compile=compile).losses
        losses[compile, "qz"] = csvi.get_param_store()["qz"].numpy()
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-12)
    np.testing.assert_allclose(losses[True, "qz"], losses[False, "qz"], rtol=1e-12)
    svi = SVI(two_latent_model, lambda: two_latent_guide({"use_decaying_avg_baseline": True}),
              Adam({"lr": 0.1}), TraceGraph_ELBO())
    with pytest.raises(ValueError, match="compiled run"):
        svi.run(3, compile=True)
