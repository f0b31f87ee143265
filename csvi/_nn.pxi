# The dense layer as one record (src_c/ops_nn.c): csvi.nn's Linear, and a
# Linear with the activation after it, call `dense`.

# The activations a DENSE_ACT record applies, in csvi_dense_act's order
# (src_c/csvi_nn.h).
DENSE_ACTIVATIONS = {None: 0, "relu": 1, "softplus": 2, "sigmoid": 3, "tanh": 4}


def dense(input, weight, bias=None, activation=None, double threshold=20.0):
    """activation(input @ weight.T + bias) for a matrix input (n, in_features),
    weight (out_features, in_features) and bias (out_features,) or None: one
    dgemm with bias and activation in its output pass, and a VJP of one pass
    plus two dgemms.  `activation` is None or a name of DENSE_ACTIVATIONS;
    softplus is torch's with beta 1 (x itself above `threshold`)."""
    cdef Tensor x = as_tensor(input), w = as_tensor(weight)
    cdef tuple sx = x._value.shape, sw = w._value.shape
    if activation not in DENSE_ACTIVATIONS:
        raise ValueError(f"dense: activation must be one of {list(DENSE_ACTIVATIONS)}, "
                         f"got {activation!r}")
    if len(sw) != 2 or len(sx) != 2 or sx[1] != sw[1]:
        raise ValueError(f"dense: needs an input (n, in_features) and a weight "
                         f"(out_features, in_features), got shapes {sx} and {sw}")
    ins = (x, w)
    if bias is not None:
        b = as_tensor(bias)
        if b._value.shape != (sw[0],):
            raise ValueError(f"dense: bias of shape {b._value.shape} does not match weight "
                             f"of shape {sw}: it must have shape ({sw[0]},)")
        ins = (x, w, b)
    _require_ext(OP_MATMUL_NT, None)  # loads dgemm, which DENSE calls as MATMUL_NT does
    cdef int act = DENSE_ACTIVATIONS[activation]
    if act == 0:
        return _emit(OP_DENSE, ins, (sx[0], sw[0]), True, None, None, None)
    return _emit(OP_DENSE_ACT, ins, (sx[0], sw[0]), True, (act,), (threshold,),
                 (sx[0], sw[0]))
