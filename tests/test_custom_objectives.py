"""What Pyro users write when the ELBO classes are not enough (Pyro's custom
objectives tutorial): SVI with a loss function, trace(param_only=True), a
param's .unconstrained() leaf, torch's form of the optimizers with
step()/zero_grad(), and MixedMultiOptimizer -- each against gradients and
updates computed by hand."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints, handlers
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import SGD, Adam, MixedMultiOptimizer, PyroMultiOptimizer
from compiled_check import assert_compiled_matches_eager

X = np.array([0.5, 1.5, 1.0])


def model(x):
    loc = csvi.sample("loc", dist.Normal(0.0, 1.0))
    with csvi.plate("data", len(x)):
        csvi.sample("x", dist.Normal(loc, 1.0), obs=x)


def guide(x):
    m = csvi.param("m", 0.2)
    s = csvi.param("s", 0.5, constraint=constraints.positive)
    csvi.sample("loc", dist.Delta(m + 0.0 * s))


def exact_grad_m(m):
    """d(-ELBO)/dm for the Delta guide: -(d/dm) [log N(m|0,1) + sum log N(x|m,1)]."""
    return m - (X - m).sum()


def test_param_only_trace_and_unconstrained_leaf(fresh_store):
    with handlers.trace(param_only=True) as capture:
        Trace_ELBO().differentiable_loss(model, guide, X)
    assert list(capture.trace.nodes) == ["m", "s"]
    s_site = capture.trace.nodes["s"]
    leaf = s_site.value.unconstrained()
    assert leaf is csvi.get_param_store().leaf("s")
    np.testing.assert_allclose(leaf.numpy(), np.log(0.5))
    m = csvi.param("m")
    assert m.unconstrained() is csvi.get_param_store().leaf("m")
    with pytest.raises(TypeError, match="not a param"):
        csvi.tensor(1.0).unconstrained()


def test_torch_form_optimizer_steps_and_zero_grads(fresh_store):
    csvi.param("m", 0.2)
    csvi.param("s", 0.5, constraint=constraints.positive)
    params = [csvi.param(n).unconstrained() for n in ("m", "s")]
    optim = SGD(params, lr=0.1)
    m = 0.2
    for _ in range(3):
        loss = Trace_ELBO().differentiable_loss(model, guide, X)
        loss.backward()
        np.testing.assert_allclose(params[0].grad, exact_grad_m(m))
        optim.step()
        optim.zero_grad()
        assert params[0].grad is None
        m -= 0.1 * exact_grad_m(m)
        np.testing.assert_allclose(csvi.param("m").numpy(), m, rtol=1e-12)


def test_torch_form_adam_matches_a_numpy_adam(fresh_store):
    csvi.param("m", 0.2)
    leaf = csvi.param("m").unconstrained()
    optim = Adam([leaf], lr=0.05, betas=(0.8, 0.99))
    m, mom, vel = 0.2, 0.0, 0.0
    for t in range(1, 6):
        Trace_ELBO().differentiable_loss(model, lambda x: csvi.sample(
            "loc", dist.Delta(csvi.param("m"))), X).backward()
        optim.step()
        optim.zero_grad()
        g = exact_grad_m(m)
        mom = 0.8 * mom + 0.2 * g
        vel = 0.99 * vel + 0.01 * g * g
        m -= 0.05 * (mom / (1 - 0.8 ** t)) / (np.sqrt(vel / (1 - 0.99 ** t)) + 1e-8)
        np.testing.assert_allclose(float(csvi.param("m")), m, rtol=1e-12)


def test_torch_form_bad_arguments():
    with pytest.raises(TypeError, match="leaf Tensor"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="unknown optim_args key 'learning_rate'"):
        SGD([csvi.tensor(1.0, requires_grad=True)], learning_rate=0.1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        SGD({"lr": 0.1}, lr=0.1)
    with pytest.raises(TypeError, match="zero_grad"):
        SGD({"lr": 0.1}).zero_grad()


def test_mixed_multi_optimizer_updates_each_group_with_its_own_rule(fresh_store):
    guide(X)
    optim = MixedMultiOptimizer([(["m"], SGD({"lr": 0.1})), (["s"], SGD({"lr": 0.5}))])
    store = csvi.get_param_store()
    m0, logs0 = float(store["m"]), float(np.log(store["s"].numpy()))
    loss = Trace_ELBO().differentiable_loss(model, guide, X)
    params = {name: csvi.param(name).unconstrained() for name in ("m", "s")}
    optim.step(loss, params)
    # s does not enter the loss (0 * s), so its gradient is 0 and it stays
    np.testing.assert_allclose(float(store["m"]), m0 - 0.1 * exact_grad_m(m0), rtol=1e-12)
    np.testing.assert_allclose(float(np.log(store["s"].numpy())), logs0, rtol=1e-12)
    assert params["m"].grad is None  # .grad left as it was
    with pytest.raises(ValueError, match="two parts"):
        MixedMultiOptimizer([(["m"], SGD({"lr": 0.1})), (["m", "s"], Adam({"lr": 0.1}))])
    with pytest.raises(ValueError, match="no part optimizes"):
        MixedMultiOptimizer([(["m"], SGD({"lr": 0.1}))]).step(
            Trace_ELBO().differentiable_loss(model, guide, X), params)
    with pytest.raises(TypeError, match="csvi.optim optimizer"):
        PyroMultiOptimizer(object())


def penalized_loss(model, guide, *args, **kwargs):
    elbo = Trace_ELBO().differentiable_loss(model, guide, *args, **kwargs)
    return elbo + 0.7 * csvi.param("m") ** 2


def test_svi_with_a_loss_function_steps_on_its_gradient(fresh_store):
    svi = SVI(model, guide, SGD({"lr": 0.05}), loss=penalized_loss)
    m = 0.2
    for _ in range(4):
        loss = svi.step(X)
        expected_loss = -(-0.5 * m * m - 0.5 * ((X - m) ** 2).sum()
                          - 2 * np.log(2 * np.pi)) + 0.7 * m * m
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        m -= 0.05 * (exact_grad_m(m) + 1.4 * m)
        np.testing.assert_allclose(float(csvi.param("m")), m, rtol=1e-12)
    assert svi.evaluate_loss(X) == pytest.approx(
        -(-0.5 * m * m - 0.5 * ((X - m) ** 2).sum() - 2 * np.log(2 * np.pi)) + 0.7 * m * m)


def test_kl_annealing_through_scale(fresh_store):
    """An annealing factor on the guide and latent prior (Pyro's DMM
    tutorial) scales their terms of the loss."""
    def annealed(model, guide, *args, beta=0.25):
        return Trace_ELBO().differentiable_loss(model, handlers.scale(guide, scale=beta),
                                                *args)

    m = 0.2
    svi = SVI(model, guide, SGD({"lr": 0.05}), loss=annealed)
    loss = svi.step(X)
    # the Delta guide's log q is 0 whatever the scale; the model is unscaled
    assert loss == pytest.approx(0.5 * m * m + 0.5 * ((X - m) ** 2).sum() + 2 * np.log(2 * np.pi))


def test_loss_function_compiles(fresh_store):
    assert_compiled_matches_eager(model, lambda: guide, lambda: Adam({"lr": 0.05}),
                                  lambda: penalized_loss, (X,), steps=15)


def test_a_loss_function_must_return_a_scalar_tensor(fresh_store):
    svi = SVI(model, guide, Adam({"lr": 0.05}), loss=lambda model, guide, x: 1.0)
    with pytest.raises(TypeError, match="scalar csvi Tensor"):
        svi.step(X)
    with pytest.raises(TypeError, match="ELBO or a callable"):
        SVI(model, guide, Adam({"lr": 0.05}), loss="elbo")
