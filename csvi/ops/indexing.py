"""Pyro's indexing helpers (`pyro.ops.indexing`): `Vindex` for picking
mixture components or transition rows with discrete values that carry batch
and enumeration dims, and `Index` for keys assembled from nested tuples.

Both work on csvi Tensors and NumPy arrays: a NumPy array indexed by NumPy
arrays and ints gives a NumPy array; as soon as a Tensor is involved the
result is a Tensor, recorded as one TAKE (see `csvi._core.index`) so a
compiled step replays it with fresh index values.
"""
import numpy as np

from csvi._core import Tensor, astensor, mark_integer

__all__ = ["Index", "Vindex", "index", "vindex"]


def _getitem(tensor, key):
    """tensor[key], lifting a NumPy array to a Tensor when the key holds one
    (NumPy would otherwise read the Tensor's values once, off the tape)."""
    if isinstance(tensor, Tensor):
        return tensor[key]
    parts = key if isinstance(key, tuple) else (key,)
    array = np.asarray(tensor)
    if any(isinstance(k, Tensor) for k in parts):
        out = astensor(array)[key]
        return mark_integer(out) if array.dtype.kind in "iub" else out
    return array[key]


def _flatten(args, out):
    """Appends the entries of nested tuples to `out`, runs of `...` as one."""
    if isinstance(args, tuple):
        for arg in args:
            _flatten(arg, out)
    elif not (args is Ellipsis and out and out[-1] is Ellipsis):
        out.append(args)


def index(tensor, args):
    """`tensor[args]` where `args` may nest tuples (flattened, consecutive
    Ellipses merged), so one expression serves a scalar `t`, a slice or a
    reshaping key such as `(Ellipsis, None)` in `x[..., t]`."""
    if not isinstance(args, tuple):
        return _getitem(tensor, args)
    if not args:
        return tensor
    flat = []
    _flatten(args, flat)
    return _getitem(tensor, tuple(flat))


class Index:
    """`Index(x)[args]` is `index(x, args)`."""

    def __init__(self, tensor):
        self._tensor = tensor

    def __getitem__(self, args):
        return index(self._tensor, args)


def _is_batched(arg):
    """An index array with dims (a 0-d one acts like an int)."""
    return isinstance(arg, (Tensor, np.ndarray)) and arg.ndim > 0


def vindex(tensor, args):
    """Vectorized indexing: the index arrays in `args` broadcast together and
    against the tensor's batch dims, and the result is that broadcast batch
    shape followed by the dims kept with `:`.

    Without a leading `...`, `args` covers the tensor's leftmost dims (missing
    ones count as `:`) and the tensor has no batch dims.  With a leading `...`,
    `args` covers the rightmost dims and the dims to their left are batch dims
    that broadcast with the index arrays.  Each arg is `:`, an int or an
    integer array/Tensor with batch dims only.  When no arg is an array with
    dims (or the tensor's only batch dim is indexed directly), this is plain
    `tensor[args]`.

        probs = Vindex(probs_y)[w, x, tones]   # shape: broadcast(w, x, tones)
        rows = Vindex(locs)[..., z, :]         # locs (B, K, D), z (B,) -> (B, D)
    """
    if not isinstance(args, tuple):
        return _getitem(tensor, args)
    if not args:
        return tensor
    shape = tuple(np.shape(tensor))
    if args[0] is Ellipsis:
        args = args[1:]
        if not args:
            return tensor
        event_dim = len(args)
        if event_dim > len(shape):
            raise IndexError(f"Vindex: {event_dim} indices after `...` for a tensor of shape "
                             f"{shape}, which has only {len(shape)} dims")
        args = (slice(None),) * (len(shape) - event_dim) + args
    else:
        if len(args) > len(shape):
            raise IndexError(f"Vindex: {len(args)} indices for a tensor of shape {shape}, "
                             f"which has only {len(shape)} dims")
        event_dim = len(shape)  # no batch dims: the missing args are `:` event dims
        args = args + (slice(None),) * (len(shape) - len(args))
    if any(a is Ellipsis for a in args):
        raise IndexError("Vindex: `...` may only come first (it stands for the batch dims "
                         f"on the left), got the key {args!r}")
    batch_dim = len(shape) - event_dim
    if not ((batch_dim and _is_batched(args[0])) or any(_is_batched(a) for a in args[1:])):
        return _getitem(tensor, args)

    # Each `:` becomes an arange along its own new dim, placed right of the
    # dims of the `:`s further left; each index array gets one trailing
    # size-1 dim per `:` among the event dims, so all broadcast as stated.
    kept = sum(isinstance(a, slice) for a in args[batch_dim:])
    new_dims = 0
    key = list(args)
    for d in range(len(args) - 1, -1, -1):
        arg = args[d]
        if isinstance(arg, slice):
            if arg != slice(None):
                raise IndexError(f"Vindex: only `:` slices are supported, got {arg!r} for "
                                 f"dim {d} (of shape {shape})")
            key[d] = np.arange(shape[d]).reshape((-1,) + (1,) * new_dims)
            new_dims += 1
        elif _is_batched(arg):
            key[d] = arg.reshape(tuple(arg.shape) + (1,) * kept)
    return _getitem(tensor, tuple(key))


class Vindex:
    """`Vindex(x)[args]` is `vindex(x, args)`, Pyro's convenience wrapper."""

    def __init__(self, tensor):
        self._tensor = tensor

    def __getitem__(self, args):
        return vindex(self._tensor, args)
