"""TraceMeanField_ELBO: analytic KL for sites with a registered rule (here a
Normal subclass with its own rule, so the test does not depend on the
library's rule set), Monte Carlo otherwise; value against scipy from the same
draws, unbiased gradient against the exact ELBO gradient, plate scaling."""
import numpy as np
import pytest
from scipy import stats

import csvi
import csvi.distributions as dist
from csvi import _core, handlers
from csvi.distributions.kl import register_kl
from csvi.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from csvi.distributions.testing.fakes import NonreparameterizedNormal
from csvi.optim import Adam
from compiled_check import assert_compiled_matches_eager

X = np.array([0.7, -0.2, 1.4])


class KLNormal(dist.Normal):
    """A Normal whose KL to another KLNormal has a rule."""


@register_kl(KLNormal, KLNormal)
def _kl_normal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    return 0.5 * (var_ratio + ((p.loc - q.loc) / q.scale) ** 2 - 1.0 - csvi.log(var_ratio))


def model(x):
    z = csvi.sample("z", KLNormal(0.0, 1.0))
    with csvi.plate("data", len(x)):
        csvi.sample("x", dist.Normal(z, 1.0), obs=x)


def guide(x):
    csvi.sample("z", KLNormal(csvi.param("m", 0.4),
                              csvi.param("s", 0.6, constraint=dist.constraints.positive)))


def exact_kl(m, s):
    return -np.log(s) + 0.5 * (s * s + m * m) - 0.5


def test_value_is_likelihood_minus_analytic_kl(fresh_store):
    with handlers.seed(rng_seed=0):
        loss, _, traces = TraceMeanField_ELBO().loss_tensors(model, guide, (X,), {})
    z = float(traces[0][1].nodes["z"].value)
    expected = stats.norm(z, 1).logpdf(X).sum() - exact_kl(0.4, 0.6)
    assert float(loss) == pytest.approx(-expected, rel=1e-12)


def test_gradient_is_unbiased_with_less_noise_than_trace_elbo(fresh_store):
    m, s, n = 0.4, 0.6, len(X)
    # -ELBO = sum_i [(x_i - m)^2 + s^2] / 2 + KL + const
    exact = np.array([(n + 1) * m - X.sum(), (n * s + s - 1 / s) * s])  # d/dm, d/d(log s)
    grads = {}
    for elbo in (TraceMeanField_ELBO(), Trace_ELBO()):
        csvi.clear_param_store()
        csvi.set_rng_seed(3)
        out = []
        for _ in range(1500):
            tape = _core.Tape(record_all=True)
            _, surrogate, _ = _core.record_call(tape, elbo.loss_tensors, model, guide, (X,), {})
            tape.backward(surrogate, False)
            store = csvi.get_param_store()
            out.append([float(tape.grad_of(store.leaf("m"))), float(tape.grad_of(store.leaf("s")))])
        grads[type(elbo).__name__] = g = np.array(out)
        sem = g.std(0) / np.sqrt(len(g))
        assert np.all(np.abs(g.mean(0) - exact) < 4 * sem + 1e-12), (g.mean(0), exact)
    assert np.all(grads["TraceMeanField_ELBO"].var(0) < grads["Trace_ELBO"].var(0))


def test_sites_without_a_rule_use_monte_carlo(fresh_store):
    def model_(x):
        z = csvi.sample("z", dist.HalfNormal(1.0))
        csvi.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide_(x):
        csvi.sample("z", dist.LogNormal(csvi.param("m", 0.0), 0.5))

    with handlers.seed(rng_seed=1):
        loss, _, traces = TraceMeanField_ELBO().loss_tensors(model_, guide_, (X,), {})
    z = float(traces[0][1].nodes["z"].value)
    expected = (stats.halfnorm(scale=1).logpdf(z) + stats.norm(z, 1).logpdf(X).sum()
                - stats.lognorm(0.5, scale=1.0).logpdf(z))
    assert float(loss) == pytest.approx(-expected, rel=1e-12)


def test_kl_of_local_latents_is_scaled_by_the_subsample(fresh_store):
    data = np.linspace(-1, 1, 10)

    def model_(x):
        with csvi.plate("data", len(x), subsample_size=4) as idx:
            z = csvi.sample("z", KLNormal(0.0, 1.0))
            csvi.sample("x", dist.Normal(z, 1.0), obs=x[idx])

    def guide_(x):
        with csvi.plate("data", len(x), subsample_size=4):
            csvi.sample("z", KLNormal(0.5, 0.7))

    with handlers.seed(rng_seed=2):
        loss, _, traces = TraceMeanField_ELBO().loss_tensors(model_, guide_, (data,), {})
    model_tr, guide_tr = traces[0]
    idx = np.asarray(model_tr.nodes["data"].value).astype(int)
    z = np.asarray(guide_tr.nodes["z"].value)
    expected = 10 / 4 * (stats.norm(z, 1).logpdf(data[idx]).sum() - 4 * exact_kl(0.5, 0.7))
    assert float(loss) == pytest.approx(-expected, rel=1e-12)


def test_non_reparameterized_guide_site_is_refused_by_name(fresh_store):
    def guide_(x):
        csvi.sample("z", NonreparameterizedNormal(0.0, 1.0))

    with pytest.raises(ValueError, match="guide site 'z'.*not reparameterized"):
        SVI(model, guide_, Adam({"lr": 0.1}), TraceMeanField_ELBO()).step(X)


def test_compiled_equals_eager(fresh_store):
    assert_compiled_matches_eager(model, lambda: guide, lambda: Adam({"lr": 0.02}),
                                  TraceMeanField_ELBO, (X,), steps=25)
