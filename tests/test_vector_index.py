"""A vector indexed by an integer NumPy array (x[group], every step of a
hierarchical model) takes a fast path to its gather positions: it must give
NumPy's values, errors and gradients for every integer dtype, negative
indices and multi-dim keys, and a compiled step must still match eager.
GATHER's kernel refuses a bad position anywhere in a long run, and its VJP,
which adds run by run, gives the element-by-element sum in GATHER's order."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core
from csvi.infer import Trace_ELBO
from csvi.infer.autoguide import AutoNormal
from csvi.optim import Adam
from compiled_check import assert_compiled_matches_eager
from gradcheck import assert_grads_match

X = np.random.default_rng(1).standard_normal(7)
KEYS = {
    "int64": np.array([0, 6, 3, 3, 1]),
    "negative": np.array([-1, -7, 2, -3]),
    "int32": np.array([5, 0, -2], dtype=np.int32),
    "uint16": np.array([6, 0, 4], dtype=np.uint16),
    "uint8_2d": np.array([[1, 2], [6, 6]], dtype=np.uint8),
    "scalar": np.array(4),
    "empty": np.array([], dtype=np.int64),
    "strided": np.arange(14)[::3] % 7,
}


@pytest.fixture(autouse=True)
def _fresh_default_tape():
    _core.current_tape().clear()
    yield
    _core.current_tape().clear()


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_values_are_numpys(key):
    out = csvi.tensor(X)[key]
    assert out.shape == X[key].shape
    np.testing.assert_array_equal(_core.value_of(out), X[key])


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_gradients_match_finite_differences(key):
    assert_grads_match(lambda t: t[key], [X])


@pytest.mark.parametrize("bad", [7, -8, 100])
def test_out_of_bounds_is_numpys_index_error(bad):
    key = np.array([0, bad, 1])
    with pytest.raises(IndexError) as numpy_error:
        X[key]
    with pytest.raises(IndexError) as csvi_error:
        csvi.tensor(X)[key]
    assert str(csvi_error.value) == str(numpy_error.value)


def test_a_large_uint64_index_is_refused_not_wrapped():
    key = np.array([2**63 + 1], dtype=np.uint64)
    with pytest.raises(IndexError):
        csvi.tensor(X)[key]


def hierarchical(y, group):
    mu = csvi.sample("mu", dist.Normal(0.0, 5.0))
    with csvi.plate("groups", 4):
        a = csvi.sample("a", dist.Normal(mu, 1.0))
    with csvi.plate("data", len(y)):
        csvi.sample("y", dist.Normal(a[group], 1.0), obs=y)


def test_compiled_matches_eager_through_the_fast_path():
    rng = np.random.default_rng(2)
    group = np.repeat(np.arange(4), 3)
    y = rng.standard_normal(12) + group
    assert_compiled_matches_eager(hierarchical, lambda: AutoNormal(hierarchical),
                                  lambda: Adam({"lr": 0.05}), Trace_ELBO, args=(y, group))


# Long keys: the positions come from one vectorized min/max pass and one
# conversion loop (csvi_index_positions); a negative or out-of-range index
# anywhere sends the whole key through the element-by-element pass.
LONG = np.random.default_rng(3).integers(0, 7, 3001)


@pytest.mark.parametrize("where", [0, 31, 32, 1024, 3000])
@pytest.mark.parametrize("special", [-1, -7, 6])
def test_long_keys_give_numpys_values(where, special):
    key = LONG.copy()
    key[where] = special
    np.testing.assert_array_equal(_core.value_of(csvi.tensor(X)[key]), X[key])


@pytest.mark.parametrize("where", [0, 33, 2999])
@pytest.mark.parametrize("bad", [7, -8])
def test_long_keys_report_numpys_first_bad_index(where, bad):
    key = LONG.copy()
    key[where] = bad
    key[-1] = 9  # a later bad index must not be the one reported
    with pytest.raises(IndexError) as numpy_error:
        X[key]
    with pytest.raises(IndexError) as csvi_error:
        csvi.tensor(X)[key]
    assert str(csvi_error.value) == str(numpy_error.value)


# GATHER's kernel (src_c/ops_shape.c) checks every stored position:
# (int64_t)p must lie in [0, size).
GATHER = _core.OPCODES["GATHER"]


def gather(x, positions):
    return _core.apply(GATHER, (csvi.tensor(x), np.asarray(positions, dtype=np.float64)),
                       np.shape(positions))


def test_gather_truncates_positions_as_before():
    np.testing.assert_array_equal(_core.value_of(gather(X, [-0.5, 6.5, 3.0, 0.0])),
                                  X[[0, 6, 3, 0]])


@pytest.mark.parametrize("bad", [-1.0, 7.0, 7.5, -3.0, np.nan, np.inf, -np.inf, 1e300])
@pytest.mark.parametrize("where", [0, 40, 511, 512, 999])
def test_gather_refuses_a_bad_position_anywhere(bad, where):
    positions = np.arange(1000.0) % 7
    positions[where] = bad
    with pytest.raises(IndexError, match="GATHER"):
        gather(X, positions)


@pytest.mark.parametrize("case", ["sorted", "sorted_split_runs", "one_run", "unsorted",
                                  "few_long_runs"])
def test_gather_vjp_in_side_by_side_stretches_adds_in_order(case):
    """At 1,024 positions or more that never decrease, the VJP walks four
    stretches side by side; a run of one (truncated) position, even spelled
    3.0 then 3.25 across a stretch boundary, stays in one stretch, so every
    element takes its terms in order."""
    rng = np.random.default_rng(7)
    n = 5003
    if case == "one_run":
        idx = np.full(n, 4)
    elif case == "few_long_runs":
        idx = np.repeat([0, 2, 5], [1, n - 2, 1])
    else:
        idx = np.sort(rng.integers(0, 7, n))
    positions = idx.astype(np.float64)
    if case == "sorted_split_runs":
        positions += np.where(np.arange(n) % 2 == 1, 0.25, 0.0)
        positions = np.maximum.accumulate(positions)
    if case == "unsorted":
        positions = positions[rng.permutation(n)]
    g = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
    x = csvi.tensor(X, requires_grad=True)
    out = _core.apply(GATHER, (x, positions), positions.shape)
    (out * g).sum().backward()
    expected = np.zeros(7)
    for k, gi in zip(positions.astype(np.int64), g):
        expected[k] += gi
    np.testing.assert_array_equal(x.grad, expected)


def test_gather_vjp_adds_in_order_for_any_runs():
    # runs of equal positions of uneven length, recurring apart, and
    # positions that differ but truncate to one index (a split run)
    rng = np.random.default_rng(4)
    idx = np.repeat(rng.integers(0, 7, 60), rng.integers(1, 5, 60))
    positions = idx + np.where(rng.random(idx.size) < 0.2, 0.25, 0.0)
    g = rng.standard_normal(idx.size)
    x = csvi.tensor(X, requires_grad=True)
    out = _core.apply(GATHER, (x, positions), positions.shape)
    (out * g).sum().backward()
    expected = np.zeros(7)
    for k, gi in zip(idx, g):  # element by element, in GATHER's order
        expected[k] += gi
    np.testing.assert_array_equal(x.grad, expected)
