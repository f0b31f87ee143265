"""Primitives and effect handlers, checked against Pyro's documented semantics."""
import numpy as np
import pytest
from scipy import stats

import csvi
import csvi.distributions as dist
from csvi import constraints, handlers
from models import two_site

pytestmark = pytest.mark.usefixtures("fresh_store")


def test_primitives_without_handlers_draw_and_return_obs():
    z = csvi.sample("z", dist.Normal(0.0, 1.0))
    assert isinstance(z, csvi.Tensor) and z.shape == ()
    assert csvi.sample("x", dist.Normal(0.0, 1.0), obs=3.0) == 3.0


def test_trace_records_sites_and_log_prob_sum():
    tr = handlers.trace(two_site).get_trace(1.5)
    assert list(tr.nodes) == ["z", "x", "_RETURN"]  # as Pyro, the return value too
    z = tr.nodes["z"]["value"].item()
    assert tr.nodes["x"]["is_observed"] and not tr.nodes["z"]["is_observed"]
    assert tr.nodes["x"]["fn"].loc.item() == z
    expected = stats.norm(0, 1).logpdf(z) + stats.norm(z, 2).logpdf(1.5)
    assert tr.log_prob_sum().item() == pytest.approx(expected, rel=1e-12)
    assert tr.nodes["x"]["log_prob"].item() == pytest.approx(stats.norm(z, 2).logpdf(1.5))
    assert tr.stochastic_nodes == ["z"] and tr.observation_nodes == ["x"]


def test_duplicate_site_names_raise_naming_the_site():
    def model():
        csvi.sample("a", dist.Normal(0.0, 1.0))
        csvi.sample("a", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="'a'"):
        handlers.trace(model).get_trace()


def test_replay_reuses_latent_values_but_not_observations():
    guide_tr = handlers.trace(two_site).get_trace(0.0)
    model_tr = handlers.trace(handlers.replay(two_site, trace=guide_tr)).get_trace(7.0)
    assert model_tr.nodes["z"]["value"].item() == guide_tr.nodes["z"]["value"].item()
    assert model_tr.nodes["x"]["value"] == 7.0


def test_replay_of_an_observed_site_names_it_and_a_replayed_subsample_is_reused():
    def observed(x):
        csvi.sample("z", dist.Normal(0.0, 1.0), obs=x)

    def latent(x):
        return csvi.sample("z", dist.Normal(0.0, 1.0))

    tr = handlers.trace(observed).get_trace(0.5)
    with pytest.raises(ValueError, match="replay: site 'z' is observed in the replayed trace"):
        handlers.replay(latent, trace=tr)(0.5)
    # the site's msg.infer is a copy: handlers of the replayed run may add fields
    guide_tr = handlers.trace(latent).get_trace(0.0)
    model_tr = handlers.trace(handlers.replay(latent, trace=guide_tr)).get_trace(0.0)
    assert model_tr.nodes["z"]["infer"] == guide_tr.nodes["z"]["infer"]
    assert model_tr.nodes["z"]["infer"] is not guide_tr.nodes["z"]["infer"]


def test_condition_observes_named_sites():
    tr = handlers.trace(handlers.condition(two_site, data={"z": 0.25})).get_trace(1.0)
    assert tr.nodes["z"]["is_observed"]
    assert float(tr.nodes["z"]["value"]) == 0.25
    assert tr.nodes["x"]["fn"].loc.item() == 0.25


def test_substitute_replaces_params():
    def guide():
        return csvi.param("p", 1.0, constraint=constraints.positive)

    guide()
    out = handlers.substitute(guide, data={"p": 3.0})()
    assert float(out) == 3.0


def test_block_hides_and_exposes():
    def model():
        csvi.sample("a", dist.Normal(0.0, 1.0))
        csvi.sample("b", dist.Normal(0.0, 1.0))
        csvi.param("p", 1.0)

    def sites(fn):  # the trace's sites, without the "_RETURN" node every trace has
        return [n for n in handlers.trace(fn).get_trace().nodes if n != "_RETURN"]

    assert sites(handlers.block(model)) == []
    assert sites(handlers.block(model, hide=["a"])) == ["b", "p"]
    assert sites(handlers.block(model, expose=["a"])) == ["a"]
    assert sites(handlers.block(model, expose_types=["param"])) == ["p"]
    assert sites(handlers.block(model, hide_fn=lambda m: m.type == "sample")) == ["p"]
    with pytest.raises(ValueError):
        handlers.block(model, hide=["a"], expose=["a"])


def test_scale_multiplies_log_prob():
    tr = handlers.trace(handlers.scale(two_site, scale=3.0)).get_trace(1.0)
    plain = handlers.trace(handlers.replay(two_site, trace=tr)).get_trace(1.0)
    assert tr.log_prob_sum().item() == pytest.approx(3.0 * plain.log_prob_sum().item())
    with pytest.raises(ValueError, match="positive"):
        handlers.scale(two_site, scale=-1.0)


def test_mask_drops_masked_entries():
    def model():
        with csvi.plate("data", 4):
            csvi.sample("x", dist.Normal(0.0, 1.0), obs=np.arange(4.0))

    m = np.array([True, False, True, False])
    tr = handlers.trace(handlers.mask(model, mask=m)).get_trace()
    tr.compute_log_prob()
    expected = np.where(m, stats.norm.logpdf(np.arange(4.0)), 0.0)
    np.testing.assert_allclose(tr.nodes["x"]["log_prob"].numpy(), expected, rtol=1e-12)


def test_seed_makes_draws_reproducible_and_restores_the_generator():
    a = handlers.seed(two_site, rng_seed=3)
    tr1 = handlers.trace(a).get_trace()
    tr2 = handlers.trace(handlers.seed(two_site, rng_seed=3)).get_trace()
    assert tr1.nodes["z"]["value"].item() == tr2.nodes["z"]["value"].item()
    csvi.set_rng_seed(5)
    first = csvi.sample("z", dist.Normal(0.0, 1.0)).item()
    csvi.set_rng_seed(5)
    handlers.seed(two_site, rng_seed=3)()
    assert csvi.sample("z", dist.Normal(0.0, 1.0)).item() == first


def test_nested_handlers_as_context_managers():
    with handlers.trace() as tracer:
        with handlers.scale(scale=2.0):
            two_site(0.5)
    assert tracer.trace.nodes["x"]["scale"] == 2.0


def test_plate_expands_batch_and_allocates_dims():
    def model():
        with csvi.plate("outer", 3):
            with csvi.plate("inner", 2):
                return csvi.sample("z", dist.Normal(0.0, 1.0))

    tr = handlers.trace(model).get_trace()
    z = tr.nodes["z"]
    assert z["value"].shape == (2, 3)
    assert [f.name for f in z["cond_indep_stack"]] == ["outer", "inner"]  # outermost first
    assert [f.dim for f in z["cond_indep_stack"]] == [-1, -2]


def test_plate_rejects_conflicting_batch_size():
    def model():
        with csvi.plate("data", 3):
            csvi.sample("x", dist.Normal(np.zeros(4), 1.0))

    with pytest.raises(ValueError, match="'x'.*plate 'data'"):
        handlers.trace(model).get_trace()


def test_plate_subsample_scales_and_replays_indices():
    data = np.arange(100.0)

    def model():
        with csvi.plate("data", 100, subsample_size=10) as idx:
            csvi.sample("x", dist.Normal(0.0, 1.0), obs=data[idx])
        return idx

    tr = handlers.trace(model).get_trace()
    idx = np.asarray(tr.nodes["data"]["value"])
    assert idx.dtype == np.int64
    assert len(set(idx.tolist())) == 10 and idx.min() >= 0 and idx.max() < 100
    assert tr.nodes["x"]["scale"] == pytest.approx(10.0)
    expected = 10.0 * stats.norm.logpdf(data[idx]).sum()
    assert tr.log_prob_sum().item() == pytest.approx(expected, rel=1e-12)
    replayed = handlers.trace(handlers.replay(model, trace=tr)).get_trace()
    np.testing.assert_array_equal(np.asarray(replayed.nodes["data"]["value"]), idx)


def test_subsample_indices_are_uniform_distinct_draws():
    counts = np.zeros(20)
    for _ in range(2000):
        with csvi.plate("data", 20, subsample_size=5) as idx:
            idx = np.asarray(idx)
        assert len(set(idx.tolist())) == 5
        counts[idx] += 1
    # each index is picked with probability 5/20
    expected = 2000 * 5 / 20
    assert stats.chisquare(counts, np.full(20, expected)).pvalue > 1e-3


def test_subsample_helper_gathers_rows():
    data = np.arange(30.0).reshape(10, 3)
    with csvi.plate("rows", 10, subsample_size=4) as idx:
        rows = csvi.subsample(data, event_dim=1)
    np.testing.assert_array_equal(rows.numpy(), data[np.asarray(idx)])


def test_obs_with_incompatible_shape_names_the_site():
    def model():
        with csvi.plate("data", 5):
            csvi.sample("y", dist.Normal(0.0, 1.0), obs=np.zeros(3))

    with pytest.raises(ValueError, match="'y'"):
        handlers.trace(model).get_trace().log_prob_sum()


def test_deterministic_and_factor_sites():
    def model():
        z = csvi.sample("z", dist.Normal(0.0, 1.0))
        csvi.deterministic("double", z * 2.0)
        csvi.factor("penalty", -z * z)

    tr = handlers.trace(model).get_trace()
    z = tr.nodes["z"]["value"].item()
    assert tr.nodes["double"]["value"].item() == pytest.approx(2 * z)
    expected = stats.norm.logpdf(z) - z * z
    assert tr.log_prob_sum().item() == pytest.approx(expected, rel=1e-12)


def test_param_store_constrained_values_and_persistence(tmp_path):
    p = csvi.param("scale", np.array([0.5, 2.0]), constraint=constraints.positive)
    q = csvi.param("prob", 0.25, constraint=constraints.unit_interval)
    np.testing.assert_allclose(p.numpy(), [0.5, 2.0], rtol=1e-12)
    store = csvi.get_param_store()
    assert sorted(store.names()) == ["prob", "scale"]
    np.testing.assert_allclose(store["prob"].numpy(), q.numpy())
    np.testing.assert_allclose(store.unconstrained("scale"), np.log([0.5, 2.0]), rtol=1e-12)
    path = tmp_path / "params.npz"
    store.save(path)
    csvi.clear_param_store()
    assert len(store) == 0
    store.load(path)
    np.testing.assert_allclose(csvi.param("scale").numpy(), [0.5, 2.0], rtol=1e-12)
    assert store.constraint("prob") is constraints.unit_interval


def test_param_errors():
    with pytest.raises(KeyError, match="'missing'"):
        csvi.param("missing")
    with pytest.raises(ValueError, match="'neg'"):
        csvi.param("neg", -1.0, constraint=constraints.positive)
