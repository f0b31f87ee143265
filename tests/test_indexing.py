"""Indexing a Tensor with keys that hold Tensors among other integer arrays,
ints, slices, None and Ellipsis: NumPy's advanced indexing, recorded as one
TAKE that a compiled step replays with fresh index values."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core
from csvi.infer import SVI, Trace_ELBO
from compiled_check import assert_compiled_matches_eager
from gradcheck import assert_grads_match


@pytest.fixture(autouse=True)
def _fresh_default_tape():
    _core.current_tape().clear()
    yield
    _core.current_tape().clear()


X = np.random.default_rng(0).standard_normal((3, 4, 5, 6))
I = np.array([[2, 0], [1, -3]])           # for dims of size >= 3
J = np.array([-4, 3])                     # for dims of size >= 4
K = np.array([[[1]], [[-5]], [[4]]])      # (3, 1, 1), for dims of size >= 5
MASK = np.array([True, False, True, True])

# Each form builds a key from a converter `a` applied to every index array in
# it, so one form is checked with Tensors, NumPy arrays and mixtures of both.
FORMS = {
    "two_adjacent_first": lambda a: (a(I), a(J)),
    "three_adjacent_first": lambda a: (a(I), a(J), a(K)),
    "all_four": lambda a: (a(I), a(J), a(K), a(K)),
    "adjacent_after_slice": lambda a: (slice(None), a(J), a(K)),
    "separated_by_slice": lambda a: (a(I), slice(1, 3), a(K)),
    "int_between_is_adjacent": lambda a: (a(I), 1, a(K)),
    "in_place_with_int": lambda a: (slice(None), a(J), 2, a(K)),
    "int_far_left_separates": lambda a: (0, slice(None), a(K)),
    "separated_by_two_slices": lambda a: (slice(None), a(J), slice(None), a(K)),
    "after_ellipsis": lambda a: (Ellipsis, a(K), a(K)),
    "ellipsis_between": lambda a: (a(I), Ellipsis, a(K)),
    "none_first": lambda a: (None, a(I), a(J)),
    "none_between_separates": lambda a: (a(I), None, a(J)),
    "one_array_among_slices": lambda a: (slice(1, 3), a(J), slice(None, None, -1)),
    "arrays_then_ellipsis_int": lambda a: (a(I), a(J), Ellipsis, 0),
    "negative_steps": lambda a: (slice(None, None, -1), slice(None), a(K)),
    "zero_d_index": lambda a: (a(np.array(1)), a(J)),
    "list_index": lambda a: (a(I), [0, -1]),
    "bool_array_with_tensor": lambda a: (slice(None), MASK, a(K)),
    "empty_index": lambda a: (a(I[:, :1]), a(np.zeros(0, np.int64))),
    "broadcast_enum_plate_data": lambda a: (a(np.arange(3).reshape(3, 1, 1)),
                                            a(np.array([[0], [3]])), a(np.arange(5))),
}


def _converter(mode):
    """A converter for FORMS: which index arrays become Tensors."""
    seen = []

    def a(arr):
        seen.append(arr)
        n = len(seen)
        if mode == "tensors" or (mode == "first_tensor" and n == 1) or (
                mode == "second_tensor" and n == 2):
            return csvi.tensor(arr).long()
        if mode == "float_tensors":
            return csvi.tensor(arr)  # whole numbers in a float Tensor index too, as before
        return arr
    return a


def _has_tensor(key):
    return any(isinstance(k, csvi.Tensor) for k in key)


MODES = ["tensors", "first_tensor", "second_tensor", "float_tensors"]


@pytest.mark.parametrize("form, mode", [
    (form, mode) for form in sorted(FORMS) for mode in MODES
    if _has_tensor(FORMS[form](_converter(mode)))])  # some forms hold one array only
def test_keys_with_tensors_match_numpy(form, mode):
    key = FORMS[form](_converter(mode))
    expected = X[FORMS[form](lambda arr: arr)]
    got = csvi.tensor(X)[key]
    assert isinstance(got, csvi.Tensor)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("form", ["three_adjacent_first", "separated_by_slice", "in_place_with_int",
                                  "none_between_separates", "bool_array_with_tensor",
                                  "broadcast_enum_plate_data", "all_four"])
def test_gradients_scatter_add_into_the_indexed_tensor(form):
    key = FORMS[form](_converter("first_tensor"))
    assert_grads_match(lambda t: t[key], [X])


def test_repeated_indices_add_their_gradients():
    t = csvi.tensor(X[:, :, 0, 0], requires_grad=True)
    i = csvi.tensor([[0, 0], [2, 0]]).long()
    t[i, np.array([1, 1])].sum().backward()
    expected = np.zeros((3, 4))
    np.add.at(expected, (np.array([[0, 0], [2, 0]]), np.array([1, 1])), 1.0)
    np.testing.assert_array_equal(t.grad, expected)


def test_hmm_sized_index_matches_numpy_and_scatters_back():
    """probs_y[x, y, tones] of Pyro's HMM model 2: 16 enumerated states, 20
    sequences, 88 tones (more index values than the kernel converts on its stack)."""
    rng = np.random.default_rng(11)
    probs = rng.random((16, 2, 88))
    x, y, tones = np.arange(16).reshape(16, 1, 1), rng.integers(0, 2, (20, 88)), np.arange(88)
    t = csvi.tensor(probs, requires_grad=True)
    out = t[csvi.tensor(x).long(), csvi.tensor(y).long(), tones]
    np.testing.assert_array_equal(out.numpy(), probs[x, y, tones])
    weights = rng.standard_normal(out.shape)
    (out * weights).sum().backward()
    expected = np.zeros_like(probs)
    np.add.at(expected, (x, y, tones), weights)
    np.testing.assert_allclose(t.grad, expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("rows", [256, 300])
def test_minibatch_of_rows_copied_over_the_pool_matches_numpy(rows):
    """data[idx] with one index over a batch of long rows (a VAE's minibatch
    of 784-pixel images): the rows are copied over csvi's pool from 65,536
    elements (ops_shape.c, take_rows), with negative and repeated indices;
    a copy, so the same as NumPy's exactly, and the gradient scatters back
    as the loop's does."""
    rng = np.random.default_rng(2)
    data = rng.standard_normal((rows + 40, 784))
    idx = rng.integers(-(rows + 40), rows + 40, rows)
    idx[:3] = idx[3]
    t = csvi.tensor(data, requires_grad=True)
    out = t[csvi.tensor(idx).long()]
    np.testing.assert_array_equal(out.numpy(), data[idx])
    weights = rng.standard_normal(out.shape)
    (out * weights).sum().backward()
    expected = np.zeros_like(data)
    np.add.at(expected, idx, weights)
    np.testing.assert_array_equal(t.grad, expected)


def test_indices_get_no_gradient():
    t = csvi.tensor(X, requires_grad=True)
    i = csvi.tensor(I, requires_grad=True)
    t[i, J].sum().backward()
    assert i.grad is None and t.grad is not None


def test_one_take_record_for_several_arrays():
    tape = _core.Tape(record_all=True)
    i = csvi.tensor(I).long()
    with _core.recording(tape):
        csvi.tensor(X)[i, J, K]
    assert tape.op_names() == ["TAKE"]


def test_integer_tensors_stay_integer():
    lookup = csvi.tensor(np.arange(12.0).reshape(3, 4)).long()
    got = lookup[csvi.tensor(I).long(), J]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), np.arange(12).reshape(3, 4)[I, J])


def test_shape_ops_keep_integer_tensors_integer():
    x = csvi.tensor(np.arange(6).reshape(6, 1, 1)).long()       # an enumerated value's shape
    for moved in (x.squeeze(-1), x.unsqueeze(0), x.reshape(2, 3), x.view(-1), x.expand(6, 2, 3),
                  x.reshape(2, 3).T, np.squeeze(x), csvi.transpose(x, (2, 1, 0))):
        assert moved.dtype == np.int64, moved.shape
    assert (csvi.tensor([1.0]).reshape(1, 1)).dtype == np.float64


def test_data_array_indexed_by_tensors_and_arrays():
    data = _core.as_data(np.arange(24).reshape(2, 3, 4))
    got = data[csvi.tensor([1, 0]).long(), np.array([[2], [0]]), 3]
    assert isinstance(got, csvi.Tensor) and got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), np.arange(24).reshape(2, 3, 4)[[1, 0], [[2], [0]], 3])


def test_long_on_tensors_and_data():
    t = csvi.tensor([1.0, 2.9, -1.5]).long()
    assert t.dtype == np.int64 and t.long() is t
    np.testing.assert_array_equal(t.numpy(), [1, 2, -1])
    data = _core.as_data(np.array([0.0, 1.0, 1.0]))
    assert data.long().dtype == np.int64 and isinstance(data.long(), _core.DataArray)
    np.testing.assert_array_equal(data.long(), [0, 1, 1])


def test_boolean_masks_are_unchanged():
    t = csvi.tensor(X[0, 0])
    np.testing.assert_array_equal(t[t > 0].numpy(), X[0, 0][X[0, 0] > 0])
    np.testing.assert_array_equal(t[X[0, 0] > 0].numpy(), X[0, 0][X[0, 0] > 0])
    with pytest.raises(TypeError, match="mask tensor must be the only index"):
        t[t[:, 0] > 0, csvi.tensor([0]).long()]


# ---- bad input ------------------------------------------------------------------

@pytest.mark.parametrize("key, match", [
    (lambda i: (i, np.array([1.0, 2.0])), r"integer \(or boolean\) type.*dim 1 is a float64"),
    (lambda i: (i, np.array([0, 4])), "index 4 is out of bounds for dim 1 with size 4"),
    (lambda i: (i, 0, -6), "index -6 is out of bounds for dim 2 with size 5"),
    (lambda i: (i, np.zeros(3, np.int64)),
     r"could not be broadcast together with shapes \(2, 2\) \(dim 0\) \(3,\) \(dim 1\)"),
    (lambda i: (i, 0, 0, 0, 0), "too many indices for a tensor of shape \\(3, 4, 5, 6\\)"),
    (lambda i: (i, Ellipsis, 0, Ellipsis), "single ellipsis"),
    (lambda i: (i, "a"), "str 'a' for dim 1"),
    (lambda i: (slice(None), slice(None), i * 3), "index 6 is out of bounds for dim 2 with size 5"),
    (lambda i: (slice(None), i * 0.5), r"index 0.5 for dim 1 \(size 4\) is not a whole number"),
])
def test_bad_keys_name_the_dim_and_size(key, match):
    t = csvi.tensor(X, requires_grad=True)
    before = _core.current_tape().num_ops
    with pytest.raises(IndexError, match=match):
        t[key(csvi.tensor(I).long())]
    assert _core.current_tape().num_ops == before, "a failed op must not stay on the tape"
    np.testing.assert_array_equal(t.numpy(), X)


# ---- compiled replay ------------------------------------------------------------

N, D = 12, 3
DATA = np.random.default_rng(3).integers(0, D, size=N)
COLS = np.arange(N) % 2


def _plate_model(data, cols):
    table = csvi.param("table", np.zeros((N, D, 2)))
    with csvi.plate("data", N, subsample_size=5) as idx:
        # a param picked by the subsample and two data arrays at once
        loc = table[idx, data[idx], cols[idx]]
        csvi.sample("y", dist.Normal(loc, 1.0), obs=csvi.as_tensor(data.astype(float))[idx])


def _plate_guide(data, cols):
    pass


def test_compiled_replays_multi_array_indexing_with_fresh_subsamples():
    eager_losses, _ = assert_compiled_matches_eager(
        _plate_model, lambda: _plate_guide, lambda: csvi.optim.Adam({"lr": 0.1}),
        Trace_ELBO, args=(DATA, COLS), steps=30)
    assert len(set(np.round(eager_losses, 12))) > 5, "the subsample must change between steps"


def test_compiled_replay_names_the_dim_of_an_index_out_of_bounds():
    """A param smaller than its plate: the subsample goes out of bounds at some
    step, in tracing (eager error) or in the C loop, and both errors say where."""
    def model():
        small = csvi.param("small", np.zeros((6, 2)))
        with csvi.plate("data", 8, subsample_size=2) as idx:
            csvi.sample("y", dist.Normal(small[idx, np.array([0, 1])], 1.0), obs=np.zeros(2))

    in_loop = 0
    for seed in range(8):
        csvi.clear_param_store()
        csvi.set_rng_seed(seed)
        svi = SVI(model, lambda: None, csvi.optim.Adam({"lr": 0.1}), Trace_ELBO())
        try:
            svi.compile().run(200)
        except IndexError as e:      # while tracing
            assert "out of bounds for dim 0 with size 6" in str(e)
        except RuntimeError as e:    # in the compiled loop
            assert "out of bounds for dim 0 with size 6" in str(e)
            in_loop += 1
        else:
            raise AssertionError("an out-of-bounds subsample went unnoticed")
    assert in_loop > 0
