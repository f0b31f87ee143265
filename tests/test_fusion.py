"""Fusion of a compiled program's op chains (src_c/csvi_fuse.h): a
Bernoulli-logits likelihood `Bernoulli(logits=z + c).log_prob(x)` read only
by the ELBO's sum runs as one fused kernel.  Its value is checked against
scipy.stats, its gradients against central differences, and a fused program
against the unfused one and the eager steps, bit for bit."""
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi.infer import SVI, Trace_ELBO
from csvi.infer.compiled import CompiledSVI
from csvi.optim import SGD, Adam
from models import logreg, logreg_guide

FUSED = "BERNOULLI_LOGITS_SUM"


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    z0 = rng.standard_normal(n) * 4
    x = (rng.random(n) < sp.expit(z0)).astype(float)
    return z0, x


def params_model(form):
    """Params only, no latent: the loss is minus the likelihood itself."""
    def model(x, z0, offset):
        z = csvi.param("z", z0)
        c = csvi.param("c", 0.3)
        logits = {"z+c": lambda: z + c, "c+z": lambda: c + z, "z": lambda: z,
                  "offset+c": lambda: offset + c}[form]()
        csvi.sample("x", dist.Bernoulli(logits=logits), obs=x)
    return model


def no_guide(*args):
    pass


def reference_loss(x, z, c, form, offset=None):
    logits = {"z+c": z + c, "c+z": z + c, "z": z, "offset+c": offset + c if form[0] == "o" else 0}[form]
    return -np.sum(st.bernoulli.logpmf(x, sp.expit(logits)))


def compiled_grads(form, x, z0, offset):
    """(loss, dz, dc) from one compiled step of SGD with lr = 1."""
    csvi.clear_param_store()
    svi = SVI(params_model(form), no_guide, SGD({"lr": 1.0}), Trace_ELBO())
    program = svi.compile(x, z0, offset)
    store = csvi.get_param_store()
    before = {k: store.unconstrained(k).copy() for k in store.names()}
    loss = program.run(1)[0]
    after = {k: store.unconstrained(k) for k in store.names()}
    return loss, before["z"] - after["z"], before["c"] - after["c"], program


@pytest.mark.parametrize("form", ["z+c", "c+z", "z", "offset+c"])
@pytest.mark.parametrize("n", [1, 7, 300, 5000])
def test_fused_value_matches_scipy_and_gradients_match_central_differences(form, n):
    z0, x = data(n)
    offset = np.linspace(-2.0, 2.0, n)
    loss, dz, dc, program = compiled_grads(form, x, z0, offset)
    assert FUSED in program._tape.op_names()
    assert "ADD" not in program._tape.op_names()
    np.testing.assert_allclose(loss, reference_loss(x, z0, 0.3, form, offset), rtol=1e-12)
    h = 1e-6
    if form != "offset+c":
        probe = np.random.default_rng(1).choice(n, size=min(n, 5), replace=False)
        for i in probe:  # the loss is a sum over points: difference point i's term
            xi, oi = x[i:i + 1], offset[i:i + 1]
            fd = (reference_loss(xi, z0[i:i + 1] + h, 0.3, form, oi)
                  - reference_loss(xi, z0[i:i + 1] - h, 0.3, form, oi)) / (2 * h)
            np.testing.assert_allclose(dz[i], fd, rtol=1e-6, atol=1e-12)
    else:
        np.testing.assert_array_equal(dz, 0.0)
    fd = (reference_loss(x, z0, 0.3 + h, form, offset)
          - reference_loss(x, z0, 0.3 - h, form, offset)) / (2 * h)
    np.testing.assert_allclose(dc, fd if form != "z" else 0.0, rtol=1e-6, atol=1e-6)


def test_extreme_logits_stay_finite_and_exact():
    x = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    z0 = np.array([800.0, -800.0, -40.0, 40.0, 1e-12, -1e-12])
    loss, dz, dc, _ = compiled_grads("z+c", x, z0 - 0.3, None)
    logits = (z0 - 0.3) + 0.3
    # scipy rounds expit(40) to 1 and returns -inf: softplus by np.logaddexp instead
    stable = np.sum(x * np.logaddexp(0, -logits) + (1 - x) * np.logaddexp(0, logits))
    np.testing.assert_allclose(loss, stable, rtol=1e-12)
    np.testing.assert_allclose(dz, -(x - sp.expit(logits)), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(dc, dz.sum(), rtol=1e-12)


def run(n, particles, how, steps=15):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, 4))
    y = (rng.random(n) < sp.expit(x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.5)).astype(float)
    csvi.clear_param_store()
    csvi.set_rng_seed(7)
    svi = SVI(logreg, logreg_guide, Adam({"lr": 0.05}), Trace_ELBO(num_particles=particles))
    if how == "eager":
        losses = np.array([svi.step(x, y) for _ in range(steps)])
    else:
        program = CompiledSVI(svi, (x, y), {}, fuse=how == "fused")
        assert (FUSED in program._tape.op_names()) == (how == "fused")
        losses = program.run(steps)
    store = csvi.get_param_store()
    return losses, {k: store.unconstrained(k).copy() for k in store.names()}


@pytest.mark.parametrize("n", [33, 4100, 10007])
@pytest.mark.parametrize("particles", [1, 5])
def test_fusion_changes_no_bit_of_a_compiled_run(n, particles):
    fused, fused_params = run(n, particles, "fused")
    plain, plain_params = run(n, particles, "unfused")
    np.testing.assert_array_equal(fused, plain)
    for k in plain_params:
        np.testing.assert_array_equal(fused_params[k], plain_params[k])
    if particles == 1:
        eager, eager_params = run(n, particles, "eager")
        np.testing.assert_array_equal(fused, eager)
        for k in eager_params:
            np.testing.assert_array_equal(fused_params[k], eager_params[k])


def ops_of(model, *args):
    csvi.clear_param_store()
    svi = SVI(model, no_guide, SGD({"lr": 0.1}), Trace_ELBO())
    return svi.compile(*args)._tape.op_names()


def test_an_empty_likelihood_is_not_fused():
    # the fused op's output reuses the log-density's slot as the scalar sum,
    # which an empty plate's slot cannot hold
    empty = np.zeros(0)
    ops = ops_of(params_model("z+c"), empty, empty, None)
    assert FUSED not in ops
    loss, dz, dc, _ = compiled_grads("z+c", empty, empty, None)
    assert loss == 0.0 and dz.shape == (0,) and dc == 0.0


def test_chains_read_elsewhere_are_not_fused():
    z0, x = data(50)

    def logits_reused(x):
        z = csvi.param("z", z0)
        logits = z + 1.0
        csvi.sample("x", dist.Bernoulli(logits=logits), obs=x)
        csvi.factor("penalty", -(logits * logits).sum())

    ops = ops_of(logits_reused, x)
    assert FUSED in ops and "ADD" in ops  # the likelihood fuses, the shared add stays

    def scaled(x):
        z = csvi.param("z", z0)
        with csvi.plate("data", len(x), subsample_size=10) as idx:
            csvi.sample("x", dist.Bernoulli(logits=csvi.as_tensor(z)[idx]),
                        obs=csvi.as_tensor(x)[idx])

    assert FUSED not in ops_of(scaled, x)  # its log-density is scaled before the sum

    def probs(x):
        csvi.sample("x", dist.Bernoulli(probs=csvi.param("p", np.full(50, 0.5),
                                                         constraint=csvi.constraints.unit_interval)),
                    obs=x)

    assert FUSED not in ops_of(probs, x)
