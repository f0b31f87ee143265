"""The vectorized, threaded kernels: libmvec transcendentals, Bernoulli
log_prob with logits, mat-vec products, flat binary ops and sums.

Values against NumPy/SciPy at sizes that cross the SIMD widths, the task
blocks and the thread thresholds; extreme inputs (inf, 1e300, +-745, NaN);
gradients against formulas and central differences; and bitwise the same
results for any number of threads, in a forked child, and compiled or eager.
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.special as sp

import csvi
import csvi.distributions as dist
from csvi import _core
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from gradcheck import assert_grads_match
from models import logreg, logreg_guide

SIZES = [0, 1, 3, 7, 8, 9, 1000, 100_003]
EXTREMES = [np.inf, -np.inf, 1e300, -1e300, 745.0, -745.0, 709.0, -709.0, 40.0, -40.0,
            1e-300, -1e-300, 0.0, -0.0, np.nan]
TESTS = os.path.dirname(os.path.abspath(__file__))
# where the csvi under test is installed (site-packages in CI, the tree in a dev build)
CSVI_HOME = os.path.dirname(os.path.dirname(csvi.__file__))


@pytest.fixture(autouse=True)
def _fresh_default_tape():
    _core.current_tape().clear()
    yield
    _core.current_tape().clear()


def draw(n, scale=5.0, seed=0):
    """n normal draws times `scale`, with the extreme values at both ends."""
    x = np.random.default_rng(seed).standard_normal(n) * scale
    k = min(n // 2, len(EXTREMES))
    x[:k] = EXTREMES[:k]
    x[n - k:] = EXTREMES[-k:] if k else x[n - k:]
    return x


def value_and_grad(fn, x, seed=1):
    """fn(x) and the gradient of sum(fn(x) * w) w.r.t. x, w random normal."""
    t = csvi.tensor(x, requires_grad=True)
    y = fn(t)
    w = np.random.default_rng(seed).standard_normal(np.shape(x))
    (y * w).sum().backward()
    return y.numpy(), t.grad, w


def assert_close(got, expected, rtol=1e-12):
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-300)


def assert_sum_close(got, expected, magnitude):
    """A sum or dot product: the error is relative to the terms' magnitude."""
    np.testing.assert_array_less(np.abs(got - expected), 1e-12 * magnitude + 1e-300)


# ---- unary transcendentals -----------------------------------------------------

def _tanh_grad(x):
    with np.errstate(over="ignore"):
        return 1.0 / np.cosh(x) ** 2


UNARY = {
    # name: (op, reference, derivative, domain shift of the data)
    "exp": (_core.exp, np.exp, np.exp, None),
    "log": (_core.log, np.log, lambda x: 1.0 / x, np.abs),
    "log1p": (_core.log1p, np.log1p, lambda x: 1.0 / (1.0 + x), lambda x: np.abs(x) - 0.5),
    "expm1": (_core.expm1, np.expm1, np.exp, None),
    "sigmoid": (_core.sigmoid, sp.expit, lambda x: sp.expit(x) * sp.expit(-x), None),
    "softplus": (_core.softplus, lambda x: np.logaddexp(0.0, x), sp.expit, None),
    "tanh": (_core.tanh, np.tanh, _tanh_grad, None),
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_values_and_gradients(name, n):
    op, ref, deriv, shift = UNARY[name]
    x = draw(n)
    if shift is not None:
        x = shift(x)
    with np.errstate(all="ignore"):
        y, g, w = value_and_grad(op, x)
        assert_close(y, ref(x))
        assert_close(g, w * deriv(x))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_finite_differences(name):
    op, _, _, shift = UNARY[name]
    x = np.random.default_rng(2).uniform(-3.0, 3.0, 11)
    if shift is not None:
        x = shift(x) + 0.1
    assert_grads_match(op, [x])


# ---- Bernoulli log_prob with logits --------------------------------------------

def bernoulli_lp(x, logits):
    """log p(x) from SciPy: exact at 0 and 1, the continuous extension between."""
    with np.errstate(all="ignore"):
        mixed = -(x * np.logaddexp(0.0, -logits) + (1.0 - x) * np.logaddexp(0.0, logits))
        return np.where(x == 1.0, sp.log_expit(logits),
                        np.where(x == 0.0, sp.log_expit(-logits), mixed))


def logits_lp(logits, value):
    return dist.Bernoulli(logits=logits, validate_args=False).log_prob(value)


@pytest.mark.parametrize("n", SIZES)
def test_bernoulli_logits_values_and_gradient(n):
    logits = draw(n, scale=10.0)
    x = (np.random.default_rng(3).random(n) < 0.5).astype(float)
    y, g, w = value_and_grad(lambda t: logits_lp(t, x), logits)
    assert_close(y, bernoulli_lp(x, logits))
    assert_close(g, w * (x - sp.expit(logits)))


def test_bernoulli_logits_at_the_extremes():
    logits = np.array([np.inf, np.inf, -np.inf, -np.inf, -1000.0, 1000.0, 1e300, -1e300, np.nan])
    x = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    y, g, w = value_and_grad(lambda t: logits_lp(t, x), logits)
    np.testing.assert_array_equal(y, [0.0, -np.inf, -np.inf, 0.0, -1000.0, -1000.0, -1e300,
                                      -1e300, np.nan])
    np.testing.assert_array_equal(g, w * (x - sp.expit(logits)))
    assert_close(y, np.where(x == 1.0, sp.log_expit(logits), sp.log_expit(-logits)))


def test_bernoulli_logits_matches_scipy_stats():
    """Where probs = expit(logits) keeps its precision (|logits| <= 8)."""
    from scipy.stats import bernoulli

    logits = np.random.default_rng(4).uniform(-8.0, 8.0, 5000)
    x = (np.random.default_rng(5).random(5000) < 0.3).astype(float)
    assert_close(logits_lp(logits, x).numpy(), bernoulli.logpmf(x, sp.expit(logits)), rtol=1e-9)


@pytest.mark.parametrize("n", [9, 100_003])
def test_bernoulli_logits_value_between_0_and_1(n):
    logits = draw(n, scale=10.0)
    x = np.random.default_rng(6).random(n)
    assert_close(logits_lp(logits, x).numpy(), bernoulli_lp(x, logits))


def test_bernoulli_logits_broadcast_and_value_gradient():
    logits = np.random.default_rng(7).normal(size=(4, 1)) * 3
    x = np.random.default_rng(8).random((4, 5))
    assert_close(logits_lp(logits, x).numpy(), bernoulli_lp(x, logits))
    assert_grads_match(logits_lp, [logits, x])


# ---- mat-vec products ----------------------------------------------------------

MATVEC_SHAPES = [(n, k) for n in SIZES for k in (1, 5, 20)] + [
    (1000, k) for k in (4, 8, 63, 64, 65, 130)]


@pytest.mark.parametrize("n,k", MATVEC_SHAPES)
def test_matrix_times_vector(n, k):
    rng = np.random.default_rng(n + k)
    x, w = rng.standard_normal((n, k)), rng.standard_normal(k)
    tx, tw = csvi.tensor(x, requires_grad=True), csvi.tensor(w, requires_grad=True)
    y = tx @ tw
    g = rng.standard_normal(n)
    (y * g).sum().backward()
    assert_sum_close(y.numpy(), x @ w, np.abs(x) @ np.abs(w))
    assert_sum_close(tw.grad, x.T @ g, np.abs(x.T) @ np.abs(g))
    assert_close(tx.grad, np.outer(g, w))


@pytest.mark.parametrize("k,m", [(1, 1), (7, 3), (1000, 20), (100_003, 5), (50, 64), (50, 65)])
def test_vector_times_matrix(k, m):
    rng = np.random.default_rng(k + m)
    v, b = rng.standard_normal(k), rng.standard_normal((k, m))
    tv, tb = csvi.tensor(v, requires_grad=True), csvi.tensor(b, requires_grad=True)
    y = tv @ tb
    g = rng.standard_normal(m)
    (y * g).sum().backward()
    assert_sum_close(y.numpy(), v @ b, np.abs(v) @ np.abs(b))
    assert_sum_close(tv.grad, b @ g, np.abs(b) @ np.abs(g))
    assert_close(tb.grad, np.outer(v, g))


def test_batched_matvec_broadcasts_and_sums_gradients():
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((1000, 6)), rng.standard_normal((3, 6, 1))
    tx, tw = csvi.tensor(x, requires_grad=True), csvi.tensor(w, requires_grad=True)
    y = tx @ tw
    g = rng.standard_normal((3, 1000, 1))
    (y * g).sum().backward()
    assert_close(y.numpy(), x @ w, rtol=1e-10)
    assert_close(tx.grad, np.einsum("bni,bki->nk", g, w), rtol=1e-10)
    assert_close(tw.grad, np.einsum("nk,bni->bki", x, g), rtol=1e-10)


def test_matvec_finite_differences():
    rng = np.random.default_rng(10)
    assert_grads_match(lambda a, b: a @ b, [rng.standard_normal((9, 5)), rng.standard_normal(5)])
    assert_grads_match(lambda a, b: a @ b, [rng.standard_normal(5), rng.standard_normal((5, 3))])


# ---- binary ops with a single number, and sums ---------------------------------

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: (np.ones_like(a * b), np.ones_like(a * b))),
    "sub": (lambda a, b: a - b, lambda a, b: (np.ones_like(a * b), -np.ones_like(a * b))),
    "mul": (lambda a, b: a * b, lambda a, b: (b + 0 * a, a + 0 * b)),
    "div": (lambda a, b: a / b, lambda a, b: (1.0 / b + 0 * a, -a / b ** 2)),
    "pow": (lambda a, b: a ** b, lambda a, b: (b * a ** (b - 1.0), a ** b * np.log(a))),
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("form", ["array-number", "number-array", "array-array"])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_flat_binary_values_and_gradients(name, form, n):
    rng = np.random.default_rng(n)
    a = rng.uniform(0.5, 2.0, () if form == "number-array" else n)
    b = rng.uniform(0.5, 2.0, () if form == "array-number" else n)
    fn, partials = BINARY[name]
    ta, tb = csvi.tensor(a, requires_grad=True), csvi.tensor(b, requires_grad=True)
    y = fn(ta, tb)
    g = rng.standard_normal(n)
    (y * g).sum().backward()
    assert_close(y.numpy(), fn(a, b))
    for t, x, d in zip((ta, tb), (a, b), partials(a, b)):
        terms = g * d
        expected = terms if np.ndim(x) else terms.sum()
        assert_sum_close(t.grad, expected, np.abs(terms) if np.ndim(x) else np.abs(terms).sum())


@pytest.mark.parametrize("n", SIZES)
def test_sum(n):
    x = np.random.default_rng(n).standard_normal(n)
    t = csvi.tensor(x, requires_grad=True)
    s = _core.sum(t)
    s.backward()
    assert_sum_close(s.numpy(), x.sum(), np.abs(x).sum())
    np.testing.assert_array_equal(t.grad, np.ones(n))


# ---- the same bits everywhere --------------------------------------------------

def logreg_data(n=10_000, d=20):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d))
    y = (rng.random(n) < sp.expit(x @ rng.standard_normal(d))).astype(float)
    return x, y


def run_logreg(steps, compiled):
    csvi.clear_param_store()
    csvi.set_rng_seed(0)
    svi = SVI(logreg, logreg_guide, Adam({"lr": 0.01}), Trace_ELBO())
    x, y = logreg_data()
    if compiled:
        losses = svi.compile(x, y).run(steps)
    else:
        losses = np.array([svi.step(x, y) for _ in range(steps)])
    store = csvi.get_param_store()
    params = {n: store.unconstrained(n).copy() for n in store.names()}
    csvi.clear_param_store()
    return losses, params


def test_compiled_logreg_equals_eager_bit_for_bit():
    eager_losses, eager_params = run_logreg(5, compiled=False)
    losses, params = run_logreg(5, compiled=True)
    np.testing.assert_array_equal(losses, eager_losses)
    for name in params:
        np.testing.assert_array_equal(params[name], eager_params[name])


# Prints a digest of every kernel's output at sizes over the thread
# thresholds, and of a compiled logreg run.
DIGEST_SCRIPT = """
import hashlib, sys
sys.path[:0] = [{root!r}, {tests!r}]
import numpy as np
import csvi, csvi.distributions as dist
from csvi import _core
from test_fast_kernels import run_logreg

out = []
rng = np.random.default_rng(0)
x = rng.standard_normal(100_003) * 5
for op in (_core.exp, _core.sigmoid, _core.softplus, _core.tanh):
    t = csvi.tensor(x, requires_grad=True)
    y = op(t)
    (y * x).sum().backward()
    out += [y.numpy(), t.grad]
t = csvi.tensor(x, requires_grad=True)
b = csvi.tensor(0.5, requires_grad=True)
lp = dist.Bernoulli(logits=t + b).log_prob((x > 0.3).astype(float))
lp.sum().backward()
out += [lp.numpy(), t.grad, b.grad]
m = rng.standard_normal((50_000, 20))
w = csvi.tensor(rng.standard_normal(20), requires_grad=True)
y = m @ w
(y * y).sum().backward()
out += [y.numpy(), w.grad]
losses, params = run_logreg(20, compiled=True)
out += [losses] + [params[k] for k in sorted(params)]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


def test_same_bits_for_any_thread_count():
    script = DIGEST_SCRIPT.format(root=CSVI_HOME, tests=TESTS)
    digests = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             check=False, text=True, timeout=300, cwd=TESTS)
        assert run.returncode == 0, run.stderr
        digests.add(run.stdout.strip())
    assert len(digests) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kernels_run_in_a_forked_child():
    x = np.linspace(-5.0, 5.0, 100_003)
    expected = _core.exp(x).numpy()   # the parent's worker threads have run
    pid = os.fork()
    if pid == 0:
        ok = np.array_equal(_core.exp(x).numpy(), expected)
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("a kernel hung in a forked child")
