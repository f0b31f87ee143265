"""csvi.ops.indexing (Vindex, vindex, Index, index) against Pyro's on torch
tensors and against a brute-force reference of Vindex's documented semantics,
plus the indexing expressions of Pyro's HMM, GMM and enumeration tutorials."""
import itertools

import numpy as np
import pytest

import csvi
from csvi import _core
from csvi.ops.indexing import Index, Vindex, index, vindex
from gradcheck import assert_grads_match

RNG = np.random.default_rng(7)
P = RNG.standard_normal((5, 4, 3, 2))     # Vindex(p)[..., x, y, :] of the enumeration tutorial


def reference_vindex(x, args):
    """Vindex by its documented meaning, one element at a time: without a
    leading `...` the args cover x's leftmost dims (the rest as `:`), with one
    they cover its rightmost dims and the dims left of them are batch dims;
    the result is broadcast(batch dims, index arrays) + the `:` dims."""
    x = np.asarray(x)
    if args[0] is Ellipsis:
        event = tuple(args[1:])
        batch = x.shape[:x.ndim - len(event)]
    else:
        event = tuple(args) + (slice(None),) * (x.ndim - len(args))
        batch = ()
    arrays = [np.asarray(a) for a in event if not isinstance(a, slice)]
    bshape = np.broadcast_shapes(batch, *[a.shape for a in arrays])
    kept_dims = [len(batch) + d for d, a in enumerate(event) if isinstance(a, slice)]
    kept = tuple(x.shape[d] for d in kept_dims)
    out = np.empty(bshape + kept)
    for b in np.ndindex(*bshape):
        lead = len(bshape) - len(batch)
        at_batch = tuple(0 if batch[d] == 1 else b[lead + d] for d in range(len(batch)))
        for e in np.ndindex(*kept):
            picks, ke = [], iter(e)
            for a in event:
                if isinstance(a, slice):
                    picks.append(next(ke))
                else:
                    picks.append(np.broadcast_to(np.asarray(a), bshape)[b])
            out[b + e] = x[at_batch + tuple(picks)]
    return out


X4 = np.arange(4).reshape(4, 1)               # enumerated at dim -2
Y3 = np.array([2, 0, 1]).reshape(3, 1, 1)      # enumerated at dim -3

CASES = {
    "enumerated_pair_then_slice": (P, lambda a: (Ellipsis, a(X4), a(Y3), slice(None))),
    "no_ellipsis_leftmost": (P[0], lambda a: (a(X4[:, 0]), a(Y3[..., 0]))),
    "no_ellipsis_one_array": (P, lambda a: (a(np.array([4, 0, -1])),)),
    "slice_between": (P[0], lambda a: (a(X4), slice(None), a(np.array([[0, 1, 1]])))),
    "batched_and_plates": (P, lambda a: (Ellipsis, a(np.array([[0, 3, 1, 2, 1]])),
                                         a(np.array([[2], [0]])), slice(None))),
    "three_arrays_with_ellipsis": (P, lambda a: (Ellipsis, a(X4), a(Y3),
                                                 a(np.array([1, 0, 1, 1, 0])))),
    "first_arg_array_without_ellipsis": (P, lambda a: (a(np.arange(5).reshape(5, 1)),
                                                       a(np.array([0, 3])))),
    "int_among_arrays": (P, lambda a: (Ellipsis, a(X4), 1, slice(None))),
    "negative_indices": (P[0], lambda a: (a(np.array([-1, -4])), a(np.array([[-3], [2]])))),
    "only_slices_and_ints": (P, lambda a: (Ellipsis, 2, slice(None))),
    "gmm_tutorial_plate_index": (RNG.standard_normal((5, 4, 3)),  # Vindex(p)[vdx[..., None], c, :]
                                 lambda a: (a(np.arange(5)[..., None]),
                                            a(np.array([3, 0, 1, 2, 2, 0])), slice(None))),
}


def _as(kind):
    if kind == "numpy":
        return lambda arr: arr
    return lambda arr: csvi.tensor(arr).long()


@pytest.mark.parametrize("name", sorted(CASES))
def test_vindex_matches_the_reference(name):
    x, key = CASES[name]
    expected = reference_vindex(x, key(_as("numpy")))
    got = Vindex(x)[key(_as("numpy"))]
    assert type(got) is np.ndarray, "NumPy in, NumPy out"
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    got = Vindex(csvi.tensor(x))[key(_as("tensor"))]
    assert isinstance(got, csvi.Tensor)
    np.testing.assert_array_equal(got.numpy(), expected)
    mixed = vindex(x, key(_as("tensor")))  # a NumPy array indexed by Tensors: a Tensor
    has_tensor = any(isinstance(k, csvi.Tensor) for k in key(_as("tensor")))
    assert isinstance(mixed, csvi.Tensor) == has_tensor
    np.testing.assert_array_equal(mixed.numpy() if has_tensor else mixed, expected)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vindex_matches_pyro(name):
    torch = pytest.importorskip("torch")
    pyro_indexing = pytest.importorskip("pyro.ops.indexing")
    x, key = CASES[name]
    expected = pyro_indexing.Vindex(torch.tensor(x))[key(lambda a: torch.tensor(a))]
    got = Vindex(csvi.tensor(x))[key(_as("tensor"))]
    assert got.shape == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("name", ["enumerated_pair_then_slice", "batched_and_plates",
                                  "gmm_tutorial_plate_index"])
def test_vindex_gradients(name):
    x, key = CASES[name]
    assert_grads_match(lambda t: Vindex(t)[key(_as("tensor"))], [x])


def test_plain_keys_are_plain_indexing():
    x = P[0, 0]
    for key in [1, (slice(None), 0), (Ellipsis, 1), (0, 1), ()]:
        got, expected = Vindex(x)[key], x[key] if key != () else x
        np.testing.assert_array_equal(got, expected)
    t = csvi.tensor(x)
    assert Vindex(t)[()] is t and Vindex(t)[(Ellipsis,)] is t


def test_enumeration_tutorial_shapes():
    """p (5, 4, 3, 2) inside a plate of 5, x and y enumerated: p_xy is (4, 3, 5, 2)
    with both enumerated, (5, 2) when x and y are plain draws."""
    p = csvi.tensor(P)
    x = csvi.tensor(np.arange(4).reshape(4, 1)).long()
    y = csvi.tensor(np.arange(3).reshape(3, 1, 1)).long()
    assert Vindex(p)[..., x, y, :].shape == (3, 4, 5, 2)
    assert Vindex(p)[..., csvi.tensor(1).long(), csvi.tensor(2).long(), :].shape == (5, 2)
    np.testing.assert_array_equal(Vindex(p)[..., x, y, :].numpy(), np.transpose(P, (2, 1, 0, 3)))


def test_hmm_tutorial_expressions():
    """The indexing in Pyro's examples/hmm.py, models 0-4 and 6: batch of 7
    sequences (dim -2), 88 tones (dim -1), hidden_dim 16 enumerated at dim -3."""
    hidden, tones_n, batch = 16, 88, 7
    probs_x = RNG.random((hidden, hidden))
    probs_y = RNG.random((hidden, tones_n))
    probs_y2 = RNG.random((hidden, 2, tones_n))
    probs_w = RNG.random((hidden, hidden))
    probs_y3 = RNG.random((hidden, hidden, tones_n))
    x_np = np.arange(hidden).reshape(hidden, 1, 1)
    w_np = np.arange(hidden).reshape(hidden, 1, 1, 1)
    x = csvi.tensor(x_np).long()
    w = csvi.tensor(w_np).long()
    y_np = RNG.integers(0, 2, (batch, tones_n))
    y = csvi.tensor(y_np).long()
    tones = np.arange(tones_n)            # a plate's indices without subsampling
    cases = [
        (csvi.tensor(probs_x)[x], probs_x[x_np]),
        (csvi.tensor(probs_y)[x.squeeze(-1)], probs_y[x_np.squeeze(-1)]),
        (csvi.tensor(probs_y2)[x, y, tones], probs_y2[x_np, y_np, tones]),
        (csvi.tensor(probs_y2)[x, 0, tones], probs_y2[x_np, 0, tones]),
        (csvi.tensor(probs_y3)[w, x, tones], probs_y3[w_np, x_np, tones]),
        (Vindex(csvi.tensor(probs_w))[w, x], probs_w[w_np, x_np]),
        (Vindex(csvi.tensor(probs_y3))[w, x, tones], probs_y3[w_np, x_np, tones]),
        (Vindex(csvi.tensor(RNG.random((hidden,) * 3)))[x.unsqueeze(-1), x, :].shape, None),
    ]
    for got, expected in cases[:-1]:
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.numpy(), expected)
    assert cases[-1][0] == (hidden, hidden, 1, 1, hidden)


def test_gmm_tutorial_locs_by_assignment():
    locs = csvi.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    assignment = csvi.tensor(np.array([[0], [1]])).long()      # enumerated: (2, 1)
    picked = locs[assignment]
    assert picked.shape == (2, 1)
    picked.sum().backward()
    np.testing.assert_array_equal(locs.grad, [1.0, 1.0])


def test_vindex_records_one_take_that_replays():
    x = csvi.tensor(P, requires_grad=True)
    i = csvi.tensor(X4).long()
    tape = _core.Tape(record_all=True)
    with _core.recording(tape):
        Vindex(x)[..., i, 2, :]
    assert tape.op_names().count("TAKE") == 1


def test_index_flattens_nested_tuples():
    x = P
    for args, plain in [((Ellipsis, (Ellipsis, None)), (Ellipsis, None)),
                        ((0, (slice(None), (1,))), (0, slice(None), 1)),
                        (1, 1), ((), None)]:
        expected = x if plain is None else x[plain]
        np.testing.assert_array_equal(Index(x)[args], expected)
        np.testing.assert_array_equal(index(csvi.tensor(x), args).numpy()
                                      if plain is not None else index(x, args), expected)


@pytest.mark.parametrize("key, error, match", [
    ((slice(None), Ellipsis, np.array([0])), IndexError, "may only come first"),
    ((0, np.array([0, 1]), slice(1, 3)), IndexError, "only `:` slices.*slice\\(1, 3"),
    ((0, 0, 0, 0, 0), IndexError, "5 indices for a tensor of shape \\(5, 4, 3, 2\\)"),
    ((Ellipsis, 0, 0, 0, 0, 0), IndexError, "5 indices after `...`"),
    ((np.array([0.5]), np.array([1])), IndexError, "integer"),
    ((np.array([0, 1, 2]), np.array([0, 1])), IndexError, "broadcast"),
])
def test_vindex_bad_keys(key, error, match):
    for x in (P, csvi.tensor(P)):
        with pytest.raises(error, match=match):
            Vindex(x)[key]


def test_every_index_kind_combination_of_two_arrays():
    """Tensor/NumPy/int for two index positions of Vindex, each with and
    without a leading `...`: the same values as the reference."""
    kinds = {"int": lambda a: int(np.asarray(a).reshape(-1)[0]), "numpy": lambda a: a,
             "tensor": lambda a: csvi.tensor(a).long()}
    a0, a1 = np.array([[1], [0], [2]]), np.array([0, 2])
    for k0, k1, lead in itertools.product(kinds, kinds, (False, True)):
        key = (kinds[k0](a0), kinds[k1](a1))
        key = ((Ellipsis,) + key + (slice(None),)) if lead else key
        ref_key = (kinds[k0 if k0 == "int" else "numpy"](a0),
                   kinds[k1 if k1 == "int" else "numpy"](a1))
        ref_key = ((Ellipsis,) + ref_key + (slice(None),)) if lead else ref_key
        got = Vindex(csvi.tensor(P[0]))[key]
        np.testing.assert_array_equal(got.numpy(), reference_vindex(P[0], ref_key),
                                      err_msg=f"{k0}, {k1}, leading ... {lead}")
