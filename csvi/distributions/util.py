"""Shape helpers shared by the distribution modules: broadcasting parameter
shapes (with an error naming the arguments), expanding a Tensor as one
recorded op, and constant Tensors."""
import numpy as np

from csvi import _core

astensor = _core.astensor
apply = _core.apply
broadcast_shapes = _core.broadcast_shapes

OP_DIST_EXPAND = _core.OPCODES["DIST_EXPAND"]


def broadcast_args(dist_name, names, shapes):
    """Broadcast of the parameter shapes, or a ValueError naming both culprits."""
    shape = shapes[0]
    for k in range(1, len(shapes)):
        try:
            shape = broadcast_shapes(shape, shapes[k])
        except ValueError:
            pairs = ", ".join(f"{n} {s}" for n, s in zip(names[:k + 1], shapes[:k + 1]))
            raise ValueError(f"{dist_name}: the shapes of {pairs} cannot be broadcast "
                             "together") from None
    return shape


def expand_to(x, shape):
    """x broadcast to `shape` (one recorded op, gradient summed back), or x."""
    x = astensor(x)
    if x.shape == shape:
        return x
    return apply(OP_DIST_EXPAND, (x,), shape)


def check_expandable(owner, batch_shape, new_shape):
    """Raises `owner`.expand's ValueError unless batch_shape broadcasts to
    exactly new_shape (Pyro's expand rule: dims may be added on the left and
    size-1 dims grown, nothing shrunk)."""
    try:
        ok = broadcast_shapes(batch_shape, new_shape) == new_shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{owner}.expand: batch_shape {batch_shape} cannot be expanded to "
                         f"{new_shape}")


def full(shape, value):
    """A constant Tensor of `shape` filled with `value`."""
    return astensor(np.full(shape, value, dtype=np.float64))
