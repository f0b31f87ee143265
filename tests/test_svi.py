"""SVI end to end: conjugate models against their exact posteriors, the ELBO's
gradient estimators against exact gradients, and error handling."""
import functools
import math

import numpy as np
import pytest
from scipy import special, stats

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam, ClippedAdam

import models

pytestmark = pytest.mark.usefixtures("fresh_store")


def averaged_params(svi, steps, tail, names, *args):
    """Run `steps` steps and average the constrained params over the last `tail`
    (Polyak averaging: removes the optimizer's stationary jitter)."""
    store = csvi.get_param_store()
    sums = {n: 0.0 for n in names}
    for i in range(steps):
        svi.step(*args)
        if i >= steps - tail:
            for n in names:
                sums[n] += store[n].numpy()
    return {n: sums[n] / tail for n in names}


def test_beta_bernoulli_coin_posterior():
    svi = SVI(models.coin, models.coin_guide, ClippedAdam({"lr": 0.02, "lrd": 0.9995}),
              Trace_ELBO())
    p = averaged_params(svi, 6000, 2000, ["a", "b"], models.COIN)
    a, b = float(p["a"]), float(p["b"])
    exact = stats.beta(16, 14)
    assert a / (a + b) == pytest.approx(exact.mean(), rel=0.02)
    assert stats.beta(a, b).std() == pytest.approx(exact.std(), rel=0.10)


def test_normal_normal_known_variance_posterior():
    rng = np.random.default_rng(1)
    data = rng.normal(1.5, 1.0, size=20)
    prior_scale, noise = 3.0, 1.0
    post_var = 1.0 / (1.0 / prior_scale**2 + len(data) / noise**2)
    post_mean = post_var * data.sum() / noise**2

    def model(data):
        mu = csvi.sample("mu", dist.Normal(0.0, prior_scale))
        with csvi.plate("data", len(data)):
            csvi.sample("obs", dist.Normal(mu, noise), obs=data)

    def guide(data):
        loc = csvi.param("loc", 0.0)
        scale = csvi.param("scale", 1.0, constraint=constraints.positive)
        csvi.sample("mu", dist.Normal(loc, scale))

    svi = SVI(model, guide, ClippedAdam({"lr": 0.02, "lrd": 0.9995}), Trace_ELBO())
    p = averaged_params(svi, 5000, 2000, ["loc", "scale"], data)
    assert float(p["loc"]) == pytest.approx(post_mean, rel=0.02)
    assert float(p["scale"]) == pytest.approx(math.sqrt(post_var), rel=0.10)


def test_gamma_poisson_posterior():
    rng = np.random.default_rng(2)
    data = rng.poisson(4.0, size=15).astype(float)
    a0, b0 = 2.0, 1.0
    exact = stats.gamma(a0 + data.sum(), scale=1.0 / (b0 + len(data)))

    def model(data):
        rate = csvi.sample("rate", dist.Gamma(a0, b0))
        with csvi.plate("data", len(data)):
            csvi.sample("obs", dist.Poisson(rate), obs=data)

    def guide(data):
        a = csvi.param("a", 5.0, constraint=constraints.positive)
        b = csvi.param("b", 1.0, constraint=constraints.positive)
        csvi.sample("rate", dist.Gamma(a, b))

    # ClippedAdam's default elementwise clip (10) would bias these heavy-tailed
    # per-draw gradients, so it is lifted
    optim = ClippedAdam({"lr": 0.1, "lrd": 0.9995, "clip_norm": 1e6})
    svi = SVI(model, guide, optim, Trace_ELBO())
    p = averaged_params(svi, 6000, 2000, ["a", "b"], data)
    a, b = float(p["a"]), float(p["b"])
    assert a / b == pytest.approx(exact.mean(), rel=0.02)
    assert math.sqrt(a) / b == pytest.approx(exact.std(), rel=0.10)


def mean_gradient(model, guide, names, draws, *args):
    """Average and standard error of the ELBO loss gradient over `draws` runs."""
    elbo = Trace_ELBO()
    store = csvi.get_param_store()
    grads = []
    for _ in range(draws):
        elbo.loss_and_grads(model, guide, *args)
        grads.append(np.concatenate([np.ravel(store.leaf(n).grad) for n in names]))
        for n in names:
            store.leaf(n).grad = None
    grads = np.array(grads)
    return grads.mean(0), grads.std(0) / math.sqrt(draws)


def test_score_function_gradient_matches_exact_elbo_gradient():
    x, p_prior = 1.2, 0.3  # models.mixture's prior
    model = models.mixture
    guide = functools.partial(models.mixture_guide, q_init=0.6)

    def exact_loss(theta):
        q = special.expit(theta)
        total = 0.0
        for z, w in ((1.0, q), (0.0, 1.0 - q)):
            log_p = stats.bernoulli(p_prior).logpmf(z) + stats.norm(3 * z - 1, 1).logpdf(x)
            total += w * (log_p - stats.bernoulli(q).logpmf(z))
        return -total

    guide(x)
    theta = csvi.get_param_store().unconstrained("q").item()
    h = 1e-6
    exact = (exact_loss(theta + h) - exact_loss(theta - h)) / (2 * h)
    est, se = mean_gradient(model, guide, ["q"], 4000, x)
    assert abs(est[0] - exact) < 4 * se[0] + 1e-3


def test_pathwise_gradient_matches_exact_elbo_gradient():
    x = 0.7

    def model(x):
        z = csvi.sample("z", dist.Normal(0.0, 1.0))
        csvi.sample("x", dist.Normal(z, 0.5), obs=x)

    def guide(x):
        m = csvi.param("m", 0.2)
        s = csvi.param("s", 0.8, constraint=constraints.positive)
        csvi.sample("z", dist.Normal(m, s))

    def exact_loss(m, log_s):
        s = math.exp(log_s)
        e_log_prior = -0.5 * math.log(2 * math.pi) - 0.5 * (m * m + s * s)
        e_log_lik = (-0.5 * math.log(2 * math.pi * 0.25)
                     - 0.5 * ((x - m) ** 2 + s * s) / 0.25)
        entropy = 0.5 * math.log(2 * math.pi * math.e * s * s)
        return -(e_log_prior + e_log_lik + entropy)

    guide(x)
    m, log_s, h = 0.2, math.log(0.8), 1e-6
    exact = np.array([
        (exact_loss(m + h, log_s) - exact_loss(m - h, log_s)) / (2 * h),
        (exact_loss(m, log_s + h) - exact_loss(m, log_s - h)) / (2 * h),
    ])
    est, se = mean_gradient(model, guide, ["m", "s"], 3000, x)
    assert np.all(np.abs(est - exact) < 4 * se + 1e-3)


def test_loss_is_negative_elbo_estimate():
    def model():
        csvi.sample("z", dist.Normal(0.0, 1.0))

    def guide():
        csvi.sample("z", dist.Normal(csvi.param("m", 0.0), 1.0))

    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    # guide == prior: log p - log q is exactly 0 for every draw
    assert svi.evaluate_loss() == pytest.approx(0.0, abs=1e-12)
    assert svi.step() == pytest.approx(0.0, abs=1e-12)


def test_guide_and_model_site_mismatch_errors_name_the_site():
    def model():
        csvi.sample("z", dist.Normal(0.0, 1.0))
        csvi.sample("w", dist.Normal(0.0, 1.0))

    def guide_missing():
        csvi.sample("z", dist.Normal(csvi.param("m", 0.0), 1.0))

    def guide_extra():
        csvi.sample("z", dist.Normal(0.0, 1.0))
        csvi.sample("w", dist.Normal(0.0, 1.0))
        csvi.sample("v", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="'w'"):
        SVI(model, guide_missing, Adam({"lr": 0.1}), Trace_ELBO()).step()
    with pytest.raises(ValueError, match="'v'"):
        SVI(model, guide_extra, Adam({"lr": 0.1}), Trace_ELBO()).step()


def test_non_finite_loss_names_site_and_keeps_params_and_optimizer_state():
    def model(x):
        z = csvi.sample("z", dist.Normal(0.0, 1.0))
        csvi.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide(x):
        csvi.sample("z", dist.Normal(csvi.param("m", 0.0), 1.0))

    optim = Adam({"lr": 0.1})
    svi = SVI(model, guide, optim, Trace_ELBO())
    for _ in range(3):
        svi.step(0.5)
    store = csvi.get_param_store()
    before = store.unconstrained("m").copy()
    state_before = {k: np.copy(v) for k, v in optim.state_of("m").items()}
    with pytest.raises(ValueError, match="'x'"):
        svi.step(np.inf)
    np.testing.assert_array_equal(store.unconstrained("m"), before)
    for k, v in optim.state_of("m").items():
        np.testing.assert_array_equal(v, state_before[k])
    svi.step(0.5)  # still usable afterwards
    assert store.unconstrained("m") != before


def test_run_returns_loss_history_and_coin_example_converges():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "coin.py"
    spec = importlib.util.spec_from_file_location("coin_example", path)
    coin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(coin)
    mean, std, losses = coin.fit(num_steps=2000, plate=False, seed=0, progress_bar=False)
    assert losses.shape == (2000,) and np.all(np.isfinite(losses))
    # the tutorial's settings move slowly from the Beta(15, 15) start toward Beta(16, 14)
    assert 0.50 < mean < 0.54 and 0.085 < std < 0.095


def test_guide_and_model_sites_must_agree_except_auxiliary_guide_sites():
    def model():
        csvi.sample("z", dist.Normal(0.0, 1.0))

    def guide_with(aux_name, aux=True):
        def guide():
            u = csvi.sample(aux_name, dist.Normal(csvi.param("loc", 0.0), 1.0),
                            infer={"is_auxiliary": aux})
            csvi.sample("z", dist.Delta(u))
        return guide

    elbo = Trace_ELBO()
    assert math.isfinite(elbo.loss(model, guide_with("u")))
    with pytest.raises(ValueError, match="site 'u' is sampled in the guide but the model has no"):
        elbo.loss(model, guide_with("u", aux=False))
    with pytest.raises(ValueError, match="site 'z' is a latent sample site of the model but "
                                         "the guide has no"):
        elbo.loss(model, lambda: csvi.sample("y", dist.Normal(0.0, 1.0),
                                             infer={"is_auxiliary": True}))

    def aux_z_guide():
        csvi.sample("z", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True})

    with pytest.raises(ValueError, match="site 'z' is a latent sample site of the model but an "
                                         "auxiliary site of the guide"):
        elbo.loss(model, aux_z_guide)
