"""The dense layer's float32 products (Linear(..., dtype=np.float32),
Module.float(), _core.dense(..., float32=True)): values and gradients against
the float64 layer within bounds derived from float32 rounding, the same bits
eager and compiled, and the option reaching every path a Linear takes.

The bounds: rounding x and W to float32 and accumulating k products in
float32 gives |fl(x W^T) - x W^T| <= gamma(k + 2) |x| |W|^T elementwise, with
gamma(j) = j u / (1 - j u) and u = 2^-24 (Higham, Accuracy and Stability of
Numerical Algorithms, 3.5); widening back is exact and the bias runs in
float64.  Softplus and sigmoid take their exp and log1p in float32 (a few u
of the value more: ACT32) and the rest in float64, and keep their
derivative for the VJP in float32 (a u more); relu and tanh run in
float64.  Every activation here is 1-Lipschitz, so the forward bound carries
through it; in the VJP the activation's derivative at the float32
pre-activation moves by at most sup|act''| times that bound."""
import os
import sys

import numpy as np
import pytest

import csvi
from csvi import _core, nn
from csvi.infer import Trace_ELBO
from csvi.optim import Adam

sys.path.insert(0, os.path.dirname(__file__))
from compiled_check import assert_compiled_matches_eager  # noqa: E402
from small_vae import NUMPY_ACTIVATIONS, small_vae  # noqa: E402

U32 = 2.0 ** -24
F64_SLACK = 1e-13  # the float64 parts (bias, activation) against numpy's forms
# relative error of softplus' and sigmoid's float32 exp and log1p (libmvec's
# float variants are within 4 ulp; a relative error d of e = exp(-|z|) moves
# log1p(e), e / (1 + e) and 1 / (1 + e) by at most d times the value)
ACT32 = {"softplus": 8 * U32, "sigmoid": 8 * U32}

DERIVATIVE = {
    None: lambda z: np.ones_like(z),
    "relu": lambda z: (z > 0).astype(float),
    "softplus": lambda z: np.where(z > 20.0, 1.0, 1.0 / (1.0 + np.exp(-z))),
    "sigmoid": lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2,
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
}
# sup |act''|: softplus'' = sigmoid' <= 1/4; sigmoid'' <= 1/(6 sqrt 3);
# tanh'' <= 4/(3 sqrt 3); relu' jumps at 0 (handled apart)
SECOND_DERIVATIVE_BOUND = {None: 0.0, "softplus": 0.25, "sigmoid": 1.0 / (6.0 * np.sqrt(3.0)),
                           "tanh": 4.0 / (3.0 * np.sqrt(3.0))}


def gamma(j):
    return j * U32 / (1.0 - j * U32)


def problem(n=37, k=53, m=29, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)), 0.5 * rng.standard_normal((m, k)),
            rng.standard_normal(m), rng.standard_normal((n, m)))


def run_dense(x, w, b, activation, float32, g):
    """dense's output and the gradients of sum(g * output) w.r.t. x, W, b."""
    xs, ws = csvi.tensor(x, requires_grad=True), csvi.tensor(w, requires_grad=True)
    bs = csvi.tensor(b, requires_grad=True) if b is not None else None
    y = _core.dense(xs, ws, bs, activation, 20.0, float32)
    (y * g).sum().backward()
    return y.numpy(), xs.grad, ws.grad, None if bs is None else bs.grad


@pytest.mark.parametrize("activation", list(NUMPY_ACTIVATIONS))
@pytest.mark.parametrize("with_bias", [True, False])
def test_values_within_float32_rounding_of_float64(activation, with_bias):
    x, w, b, g = problem()
    b = b if with_bias else None
    y32 = run_dense(x, w, b, activation, True, g)[0]
    y64 = run_dense(x, w, b, activation, False, g)[0]
    z = x @ w.T + (0.0 if b is None else b)
    bound = (gamma(x.shape[1] + 2) * (np.abs(x) @ np.abs(w).T) + F64_SLACK
             + ACT32.get(activation, 0.0) * np.abs(NUMPY_ACTIVATIONS[activation](z)))
    assert np.all(np.abs(y32 - NUMPY_ACTIVATIONS[activation](z)) <= bound)
    assert np.all(np.abs(y64 - NUMPY_ACTIVATIONS[activation](z)) <= F64_SLACK)
    assert not np.array_equal(y32, y64)  # the products did run in float32
    # and agree with numpy's own float32 product to the same bound, twice over
    z32 = (x.astype(np.float32) @ w.astype(np.float32).T).astype(float) + (0.0 if b is None else b)
    assert np.all(np.abs(y32 - NUMPY_ACTIVATIONS[activation](z32)) <= 2 * bound)


@pytest.mark.parametrize("activation", list(NUMPY_ACTIVATIONS))
def test_gradients_within_float32_rounding_of_float64(activation):
    x, w, b, g = problem(seed=1)
    _, dx32, dw32, db32 = run_dense(x, w, b, activation, True, g)
    _, dx64, dw64, db64 = run_dense(x, w, b, activation, False, g)
    n, k = x.shape
    m = w.shape[0]
    z = x @ w.T + b
    z_err = gamma(k + 2) * (np.abs(x) @ np.abs(w).T)
    gz = g * DERIVATIVE[activation](z)
    if activation == "relu":  # the derivative may flip where z is within reach of 0
        gz_err = np.abs(g) * (np.abs(z) <= z_err + F64_SLACK)
    else:
        gz_err = (np.abs(g) * SECOND_DERIVATIVE_BOUND[activation] * z_err + F64_SLACK
                  + ACT32.get(activation, 0.0) * np.abs(gz))
    dx_bound = (gamma(m + 2) * (np.abs(gz) + gz_err) + gz_err) @ np.abs(w) + F64_SLACK
    dw_bound = (gamma(n + 2) * (np.abs(gz) + gz_err) + gz_err).T @ np.abs(x) + F64_SLACK
    assert np.all(np.abs(dx32 - gz @ w) <= dx_bound)
    assert np.all(np.abs(dw32 - gz.T @ x) <= dw_bound)
    assert np.all(np.abs(db32 - gz.sum(0)) <= gz_err.sum(0) + F64_SLACK * n)
    for g64, ref in ((dx64, gz @ w), (dw64, gz.T @ x), (db64, gz.sum(0))):
        np.testing.assert_allclose(g64, ref, rtol=1e-12, atol=1e-12)
    assert not np.array_equal(dx32, dx64) and not np.array_equal(dw32, dw64)


@pytest.mark.parametrize("activation", ["softplus", "sigmoid"])
def test_float32_transcendentals_at_exact_pre_activations(activation):
    """x @ I with float32-representable x: the product is exact, so what is
    left is the activation's float32 exp and log1p -- within ACT32 of the
    float64 value and of its derivative (the VJP's g * act'(z) with g = 1:
    act'(z) kept in float32, then rounded to float32 for the product, and
    the product itself), not the float64 layer's bits, and
    sigmoid's 1 - p as positive as float64's where a float32 sigmoid is 1."""
    rng = np.random.default_rng(4)
    z = np.concatenate([rng.uniform(-40.0, 40.0, 500), np.linspace(18.0, 36.0, 12)])
    z = z.astype(np.float32).astype(float).reshape(4, 128)
    eye = np.eye(128)
    value = NUMPY_ACTIVATIONS[activation](z)
    xs = csvi.tensor(z, requires_grad=True)
    y = _core.dense(xs, csvi.tensor(eye), None, activation, 20.0, True)
    y.sum().backward()
    assert np.all(np.abs(y.numpy() - value) <= ACT32[activation] * value)
    derivative = DERIVATIVE[activation](z)
    assert np.all(np.abs(xs.grad - derivative) <= (ACT32[activation] + 3 * U32) * derivative)
    assert not np.array_equal(y.numpy(), _core.dense(csvi.tensor(z), csvi.tensor(eye), None,
                                                     activation, 20.0, False).numpy())
    if activation == "sigmoid":
        tail = z[-1, -12:]
        assert np.all(np.float32(1.0 / (1.0 + np.exp(-tail))) == 1.0)  # float32's saturates
        p = y.numpy()[-1, -12:]
        tail_of_one = np.exp(-tail) / (1.0 + np.exp(-tail))  # 1 - p, within 1 - p's rounding
        assert np.all(p < 1.0)
        assert np.all(np.abs((1.0 - p) - tail_of_one)
                      <= ACT32["sigmoid"] * tail_of_one + 2.0 ** -53)


def test_gradients_accumulate_into_existing_gradients():
    """An input used twice: each use's float32 product adds to the float64 gradient."""
    x, w, b, g = problem(seed=2)
    xs, ws = csvi.tensor(x, requires_grad=True), csvi.tensor(w, requires_grad=True)
    ((_core.dense(xs, ws, None, "tanh", 20.0, True) * g).sum()
     + (_core.dense(xs, ws, None, "tanh", 20.0, True) * g).sum()).backward()
    _, dx_once, dw_once, _ = run_dense(x, w, None, "tanh", True, g)
    np.testing.assert_array_equal(xs.grad, 2 * dx_once)
    np.testing.assert_array_equal(ws.grad, 2 * dw_once)


def test_linear_dtype_reaches_every_path():
    """Linear(dtype=float32) alone, in a fused Sequential, with 1-d and 3-d
    inputs, after .float() and back after .double(): the same bits as dense
    in the matching precision."""
    csvi.set_rng_seed(0)
    x = np.random.default_rng(3).standard_normal((6, 4))
    fc = nn.Linear(4, 3, dtype=np.float32)
    w, b = fc.weight, fc.bias

    def dense(inp, act=None, float32=True):
        return _core.dense(inp, w, b, act, 20.0, float32).numpy()

    np.testing.assert_array_equal(fc(x).numpy(), dense(x))
    np.testing.assert_array_equal(fc(x[2]).numpy(), dense(x[2:3])[0])
    x3 = x.reshape(2, 3, 4)
    np.testing.assert_array_equal(fc(x3).numpy(), dense(x).reshape(2, 3, 3))
    seq = nn.Sequential(fc, nn.Softplus())
    np.testing.assert_array_equal(seq(x).numpy(), dense(x, "softplus"))
    seq.double()
    assert fc.dtype == np.float64 and "dtype" not in repr(fc)
    np.testing.assert_array_equal(seq(x).numpy(), dense(x, "softplus", False))
    assert not np.array_equal(dense(x, "softplus", False), dense(x, "softplus"))
    seq.float()
    assert fc.dtype == np.float32 and "dtype=float32" in repr(seq)
    np.testing.assert_array_equal(seq(x).numpy(), dense(x, "softplus"))


def test_pyro_module_linear_takes_the_dtype():
    csvi.set_rng_seed(0)
    layer = nn.PyroModule[nn.Linear](4, 3, dtype="float32")
    x = np.random.default_rng(4).standard_normal((5, 4))
    np.testing.assert_array_equal(
        layer(x).numpy(), _core.dense(x, layer.weight, layer.bias, None, 20.0, True).numpy())


@pytest.mark.parametrize("dtype", ["float16", np.int64, "complex128", 3])
def test_bad_dtype_names_the_layer(dtype):
    with pytest.raises(TypeError, match="Linear: dtype must be float32 or float64"):
        nn.Linear(4, 3, dtype=dtype)
    fc = nn.Linear(4, 3)
    with pytest.raises(TypeError, match=r"Linear\(in_features=4.*dtype must be"):
        fc._multiply_in(dtype)
    assert fc.dtype == np.float64


def test_float32_vae_compiles_bit_for_bit_as_eager_and_tracks_float64():
    model, guide, data = small_vae(nn.Softplus, float32=True)
    losses32, params32 = assert_compiled_matches_eager(
        model, guide, lambda: Adam({"lr": 0.01}), Trace_ELBO, args=(data,), steps=10,
        rtol=0.0, atol=0.0)
    model, guide, data = small_vae(nn.Softplus)
    losses64, params64 = assert_compiled_matches_eager(
        model, guide, lambda: Adam({"lr": 0.01}), Trace_ELBO, args=(data,), steps=10)
    # same draws and minibatches: float32 products move the trajectory a little
    # (a sanity check; the per-record bounds above are the precision claims)
    assert not np.array_equal(losses32, losses64)
    np.testing.assert_allclose(losses32, losses64, rtol=1e-4)
    for name in params64:
        assert params32[name].dtype == np.float64
        np.testing.assert_allclose(params32[name], params64[name], atol=1e-4, err_msg=name)


def test_float32_vae_with_several_particles_compiles_as_eager():
    """Each particle's records keep their own float32 copies (the aux slot is
    per particle), so several particles agree to rounding, as in float64."""
    model, guide, data = small_vae(nn.Softplus, float32=True)
    assert_compiled_matches_eager(model, guide, lambda: Adam({"lr": 0.01}),
                                  lambda: Trace_ELBO(num_particles=3), args=(data,), steps=5,
                                  rtol=1e-12, atol=1e-12)


def test_empty_inputs_in_float32():
    for shape in [(0, 4), (3, 0)]:
        x = csvi.tensor(np.ones(shape), requires_grad=True)
        w = csvi.tensor(np.ones((2, shape[1])), requires_grad=True)
        y = _core.dense(x, w, None, "tanh", 20.0, True)
        y.sum().backward()
        np.testing.assert_array_equal(y.numpy(), np.zeros((shape[0], 2)))
        np.testing.assert_array_equal(w.grad, np.zeros((2, shape[1])))
