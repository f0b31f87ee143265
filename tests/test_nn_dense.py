"""The fused dense layer (DENSE / DENSE_ACT, src_c/ops_nn.c): fused == composed
in values and gradients, gradients against finite differences, the same bits
for any thread count, Linear + activation fused in Sequential, compiled ==
eager."""
import os
import subprocess
import sys

import numpy as np
import pytest

import csvi
from csvi import _core, nn
from csvi.infer import Trace_ELBO
from csvi.nn import functional as F
from csvi.optim import Adam

sys.path.insert(0, os.path.dirname(__file__))
from compiled_check import assert_compiled_matches_eager  # noqa: E402
from gradcheck import assert_grads_match  # noqa: E402
from small_vae import NUMPY_ACTIVATIONS, small_vae  # noqa: E402

COMPOSED = {
    None: lambda z: z,
    "relu": F.relu,
    "softplus": F.softplus,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
}


def problem(n=5, k=4, m=3, scale=3.0, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)), scale * rng.standard_normal((m, k)),
            rng.standard_normal(m))


@pytest.mark.parametrize("activation", list(COMPOSED))
@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_equals_composed_and_numpy(activation, with_bias):
    x, w, b = problem()
    b = b if with_bias else None
    ref = x @ w.T + (b if with_bias else 0.0)
    grads = []
    for fused in (True, False):
        xs, ws = csvi.tensor(x, requires_grad=True), csvi.tensor(w, requires_grad=True)
        bs = csvi.tensor(b, requires_grad=True) if with_bias else None
        if fused:
            y = _core.dense(xs, ws, bs, activation)
        else:
            z = _core.matmul(xs, _core.transpose(ws))
            y = COMPOSED[activation](z + bs if with_bias else z)
        np.testing.assert_allclose(y.numpy(), NUMPY_ACTIVATIONS[activation](ref), rtol=1e-13, atol=1e-15)
        weights = np.random.default_rng(1).standard_normal(y.shape)
        (y * weights).sum().backward()
        grads.append([t.grad for t in (xs, ws, bs) if t is not None])
    for fused_grad, composed_grad in zip(*grads):
        np.testing.assert_allclose(fused_grad, composed_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", list(COMPOSED))
def test_gradients_match_finite_differences(activation):
    x, w, b = problem(scale=1.0)
    assert_grads_match(lambda x, w, b: _core.dense(x, w, b, activation), [x, w, b])


def test_saturated_activations_keep_their_small_gradients():
    """Far out, sigmoid' and tanh' are tiny but not zero, as the composed ops'
    (forms in e^-|z|, not y (1 - y)); softplus above its threshold is z."""
    x = np.array([[40.0], [-40.0], [25.0]])
    w = np.ones((1, 1))
    for activation, expected in [("sigmoid", np.exp(-40.0)), ("tanh", 4 * np.exp(-80.0))]:
        xs = csvi.tensor(x, requires_grad=True)
        _core.dense(xs, w, None, activation).sum().backward()
        np.testing.assert_allclose(xs.grad[:2, 0], expected, rtol=1e-12)
    xs = csvi.tensor(x, requires_grad=True)
    y = _core.dense(xs, w, None, "softplus")
    y.sum().backward()
    assert y.numpy()[2, 0] == 25.0 and xs.grad[2, 0] == 1.0


@pytest.mark.parametrize("float32", [False, True])
def test_bias_gradient_adds_rows_in_order(float32):
    """The VJP's column pass adds gz into the bias's gradient row after row:
    bit for bit the sequential row sum, over column blocks (32) and row
    counts that are not multiples of anything."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((37, 5)), rng.standard_normal((150, 5))
    b = csvi.tensor(rng.standard_normal(150), requires_grad=True)
    g = rng.standard_normal((37, 150)) * np.exp(rng.uniform(-20, 20, (37, 150)))
    y = _core.dense(csvi.tensor(x, requires_grad=True), w, b, None, 20.0, float32)
    (y * g).sum().backward()
    expected = np.zeros(150)
    for row in g:
        expected = expected + row
    np.testing.assert_array_equal(b.grad, expected)


def test_empty_and_zero_width_inputs():
    w, b = np.ones((3, 0)), np.arange(3.0)
    np.testing.assert_array_equal(_core.dense(np.zeros((2, 0)), w, b, "relu").numpy(),
                                  np.tile(b, (2, 1)))
    assert _core.dense(np.zeros((0, 4)), np.ones((3, 4)), None, "tanh").shape == (0, 3)


def test_bad_input_names_the_shapes():
    x, w, b = problem()
    with pytest.raises(ValueError, match=r"\(5, 4\) and \(4, 3\)"):
        _core.dense(x, w.T, None)
    with pytest.raises(ValueError, match=r"bias of shape \(4,\)"):
        _core.dense(x, w, np.zeros(4))
    with pytest.raises(ValueError, match="activation must be one of"):
        _core.dense(x, w, b, "gelu")


def test_thread_count_changes_no_bit():
    """Rows (and the float32 conversions) split over csvi's pool; the bias
    gradient adds rows in order."""
    code = (
        "import hashlib, numpy as np, csvi; from csvi import _core\n"
        "rng = np.random.default_rng(0)\n"
        "x = csvi.tensor(rng.standard_normal((300, 70)), requires_grad=True)\n"
        "w = csvi.tensor(rng.standard_normal((90, 70)), requires_grad=True)\n"
        "b = csvi.tensor(rng.standard_normal(90), requires_grad=True)\n"
        "y = _core.dense(x, w, b, 'softplus')\n"
        "y32 = _core.dense(x, w, b, 'tanh', 20.0, True)\n"  # float32 products
        "((y * y).sum() + (y32 * y32).sum()).backward()\n"
        "arrays = (y.numpy(), y32.numpy(), x.grad, w.grad, b.grad)\n"
        "print(hashlib.sha256(b''.join(a.tobytes() for a in arrays)).hexdigest())\n")
    outs = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(csvi.__file__))))
        # cwd: the tests' folder, so `-c` cannot import the source tree's csvi
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout)
    assert len(outs) == 1


@pytest.mark.parametrize("layer, activation", [
    (nn.ReLU(), "relu"), (nn.Softplus(), "softplus"), (nn.Sigmoid(), "sigmoid"),
    (nn.Tanh(), "tanh")])
def test_sequential_fuses_linear_and_activation(layer, activation):
    csvi.set_rng_seed(0)
    seq = nn.Sequential(nn.Linear(4, 3), layer, nn.Linear(3, 2))
    x = np.random.default_rng(2).standard_normal((6, 4))
    tape = _core.Tape(record_all=True)
    y = _core.record_call(tape, lambda: seq(x))
    ops = tape.op_names()
    assert ops.count("DENSE_ACT") == 1 and ops.count("DENSE") == 1, ops
    fc1, fc2 = seq[0], seq[2]
    h = NUMPY_ACTIVATIONS[activation](x @ fc1.weight.numpy().T + fc1.bias.numpy())
    np.testing.assert_allclose(y.numpy(), h @ fc2.weight.numpy().T + fc2.bias.numpy(),
                               rtol=1e-13)


def test_sequential_does_not_fuse_what_would_change_the_result():
    """Softplus with beta != 1 and a 3-d input keep the composed ops."""
    csvi.set_rng_seed(0)
    x = np.random.default_rng(2).standard_normal((2, 6, 4))
    for seq, inp in [(nn.Sequential(nn.Linear(4, 3), nn.Softplus(beta=2.0)), x[0]),
                     (nn.Sequential(nn.Linear(4, 3), nn.ReLU()), x)]:
        tape = _core.Tape(record_all=True)
        y = _core.record_call(tape, lambda: seq(inp))
        assert "DENSE_ACT" not in tape.op_names()
        fc = seq[0]
        z = inp @ fc.weight.numpy().T + fc.bias.numpy()
        ref = np.logaddexp(0.0, 2.0 * z) / 2.0 if isinstance(seq[1], nn.Softplus) \
            else np.maximum(z, 0.0)
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-13)


def test_amortized_guide_with_fused_layers_compiles_as_eager():
    model, fresh_guide, data = small_vae(nn.Tanh)
    assert_compiled_matches_eager(model, fresh_guide, lambda: Adam({"lr": 0.01}), Trace_ELBO,
                                  args=(data,), steps=10)
