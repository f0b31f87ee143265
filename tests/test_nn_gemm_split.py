"""The dense layer's products split over csvi's pool (gemm in src_c/ops_nn.c,
csvi.nn.set_product_tasks): with the setting above 1, each product past the
split's sizes (a block of at least 64 rows or columns and 2^21 multiply-adds
a task) runs as blocks of C through one-thread BLAS calls, and a VJP's two
products (dx and dW) share the setting in one parallel region.  Checked:
every block lands where it belongs (values and gradients against NumPy, in
both split directions, float64 and float32, with gradients accumulated into
a buffer that already holds one, and when x is W, so both products add into
one buffer), the thread count changes no bit, a compiled
step equals the eager one bit for bit, and the setting's bad values are
refused."""
import os
import subprocess
import sys

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core, nn
from csvi.infer import Trace_ELBO
from csvi.optim import Adam

sys.path.insert(0, os.path.dirname(__file__))
from compiled_check import assert_compiled_matches_eager  # noqa: E402

U32 = 2.0 ** -24

@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"tasks{n}")
def product_tasks(request):
    before = nn.get_product_tasks()
    nn.set_product_tasks(request.param)
    yield request.param
    nn.set_product_tasks(before)


# (n, k, m): batch, in_features, out_features.  The first cuts the forward's
# and dx's C by columns (batch rows) and dW's by rows; the second cuts the
# forward's by rows (out_features) and dW's by columns.  Every product here
# has >= 4 * 2^21 multiply-adds and a cut dimension >= 128: 2 tasks or more.
SHAPES = [(300, 200, 150), (130, 120, 400)]


def problem(n, k, m, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)), 0.3 * rng.standard_normal((m, k)),
            rng.standard_normal(m), rng.standard_normal((n, m)))


def run_twice(x, w, b, g, float32):
    """y = dense(x, W, b) + dense(x, W, b) as two records, and the gradients
    of sum(g * y): the second VJP adds into gradients the first has filled."""
    xs, ws = csvi.tensor(x, requires_grad=True), csvi.tensor(w, requires_grad=True)
    bs = csvi.tensor(b, requires_grad=True)
    y = _core.dense(xs, ws, bs, None, 20.0, float32) + _core.dense(xs, ws, bs, None, 20.0,
                                                                    float32)
    (y * g).sum().backward()
    return y.numpy(), xs.grad, ws.grad, bs.grad


def gamma(j):
    return j * U32 / (1.0 - j * U32)


@pytest.mark.parametrize("shape", SHAPES)
def test_float64_blocks_land_in_place(shape, product_tasks):
    x, w, b, g = problem(*shape)
    y, dx, dw, db = run_twice(x, w, b, g, False)
    np.testing.assert_allclose(y, 2 * (x @ w.T + b), rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(dx, 2 * g @ w, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(dw, 2 * g.T @ x, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(db, 2 * g.sum(0), rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("shape", SHAPES)
def test_float32_blocks_land_in_place(shape, product_tasks):
    """Within the float32 bound of a k-term product (Higham 3.5; rounding x,
    W and g to float32 counts as two more terms), twice for the two records."""
    x, w, b, g = problem(*shape, seed=1)
    n, k = x.shape
    m = w.shape[0]
    y, dx, dw, db = run_twice(x, w, b, g, True)
    slack = 1e-12
    assert np.all(np.abs(y - 2 * (x @ w.T + b)) <= 2 * gamma(k + 2) * (np.abs(x) @ np.abs(w).T)
                  + slack)
    assert np.all(np.abs(dx - 2 * g @ w) <= 2 * gamma(m + 2) * (np.abs(g) @ np.abs(w)) + slack)
    assert np.all(np.abs(dw - 2 * g.T @ x) <= 2 * gamma(n + 2) * (np.abs(g).T @ np.abs(x))
                  + slack)
    np.testing.assert_allclose(db, 2 * g.sum(0), rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("float32", [False, True])
def test_input_that_is_the_weight_gets_both_gradients(float32, product_tasks):
    """dense(x, x): y = x x^T, so x's gradient is g x + g^T x, both products
    adding into one buffer (one after the other, not at once).  Large enough
    (330^3 multiply-adds) to wake a sleeping worker."""
    size = 330
    x, _, _, _ = problem(size, size, size, seed=2)
    g = np.random.default_rng(3).standard_normal((size, size))
    xs = csvi.tensor(x, requires_grad=True)
    y = _core.dense(xs, xs, None, None, 20.0, float32)
    (y * g).sum().backward()
    expected = g @ x + g.T @ x
    if float32:
        bound = 2 * gamma(size + 2) * (np.abs(g) @ np.abs(x) + np.abs(g).T @ np.abs(x)) + 1e-12
        assert np.all(np.abs(xs.grad - expected) <= bound)
    else:
        np.testing.assert_allclose(xs.grad, expected, rtol=1e-12, atol=1e-10)


def test_thread_count_changes_no_bit():
    code = (
        "import hashlib, numpy as np, csvi; from csvi import _core\n"
        "rng = np.random.default_rng(0)\n"
        "out = []\n"
        f"for n, k, m in {SHAPES!r}:\n"
        "    for float32 in (False, True):\n"
        "        x = csvi.tensor(rng.standard_normal((n, k)), requires_grad=True)\n"
        "        w = csvi.tensor(rng.standard_normal((m, k)), requires_grad=True)\n"
        "        y = _core.dense(x, w, None, 'tanh', 20.0, float32)\n"
        "        (y * y).sum().backward()\n"
        "        out += [y.numpy(), x.grad, w.grad]\n"
        "print(hashlib.sha256(b''.join(a.tobytes() for a in out)).hexdigest())\n")
    outs = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS="1",
                   CSVI_PRODUCT_TASKS="2",
                   PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(csvi.__file__))))
        # cwd: the tests' folder, so `-c` cannot import the source tree's csvi
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout)
    assert len(outs) == 1


@pytest.mark.parametrize("bad", [0, 9, 2.0, True, "2"])
def test_bad_settings_are_refused(bad):
    before = nn.get_product_tasks()
    with pytest.raises(ValueError, match="set_product_tasks: n must be an integer from 1 to 8"):
        nn.set_product_tasks(bad)
    assert nn.get_product_tasks() == before


def test_environment_sets_it_when_blas_loads():
    code = ("import numpy as np, csvi; from csvi import _core, nn\n"
            "before = nn.get_product_tasks()\n"
            "_core.dense(csvi.tensor(np.ones((4, 3))), csvi.tensor(np.ones((2, 3))))\n"
            "print(before, nn.get_product_tasks())\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(csvi.__file__)))
    cwd = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=root,
                         CSVI_PRODUCT_TASKS="3"), capture_output=True, text=True, cwd=cwd)
    assert out.stdout.split() == ["2", "3"], out.stderr  # the default, then the variable's
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=root,
                         CSVI_PRODUCT_TASKS="many"), capture_output=True, text=True, cwd=cwd)
    assert "CSVI_PRODUCT_TASKS must be an integer from 1 to 8, got 'many'" in out.stderr


def test_compiled_step_matches_eager_bit_for_bit_with_split_products():
    """A guide's network large enough to split (160 x 200 x 160 products)."""
    data = np.random.default_rng(0).standard_normal((320, 200))
    nn.set_product_tasks(2)
    try:
        for float32 in (False, True):
            csvi.set_rng_seed(0)
            encoder = nn.Sequential(nn.Linear(200, 160), nn.Softplus(), nn.Linear(160, 2))
            if float32:
                encoder.float()
            start = {k: np.array(v) for k, v in encoder.state_dict().items()}

            def model(data):
                with csvi.plate("data", 320, subsample_size=160):
                    csvi.sample("z", dist.Normal(np.zeros((160, 2)), 1.0).to_event(1))

            def guide_factory():
                encoder.load_state_dict(start)

                def guide(data):
                    csvi.module("encoder", encoder)
                    with csvi.plate("data", 320, subsample_size=160) as idx:
                        loc = encoder(data[idx])
                        csvi.sample("z", dist.Normal(loc, 1.0).to_event(1))
                return guide

            assert_compiled_matches_eager(model, guide_factory, lambda: Adam({"lr": 1e-2}),
                                          Trace_ELBO, args=(data,), steps=3, rtol=0.0)
    finally:
        nn.set_product_tasks(1)
