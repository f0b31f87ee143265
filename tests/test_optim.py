"""csvi.optim against NumPy references written from the published update
equations (torch.optim's algorithm boxes; Pyro's ClippedAdam), plus the
Pyro-facing behaviour: per-param args, state round trips, errors, schedulers."""
import math
import zlib

import numpy as np
import pytest

import csvi.optim as optim
from csvi import _core

SHAPES = [(), (5,), (3, 4), (2, 3, 4)]


# ---- references: one step each, on copies, from the update equations ---------------

def _pre(g, maximize):
    return -g if maximize else g


def ref_sgd(p, g, s, t, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
            nesterov=False, maximize=False):
    g = _pre(g, maximize) + weight_decay * p
    if momentum != 0:
        s["b"] = g.copy() if t == 1 else momentum * s["b"] + (1 - dampening) * g
        g = g + momentum * s["b"] if nesterov else s["b"]
    return p - lr * g


def ref_adam(p, g, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
             amsgrad=False, maximize=False):
    b1, b2 = betas
    g = _pre(g, maximize) + weight_decay * p
    s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
    m_hat = s["m"] / (1 - b1 ** t)
    v = s["v"]
    if amsgrad:
        s["vmax"] = np.maximum(s.get("vmax", 0.0), v)
        v = s["vmax"]
    v_hat = v / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_clipped_adam(p, g, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                     clip_norm=10.0, lrd=1.0):
    b1, b2 = betas
    lr_t = lr * lrd ** t                 # Pyro decays the group lr before each step
    g = np.clip(g, -clip_norm, clip_norm) + weight_decay * p
    s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
    step_size = lr_t * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return p - step_size * s["m"] / (np.sqrt(s["v"]) + eps)


def ref_rmsprop(p, g, s, t, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False, maximize=False):
    g = _pre(g, maximize) + weight_decay * p
    s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g * g
    v = s["v"]
    if centered:
        s["gavg"] = alpha * s.get("gavg", 0.0) + (1 - alpha) * g
        v = v - s["gavg"] ** 2
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0.0) + g / (np.sqrt(v) + eps)
        return p - lr * s["b"]
    return p - lr * g / (np.sqrt(v) + eps)


def ref_adagrad(p, g, s, t, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    g = _pre(g, maximize) + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s["sum"] = s.get("sum", initial_accumulator_value) + g * g
    return p - clr * g / (np.sqrt(s["sum"]) + eps)


CASES = [
    (optim.SGD, ref_sgd, {"lr": 0.05}),
    (optim.SGD, ref_sgd, {"lr": 0.05, "momentum": 0.9}),
    (optim.SGD, ref_sgd, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}),
    (optim.SGD, ref_sgd, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (optim.SGD, ref_sgd, {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    (optim.Adam, ref_adam, {}),
    (optim.Adam, ref_adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    (optim.Adam, ref_adam, {"lr": 0.01, "weight_decay": 0.1}),
    (optim.Adam, ref_adam, {"lr": 0.01, "amsgrad": True}),
    (optim.Adam, ref_adam, {"lr": 0.01, "betas": (0.0, 0.5), "maximize": True}),
    (optim.ClippedAdam, ref_clipped_adam, {}),
    (optim.ClippedAdam, ref_clipped_adam, {"lr": 0.01, "clip_norm": 0.5, "lrd": 0.9}),
    (optim.ClippedAdam, ref_clipped_adam, {"lr": 0.02, "weight_decay": 0.2, "clip_norm": 1.5,
                                           "betas": (0.5, 0.9)}),
    (optim.RMSprop, ref_rmsprop, {}),
    (optim.RMSprop, ref_rmsprop, {"lr": 0.01, "alpha": 0.9, "momentum": 0.7}),
    (optim.RMSprop, ref_rmsprop, {"lr": 0.01, "centered": True, "weight_decay": 0.05}),
    (optim.RMSprop, ref_rmsprop, {"lr": 0.01, "centered": True, "momentum": 0.5}),
    (optim.RMSprop, ref_rmsprop, {"lr": 0.01, "maximize": True}),
    (optim.Adagrad, ref_adagrad, {}),
    (optim.Adagrad, ref_adagrad, {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1}),
    (optim.Adagrad, ref_adagrad, {"lr": 0.1, "initial_accumulator_value": 0.3, "eps": 1e-6}),
]


def _ids(case):
    cls, _, args = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in args.items())


def _run_ref(ref, args, p0, grads):
    p, s = p0.copy(), {}
    for t, g in enumerate(grads, start=1):
        p = ref(p, g, s, t, **args)
    return p


def _grads(rng, shape, n, scale=3.0):
    return [rng.normal(scale=scale, size=shape) for _ in range(n)]


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(case, shape):
    cls, ref, args = case
    rng = np.random.default_rng(zlib.crc32(f"{cls.__name__}{args}{shape}".encode()))
    p0 = rng.normal(size=shape)
    grads = _grads(rng, shape, 7)
    opt = cls(dict(args))
    p = p0.copy()
    for g in grads:
        opt.step([("x", p, g)])
    expected = _run_ref(ref, args, p0, grads)
    np.testing.assert_allclose(p, expected, rtol=1e-11, atol=1e-14)
    assert not np.allclose(p, p0)


@pytest.mark.parametrize("cls, ref", [(optim.Adam, ref_adam), (optim.ClippedAdam, ref_clipped_adam)])
def test_adam_bias_correction_once_beta_power_vanishes(cls, ref):
    # 0.5^t drops below 2^-54 at t = 55, where the kernel stops calling pow
    args = {"lr": 0.01, "betas": (0.5, 0.9)}
    rng = np.random.default_rng(7)
    p0 = rng.normal(size=3)
    grads = _grads(rng, 3, 600)
    opt = cls(dict(args))
    p = p0.copy()
    for g in grads:
        opt.step([("x", p, g)])
    np.testing.assert_allclose(p, _run_ref(ref, args, p0, grads), rtol=1e-11, atol=1e-14)


def test_update_is_in_place_and_leaves_grad_alone():
    p = np.ones(4)
    g = np.array([1.0, -1.0, 2.0, 0.5])
    g_before = g.copy()
    buffer_address = p.__array_interface__["data"][0]
    optim.SGD({"lr": 0.5}).step([("w", p, g)])
    assert p.__array_interface__["data"][0] == buffer_address
    np.testing.assert_array_equal(p, 1.0 - 0.5 * g_before)
    np.testing.assert_array_equal(g, g_before)


def test_call_is_step_and_params_are_independent():
    rng = np.random.default_rng(0)
    a0, b0 = rng.normal(size=3), rng.normal(size=(2, 2))
    ga, gb = _grads(rng, 3, 4), _grads(rng, (2, 2), 4)
    opt = optim.Adam({"lr": 0.01})
    a, b = a0.copy(), b0.copy()
    for t in range(4):
        # b is updated only on even steps: its own step count drives its bias correction
        params = [("a", a, ga[t])] + ([("b", b, gb[t // 2])] if t % 2 == 0 else [])
        opt(params)
    np.testing.assert_allclose(a, _run_ref(ref_adam, {"lr": 0.01}, a0, ga), rtol=1e-12)
    np.testing.assert_allclose(b, _run_ref(ref_adam, {"lr": 0.01}, b0, gb[:2]), rtol=1e-12)
    assert opt.state_of("a")["step"] == 4 and opt.state_of("b")["step"] == 2


def test_large_param_releases_gil_path():
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=70000)
    grads = _grads(rng, 70000, 3)
    opt = optim.RMSprop({"lr": 0.01, "momentum": 0.3, "centered": True})
    p = p0.copy()
    for g in grads:
        opt.step([("big", p, g)])
    np.testing.assert_allclose(
        p, _run_ref(ref_rmsprop, {"lr": 0.01, "momentum": 0.3, "centered": True}, p0, grads),
        rtol=1e-11)


def test_param_without_grad_is_skipped():
    opt = optim.Adam({"lr": 0.1})
    p = np.ones(2)
    opt.step([("w", p, None)])
    np.testing.assert_array_equal(p, 1.0)
    with pytest.raises(KeyError):
        opt.state_of("w")
    opt.step([("w", p, np.ones(2))])
    assert opt.state_of("w")["step"] == 1


def test_non_contiguous_or_other_dtype_grad_is_accepted():
    g = np.arange(12.0).reshape(3, 4).T          # Fortran-ordered view
    p = np.zeros((4, 3))
    optim.SGD({"lr": 1.0}).step([("w", p, g)])
    np.testing.assert_array_equal(p, -g)
    p2 = np.zeros(3)
    optim.SGD({"lr": 1.0}).step([("w", p2, np.array([1, 2, 3], dtype=np.int64))])
    np.testing.assert_array_equal(p2, [-1.0, -2.0, -3.0])
    scalar = np.zeros(())
    optim.SGD({"lr": 1.0}).step([("s", scalar, 2)])      # a Python number for a 0-d param
    assert scalar.shape == () and scalar == -2.0


# ---- clip_args (Pyro's PyroOptim) --------------------------------------------------

def test_clip_args_norm_then_value():
    g = np.array([3.0, -4.0, 12.0])             # norm 13
    p = np.zeros(3)
    optim.SGD({"lr": 1.0}, clip_args={"clip_norm": 6.5, "clip_value": 5.0}).step([("w", p, g)])
    scaled = g * (6.5 / (13.0 + 1e-6))
    np.testing.assert_allclose(p, -np.clip(scaled, -5.0, 5.0), rtol=1e-14)


def test_clip_args_small_norm_is_untouched_and_callable_per_param():
    g = np.array([0.3, 0.4])
    clip = lambda name: {"clip_norm": 0.1} if name == "clipped" else {}
    opt = optim.SGD({"lr": 1.0}, clip_args=clip)
    p, q = np.zeros(2), np.zeros(2)
    opt.step([("clipped", p, g), ("free", q, g)])
    np.testing.assert_allclose(p, -g * 0.1 / (0.5 + 1e-6), rtol=1e-14)
    np.testing.assert_array_equal(q, -g)


# ---- per-param optim_args ------------------------------------------------------------

def test_callable_optim_args_receive_param_name():
    seen = []

    def per_param(name):
        seen.append(name)
        return {"lr": 0.1} if name == "special" else {"lr": 0.001, "betas": (0.5, 0.6)}

    rng = np.random.default_rng(2)
    opt = optim.Adam(per_param)
    s0, o0 = rng.normal(size=3), rng.normal(size=3)
    gs, go = _grads(rng, 3, 3), _grads(rng, 3, 3)
    s, o = s0.copy(), o0.copy()
    for t in range(3):
        opt.step([("special", s, gs[t]), ("other", o, go[t])])
    assert seen == ["special", "other"]        # called once per param, on first sight
    np.testing.assert_allclose(s, _run_ref(ref_adam, {"lr": 0.1}, s0, gs), rtol=1e-12)
    np.testing.assert_allclose(o, _run_ref(ref_adam, {"lr": 0.001, "betas": (0.5, 0.6)}, o0, go),
                               rtol=1e-12)


def test_callable_optim_args_errors_name_the_param():
    opt = optim.SGD(lambda name: {"lr": -1.0} if name == "bad" else {"lr": 0.1})
    opt.step([("good", np.zeros(2), np.ones(2))])
    with pytest.raises(ValueError, match=r"SGD \(param 'bad'\).*lr"):
        opt.step([("bad", np.zeros(2), np.ones(2))])
    with pytest.raises(TypeError, match="must return a dict"):
        optim.SGD(lambda name: 0.1).step([("w", np.zeros(1), np.ones(1))])


# ---- state -----------------------------------------------------------------------------

STATEFUL = [
    (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (optim.Adam, {"lr": 0.01, "amsgrad": True}),
    (optim.ClippedAdam, {"lr": 0.01, "lrd": 0.9, "clip_norm": 1.0}),
    (optim.RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True}),
    (optim.Adagrad, {"lr": 0.1, "lr_decay": 0.1}),
]


def _train(opt, params, grads):
    for gs in grads:
        opt.step([(name, p, g) for (name, p), g in zip(params, gs)])


@pytest.mark.parametrize("cls,args", STATEFUL, ids=[c.__name__ for c, _ in STATEFUL])
def test_state_round_trip_continues_identically(cls, args, tmp_path):
    rng = np.random.default_rng(3)
    shapes = {"loc": (3,), "scale": (2, 2), "scalar": ()}
    start = {k: rng.normal(size=s) for k, s in shapes.items()}
    grads = [[rng.normal(size=s) for s in shapes.values()] for _ in range(8)]

    straight = cls(dict(args))
    p1 = [(k, v.copy()) for k, v in start.items()]
    _train(straight, p1, grads)

    first = cls(dict(args))
    p2 = [(k, v.copy()) for k, v in start.items()]
    _train(first, p2, grads[:4])
    state = first.get_state()
    path = tmp_path / "optim.npz"
    first.save(path)

    resumed = cls(dict(args))
    resumed.set_state(state)                    # taken when each param is first seen
    p3 = [(k, v.copy()) for k, v in p2]
    _train(resumed, p3, grads[4:])

    loaded = cls(dict(args))
    loaded.load(path)
    p4 = [(k, v.copy()) for k, v in p2]
    _train(loaded, p4, grads[4:])

    for (_, a), (_, b), (_, c) in zip(p1, p3, p4):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    for name in shapes:
        s1, s3 = straight.state_of(name), resumed.state_of(name)
        assert s1.keys() == s3.keys()
        for key in s1:
            np.testing.assert_array_equal(s1[key], s3[key])


def test_state_is_plain_numbers_and_arrays_shaped_like_params():
    opt = optim.Adam({"lr": 0.01})
    opt.step([("w", np.zeros((2, 3)), np.ones((2, 3)))])
    state = opt.get_state()
    assert set(state) == {"w"}
    entry = state["w"]
    assert set(entry) == {"step", "lr", "exp_avg", "exp_avg_sq"}
    assert entry["step"] == 1 and entry["lr"] == 0.01
    assert entry["exp_avg"].shape == (2, 3)
    np.testing.assert_allclose(entry["exp_avg"], 0.1)
    entry["exp_avg"][:] = 7.0                  # a copy: the optimizer is unaffected
    np.testing.assert_allclose(opt.state_of("w")["exp_avg"], 0.1)


def test_set_state_on_seen_param_applies_now():
    opt = optim.SGD({"lr": 0.1, "momentum": 0.9})
    p = np.zeros(2)
    opt.step([("w", p, np.ones(2))])
    opt.set_state({"w": {"step": 5, "lr": 0.2, "momentum_buffer": np.array([1.0, 2.0])}})
    assert opt.state_of("w")["step"] == 5
    opt.step([("w", p, np.zeros(2))])
    # buf = 0.9 * [1, 2] + 0;  p -= 0.2 * buf
    np.testing.assert_allclose(p, [-0.1 - 0.18, -0.1 - 0.36], rtol=1e-14)


def test_set_state_errors():
    opt = optim.Adam({})
    opt.step([("w", np.zeros(3), np.ones(3))])
    good = opt.get_state()["w"]
    with pytest.raises(ValueError, match="'w'.*shape"):
        opt.set_state({"w": dict(good, exp_avg=np.zeros(4))})
    with pytest.raises(ValueError, match="'w'.*state keys"):
        opt.set_state({"w": {k: v for k, v in good.items() if k != "exp_avg_sq"}})
    with pytest.raises(TypeError, match="get_state"):
        opt.set_state([1, 2])
    with pytest.raises(KeyError, match="no optimizer state for param 'nope'"):
        opt.state_of("nope")


def test_param_shape_change_is_an_error():
    opt = optim.Adam({})
    opt.step([("w", np.zeros(3), np.ones(3))])
    with pytest.raises(ValueError, match=r"'w' has shape \(4,\)"):
        opt.step([("w", np.zeros(4), np.ones(4))])


# ---- argument and buffer errors ---------------------------------------------------------

@pytest.mark.parametrize("cls,args,pattern", [
    (optim.Adam, {"lr": -0.1}, r"Adam: invalid lr=-0\.1"),
    (optim.Adam, {"betas": (0.9, 1.0)}, r"Adam: invalid betas=.*betas\[1\]=1\.0 must be in \[0, 1\)"),
    (optim.Adam, {"betas": (-0.1, 0.9)}, r"Adam: invalid betas"),
    (optim.Adam, {"betas": 0.9}, r"Adam: invalid betas=0\.9: must be a pair"),
    (optim.Adam, {"lr": float("nan")}, r"Adam: invalid lr"),
    (optim.Adam, {"learning_rate": 0.1}, r"Adam: unknown optim_args key 'learning_rate'"),
    (optim.Adam, {"amsgrad": 1}, r"Adam: invalid amsgrad=1: must be True or False"),
    (optim.ClippedAdam, {"clip_norm": 0.0}, r"ClippedAdam: invalid clip_norm"),
    (optim.ClippedAdam, {"lrd": -1.0}, r"ClippedAdam: invalid lrd"),
    (optim.ClippedAdam, {"amsgrad": True}, r"ClippedAdam: unknown optim_args key 'amsgrad'"),
    (optim.SGD, {"momentum": -0.5}, r"SGD: invalid momentum"),
    (optim.SGD, {"nesterov": True}, r"SGD: nesterov=True requires momentum > 0"),
    (optim.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, r"SGD: nesterov"),
    (optim.SGD, {"lr": "fast"}, r"SGD: invalid lr='fast'"),
    (optim.RMSprop, {"alpha": -0.9}, r"RMSprop: invalid alpha"),
    (optim.RMSprop, {"eps": -1e-8}, r"RMSprop: invalid eps"),
    (optim.Adagrad, {"lr_decay": -1.0}, r"Adagrad: invalid lr_decay"),
    (optim.Adagrad, {"initial_accumulator_value": -1.0}, r"Adagrad: invalid initial_acc"),
    (optim.Adagrad, {"weight_decay": -1.0}, r"Adagrad: invalid weight_decay"),
])
def test_invalid_args_raise_value_error(cls, args, pattern):
    with pytest.raises(ValueError, match=pattern):
        cls(args)


def test_invalid_clip_args_and_constructor_types():
    with pytest.raises(ValueError, match=r"Adam: unknown clip_args key 'max_norm'"):
        optim.Adam({}, clip_args={"max_norm": 1.0})
    with pytest.raises(ValueError, match=r"Adam: invalid clip_norm=-1"):
        optim.Adam({}, clip_args={"clip_norm": -1.0})
    with pytest.raises(TypeError, match="optim_args must be a dict or a callable"):
        optim.Adam(0.01)


@pytest.mark.parametrize("value,grad,pattern,exc", [
    (np.zeros(3, dtype=np.float32), np.ones(3), "dtype float64", TypeError),
    (np.zeros((3, 4))[:, ::2], np.ones((3, 2)), "C-contiguous", ValueError),
    (np.zeros(3), np.ones(4), r"grad has shape \(4,\)", ValueError),
    ([0.0, 0.0], np.ones(2), "must be a numpy.ndarray", TypeError),
])
def test_bad_buffers_are_named(value, grad, pattern, exc):
    with pytest.raises(exc, match=pattern):
        optim.Adam({}).step([("w", value, grad)])


def test_step_takes_only_triples():
    with pytest.raises(TypeError, match=r"Adam.step: expected \(name, value, grad\) triples"):
        optim.Adam({}).step([("w", np.zeros(2))])


def test_step_converts_grads_it_cannot_pass_as_they_are():
    """A byte-swapped, integer or strided grad updates as its float64 copy;
    a grad of None leaves its param (and its optimizer state) alone."""
    grads = {"swapped": np.array([1.0, -2.0], dtype=">f8"),
             "integer": np.array([1, -2]),
             "strided": np.array([1.0, 9.0, -2.0, 9.0])[::2]}
    reference = optim.SGD({"lr": 0.5})
    expected = np.zeros(2)
    reference.step([("w", expected, np.array([1.0, -2.0]))])
    sgd = optim.SGD({"lr": 0.5})
    for name, grad in grads.items():
        value = np.zeros(2)
        sgd.step([(name, value, grad), ("untouched", np.ones(2), None)])
        np.testing.assert_array_equal(value, expected)
    assert "untouched" not in sgd.get_state()


def test_read_only_param_is_an_error():
    p = np.zeros(3)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="param 'w'.*writable"):
        optim.SGD({}).step([("w", p, np.ones(3))])


def test_kernel_checks_its_buffers():
    k = _core.OptimKernel("Adam", 3, lr=0.1)
    assert k.state_names == ["exp_avg", "exp_avg_sq"]
    assert k.state.shape == (2, 3) and k.step == 0
    with pytest.raises(ValueError, match="made for 3"):
        k.check(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="step must be >= 0"):
        k.step = -1
    with pytest.raises(ValueError, match="unknown optimizer 'Nadam'"):
        _core.OptimKernel("Nadam", 3)


def test_defaults_match_torch_and_pyro():
    def kernel(cls):
        opt = cls({})
        opt.step([("w", np.zeros(1), np.zeros(1))])
        return opt._slots["w"].kernel
    assert kernel(optim.Adam).lr == 1e-3
    assert kernel(optim.ClippedAdam).lr == 1e-3
    assert kernel(optim.SGD).lr == 1e-3
    assert kernel(optim.RMSprop).lr == 1e-2
    assert kernel(optim.Adagrad).lr == 1e-2
    # ClippedAdam's defaults (clip_norm=10, lrd=1) are exercised by the reference case {}.


def test_optimizers_minimize_a_quadratic():
    target = np.array([1.0, -2.0, 0.5])
    for cls, args in [(optim.Adam, {"lr": 0.05}), (optim.SGD, {"lr": 0.1, "momentum": 0.5}),
                      (optim.RMSprop, {"lr": 0.01}), (optim.Adagrad, {"lr": 0.5}),
                      (optim.ClippedAdam, {"lr": 0.05})]:
        opt, x = cls(args), np.zeros(3)
        for _ in range(500):
            opt.step([("x", x, 2 * (x - target))])
        np.testing.assert_allclose(x, target, atol=2e-2, err_msg=cls.__name__)


# ---- schedulers ------------------------------------------------------------------------

def _lr(scheduler, name="w"):
    return scheduler.state_of(name)["lr"]


def _sgd_step(scheduler, p, name="w"):
    scheduler([(name, p, np.ones_like(p))])


def test_exponential_lr_drives_the_update():
    sched = optim.ExponentialLR({"optimizer": optim.SGD, "optim_args": {"lr": 0.1}, "gamma": 0.5})
    p = np.zeros(2)
    total = 0.0
    for epoch in range(4):
        _sgd_step(sched, p)
        total += 0.1 * 0.5 ** epoch
        np.testing.assert_allclose(p, -total, rtol=1e-14)
        sched.step()
    assert _lr(sched) == pytest.approx(0.1 * 0.5 ** 4)


def test_scheduler_step_with_params_is_an_update_not_an_epoch():
    sched = optim.StepLR({"optimizer": optim.SGD, "optim_args": {"lr": 0.1}, "step_size": 1})
    p = np.zeros(2)
    sched.step([("w", p, np.ones(2))])       # what SVI calls every step
    sched.step([])                           # a step with no params touched
    np.testing.assert_allclose(p, -0.1)
    assert sched.state_of("w")["epoch"] == 0 and _lr(sched) == 0.1
    sched.step()
    assert sched.state_of("w")["epoch"] == 1 and _lr(sched) == pytest.approx(0.01)


def test_late_param_starts_its_own_schedule():
    sched = optim.ExponentialLR({"optimizer": optim.Adam, "optim_args": {"lr": 0.1}, "gamma": 0.5})
    _sgd_step(sched, np.zeros(1), "a")
    sched.step()
    sched.step()
    _sgd_step(sched, np.zeros(1), "b")
    assert _lr(sched, "a") == pytest.approx(0.025)
    assert _lr(sched, "b") == pytest.approx(0.1)
    assert sched.state_of("a")["epoch"] == 2 and sched.state_of("b")["epoch"] == 0


@pytest.mark.parametrize("extra,expected", [
    ({"step_size": 3, "gamma": 0.1}, lambda e, lr: lr * 0.1 ** (e // 3)),
    ({"milestones": [2, 5, 5], "gamma": 0.5}, lambda e, lr: lr * 0.5 ** sum(m <= e for m in [2, 5, 5])),
    ({"lr_lambda": lambda e: 1.0 / (1 + e)}, lambda e, lr: lr / (1 + e)),
    ({"T_max": 6, "eta_min": 0.01}, lambda e, lr: 0.01 + (lr - 0.01) * (1 + math.cos(math.pi * e / 6)) / 2),
], ids=["StepLR", "MultiStepLR", "LambdaLR", "CosineAnnealingLR"])
def test_closed_form_schedules(extra, expected):
    cls = {"step_size": optim.StepLR, "milestones": optim.MultiStepLR,
           "lr_lambda": optim.LambdaLR, "T_max": optim.CosineAnnealingLR}[next(iter(extra))]
    sched = cls(dict({"optimizer": optim.SGD, "optim_args": {"lr": 0.2}}, **extra))
    _sgd_step(sched, np.zeros(1))
    for epoch in range(1, 9):
        sched.step()
        assert _lr(sched) == pytest.approx(expected(epoch, 0.2), rel=1e-12), epoch


def test_multiplicative_lr_and_composition_with_clipped_adam_decay():
    sched = optim.MultiplicativeLR({"optimizer": optim.ClippedAdam,
                                    "optim_args": {"lr": 0.1, "lrd": 0.9},
                                    "lr_lambda": lambda e: 0.5})
    p = np.zeros(1)
    for _ in range(3):
        _sgd_step(sched, p)        # lrd multiplies lr at every update
    sched.step()                   # the schedule multiplies it once per epoch
    assert _lr(sched) == pytest.approx(0.1 * 0.9 ** 3 * 0.5)


def test_reduce_lr_on_plateau():
    sched = optim.ReduceLROnPlateau({"optimizer": optim.SGD, "optim_args": {"lr": 1.0},
                                     "patience": 2, "factor": 0.5, "cooldown": 1})
    _sgd_step(sched, np.zeros(1))
    losses = [10.0, 9.0, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 8.0]
    lrs = []
    for loss in losses:
        sched.step(loss)
        lrs.append(_lr(sched))
    expected = _plateau_reference(losses, 1.0, patience=2, factor=0.5, cooldown=1)
    assert lrs == pytest.approx(expected)
    assert expected[-1] == 0.25               # the case reduces twice, with a cooldown between
    with pytest.raises(TypeError, match="metric"):
        sched.step()


def _plateau_reference(losses, lr, patience, factor, cooldown, threshold=1e-4):
    """torch's ReduceLROnPlateau rules (mode min, relative threshold)."""
    best, bad, cool, out = math.inf, 0, 0, []
    for x in losses:
        if x < best * (1 - threshold):
            best, bad = x, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > patience:
            lr *= factor
            cool, bad = cooldown, 0
        out.append(lr)
    return out


def test_scheduler_state_round_trip():
    args = {"optimizer": optim.Adam, "optim_args": {"lr": 0.1}, "gamma": 0.5}
    a = optim.ExponentialLR(dict(args))
    _sgd_step(a, np.zeros(2))
    a.step()
    b = optim.ExponentialLR(dict(args))
    b.set_state(a.get_state())
    _sgd_step(b, np.zeros(2))
    assert b.state_of("w")["epoch"] == 1 and _lr(b) == pytest.approx(0.05)
    b.step()
    assert _lr(b) == pytest.approx(0.025)


@pytest.mark.parametrize("args,pattern", [
    ({"optim_args": {}, "gamma": 0.5}, "'optimizer' must be a csvi.optim optimizer class"),
    ({"optimizer": optim.Adam, "gamma": 0.5}, "missing 'optim_args'"),
    ({"optimizer": optim.Adam, "optim_args": {}}, "missing required argument 'gamma'"),
    ({"optimizer": optim.Adam, "optim_args": {}, "gamma": -1.0}, "ExponentialLR: invalid gamma"),
    ({"optimizer": optim.Adam, "optim_args": {}, "gamma": 0.5, "step_size": 2},
     "ExponentialLR: unknown argument 'step_size'"),
    ({"optimizer": optim.Adam, "optim_args": {"lr": -1}, "gamma": 0.5}, "Adam: invalid lr"),
])
def test_scheduler_argument_errors(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        optim.ExponentialLR(args)
