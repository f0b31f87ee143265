"""Autoguides (csvi.infer.autoguide) against exact posteriors of conjugate
models (tests/conjugate.py), their guide densities against SciPy, their
gradients against finite differences, and Pyro's names, shapes and errors."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logit, ndtri

import csvi
import csvi.distributions as dist
from csvi import constraints, handlers
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


def fit(model, guide, *args, steps=8000, lr=0.05, particles=4):
    """Compiled SVI with a learning rate decaying 100-fold, so the params
    settle at the optimum rather than jitter around it."""
    svi = SVI(model, guide, ClippedAdam({"lr": lr, "lrd": 0.01 ** (1.0 / steps)}),
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
    fit(cj.hierarchical, guide, cj.H_DATA, 4, steps=20000, particles=1)
    mean, _ = cj.hierarchical_posterior(cj.H_DATA)
    med = guide.median()
    np.testing.assert_allclose(np.concatenate([[med["mu"].item()], med["z"].numpy()]), mean,
                               atol=2e-3)


@pytest.mark.parametrize("guide_cls", [AutoNormal, AutoDiagonalNormal, AutoDelta])
def test_compiled_run_matches_eager_steps(guide_cls):
    def run(compile):
        csvi.clear_param_store()
        csvi.set_rng_seed(5)
        guide = guide_cls(cj.gamma_poisson)
        svi = SVI(cj.gamma_poisson, guide, Adam({"lr": 0.05}), Trace_ELBO())
        losses = svi.run(30, cj.COUNTS, compile=compile, progress_bar=False)
        return losses, {k: v.numpy().copy() for k, v in csvi.get_param_store().items()}

    eager, compiled = run(False), run(True)
    np.testing.assert_array_equal(eager[0], compiled[0])
    assert eager[1].keys() == compiled[1].keys()
    for name in eager[1]:
        np.testing.assert_array_equal(eager[1][name], compiled[1][name])
