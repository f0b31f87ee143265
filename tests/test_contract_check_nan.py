"""markov_forward(check_nan=True): a NaN in the transition factors is a
ValueError naming its flat index (found in the op's own pass over them),
for the one-exp and the column-shifted factors, homogeneous and per-step
chains, chains alone and sharing a sequence, and steps no path reaches;
infinities are not NaN, and check_nan=False lets a NaN through."""
import numpy as np
import pytest

from csvi.ops.contract import markov_chain_logsumexp, markov_forward

# (init, trans, obs) shapes: homogeneous; per-step, one chain per sequence;
# per-step, one sequence shared by a batch (a group of chains)
SHAPES = [((3,), (1, 3, 3), (5, 3)), ((2, 3), (2, 5, 3, 3), (2, 5, 3)),
          ((4, 3), (5, 3, 3), (4, 5, 3))]


def with_nans(shape, *where, seed=0):
    trans = np.random.default_rng(seed).standard_normal(shape)
    for w in where:
        trans[w] = np.nan
    return trans


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("si,st,so", SHAPES)
def test_a_nan_is_named_by_its_first_flat_index(si, st, so, normalize):
    rng = np.random.default_rng(1)
    init, obs = rng.standard_normal(si), rng.standard_normal(so)
    last = tuple(d - 1 for d in st)
    mid = tuple(d // 2 for d in st)
    trans = with_nans(st, last, mid)
    first = np.ravel_multi_index(mid, st)
    match = rf"markov_forward: trans must not hold NaN, got NaN at flat index {first} of " \
            rf"shape \({', '.join(map(str, st))}\)"
    for op in (markov_forward, markov_chain_logsumexp):
        with pytest.raises(ValueError, match=match):
            op(init, trans, obs, normalize=normalize, check_nan=True)
    # unchecked, the NaN reaches the messages (as the unfused ops would)
    assert np.isnan(markov_forward(init, trans, obs, normalize=normalize).numpy()).any()


@pytest.mark.parametrize("normalize", [True, False])
def test_a_nan_in_a_row_no_path_reaches_is_still_found(normalize):
    """State 0 has initial weight 0, so the first step's product skips row 0
    of its factor (normalizing, the chain's value stays finite), yet the
    check sees the NaN there."""
    init = np.array([-np.inf, 0.0, 0.5])
    trans = with_nans((4, 3, 3), (0, 0, 1))
    obs = np.random.default_rng(2).standard_normal((4, 3))
    if normalize:
        assert np.isfinite(markov_chain_logsumexp(init, trans, obs, normalize=True).numpy())
    with pytest.raises(ValueError, match=r"NaN at flat index 1 of shape \(4, 3, 3\)"):
        markov_forward(init, trans, obs, normalize=normalize, check_nan=True)


@pytest.mark.parametrize("normalize", [True, False])
def test_infinities_are_not_nan(normalize):
    trans = np.random.default_rng(3).standard_normal((4, 3, 3))
    trans[0, 1, :] = -np.inf      # no way out of state 1 at step 0
    trans[1, 0, 2] = -np.inf      # one impossible move
    trans[2, 2, 0] = np.inf       # a certain move
    expected = markov_forward(np.zeros(3), trans, None, normalize=normalize).numpy()
    got = markov_forward(np.zeros(3), trans, None, normalize=normalize, check_nan=True).numpy()
    np.testing.assert_array_equal(got, expected)


def test_no_step_still_checks_the_factor():
    """T = 0 (no observations): no step reads trans, the check still does."""
    trans = with_nans((1, 3, 3), (0, 2, 2))
    with pytest.raises(ValueError, match=r"NaN at flat index 8 of shape \(1, 3, 3\)"):
        markov_chain_logsumexp(np.zeros(3), trans, np.zeros((0, 3)), normalize=True,
                               check_nan=True)
    assert markov_chain_logsumexp(np.zeros(3), trans, np.zeros((0, 3)),
                                  normalize=True).numpy() == pytest.approx(np.log(3.0))
