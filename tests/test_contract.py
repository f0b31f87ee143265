"""csvi.ops.contract: log-space contractions against NumPy/SciPy references,
their VJPs against finite differences, -inf entries, threads, bad input."""
import itertools
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import logsumexp

import csvi
from csvi.ops.contract import logmatmulexp, markov_chain_logsumexp, markov_forward
from gradcheck import assert_grads_match


def reference_logmatmulexp(a, b):
    """logsumexp over k of a[..., i, k] + b[..., k, j], with numpy.matmul's
    1-D promotion and batch broadcasting (scipy's logsumexp, no shifts)."""
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    a2 = a[None, :] if a_vec else a
    b2 = b[:, None] if b_vec else b
    out = logsumexp(a2[..., :, :, None] + b2[..., None, :, :], axis=-2)
    if a_vec:
        out = out[..., 0, :]
    if b_vec:
        out = out[..., 0]
    return out


SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((6, 1, 3, 2), (7, 2, 3)),
    ((5,), (3, 5, 2)),
    ((2, 3, 4), (4,)),
]


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_values_match_logsumexp_reference(sa, sb):
    rng = np.random.default_rng(0)
    a, b = 3 * rng.standard_normal(sa), 3 * rng.standard_normal(sb)
    out = logmatmulexp(a, b)
    expected = reference_logmatmulexp(a, b)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_large_magnitudes_do_not_overflow():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4)) + np.array([[800.0], [-900.0], [0.0]])
    b = rng.standard_normal((4, 2)) + np.array([[1000.0, -2000.0]])
    np.testing.assert_allclose(logmatmulexp(a, b).numpy(), reference_logmatmulexp(a, b),
                               rtol=1e-12)


def with_neg_inf(shape, rng, frac=0.3):
    x = rng.standard_normal(shape)
    x[rng.random(shape) < frac] = -np.inf
    return x


def test_neg_inf_entries_rows_and_columns():
    rng = np.random.default_rng(2)
    a = with_neg_inf((2, 4, 5), rng)
    b = with_neg_inf((5, 3), rng)
    a[0, 1, :] = -np.inf      # a row of zero probabilities
    b[:, 2] = -np.inf         # a column of zero probabilities
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = reference_logmatmulexp(a, b)
    out = logmatmulexp(a, b).numpy()
    assert not np.any(np.isnan(out))
    assert np.all(out[0, 1, :] == -np.inf) and np.all(out[:, :, 2] == -np.inf)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_neg_inf_gradients_are_finite_and_zero_where_no_mass():
    rng = np.random.default_rng(3)
    a = with_neg_inf((4, 5), rng)
    a[1, :] = -np.inf
    b = with_neg_inf((5, 3), rng)
    b[:, 0] = -np.inf
    ta, tb = csvi.tensor(a, requires_grad=True), csvi.tensor(b, requires_grad=True)
    out = logmatmulexp(ta, tb)
    finite = np.isfinite(out.numpy())
    weights = rng.standard_normal(out.shape) * finite
    (csvi.where(csvi.tensor(finite), out, 0.0) * weights).sum().backward()
    ga, gb = ta.grad, tb.grad
    assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))
    assert np.all(ga[1] == 0.0) and np.all(gb[:, 0] == 0.0)
    assert np.all(ga[np.isneginf(a)] == 0.0) and np.all(gb[np.isneginf(b)] == 0.0)
    # the finite entries' gradient is the reference's: softmax weights of the terms
    terms = a[:, :, None] + b[None, :, :]
    with np.errstate(invalid="ignore"):
        w = np.exp(terms - out.numpy()[:, None, :])
    w[~np.isfinite(terms) | ~finite[:, None, :]] = 0.0
    np.testing.assert_allclose(ga, np.einsum("ikj,ij->ik", w, weights), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gb, np.einsum("ikj,ij->kj", w, weights), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_vjp_matches_finite_differences(sa, sb):
    rng = np.random.default_rng(4)
    assert_grads_match(logmatmulexp, [rng.standard_normal(sa), rng.standard_normal(sb)],
                       rtol=1e-6, atol=1e-8)


def test_empty_contraction_is_neg_inf():
    out = logmatmulexp(np.zeros((2, 0)), np.zeros((0, 3)))
    assert out.shape == (2, 3) and np.all(out.numpy() == -np.inf)


def test_big_batch_and_big_matrices_over_threads():
    """Batches split over tasks (and scratch too big for the stack) give the
    reference's values and the same gradients as one element at a time."""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((300, 8, 8)), rng.standard_normal((300, 8, 8))
    np.testing.assert_allclose(logmatmulexp(a, b).numpy(), reference_logmatmulexp(a, b),
                               rtol=1e-12)
    big_a, big_b = rng.standard_normal((70, 90)), rng.standard_normal((90, 80))
    np.testing.assert_allclose(logmatmulexp(big_a, big_b).numpy(),
                               reference_logmatmulexp(big_a, big_b), rtol=1e-11)
    ta, tb = csvi.tensor(a, requires_grad=True), csvi.tensor(b, requires_grad=True)
    g = rng.standard_normal((300, 8, 8))
    (logmatmulexp(ta, tb) * g).sum().backward()
    for i in (0, 137, 299):
        xa, xb = csvi.tensor(a[i], requires_grad=True), csvi.tensor(b[i], requires_grad=True)
        (logmatmulexp(xa, xb) * g[i]).sum().backward()
        np.testing.assert_array_equal(ta.grad[i], xa.grad)
        np.testing.assert_array_equal(tb.grad[i], xb.grad)


def test_shared_operand_gradient_sums_over_batch():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((400, 3, 4)), rng.standard_normal((4, 2))
    assert_grads_match(logmatmulexp, [a[:5], b], rtol=1e-6, atol=1e-8)
    tb = csvi.tensor(b, requires_grad=True)
    logmatmulexp(a, tb).sum().backward()
    total = np.zeros_like(b)
    for i in range(a.shape[0]):
        xb = csvi.tensor(b, requires_grad=True)
        logmatmulexp(a[i], xb).sum().backward()
        total += xb.grad
    np.testing.assert_allclose(tb.grad, total, rtol=1e-12)


def test_matches_pyro_logmatmulexp():
    torch = pytest.importorskip("torch")
    hmm = pytest.importorskip("pyro.distributions.hmm")
    rng = np.random.default_rng(7)
    a, b = with_neg_inf((2, 3, 4), rng, 0.2), with_neg_inf((4, 5), rng, 0.2)
    expected = hmm._logmatmulexp(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(logmatmulexp(a, b).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("sa,sb,match", [
    ((3, 4), (5, 2), r"do not align .*4 != .*5"),
    ((), (3,), "at least 1 dim"),
    ((2, 3, 4), (3, 4, 2), "batch dims"),
])
def test_bad_shapes_name_both_operands(sa, sb, match):
    with pytest.raises(ValueError, match=match):
        logmatmulexp(np.zeros(sa), np.zeros(sb))


# ---- markov_forward / markov_chain_logsumexp ---------------------------------

def brute_force_alphas(init, trans, obs):
    """alpha[..., t, j] by summing over every path explicitly (K^(t+1) of
    them), for unbatched init (K,), trans (T or 1, K, K), obs (T or 1, K)."""
    K = init.shape[-1]
    T = max(trans.shape[0], obs.shape[0])
    out = np.empty((T, K))
    for t in range(T):
        for j in range(K):
            terms = []
            for path in itertools.product(range(K), repeat=t + 1):
                states = path + (j,)
                s = init[states[0]]
                for u in range(t + 1):
                    s += trans[u % trans.shape[0], states[u], states[u + 1]]
                    s += obs[u % obs.shape[0], states[u + 1]]
                terms.append(s)
            out[t, j] = logsumexp(terms)
    return out


def test_markov_forward_equals_brute_force_over_paths():
    rng = np.random.default_rng(10)
    init, trans, obs = (rng.standard_normal((3,)), rng.standard_normal((4, 3, 3)),
                        rng.standard_normal((4, 3)))
    alpha = markov_forward(init, trans, obs)
    assert alpha.shape == (4, 3)
    np.testing.assert_allclose(alpha.numpy(), brute_force_alphas(init, trans, obs), rtol=1e-12)
    np.testing.assert_allclose(markov_chain_logsumexp(init, trans, obs).numpy(),
                               logsumexp(brute_force_alphas(init, trans, obs)[-1]), rtol=1e-12)


@pytest.mark.parametrize("si,st,so", [
    ((3,), (1, 3, 3), (5, 3)),           # homogeneous transitions
    ((3,), (5, 3, 3), (1, 3)),           # homogeneous observations
    ((2, 3), (4, 3, 3), (4, 3)),         # batched init
    ((3,), (2, 1, 4, 3, 3), (4, 3)),     # batched trans
    ((2, 1, 3), (1, 3, 3), (3, 4, 3)),   # batch dims broadcast from all three
])
def test_markov_forward_broadcasts_batch_and_time(si, st, so):
    rng = np.random.default_rng(11)
    init, trans, obs = (rng.standard_normal(si), rng.standard_normal(st),
                        rng.standard_normal(so))
    alpha = markov_forward(init, trans, obs).numpy()
    batch = np.broadcast_shapes(si[:-1], st[:-3], so[:-2])
    T = max(st[-3], so[-2])
    assert alpha.shape == batch + (T, 3)
    for index in np.ndindex(*batch):
        def pick(x, core):
            lead = x.shape[:x.ndim - core]
            return x[tuple(i if n > 1 else 0 for i, n in zip(index[len(index) - len(lead):],
                                                          lead))]
        expected = brute_force_alphas(pick(init, 1), pick(trans, 3), pick(obs, 2))
        np.testing.assert_allclose(alpha[index], expected, rtol=1e-12)


def test_markov_forward_without_obs_is_repeated_logmatmulexp():
    rng = np.random.default_rng(12)
    init, trans = rng.standard_normal((2, 4)), rng.standard_normal((6, 4, 4))
    alpha = markov_forward(init, trans).numpy()
    x = init
    for t in range(6):
        x = reference_logmatmulexp(x[:, None, :], trans[t])[:, 0, :]
        np.testing.assert_allclose(alpha[:, t], x, rtol=1e-12)


@pytest.mark.parametrize("st,so", [((4, 3, 3), (4, 3)), ((1, 3, 3), (4, 3)),
                                   ((4, 3, 3), (1, 3)), ((2, 1, 3, 3), (2, 4, 3))])
def test_markov_forward_vjp_matches_finite_differences(st, so):
    rng = np.random.default_rng(13)
    assert_grads_match(markov_forward, [rng.standard_normal((2, 3)), rng.standard_normal(st),
                                        rng.standard_normal(so)], rtol=1e-6, atol=1e-8)
    assert_grads_match(markov_chain_logsumexp,
                       [rng.standard_normal((3,)), rng.standard_normal(st),
                        rng.standard_normal(so)], rtol=1e-6, atol=1e-8)


def test_markov_forward_masked_transitions_and_impossible_observations():
    """-inf transitions (a banded chain) and -inf observation factors give
    the brute-force values, no NaN, and finite gradients equal to finite
    differences over the finite entries."""
    rng = np.random.default_rng(14)
    K, T = 4, 5
    trans = rng.standard_normal((T, K, K))
    trans[:, np.abs(np.arange(K)[:, None] - np.arange(K)[None, :]) > 1] = -np.inf
    obs = rng.standard_normal((T, K))
    obs[2, 0] = -np.inf
    init = np.array([0.0, -np.inf, 0.5, -np.inf])
    alpha = markov_forward(init, trans, obs).numpy()
    assert not np.any(np.isnan(alpha))
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(alpha, brute_force_alphas(init, trans, obs), rtol=1e-12)
    ti, tt, to = (csvi.tensor(x, requires_grad=True) for x in (init, trans, obs))
    markov_chain_logsumexp(ti, tt, to).backward()
    for g in (ti.grad, tt.grad, to.grad):
        assert np.all(np.isfinite(g))
    assert np.all(tt.grad[np.isneginf(trans)] == 0.0) and ti.grad[1] == 0.0

    def total(tr_flat):
        t2 = trans.copy()
        t2[np.isfinite(trans)] = tr_flat
        return markov_chain_logsumexp(init, t2, obs).numpy()
    from gradcheck import numerical_grad
    numeric = numerical_grad(total, trans[np.isfinite(trans)])
    np.testing.assert_allclose(tt.grad[np.isfinite(trans)], numeric, rtol=1e-6, atol=1e-8)


def test_markov_forward_unreachable_chain_is_neg_inf_with_zero_gradient():
    init = np.full(3, -np.inf)
    ti, tt = csvi.tensor(init, requires_grad=True), csvi.tensor(np.zeros((2, 3, 3)),
                                                                  requires_grad=True)
    alpha = markov_forward(ti, tt)
    assert np.all(alpha.numpy() == -np.inf)
    alpha.sum().backward()  # a gradient seeded on every -inf message
    assert np.all(ti.grad == 0.0) and np.all(tt.grad == 0.0)


def test_markov_forward_long_chain_is_stable():
    """T = 2,000 steps of small probabilities: no underflow (the log of the
    product of the scaled messages), the same as a NumPy log-space loop."""
    rng = np.random.default_rng(15)
    K, T = 5, 2000
    trans = np.log(rng.dirichlet(np.ones(K), size=K))
    obs = -50.0 + rng.standard_normal((T, K))
    x = np.zeros(K)
    for t in range(T):
        x = logsumexp(x[:, None] + trans, axis=0) + obs[t]
    alpha = markov_forward(np.zeros(K), trans[None], obs).numpy()
    np.testing.assert_allclose(alpha[-1], x, rtol=1e-11)


def test_markov_forward_batch_over_threads_equals_one_chain_at_a_time():
    rng = np.random.default_rng(16)
    init, trans, obs = (rng.standard_normal((64, 8)), rng.standard_normal((64, 30, 8, 8)),
                        rng.standard_normal((64, 30, 8)))
    leaves = [csvi.tensor(x, requires_grad=True) for x in (init, trans, obs)]
    g = rng.standard_normal((64, 30, 8))
    alpha = markov_forward(*leaves)
    (alpha * g).sum().backward()
    for b in (0, 31, 63):
        one = [csvi.tensor(x[b], requires_grad=True) for x in (init, trans, obs)]
        a1 = markov_forward(*one)
        np.testing.assert_array_equal(alpha.numpy()[b], a1.numpy())
        (a1 * g[b]).sum().backward()
        for big, small in zip(leaves, one):
            np.testing.assert_array_equal(big.grad[b], small.grad)


def test_markov_forward_shared_transitions_sum_their_gradient():
    rng = np.random.default_rng(17)
    init, trans, obs = (rng.standard_normal((40, 4)), rng.standard_normal((1, 4, 4)),
                        rng.standard_normal((40, 25, 4)))
    tt = csvi.tensor(trans, requires_grad=True)
    markov_chain_logsumexp(init, tt, obs).sum().backward()
    total = np.zeros_like(trans)
    for b in range(40):
        t1 = csvi.tensor(trans, requires_grad=True)
        markov_chain_logsumexp(init[b], t1, obs[b]).backward()
        total += t1.grad
    np.testing.assert_allclose(tt.grad, total, rtol=1e-12)


def test_markov_chain_logsumexp_with_no_steps_is_the_initial_factor():
    init = np.log([0.2, 0.3, 0.5]) + 1.0
    out = markov_chain_logsumexp(init, np.zeros((0, 3, 3)), np.zeros((0, 3)))
    np.testing.assert_allclose(out.numpy(), 1.0, rtol=1e-14)


@pytest.mark.parametrize("si,st,so,match", [
    ((), (2, 3, 3), None, "init must have shape"),
    ((3,), (3, 3), None, r"trans must have shape \(\.\.\., T, K, K\)"),
    ((3,), (2, 3, 4), None, r"trans must have shape"),
    ((4,), (2, 3, 3), None, "init has 4 states"),
    ((3,), (2, 3, 3), (3, 3), "trans has 2 time steps .* obs has 3"),
    ((3,), (2, 3, 3), (2, 4), r"obs must have shape \(\.\.\., T, K\) with K = 3"),
    ((2, 3), (3, 2, 3, 3), None, "batch dims of init"),
])
def test_markov_forward_bad_shapes_name_the_argument(si, st, so, match):
    with pytest.raises(ValueError, match=match):
        markov_forward(np.zeros(si), np.zeros(st), None if so is None else np.zeros(so))


def test_same_bits_for_any_thread_count():
    """Batches split over 1, 2 and 3 threads give the same values and
    gradients, to the bit (tasks are fixed by sizes)."""
    script = """
import hashlib, numpy as np, csvi
from csvi.ops.contract import logmatmulexp, markov_forward
rng = np.random.default_rng(0)
xs = [csvi.tensor(rng.standard_normal(s), requires_grad=True)
      for s in [(200, 8, 8), (200, 8, 8), (64, 8), (64, 40, 8, 8), (64, 40, 8)]]
y = logmatmulexp(xs[0], xs[1])
z = markov_forward(xs[2], xs[3], xs[4])
((y * 0.5).sum() + (z * z).sum()).backward()
out = [y.numpy(), z.numpy()] + [x.grad for x in xs]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""
    root = str(pathlib.Path(csvi.__file__).parents[1])
    digests = set()
    for threads in ("1", "2", "3"):
        # cwd: the tests' folder, so `-c` cannot import the source tree's csvi
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=120, cwd=os.path.dirname(os.path.abspath(__file__)),
                              env=dict(os.environ, OMP_NUM_THREADS=threads, PYTHONPATH=root))
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout.strip())
    assert len(digests) == 1
