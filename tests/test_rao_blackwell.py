"""Trace_ELBO's score-function surrogate keeps a plate's dim only for sites in
that same plate (Pyro's MultiFrameTensor), even when sibling plates share a
dim.  Reference: Pyro's surrogate written out with NumPy and scipy."""
import numpy as np
import pytest
from scipy import stats

import csvi
import csvi.distributions as dist
from csvi import constraints, handlers
from csvi.infer import Trace_ELBO

Y = np.array([0.3, 1.2, -0.4, 0.9, 1.5, -1.0])


def model(y):
    with csvi.plate("sticks", 5):  # dim -1, size 5
        csvi.sample("b", dist.Bernoulli(0.4))
    with csvi.plate("data", len(y)):  # also dim -1, size 6
        z = csvi.sample("z", dist.Bernoulli(0.3))
        csvi.sample("obs", dist.Normal(z, 1.0), obs=y)


def guide(y):
    qb = csvi.param("qb", np.linspace(0.2, 0.6, 5), constraint=constraints.unit_interval)
    qz = csvi.param("qz", np.linspace(0.1, 0.9, len(y)), constraint=constraints.unit_interval)
    with csvi.plate("sticks", 5):
        csvi.sample("b", dist.Bernoulli(qb))
    with csvi.plate("data", len(y)):
        csvi.sample("z", dist.Bernoulli(qz))


def reference_terms(guide_tr):
    """Each site's log p and log q at the guide's draws, by scipy."""
    b = np.asarray(guide_tr.nodes["b"].value)
    z = np.asarray(guide_tr.nodes["z"].value)
    qb = np.linspace(0.2, 0.6, 5)
    qz = np.linspace(0.1, 0.9, len(Y))
    return dict(b=b, qb=qb,
                lp_b=stats.bernoulli(0.4).logpmf(b), lq_b=stats.bernoulli(qb).logpmf(b),
                lp_z=stats.bernoulli(0.3).logpmf(z), lq_z=stats.bernoulli(qz).logpmf(z),
                lp_obs=stats.norm(z, 1.0).logpdf(Y))


def test_sibling_plates_on_one_dim_give_pyros_surrogate(fresh_store):
    with handlers.seed(rng_seed=3):
        loss, surrogate, traces = Trace_ELBO().loss_tensors(model, guide, (Y,), {})
    t = reference_terms(traces[0][1])
    lp_b, lq_b, lp_z, lq_z, lp_obs = t["lp_b"], t["lq_b"], t["lp_z"], t["lq_z"], t["lp_obs"]
    elbo = lp_b.sum() + lp_z.sum() + lp_obs.sum() - lq_b.sum() - lq_z.sum()
    # each score site's log q times the log-ratio summed down to its own plate
    r_b = (lp_b - lq_b) + (lp_z - lq_z).sum() + lp_obs.sum()
    r_z = (lp_b - lq_b).sum() + (lp_z - lq_z) + lp_obs
    # Pyro's score parts: a non-reparameterized site adds no entropy term
    model_lp = lp_b.sum() + lp_z.sum() + lp_obs.sum()
    expected_surrogate = model_lp + (lq_b * r_b).sum() + (lq_z * r_z).sum()
    assert float(loss) == pytest.approx(-elbo, rel=1e-12)
    assert float(surrogate) == pytest.approx(-expected_surrogate, rel=1e-12)


def test_score_gradient_matches_the_reference_surrogate(fresh_store):
    """The gradient the surrogate gives qb equals d/dqb of Pyro's surrogate
    with the log-ratios held fixed."""
    with handlers.seed(rng_seed=5):
        _, surrogate, traces = Trace_ELBO().loss_tensors(model, guide, (Y,), {})
    surrogate.backward()
    grad_unconstrained = csvi.get_param_store().leaf("qb").grad
    t = reference_terms(traces[0][1])
    b, qb = t["b"], t["qb"]
    r_b = (t["lp_b"] - t["lq_b"]) + (t["lp_z"] - t["lq_z"]).sum() + t["lp_obs"].sum()
    dlq_dq = b / qb - (1 - b) / (1 - qb)
    d_surrogate_dq = -dlq_dq * r_b  # d(-surrogate)/dqb
    dq_du = qb * (1 - qb)  # sigmoid's derivative: unit_interval params are logits
    np.testing.assert_allclose(grad_unconstrained, d_surrogate_dq * dq_du, rtol=1e-10)
