"""Bernoulli(probs) over a value of its own shape (a decoder's pixel
probabilities against its images): the flat, vectorized kernel of
src_c/dist_bernoulli.c (libmvec log / log1p, masks for the 0 and 1 cases).

Values against scipy.stats at sizes that cross the SIMD widths, the task
blocks and the thread threshold, with p and x at 0 and 1; the probs gradient
against its formula and central differences, with zero weights at the
boundaries giving 0, not NaN; the general (broadcast) path against the flat
one; and the same bits for 1, 2 and 3 threads."""
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import csvi
import csvi.distributions as dist
from gradcheck import assert_grads_match

SIZES = [1, 3, 7, 8, 9, 1000, 2049, 100_003]
TESTS = os.path.dirname(os.path.abspath(__file__))
CSVI_HOME = os.path.dirname(os.path.dirname(csvi.__file__))


def probs_and_bits(n, seed=0):
    """n probs in (0, 1) with 0 and 1 among them, and 0/1 values."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1.0, n)
    x = (rng.random(n) < 0.5).astype(float)
    edges = np.array([0.0, 0.0, 1.0, 1.0, 1e-300, 1.0 - 1e-16])
    k = min(n, len(edges))
    p[:k] = edges[:k]
    x[:k] = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])[:k]
    return p, x


def lp_and_grad(p, x, weights):
    t = csvi.tensor(p, requires_grad=True)
    lp = dist.Bernoulli(t, validate_args=False).log_prob(x)
    (lp * weights).sum().backward()
    return lp.numpy(), t.grad


@pytest.mark.parametrize("n", SIZES)
def test_values_match_scipy_with_edges(n):
    p, x = probs_and_bits(n)
    with np.errstate(divide="ignore"):
        expected = stats.bernoulli.logpmf(x, p)
    got = dist.Bernoulli(p).log_prob(x).numpy()
    # libmvec's log/log1p are within a few ulp of the scalar functions
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))


@pytest.mark.parametrize("n", [9, 100_003])
def test_values_between_0_and_1(n):
    """The value's continuous extension, x log p + (1 - x) log1p(-p)."""
    rng = np.random.default_rng(1)
    p, x = rng.uniform(0.01, 0.99, n), rng.random(n)
    got = dist.Bernoulli(p, validate_args=False).log_prob(x).numpy()
    np.testing.assert_allclose(got, x * np.log(p) + (1 - x) * np.log1p(-p), rtol=1e-13)


@pytest.mark.parametrize("n", SIZES)
def test_probs_gradient_matches_formula_with_edges(n):
    p, x = probs_and_bits(n, seed=2)
    weights = np.random.default_rng(3).standard_normal(n)
    # a zero weight where the partial is infinite (x = 1 at p = 0, x = 0 at p = 1)
    weights[(x == 1.0) & (p == 0.0)] = 0.0
    weights[(x == 0.0) & (p == 1.0)] = 0.0
    _, grad = lp_and_grad(p, x, weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(x == 0.0, 0.0, x / p) - np.where(x == 1.0, 0.0, (1 - x) / (1 - p))
        expected = np.where(weights == 0.0, 0.0, weights * d)
    assert not np.isnan(grad).any()
    np.testing.assert_allclose(grad, expected, rtol=1e-15, atol=0)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, (6, 40))
    x = (rng.random((6, 40)) < 0.4).astype(float)
    assert_grads_match(lambda t: dist.Bernoulli(t).log_prob(x), [p], rtol=1e-6, atol=1e-8)
    # a value with a gradient too (the general path's d/dx = log p - log1p(-p))
    assert_grads_match(lambda t, v: dist.Bernoulli(t, validate_args=False).log_prob(v),
                       [p, rng.uniform(0.1, 0.9, (6, 40))], rtol=1e-6, atol=1e-8)


def test_flat_matches_the_broadcast_path():
    """A value broadcast against probs of the output's shape runs the general
    iterator loop (scalar log / log1p); the flat loop gives the same numbers."""
    rng = np.random.default_rng(5)
    p = rng.uniform(0.0, 1.0, (3, 1000))
    row = (rng.random(1000) < 0.5).astype(float)
    weights = rng.standard_normal((3, 1000))
    general = lp_and_grad(p, row, weights)
    flat = lp_and_grad(p, np.broadcast_to(row, (3, 1000)).copy(), weights)
    for a, b in zip(flat, general):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=0)


DIGEST_SCRIPT = """
import hashlib, sys
sys.path[:0] = [{root!r}, {tests!r}]
import numpy as np
import csvi, csvi.distributions as dist
from test_bernoulli_probs_flat import probs_and_bits, lp_and_grad
p, x = probs_and_bits(100_003)
w = np.random.default_rng(9).standard_normal(p.shape)
w[(p == 0.0) | (p == 1.0)] = 0.0
out = lp_and_grad(p, x, w)
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


def test_same_bits_for_any_thread_count():
    script = DIGEST_SCRIPT.format(root=CSVI_HOME, tests=TESTS)
    digests = set()
    for threads in ("1", "2", "3"):
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=dict(os.environ, OMP_NUM_THREADS=threads), timeout=120,
                             cwd=TESTS)
        assert run.returncode == 0, run.stderr
        digests.add(run.stdout.strip())
    assert len(digests) == 1
