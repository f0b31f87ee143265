"""Autoguides (csvi.infer.autoguide) against exact posteriors of conjugate
models (tests/conjugate.py), their guide densities against SciPy, their
gradients against finite differences, and Pyro's names, shapes and errors."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logit, ndtri

import csvi
import csvi.distributions as dist
from csvi import handlers
from csvi.infer import SVI, Trace_ELBO
from csvi.infer.autoguide import (
    AutoCallable, AutoDelta, AutoDiagonalNormal, AutoGuideList, AutoNormal,
    init_to_feasible, init_to_mean, init_to_median, init_to_sample, init_to_uniform,
    init_to_value,
)
from csvi.optim import SGD, Adam, ClippedAdam

import conjugate as cj

pytestmark = pytest.mark.usefixtures("fresh_store")

MEAN_FIELD = [AutoNormal, AutoDiagonalNormal]


def fit(model, guide, *args, steps=8000, lr=0.05, particles=4, decay=0.01):
    """Compiled SVI with a learning rate decaying by `decay` over the run, so
    the params settle at the optimum rather than jitter around it."""
    svi = SVI(model, guide, ClippedAdam({"lr": lr, "lrd": decay ** (1.0 / steps)}),
              Trace_ELBO(num_particles=particles))
    svi.run(steps, *args, compile=True, progress_bar=False)


def unconstrained_loc_scale(guide):
    """{site: (loc, scale)} of a mean-field guide's Normal on the reals."""
    store = csvi.get_param_store()
    if isinstance(guide, AutoNormal):
        return {name: (store[f"AutoNormal.locs.{name}"].numpy(),
                       store[f"AutoNormal.scales.{name}"].numpy())
                for name in guide.prototype_trace.stochastic_nodes}
    loc = store["AutoDiagonalNormal.loc"].numpy()
    scale = store["AutoDiagonalNormal.scale"].numpy()
    out, pos = {}, 0
    for name in guide.prototype_trace.stochastic_nodes:
        shape = guide._unconstrained_shapes[name]
        size = int(np.prod(shape))
        out[name] = (loc[pos:pos + size].reshape(shape), scale[pos:pos + size].reshape(shape))
        pos += size
    return out


# ---- exact posteriors -------------------------------------------------------

@pytest.mark.parametrize("guide_cls", MEAN_FIELD)
def test_normal_normal_posterior(guide_cls):
    guide = guide_cls(cj.normal_normal)
    fit(cj.normal_normal, guide, cj.NN_DATA)
    mean, sd = cj.normal_normal_posterior(cj.NN_DATA)
    loc, scale = unconstrained_loc_scale(guide)["z"]
    assert abs(loc - mean) < 0.1 * sd
    assert abs(scale / sd - 1) < 0.1


@pytest.mark.parametrize("guide_cls", MEAN_FIELD)
def test_regression_mean_field_optimum(guide_cls):
    guide = guide_cls(cj.regression)
    fit(cj.regression, guide, cj.REG_X, cj.REG_Y)
    mean, prec = cj.regression_posterior(cj.REG_X, cj.REG_Y)
    mf_sd = 1.0 / np.sqrt(np.diag(prec))
    # the design is correlated: mean-field sds fall well below the exact ones
    assert np.min(mf_sd / np.sqrt(np.diag(np.linalg.inv(prec)))) < 0.6
    loc, scale = unconstrained_loc_scale(guide)["w"]
    np.testing.assert_array_less(np.abs(loc - mean), 0.1 * mf_sd)
    np.testing.assert_array_less(np.abs(scale / mf_sd - 1), 0.1)


@pytest.mark.parametrize("guide_cls", MEAN_FIELD)
def test_gamma_poisson_lognormal_optimum(guide_cls):
    guide = guide_cls(cj.gamma_poisson)
    fit(cj.gamma_poisson, guide, cj.COUNTS)
    alpha, beta = cj.gamma_poisson_posterior(cj.COUNTS)
    opt_loc, opt_scale = cj.lognormal_optimum(alpha, beta)
    loc, scale = unconstrained_loc_scale(guide)["rate"]
    assert abs(loc - opt_loc) < 0.1 * opt_scale
    assert abs(scale / opt_scale - 1) < 0.1
    q_mean = np.exp(loc + scale ** 2 / 2)
    assert abs(q_mean - alpha / beta) < 0.1 * np.sqrt(alpha) / beta


def test_autodelta_finds_the_constrained_mode():
    guide = AutoDelta(cj.gamma_poisson)
    fit(cj.gamma_poisson, guide, cj.COUNTS, particles=1)
    alpha, beta = cj.gamma_poisson_posterior(cj.COUNTS)
    rate = csvi.get_param_store()["AutoDelta.rate"].item()
    assert rate == pytest.approx((alpha - 1) / beta, rel=1e-4)  # not the mode of log(rate)
    assert guide.median()["rate"].item() == rate


@pytest.mark.parametrize("model,args,posterior", [
    (cj.normal_normal, (cj.NN_DATA,), lambda: cj.normal_normal_posterior(cj.NN_DATA)[0]),
    (cj.regression, (cj.REG_X, cj.REG_Y), lambda: cj.regression_posterior(cj.REG_X, cj.REG_Y)[0]),
], ids=["normal_normal", "regression"])
def test_autodelta_gaussian_map_is_the_mean(model, args, posterior):
    guide = AutoDelta(model)
    fit(model, guide, *args, particles=1)
    (value,) = guide.median(*args).values()
    np.testing.assert_allclose(value.numpy(), posterior(), rtol=1e-4, atol=1e-6)


def test_autonormal_subsampled_local_latents():
    """Local latents follow the plate's subsample: full-size params, and the
    fit of the subsampled ELBO is the mean-field optimum of the whole model."""
    guide = AutoNormal(cj.hierarchical)
    fit(cj.hierarchical, guide, cj.H_DATA, 4, steps=20000)
    store = csvi.get_param_store()
    assert store["AutoNormal.locs.z"].shape == (8,)
    assert store["AutoNormal.scales.z"].shape == (8,)
    mean, prec = cj.hierarchical_posterior(cj.H_DATA)
    mf_sd = 1.0 / np.sqrt(np.diag(prec))
    ls = unconstrained_loc_scale(guide)
    loc = np.concatenate([[ls["mu"][0]], ls["z"][0]])
    scale = np.concatenate([[ls["mu"][1]], ls["z"][1]])
    np.testing.assert_array_less(np.abs(loc - mean), 0.1 * mf_sd)
    np.testing.assert_array_less(np.abs(scale / mf_sd - 1), 0.1)


def test_subsampled_guide_replays_its_indices_into_the_model():
    guide = AutoNormal(cj.hierarchical)
    guide_tr = handlers.trace(guide).get_trace(cj.H_DATA, 3)
    model_tr = handlers.trace(handlers.replay(cj.hierarchical, trace=guide_tr)).get_trace(
        cj.H_DATA, 3)
    idx = guide_tr.nodes["data"]["value"]
    np.testing.assert_array_equal(model_tr.nodes["data"]["value"], idx)
    assert guide_tr.nodes["z"]["value"].shape == (3,)
    np.testing.assert_array_equal(guide_tr.nodes["AutoNormal.locs.z"]["value"].numpy(),
                                  csvi.get_param_store()["AutoNormal.locs.z"].numpy()[idx])
    assert model_tr.nodes["x"]["scale"] == 8 / 3


def test_autodelta_subsampled_map():
    guide = AutoDelta(cj.hierarchical)
    fit(cj.hierarchical, guide, cj.H_DATA, 4, steps=20000, particles=1, decay=1e-3)
    mean, prec = cj.hierarchical_posterior(cj.H_DATA)
    med = guide.median()
    np.testing.assert_array_less(
        np.abs(np.concatenate([[med["mu"].item()], med["z"].numpy()]) - mean),
        0.1 / np.sqrt(np.diag(prec)))


@pytest.mark.parametrize("guide_cls", [AutoNormal, AutoDiagonalNormal, AutoDelta])
def test_compiled_run_matches_eager_steps(guide_cls):
    def run(compile):
        csvi.clear_param_store()
        csvi.set_rng_seed(5)
        guide = guide_cls(cj.gamma_poisson)
        svi = SVI(cj.gamma_poisson, guide, Adam({"lr": 0.05}), Trace_ELBO())
        losses = svi.run(30, cj.COUNTS, compile=compile, progress_bar=False).losses
        return losses, {k: v.numpy().copy() for k, v in csvi.get_param_store().items()}

    eager, compiled = run(False), run(True)
    np.testing.assert_array_equal(eager[0], compiled[0])
    assert eager[1].keys() == compiled[1].keys()
    for name in eager[1]:
        np.testing.assert_array_equal(eager[1][name], compiled[1][name])


# ---- the guide's density and gradients ---------------------------------------

def constrained_model():
    """Latents on four supports: exp, sigmoid, an affine-sigmoid interval, and
    a vector of positives (an Independent support)."""
    csvi.sample("rate", dist.Gamma(2.0, 1.0))
    csvi.sample("p", dist.Beta(2.0, 3.0))
    csvi.sample("u", dist.Uniform(-1.0, 2.0))
    csvi.sample("v", dist.Gamma(np.full(3, 2.0), 1.0).to_event(1))


def set_params(guide_cls, rng):
    """Run the guide once, then give its unconstrained params random values."""
    guide = guide_cls(constrained_model)
    guide()
    store = csvi.get_param_store()
    for name in store.keys():
        x = store.unconstrained(name)
        x[...] = rng.normal(0.0, 0.5, x.shape)
    return guide


def log_q_exact(loc, scale, value):
    """log q of each site from SciPy: the Normal density of the value mapped
    back to the reals, times |d(inverse map)/d(value)|."""
    out = {}
    z = value["rate"]
    out["rate"] = stats.norm.logpdf(np.log(z), loc["rate"], scale["rate"]) - np.log(z)
    p = value["p"]
    out["p"] = stats.norm.logpdf(logit(p), loc["p"], scale["p"]) - np.log(p * (1 - p))
    w = (value["u"] + 1.0) / 3.0
    out["u"] = (stats.norm.logpdf(logit(w), loc["u"], scale["u"]) - np.log(w * (1 - w))
                - np.log(3.0))
    v = value["v"]
    out["v"] = np.sum(stats.norm.logpdf(np.log(v), loc["v"], scale["v"]) - np.log(v))
    return out


@pytest.mark.parametrize("guide_cls", MEAN_FIELD)
def test_guide_density_is_that_of_the_constrained_value(guide_cls):
    guide = set_params(guide_cls, np.random.default_rng(0))
    tr = handlers.trace(guide).get_trace()
    tr.compute_log_prob()
    ls = unconstrained_loc_scale(guide)
    value = {name: tr.nodes[name]["value"].numpy() for name in ls}
    exact = log_q_exact({k: v[0] for k, v in ls.items()}, {k: v[1] for k, v in ls.items()},
                        value)
    aux = [n for n, s in tr.nodes.items() if s["type"] == "sample" and s["infer"].get("is_auxiliary")]
    total = sum(float(tr.nodes[n]["log_prob"].sum()) for n in aux)
    total += sum(float(tr.nodes[n]["log_prob"]) for n in ls)
    assert total == pytest.approx(sum(exact.values()), rel=1e-10)
    if guide_cls is AutoNormal:  # one Normal per site: the pairs match site by site
        for name in ls:
            pair = (float(tr.nodes[name + "_unconstrained"]["log_prob"])
                    + float(tr.nodes[name]["log_prob"]))
            assert pair == pytest.approx(exact[name], rel=1e-10), name


@pytest.mark.parametrize("guide_cls", MEAN_FIELD + [AutoDelta])
def test_elbo_gradient_matches_finite_differences(guide_cls):
    """With the seed fixed the loss is a smooth function of the unconstrained
    params; one SGD step with lr 1 moves each by minus its gradient."""
    guide = set_params(guide_cls, np.random.default_rng(1))
    store = csvi.get_param_store()
    names = list(store.keys())
    start = {n: store.unconstrained(n).copy() for n in names}
    svi = SVI(constrained_model, guide, SGD({"lr": 1.0}), Trace_ELBO())

    def loss():
        csvi.set_rng_seed(3)
        return svi.evaluate_loss()

    csvi.set_rng_seed(3)
    svi.step()
    grads = {n: start[n] - store.unconstrained(n) for n in names}
    for name in names:
        store.unconstrained(name)[...] = start[name]
    for name in names:
        grad = grads[name]
        numeric = np.zeros_like(grad)
        x = store.unconstrained(name)
        for i in np.ndindex(x.shape):
            x[i] = start[name][i] + 1e-6
            up = loss()
            x[i] = start[name][i] - 1e-6
            down = loss()
            x[i] = start[name][i]
            numeric[i] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6, err_msg=name)


# ---- Pyro's names, traces and methods ---------------------------------------

@pytest.mark.parametrize("guide_cls,params,sites", [
    (AutoNormal, ["AutoNormal.locs.rate", "AutoNormal.scales.rate"],
     ["rate_unconstrained", "rate"]),
    (AutoDiagonalNormal, ["AutoDiagonalNormal.loc", "AutoDiagonalNormal.scale"],
     ["_AutoDiagonalNormal_latent", "rate"]),
    (AutoDelta, ["AutoDelta.rate"], ["rate"]),
])
def test_param_and_site_names(guide_cls, params, sites):
    guide = guide_cls(cj.gamma_poisson)
    tr = handlers.trace(guide).get_trace(cj.COUNTS)  # the model's sites stay hidden
    assert [n for n, s in tr.nodes.items() if s["type"] == "param"] == params
    assert [n for n, s in tr.nodes.items() if s["type"] == "sample"] == sites
    assert sorted(csvi.get_param_store().keys()) == sorted(params)
    result = guide(cj.COUNTS)
    assert list(result) == ["rate"] and result["rate"].shape == ()


def test_median_quantiles_and_posterior():
    guide = set_params(AutoNormal, np.random.default_rng(2))
    store = csvi.get_param_store()
    loc, scale = store["AutoNormal.locs.rate"].item(), store["AutoNormal.scales.rate"].item()
    assert guide.median()["rate"].item() == pytest.approx(np.exp(loc))
    qs = guide.quantiles([0.1, 0.5, 0.9])
    np.testing.assert_allclose(qs["rate"].numpy(),
                               stats.lognorm.ppf([0.1, 0.5, 0.9], scale, scale=np.exp(loc)))
    p_loc = store["AutoNormal.locs.p"].item()
    p_scale = store["AutoNormal.scales.p"].item()
    np.testing.assert_allclose(qs["p"].numpy(), expit(p_loc + p_scale * ndtri([0.1, 0.5, 0.9])))
    assert qs["v"].shape == (3, 3)
    with pytest.raises(ValueError, match=r"quantiles must be in \[0, 1\]"):
        guide.quantiles([1.5])

    csvi.clear_param_store()
    diag = set_params(AutoDiagonalNormal, np.random.default_rng(2))
    loc = store["AutoDiagonalNormal.loc"].numpy()
    scale = store["AutoDiagonalNormal.scale"].numpy()
    posterior = diag.get_posterior()
    assert isinstance(posterior, dist.Independent)
    assert posterior.batch_shape == () and posterior.event_shape == (6,)
    x = np.linspace(-1, 1, 6)
    assert float(posterior.log_prob(x)) == pytest.approx(
        stats.norm.logpdf(x, loc, scale).sum())
    med = diag.median()
    np.testing.assert_allclose([med["rate"].item(), med["p"].item(), med["u"].item()],
                               [np.exp(loc[0]), expit(loc[1]), -1 + 3 * expit(loc[2])])
    np.testing.assert_allclose(med["v"].numpy(), np.exp(loc[3:]))
    qs = diag.quantiles([0.25, 0.75])
    np.testing.assert_allclose(qs["v"].numpy(),
                               np.exp(loc[3:] + np.outer(ndtri([0.25, 0.75]), scale[3:])))


def test_median_before_the_guide_runs_uses_the_init_values():
    guide = AutoNormal(cj.gamma_poisson, init_loc_fn=init_to_value(values={"rate": 2.5}))
    assert guide.median(cj.COUNTS)["rate"].item() == pytest.approx(2.5)
    guide(cj.COUNTS)
    assert csvi.get_param_store()["AutoNormal.locs.rate"].item() == pytest.approx(np.log(2.5))
    assert csvi.get_param_store()["AutoNormal.scales.rate"].item() == pytest.approx(0.1)


# ---- init strategies ---------------------------------------------------------

def init_model():
    csvi.sample("g", dist.Gamma(4.0, 2.0))
    csvi.sample("b", dist.Beta(2.0, 2.0))
    csvi.sample("c", dist.HalfCauchy(1.0))
    csvi.sample("n", dist.Normal(np.full(2, 3.0), 1.0).to_event(1))


def init_values(init_loc_fn):
    guide = AutoDelta(init_model, init_loc_fn=init_loc_fn)
    return {k: v.numpy() for k, v in guide.median().items()}


def test_init_to_feasible_and_mean():
    v = init_values(init_to_feasible)
    assert (v["g"], v["b"], v["c"]) == (1.0, 0.5, 1.0)
    np.testing.assert_array_equal(v["n"], [0.0, 0.0])
    v = init_values(init_to_mean)
    assert v["g"] == 2.0 and v["b"] == 0.5
    np.testing.assert_array_equal(v["n"], [3.0, 3.0])
    assert 0 < v["c"] < np.inf  # a HalfCauchy has no mean: the median instead


def test_init_to_median_is_the_middle_prior_draw():
    # with 1001 draws the sample medians' sds are about 0.03, 0.05 and 0.04
    v = init_values(init_to_median(num_samples=1001))
    assert v["g"] == pytest.approx(stats.gamma(4.0, scale=0.5).median(), abs=0.2)
    assert v["c"] == pytest.approx(1.0, abs=0.25)
    np.testing.assert_allclose(v["n"], 3.0, atol=0.2)


def test_init_to_sample_uniform_and_value():
    v = init_values(init_to_sample)
    assert v["g"] > 0 and 0 < v["b"] < 1 and v["n"].shape == (2,)
    v = init_values(init_to_uniform(radius=0.5))
    assert abs(np.log(v["g"])) < 0.5 and abs(logit(v["b"])) < 0.5
    np.testing.assert_array_less(np.abs(v["n"]), 0.5)
    v = init_values(init_to_value(values={"g": 7.0, "n": np.array([1.0, 2.0])},
                                  fallback=init_to_feasible))
    assert v["g"] == 7.0 and v["b"] == 0.5
    np.testing.assert_array_equal(v["n"], [1.0, 2.0])
    with pytest.raises(ValueError, match="site 'b'"):
        init_values(init_to_value(values={"g": 1.0}, fallback=None))


def test_init_values_are_checked():
    with pytest.raises(ValueError, match=r"shape \(3,\) for site 'n', which needs shape \(2,\)"):
        init_values(init_to_value(values={"n": np.zeros(3)}))
    with pytest.raises(ValueError, match="outside the support of site 'g'"):
        init_values(init_to_value(values={"g": -1.0}))


def test_side_stream_leaves_the_generator_alone():
    """Setting a guide up draws from a side stream: the steps' draws are those
    of a run without the set-up."""
    csvi.set_rng_seed(4)
    expected = dist.Normal(0.0, 1.0).sample().item()
    csvi.set_rng_seed(4)
    AutoNormal(init_model, init_loc_fn=init_to_sample).median()
    assert dist.Normal(0.0, 1.0).sample().item() == expected


# ---- blocking, lists and errors ---------------------------------------------

def two_part_model(x, counts):
    z = csvi.sample("z", dist.Normal(cj.M0, cj.S0))
    with csvi.plate("data", len(x)):
        csvi.sample("x", dist.Normal(z, cj.SIGMA), obs=x)
    rate = csvi.sample("rate", dist.Gamma(cj.A, cj.B))
    with csvi.plate("counts_plate", len(counts)):
        csvi.sample("counts", dist.Poisson(rate), obs=counts)


def test_guide_list_of_blocked_autoguides():
    guide = AutoGuideList(two_part_model)
    guide.append(AutoNormal(handlers.block(two_part_model, hide=["rate"])))
    guide.append(AutoDelta(handlers.block(two_part_model, expose=["rate"])))
    fit(two_part_model, guide, cj.NN_DATA, cj.COUNTS)
    store = csvi.get_param_store()
    assert sorted(store.keys()) == ["AutoGuideList.0.locs.z", "AutoGuideList.0.scales.z",
                                    "AutoGuideList.1.rate"]
    mean, sd = cj.normal_normal_posterior(cj.NN_DATA)
    assert abs(store["AutoGuideList.0.locs.z"].item() - mean) < 0.1 * sd
    assert abs(store["AutoGuideList.0.scales.z"].item() / sd - 1) < 0.1
    alpha, beta = cj.gamma_poisson_posterior(cj.COUNTS)
    med = guide.median()
    assert med["rate"].item() == pytest.approx((alpha - 1) / beta, rel=1e-3)
    assert med["z"].item() == store["AutoGuideList.0.locs.z"].item()
    with pytest.raises(NotImplementedError, match="AutoDelta.quantiles"):
        guide.quantiles([0.5])


def test_guide_list_with_a_guide_function_and_shared_subsample():
    def local_guide(x, subsample_size):
        with guide.plates["data"]:  # the list's plate: one subsample for all parts
            loc = csvi.param("z_loc", np.zeros(len(x)), event_dim=0)
            csvi.sample("z", dist.Normal(loc, 1.0))

    guide = AutoGuideList(cj.hierarchical)
    guide.append(AutoNormal(handlers.block(cj.hierarchical, hide=["z"])))
    guide.append(local_guide)
    assert isinstance(guide[1], AutoCallable)
    tr = handlers.trace(guide).get_trace(cj.H_DATA, 3)
    assert [n for n, s in tr.nodes.items() if s["type"] == "subsample"] == ["data"]
    assert tr.nodes["z"]["value"].shape == (3,)
    model_tr = handlers.trace(handlers.replay(cj.hierarchical, trace=tr)).get_trace(cj.H_DATA, 3)
    np.testing.assert_array_equal(model_tr.nodes["data"]["value"], tr.nodes["data"]["value"])
    assert guide.median(cj.H_DATA, 3).keys() == {"mu"}


def test_auxiliary_sites_pass_the_elbo_checks_but_model_sites_must_match():
    guide = AutoNormal(handlers.block(cj.hierarchical, hide=["z"]))
    with pytest.raises(ValueError, match="site 'z' is a latent sample site of the model"):
        SVI(cj.hierarchical, guide, Adam({"lr": 0.1}), Trace_ELBO()).step(cj.H_DATA)


def test_discrete_sites_and_sequential_plates_are_refused():
    def discrete():
        csvi.sample("k", dist.Bernoulli(0.3))

    for guide_cls in (AutoNormal, AutoDiagonalNormal, AutoDelta):
        with pytest.raises(ValueError, match=r"site 'k' is discrete.*hide=\['k'\]"):
            guide_cls(discrete)()

    def sequential():
        for i in csvi.plate("data", 2):
            csvi.sample(f"z_{i}", dist.Normal(0.0, 1.0))

    with pytest.raises(NotImplementedError, match="sequential plate"):
        AutoNormal(sequential)()
    with pytest.raises(NotImplementedError, match="subsampled plate 'data'.*AutoNormal"):
        AutoDiagonalNormal(cj.hierarchical)(cj.H_DATA, 4)
    with pytest.raises(ValueError, match="init_scale"):
        AutoNormal(cj.hierarchical, init_scale=0.0)


def test_create_plates_chooses_the_subsample():
    guide = AutoNormal(cj.hierarchical,
                       create_plates=lambda x, n: csvi.plate("data", 8, subsample=np.array([1, 5])))
    tr = handlers.trace(guide).get_trace(cj.H_DATA, 2)
    np.testing.assert_array_equal(tr.nodes["data"]["value"], [1, 5])
    locs = csvi.get_param_store()["AutoNormal.locs.z"].numpy()
    assert locs.shape == (8,)
    np.testing.assert_array_equal(tr.nodes["AutoNormal.locs.z"]["value"].numpy(), locs[[1, 5]])
    model_tr = handlers.trace(handlers.replay(cj.hierarchical, trace=tr)).get_trace(cj.H_DATA, 2)
    np.testing.assert_array_equal(model_tr.nodes["data"]["value"], [1, 5])


@pytest.mark.parametrize("guide_cls", [AutoNormal, AutoDelta])
def test_subsampled_outer_plate_with_event_dims(guide_cls):
    """Params are full size along a subsampled plate at dim -2 and indexed by
    its subsample, left of the site's event dims."""
    def model(subsample_size):
        with csvi.plate("groups", 6, subsample_size=subsample_size, dim=-2) as idx:
            csvi.sample("v", dist.Gamma(np.full(3, 2.0), 1.0).to_event(1))
            with csvi.plate("k", 2, dim=-1):
                csvi.sample("u", dist.Beta(2.0, 2.0))
                csvi.sample("obs", dist.Normal(0.0, 1.0), obs=np.zeros((len(idx), 2)))

    guide = guide_cls(model)
    tr = handlers.trace(guide).get_trace(3)
    idx = tr.nodes["groups"]["value"]
    assert tr.nodes["v"]["value"].shape == (3, 1, 3) and tr.nodes["u"]["value"].shape == (3, 2)
    med = guide.median()
    assert med["v"].shape == (6, 1, 3) and med["u"].shape == (6, 2)
    if guide_cls is AutoDelta:
        np.testing.assert_array_equal(tr.nodes["v"]["value"].numpy(), med["v"].numpy()[idx])
    else:
        loc = csvi.get_param_store()["AutoNormal.locs.u"].numpy()
        np.testing.assert_array_equal(tr.nodes["AutoNormal.locs.u"]["value"].numpy(), loc[idx])


def test_supports_bounded_by_parameter_arrays(fresh_store):
    """Uniform with array bounds and Pareto with an array scale have
    array-bounded interval supports, which biject_to maps: AutoNormal's draws
    and median stay inside them."""
    low, high, scale = np.array([0.0, 1.0]), np.array([2.0, 5.0]), np.array([1.0, 3.0])

    def model():
        csvi.sample("u", dist.Uniform(csvi.tensor(low), csvi.tensor(high)).to_event(1))
        csvi.sample("p", dist.Pareto(csvi.tensor(scale), 3.0).to_event(1))

    guide = AutoNormal(model)
    SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO()).run(50)
    for _ in range(20):
        draws = guide()
        u, p = draws["u"].numpy(), draws["p"].numpy()
        assert np.all((u > low) & (u < high)) and np.all(p > scale)
    median = guide.median()
    assert np.all((median["u"].numpy() > low) & (median["u"].numpy() < high))
