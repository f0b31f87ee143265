"""A vector indexed by an integer NumPy array (x[group], every step of a
hierarchical model) takes a fast path to its gather positions: it must give
NumPy's values, errors and gradients for every integer dtype, negative
indices and multi-dim keys, and a compiled step must still match eager."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core
from csvi.infer import SVI, Trace_ELBO
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
