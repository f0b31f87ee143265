"""SUM_LOGSUMEXP (`_core.logsumexp_of_sum`, src_c/ops_reduce.c): logsumexp
over an axis of the broadcast sum of 2 or 3 factors, as the enumeration's
variable elimination sums a variable out.  Values against SciPy's logsumexp
of the NumPy sum, the VJP against central differences for every factor,
-inf rows, the iterator's row and element paths, and bad input."""
import numpy as np
import pytest
from scipy.special import logsumexp

import csvi
from csvi import _core
from gradcheck import assert_grads_match

CASES = [
    # (factor shapes, axis): an HMM step's (x_t, x_t-1, sequence, tone) joint
    [((16, 16, 8, 1), (1, 16, 8, 1), (16, 1, 8, 1)), 1],
    [((4, 3, 5), (3, 1), (4, 1, 5)), 0],
    [((4, 3, 5), (5,)), 2],                    # the reduced dim innermost: element path
    [((3, 1, 6), (1, 4, 6)), 1],
    [((2, 3), (2, 3), (2, 3)), 0],             # same shapes: one contiguous run
    [((3,), ()), 0],
    [((5, 1), (1, 7), (5, 7)), (0, 1)],         # two axes at once
    [((2, 1, 3, 1), (1, 4, 1, 2)), 2],          # inner dims broadcast in turn
]


def reference(arrays, axis):
    total = arrays[0]
    for a in arrays[1:]:
        total = total + a
    return logsumexp(total, axis=axis)


@pytest.mark.parametrize("shapes,axis", CASES)
def test_values_match_scipy(shapes, axis):
    rng = np.random.default_rng(0)
    arrays = [3 * rng.standard_normal(s) for s in shapes]
    out = _core.logsumexp_of_sum(arrays, axis)
    expected = reference(arrays, axis)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("shapes,axis", CASES)
def test_gradients_match_central_differences(shapes, axis):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in shapes]
    assert_grads_match(lambda *ts: _core.logsumexp_of_sum(ts, axis), arrays,
                       rtol=1e-6, atol=1e-8)


def test_gradients_are_the_softmax_weights_summed_over_broadcast_dims():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3, 5)), rng.standard_normal((3, 1))
    ta, tb = csvi.tensor(a, requires_grad=True), csvi.tensor(b, requires_grad=True)
    out = _core.logsumexp_of_sum([ta, tb], 0)
    weights = rng.standard_normal(out.shape)
    (out * weights).sum().backward()
    joint = a + b
    soft = np.exp(joint - logsumexp(joint, axis=0, keepdims=True)) * weights[None]
    np.testing.assert_allclose(ta.grad, soft, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tb.grad, soft.sum(axis=(0, 2))[:, None], rtol=1e-12)


def test_impossible_states_give_minus_inf_and_no_gradient():
    a = np.array([[0.0, -np.inf], [-np.inf, -np.inf], [1.0, -np.inf]])  # column 1 all -inf
    b = np.array([-np.inf, 0.5])
    ta, tb = csvi.tensor(a, requires_grad=True), csvi.tensor(b, requires_grad=True)
    out = _core.logsumexp_of_sum([ta, tb], 0)
    np.testing.assert_array_equal(out.numpy(), reference([a, b], 0))
    out.sum().backward()
    assert np.all(np.isfinite(ta.grad)) and np.all(np.isfinite(tb.grad))
    np.testing.assert_array_equal(ta.grad[:, 1], 0.0)
    np.testing.assert_array_equal(tb.grad, [0.0, 0.0])


def test_matches_the_unfused_chain():
    """Against csvi's own add, add, logsumexp on the tape, gradients too."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in CASES[0][0]]
    fused = [csvi.tensor(x, requires_grad=True) for x in arrays]
    chain = [csvi.tensor(x, requires_grad=True) for x in arrays]
    weights = rng.standard_normal((16, 8, 1))
    (_core.logsumexp_of_sum(fused, 1) * weights).sum().backward()
    ((_core.logsumexp(chain[0] + chain[1] + chain[2], axis=1)) * weights).sum().backward()
    for f, c in zip(fused, chain):
        np.testing.assert_allclose(f.grad, c.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tensors,axis,message", [
    ([np.zeros(3)], 0, "2 or 3 tensors"),
    ([np.zeros(3)] * 4, 0, "2 or 3 tensors"),
    ([np.zeros(3), np.zeros(4)], 0, r"shapes \[\(3,\), \(4,\)\] cannot be broadcast"),
    ([np.zeros((2, 3)), np.zeros(3)], 2, "axis 2 is out of range"),
])
def test_bad_input_names_what_is_wrong(tensors, axis, message):
    with pytest.raises(ValueError, match=message):
        _core.logsumexp_of_sum(tensors, axis)
