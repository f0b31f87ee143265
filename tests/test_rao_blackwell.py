"""Trace_ELBO's score-function surrogate keeps a plate's dim only for sites in
that same plate (Pyro's MultiFrameTensor), even when sibling plates share a
dim.  Reference: Pyro's surrogate written out with NumPy and scipy."""
import numpy as np
import pytest
import csvi
from csvi import handlers
from csvi.infer import Trace_ELBO

import models

Y = models.SIBLING_Y
model, guide = models.sibling_plates, models.sibling_plates_guide
reference_terms = models.sibling_plates_terms


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
