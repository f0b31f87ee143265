# The dense layer as one record (src_c/ops_nn.c): csvi.nn's Linear, and a
# Linear with the activation after it, call `dense`.

# The activations a DENSE_ACT record applies, in csvi_dense_act's order
# (src_c/csvi_nn.h).
DENSE_ACTIVATIONS = {None: 0, "relu": 1, "softplus": 2, "sigmoid": 3, "tanh": 4}


def dense(input, weight, bias=None, activation=None, double threshold=20.0,
          bint float32=False):
    """activation(input @ weight.T + bias) for a matrix input (n, in_features),
    weight (out_features, in_features) and bias (out_features,) or None: one
    dgemm with bias and activation in its output pass, and a VJP of one pass
    plus two dgemms.  `activation` is None or a name of DENSE_ACTIVATIONS;
    softplus is torch's with beta 1 (x itself above `threshold`).  With
    `float32` the three products run through sgemm on float32 copies of their
    operands (values, bias, activation and gradients stay float64)."""
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
    if float32:
        _require_sgemm()
    else:
        _require_ext(OP_MATMUL_NT, None)  # loads dgemm, which DENSE calls as MATMUL_NT does
    cdef int act = DENSE_ACTIVATIONS[activation]
    cdef tuple iattr = (act, 1 if float32 else 0)  # csvi_dense_precision's order
    cdef int64_t n = sx[0], k = sx[1], m = sw[0]
    aux = None if act == 0 else (2 * n * m,)  # the pre-activation and the VJP's gz
    if float32:  # and the float32 operands (dense32_layout, src_c/ops_nn.c)
        aux = ((2 * n * m if act else 0) + (_dense32_floats(n, k, m) + 1) // 2,)
    return _emit(OP_DENSE_ACT if act else OP_DENSE, ins, (n, m), True, iattr,
                 (threshold,) if act else None, aux)


cdef inline int64_t _dense32_floats(int64_t n, int64_t k, int64_t m):
    """Floats of a float32 dense record's operands and products, as
    dense32_floats in src_c/ops_nn.c."""
    return 2 * n * k + 2 * m * k + n * m


cdef extern from "csvi_nn.h":
    int CSVI_DENSE_MAX_TASKS
    int CSVI_DENSE_IATTR_X32_FROM
    int CSVI_DENSE_IATTR_X32_TO
    int CSVI_DENSE_IATTR_DX32_FROM
    int CSVI_DENSE_DX32_READERS
    int CSVI_DENSE_IATTR_PROBS_OF
    void csvi_dense_set_product_tasks(int n) nogil
    int csvi_dense_product_tasks() nogil


PRODUCT_TASKS_MAX = CSVI_DENSE_MAX_TASKS


def _set_product_tasks(n, where="set_product_tasks: n"):
    """csvi.nn.set_product_tasks (csvi/nn/products.py): the split of the dense
    products over csvi's pool (src_c/ops_nn.c's gemm)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= PRODUCT_TASKS_MAX:
        raise ValueError(f"{where} must be an integer from 1 to {PRODUCT_TASKS_MAX}, "
                         f"got {n!r}")
    csvi_dense_set_product_tasks(n)


def _get_product_tasks():
    return csvi_dense_product_tasks()


cdef void _apply_product_tasks_env() except *:
    """CSVI_PRODUCT_TASKS, if set, when csvi first loads BLAS."""
    import os
    value = os.environ.get("CSVI_PRODUCT_TASKS")
    if value is not None:
        _set_product_tasks(int(value) if value.strip().isdigit() else value,
                           "CSVI_PRODUCT_TASKS")
