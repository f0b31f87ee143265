"""Adam's float32 moments (CSVI_OPTIM_MOMENTS32, src_c/optim.c): the params
of a float32 Linear (`module.float()`) keep exp_avg and exp_avg_sq in float32
and the update's arithmetic runs in float32, as torch's Adam on a float32
param, whose value the float64 array holds (each update stores
(float)param - step, widened).

Checked against a NumPy float32 reference of torch's update (within a few
float32 roundings: the C loop may contract multiply-adds), against float64
Adam, through get_state/set_state/save/load (float32 -> float64 -> float32
is exact), and for which params csvi.module marks; a compiled run keeps the
weights' values in their float32 copies and widens them when it returns,
also when a step fails midway.  Compiled == eager bit for bit, on the
float32-gradient path and the widened ones, is also
tests/test_program_dense_grads.py's."""
import os
import sys

import numpy as np
import pytest

import csvi
from csvi import _core, nn
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import SGD, Adam

sys.path.insert(0, os.path.dirname(__file__))
from small_vae import small_vae  # noqa: E402

F = np.float32


def reference(p, grads, lr, b1, b2, eps, amsgrad=False, weight_decay=0.0, clip_value=None):
    """torch.optim.Adam's single-tensor update in float32 NumPy, from the
    float64 param rounded to float32; the result widened."""
    p = p.astype(F)
    m = np.zeros(p.shape, F)
    v = np.zeros(p.shape, F)
    vmax = np.zeros(p.shape, F)
    for t, g in enumerate(grads, start=1):
        g = g.copy()
        if clip_value is not None:
            g = np.clip(g, -clip_value, clip_value)
        g = (g + weight_decay * p).astype(F)
        m = (m + F(1.0 - b1) * (g - m)).astype(F)
        v = (F(b2) * v + F(1.0 - b2) * g * g).astype(F)
        vmax = np.maximum(vmax, v)
        step_size = F(lr / (1.0 - b1 ** t))
        denom = np.sqrt(vmax if amsgrad else v) / F(np.sqrt(1.0 - b2 ** t)) + F(eps)
        p = (p - step_size * m / denom).astype(F)
    return p.astype(np.float64), m, v


@pytest.mark.parametrize("options", [{}, {"amsgrad": True},
                                     {"weight_decay": 0.1, "max_grad_value": 0.5}])
def test_float32_moments_follow_torchs_float32_update(options):
    rng = np.random.default_rng(0)
    n, steps, lr = 3000, 12, 0.01
    p0 = rng.normal(size=n)
    grads = [rng.normal(size=n) * 10.0 ** rng.uniform(-6, 1, size=n) for _ in range(steps)]
    kernel = _core.OptimKernel("Adam", n, lr=lr, moments32=True, **options)
    assert kernel.state.dtype == np.float32 and kernel.state.shape == (
        3 if options.get("amsgrad") else 2, n)
    p = p0.copy()
    for g in grads:
        _core.apply_updates([kernel], [p], [g], ["w"])
    want, m, v = reference(p0, grads, lr, 0.9, 0.999, 1e-8, options.get("amsgrad", False),
                           options.get("weight_decay", 0.0), options.get("max_grad_value"))
    # a moment may cancel to far below its gradients: bound its error by them
    scale = np.max(np.abs(grads), axis=0) + np.abs(p0) * options.get("weight_decay", 0.0)
    assert np.all(np.abs(kernel.state[0] - m) <= 1e-6 * scale)
    assert np.all(np.abs(kernel.state[1] - v) <= 1e-6 * scale ** 2)
    # the param holds float32 values, each within a float32 rounding a step
    # of the reference's (the steps agree to float32's relative error)
    np.testing.assert_array_equal(p, p.astype(F).astype(np.float64))
    np.testing.assert_allclose(p, want, rtol=steps * 2.0 ** -23, atol=steps * lr * 1e-6)
    # and float64 Adam moves the param by the same steps, to float32's precision
    wide = _core.OptimKernel("Adam", n, lr=lr, **options)
    q = p0.copy()
    for g in grads:
        _core.apply_updates([wide], [q], [g], ["w"])
    np.testing.assert_allclose(p - p0, q - p0, rtol=1e-4, atol=steps * lr * 1e-5)


def test_only_adam_takes_the_flag_and_a_float64_gradient_is_rounded():
    """Other algorithms keep float64 state; an Adam update from a float64
    gradient equals the one from that gradient rounded to float32."""
    assert _core.OptimKernel("SGD", 4, momentum=0.9, moments32=True).state.dtype == np.float64
    assert _core.OptimKernel("ClippedAdam", 4, moments32=True).state.dtype == np.float64
    g = np.random.default_rng(1).normal(size=64)
    ps = []
    for grad in (g, g.astype(F).astype(np.float64)):
        k = _core.OptimKernel("Adam", 64, lr=0.1, moments32=True)
        p = np.ones(64)
        _core.apply_updates([k], [p], [grad], ["w"])
        ps.append(p)
    np.testing.assert_array_equal(ps[0], ps[1])


def vae_parts(dtype):
    """small_vae's model, guide and data, its layers float32 or float64."""
    model, fresh_guide, data = small_vae(nn.Tanh, float32=dtype == np.float32)
    return model, fresh_guide(), data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optim", ["adam", "sgd"])
def test_module_marks_a_float32_linears_params(dtype, optim):
    csvi.clear_param_store()
    model, guide, data = vae_parts(dtype)
    opt = Adam({"lr": 0.01}) if optim == "adam" else SGD({"lr": 0.01, "momentum": 0.9})
    svi = SVI(model, guide, opt, Trace_ELBO())
    svi.step(data)
    store = csvi.get_param_store()
    assert sorted(store.names()) == sorted(opt.get_state())
    for name in store.names():
        assert store.float32(name) == (dtype == np.float32), name
        moments32 = optim == "adam" and dtype == np.float32
        assert opt._slots[name].kernel.state.dtype == (np.float32 if moments32 else np.float64)
        # get_state hands out float64 arrays either way
        assert all(v.dtype == np.float64 for v in opt.get_state()[name].values()
                   if isinstance(v, np.ndarray))


@pytest.mark.parametrize("compile", [False, True])
def test_state_round_trips_exactly(compile, tmp_path):
    """Train 5 steps, save params and optimizer state, train 5 more; a fresh
    run loading both and training 5 gives the same bits."""
    def run(load=None, save=None):
        csvi.clear_param_store()
        model, guide, data = vae_parts(np.float32)
        opt = Adam({"lr": 0.01})
        svi = SVI(model, guide, opt, Trace_ELBO())
        if load is not None:
            svi.step(data)  # makes the params and slots; then overwritten
            csvi.get_param_store().load(load[0])
            opt.load(load[1])
            csvi.set_rng_seed(9)
        else:
            svi.run(5, data, compile=compile, progress_bar=False)
            if save is not None:
                csvi.get_param_store().save(save[0])
                opt.save(save[1])
            csvi.set_rng_seed(9)
        svi.run(5, data, compile=compile, progress_bar=False)
        store = csvi.get_param_store()
        return {n: store.unconstrained(n).copy() for n in store.names()}, opt.get_state()

    files = (str(tmp_path / "params.npz"), str(tmp_path / "optim.npz"))
    first, first_state = run(save=files)
    second, second_state = run(load=files)
    for name, value in first.items():
        np.testing.assert_array_equal(second[name], value, err_msg=name)
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(second_state[name][key], first_state[name][key])
        assert second_state[name]["step"] == first_state[name]["step"] == 10


def test_set_state_refuses_moments_beyond_float32():
    csvi.clear_param_store()
    model, guide, data = vae_parts(np.float32)
    opt = Adam({"lr": 0.01})
    SVI(model, guide, opt, Trace_ELBO()).step(data)
    state = opt.get_state()
    name = "encoder$$$0.weight"
    before = state[name]["exp_avg_sq"].copy()
    state[name]["exp_avg_sq"][0, 0] = 1e39
    with pytest.raises(ValueError, match="float32's range"):
        opt.set_state(state)
    np.testing.assert_array_equal(opt.get_state()[name]["exp_avg_sq"], before)


def test_a_compiled_step_reads_the_float32_gradient_into_float32_moments():
    """The compiled path this file's round trip runs: the weights' float32
    gradients (csvi_optim_step_grad32) into float32 moments."""
    csvi.clear_param_store()
    model, guide, data = vae_parts(np.float32)
    opt = Adam({"lr": 0.01})
    step = SVI(model, guide, opt, Trace_ELBO()).compile(data)
    step.run(2)
    assert step._program.gradient_buffers()["float32"]
    assert {s.kernel.state.dtype for s in opt._slots.values()} == {np.dtype(np.float32)}


def float32_steps(runs, data_rows_nan=()):
    """The float32 VAE's losses and params after eager steps or compiled runs
    of the given lengths (a run's failure ends it, its losses kept)."""
    csvi.clear_param_store()
    model, guide, data = vae_parts(np.float32)
    data = data.copy()
    data[list(data_rows_nan)] = np.nan
    csvi.set_rng_seed(4)
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    compiled = svi.compile(data) if runs != "eager" else None
    losses = []
    try:
        if compiled is None:
            for _ in range(12):
                losses.append(svi.step(data))
        else:
            for n in runs:
                losses += list(compiled.run(n))
    except ValueError as e:
        losses += list(getattr(e, "losses", []))
    if compiled is not None:
        assert compiled._program.gradient_buffers()["float32"]  # the copies held the values
    store = csvi.get_param_store()
    return np.asarray(losses), {n: store.unconstrained(n).copy() for n in store.names()}


@pytest.mark.parametrize("runs", [(12,), (1, 4, 7)])
def test_a_compiled_run_widens_the_weights_it_kept_in_float32(runs):
    """The weights updated in their float32 copies alone reach the param
    store when each run returns: eager bits, and float32 values."""
    want_losses, want = float32_steps("eager")
    losses, params = float32_steps(runs)
    np.testing.assert_array_equal(losses, want_losses)
    for name, value in want.items():
        np.testing.assert_array_equal(params[name], value, err_msg=name)
        np.testing.assert_array_equal(value, value.astype(F).astype(np.float64), err_msg=name)


def test_a_run_that_fails_midway_leaves_the_last_steps_weights():
    """A NaN data row makes the loss of the first step that draws it not
    finite; the run stops there and the params are those of the steps
    before it, as eager steps leave them."""
    want_losses, want = float32_steps("eager", data_rows_nan=[17])
    assert 0 < len(want_losses) < 12  # a step drew the row
    losses, params = float32_steps((12,), data_rows_nan=[17])
    np.testing.assert_array_equal(losses, want_losses)
    for name, value in want.items():
        np.testing.assert_array_equal(params[name], value, err_msg=name)
