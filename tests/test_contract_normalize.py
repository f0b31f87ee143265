"""markov_forward(normalize=True): the op normalizes each transition row
itself (DiscreteHMM's path).  Values against brute-force sums over paths of
the normalized logits (SciPy logsumexp), gradients against finite
differences, the one-exp and the column-shifted factors, chains alone and
sharing one transition sequence, -inf entries."""
import numpy as np
import pytest
from scipy.special import logsumexp

import csvi
from csvi.ops.contract import markov_chain_logsumexp, markov_forward
from gradcheck import assert_grads_match, numerical_grad
from test_contract import brute_force_alphas  # alphas by enumerating every path


def log_normalize(x):
    return x - logsumexp(x, axis=-1, keepdims=True)


# (init, trans, obs) shapes: homogeneous; per-step, one chain per transition
# sequence; per-step, one sequence shared by a batch (a group of chains)
SHAPES = [((3,), (1, 3, 3), (4, 3)), ((3,), (4, 3, 3), (4, 3)),
          ((2, 3), (2, 4, 3, 3), (2, 4, 3)), ((2, 3), (4, 3, 3), (2, 4, 3))]


@pytest.mark.parametrize("si,st,so", SHAPES)
def test_values_equal_brute_force_over_normalized_paths(si, st, so):
    rng = np.random.default_rng(20)
    init, trans, obs = (rng.standard_normal(s) for s in (si, st, so))
    trans = 3.0 * trans + 5.0  # far from normalized
    alpha = markov_forward(init, trans, obs, normalize=True).numpy()
    for b in np.ndindex(*alpha.shape[:-2]):
        pick = (lambda x, core: x[b] if x.ndim > core else x)
        expected = brute_force_alphas(pick(init, 1), log_normalize(pick(trans, 3)),
                                      pick(obs, 2))
        np.testing.assert_allclose(alpha[b], expected, rtol=1e-12)
    unfused = markov_forward(init, log_normalize(trans), obs).numpy()
    np.testing.assert_allclose(alpha, unfused, rtol=1e-12)


@pytest.mark.parametrize("si,st,so", SHAPES)
def test_vjp_matches_finite_differences(si, st, so):
    rng = np.random.default_rng(21)
    inputs = [rng.standard_normal(s) for s in (si, st, so)]
    assert_grads_match(lambda i, t, o: markov_forward(i, t, o, normalize=True), inputs,
                       rtol=1e-6, atol=1e-8)
    assert_grads_match(lambda i, t, o: markov_chain_logsumexp(i, t, o, normalize=True),
                       inputs, rtol=1e-6, atol=1e-8)


def test_rows_shifted_by_a_constant_give_the_same_chain_and_zero_gradient_sums():
    """Normalizing: a row's logits + any constant change nothing, so the
    gradient of each row sums to zero (a fused VJP that forgot the
    normalizer's term would not)."""
    rng = np.random.default_rng(22)
    init, trans, obs = rng.standard_normal(4), rng.standard_normal((6, 4, 4)), \
        rng.standard_normal((6, 4))
    shifted = trans + rng.uniform(-30, 30, (6, 4, 1))
    a = markov_forward(init, trans, obs, normalize=True).numpy()
    np.testing.assert_allclose(markov_forward(init, shifted, obs, normalize=True).numpy(), a,
                               rtol=1e-12)
    tt = csvi.tensor(trans, requires_grad=True)
    markov_chain_logsumexp(init, tt, obs, normalize=True).backward()
    np.testing.assert_allclose(tt.grad.sum(-1), 0.0, atol=1e-12)
    assert np.abs(tt.grad).max() > 1e-3


def rare_state_trans(rng, T, K, depth=900.0):
    """Per-step logits where, at odd steps, every state enters state 0 with
    log probability about -depth: too small for the one-exp factor (it
    would underflow to log 0), so those steps take the column-shifted one."""
    trans = rng.standard_normal((T, K, K))
    trans[1::2, :, 0] -= depth
    return trans


@pytest.mark.parametrize("shared", [False, True])
def test_a_state_all_but_never_entered_keeps_its_log_probability(shared):
    rng = np.random.default_rng(23)
    K, T = 3, 4
    trans = rare_state_trans(rng, T, K)
    obs = rng.standard_normal((T, K))
    obs[1::2, 0] += 1000.0  # and observations that favour it
    init = rng.standard_normal((2, K) if shared else (K,))
    alpha = markov_forward(init, trans, obs, normalize=True).numpy()
    assert np.all(np.isfinite(alpha))
    for b in np.ndindex(*alpha.shape[:-2]):
        expected = brute_force_alphas(init[b], log_normalize(trans), obs)
        np.testing.assert_allclose(alpha[b], expected, rtol=1e-12)


def test_gradient_with_an_all_but_never_entered_state_matches_finite_differences():
    rng = np.random.default_rng(24)
    K, T = 3, 4
    trans = rare_state_trans(rng, T, K)
    obs = rng.standard_normal((T, K))
    obs[1::2, 0] += 1000.0
    init = rng.standard_normal(K)
    for shape in ((K,), (2, K)):  # one chain, and two sharing the sequence
        # values near 1000: a wider step keeps the differences' rounding small
        assert_grads_match(lambda i, t, o: markov_chain_logsumexp(i, t, o, normalize=True),
                           [np.broadcast_to(init, shape).copy(), trans, obs], eps=1e-4,
                           rtol=1e-5, atol=1e-7)


def test_chains_sharing_transitions_give_the_bits_of_each_chain_alone():
    """A batch sharing one transition sequence steps together on each
    step's factor, computed once: the same values and init gradients as each
    chain alone, and the shared gradient is the sum of the chains'."""
    rng = np.random.default_rng(25)
    K, T, B = 5, 30, 3
    init, trans, obs = (rng.standard_normal((B, K)), rng.standard_normal((T, K, K)),
                        rng.standard_normal((B, T, K)))
    trans[::3, :, 1] -= 900.0  # both factors
    tt = csvi.tensor(trans, requires_grad=True)
    ti = csvi.tensor(init, requires_grad=True)
    g = rng.standard_normal((B, T, K))
    alpha = markov_forward(ti, tt, obs, normalize=True)
    (alpha * g).sum().backward()
    total = np.zeros_like(trans)
    for b in range(B):
        t1, i1 = csvi.tensor(trans, requires_grad=True), csvi.tensor(init[b], requires_grad=True)
        a1 = markov_forward(i1, t1, obs[b], normalize=True)
        np.testing.assert_array_equal(alpha.numpy()[b], a1.numpy())
        (a1 * g[b]).sum().backward()
        np.testing.assert_array_equal(ti.grad[b], i1.grad)
        total += t1.grad
    np.testing.assert_allclose(tt.grad, total, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("homogeneous", [False, True])
def test_neg_inf_transitions_are_forbidden_with_zero_gradient(homogeneous):
    rng = np.random.default_rng(26)
    K, T = 4, 5
    trans = rng.standard_normal((1 if homogeneous else T, K, K))
    banned = np.abs(np.arange(K)[:, None] - np.arange(K)[None, :]) > 1
    trans[:, banned] = -np.inf
    init, obs = rng.standard_normal(K), rng.standard_normal((T, K))
    with np.errstate(invalid="ignore"):
        expected = brute_force_alphas(init, log_normalize(trans), obs)
    tt = csvi.tensor(trans, requires_grad=True)
    alpha = markov_forward(init, tt, obs, normalize=True)
    np.testing.assert_allclose(alpha.numpy(), expected, rtol=1e-12)
    (alpha * rng.standard_normal(alpha.shape)).sum().backward()
    assert np.all(np.isfinite(tt.grad)) and np.all(tt.grad[np.isneginf(trans)] == 0.0)

    def total(flat):
        t2 = trans.copy()
        t2[np.isfinite(trans)] = flat
        return markov_chain_logsumexp(init, t2, obs, normalize=True).numpy()
    tt2 = csvi.tensor(trans, requires_grad=True)
    markov_chain_logsumexp(init, tt2, obs, normalize=True).backward()
    np.testing.assert_allclose(tt2.grad[np.isfinite(trans)],
                               numerical_grad(total, trans[np.isfinite(trans)]),
                               rtol=1e-6, atol=1e-8)


def test_a_state_with_no_way_out_is_nan_as_the_normalized_logits_are():
    """A row of -inf has no normalization (logsumexp -inf, -inf - -inf is
    NaN): the chain is NaN once that state is reachable, as with the
    normalized logits computed apart; unreachable, it changes nothing."""
    K, T = 3, 3
    trans = np.zeros((T, K, K))
    trans[:, 2, :] = -np.inf
    with np.errstate(invalid="ignore"):
        normalized = log_normalize(trans)
    reachable = markov_forward(np.zeros(K), trans, normalize=True).numpy()
    assert np.all(np.isnan(reachable))
    assert np.all(np.isnan(markov_forward(np.zeros(K), normalized).numpy()))
    trans[:, :, 2] = -np.inf  # nothing enters state 2, and it is not the start
    init = np.array([0.0, 0.0, -np.inf])
    with np.errstate(invalid="ignore"):
        expected = markov_forward(init, log_normalize(trans)).numpy()
    np.testing.assert_array_equal(markov_forward(init, trans, normalize=True).numpy(), expected)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("si,st,so", [((19,), (2, 19, 19), (2, 19)),
                                      ((3, 19), (2, 19, 19), (3, 2, 19))])
def test_transition_gradient_in_register_blocks_and_tail(si, st, so, normalize):
    """K = 19: the transition gradient's rows in one sixteen-column register
    block and a three-column tail, for a chain alone on its sequence and for
    three chains sharing it."""
    rng = np.random.default_rng(24)
    init, trans, obs = (rng.standard_normal(s) for s in (si, st, so))
    trans = trans if normalize else log_normalize(trans)
    assert_grads_match(lambda i, t, o: markov_forward(i, t, o, normalize=normalize),
                       [init, trans, obs], rtol=1e-6, atol=1e-8)
