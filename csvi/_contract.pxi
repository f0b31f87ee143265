# Log-space contractions (src_c/contract.def, kernels in src_c/ops_contract.c):
# each function checks shapes, names the argument at fault, and records one
# op.  The public face is csvi/ops/contract.py.


cdef tuple _matmul_layout(str what, tuple sa, tuple sb):
    """(output shape, MATMUL-style iattr) of a (..., n, k) by b (..., k, m)
    product with numpy.matmul's rules (1-D promotion, batch broadcast)."""
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError(f"{what}: operands must have at least 1 dim, got shapes {sa} and {sb}")
    a_vec, b_vec = len(sa) == 1, len(sb) == 1
    n = 1 if a_vec else sa[-2]
    k = sa[-1]
    kb = sb[0] if b_vec else sb[-2]
    m = 1 if b_vec else sb[-1]
    if k != kb:
        raise ValueError(f"{what}: shapes {sa} and {sb} do not align (a's last dim {k} != "
                         f"b's {'only' if b_vec else 'second-to-last'} dim {kb})")
    try:
        batch = broadcast_shapes(() if a_vec else sa[:-2], () if b_vec else sb[:-2])
    except ValueError:
        raise ValueError(f"{what}: the batch dims of shapes {sa} and {sb} cannot be "
                         "broadcast together") from None
    shape = batch + (() if a_vec else (n,)) + (() if b_vec else (m,))
    return shape, (n, k, m, 1 if a_vec else 2, 1 if b_vec else 2, len(batch))


def logmatmulexp(a, b):
    """log(exp(a) @ exp(b)), computed stably, as one op (see
    csvi.ops.contract.logmatmulexp)."""
    cdef Tensor x = as_tensor(a), y = as_tensor(b)
    shape, iattr = _matmul_layout("logmatmulexp", x._value.shape, y._value.shape)
    return _emit(OP_LOGMATMULEXP, (x, y), shape, True, iattr, None, None)


def markov_forward(init, trans, obs=None, normalize=False, check_nan=False):
    """The forward algorithm's log messages as one op (see
    csvi.ops.contract.markov_forward); `normalize`: trans holds unnormalized
    logits, each row normalized inside the op; `check_nan`: a NaN in trans
    is a ValueError, found in the op's own pass over trans."""
    cdef Tensor ti = as_tensor(init), tt = as_tensor(trans)
    cdef Tensor to = as_tensor(obs) if obs is not None else None
    si, st = ti._value.shape, tt._value.shape
    if len(si) < 1:
        raise ValueError(f"markov_forward: init must have shape (..., K), got {si}")
    if len(st) < 3 or st[-1] != st[-2]:
        raise ValueError("markov_forward: trans must have shape (..., T, K, K) (a time dim, "
                         f"then square transition matrices), got {st}")
    K = si[-1]
    if st[-1] != K:
        raise ValueError(f"markov_forward: init has {K} states (shape {si}) but trans has "
                         f"{st[-1]} (shape {st})")
    T = st[-3]
    batch = st[:-3]
    try:
        batch = broadcast_shapes(si[:-1], batch)
    except ValueError:
        raise ValueError(f"markov_forward: the batch dims of init {si} and trans {st} cannot "
                         "be broadcast together") from None
    ins = (ti, tt)
    To = 0
    if to is not None:
        so = to._value.shape
        if len(so) < 2 or so[-1] != K:
            raise ValueError(f"markov_forward: obs must have shape (..., T, K) with K = {K}, "
                             f"got {so}")
        To = so[-2]
        if T != To and T != 1 and To != 1:
            raise ValueError(f"markov_forward: trans has {T} time steps (shape {st}) but obs "
                             f"has {To} (shape {so})")
        T = max(T, To) if T != 0 and To != 0 else 0
        try:
            batch = broadcast_shapes(batch, so[:-2])
        except ValueError:
            raise ValueError(f"markov_forward: the batch dims of obs {so} cannot be broadcast "
                             f"with init {si} and trans {st}") from None
        ins = (ti, tt, to)
    shape = batch + (T, K)
    # Per-step transitions: the aux slot also keeps each step's factor, T K
    # (K + 1) per transition sequence (about trans's own size), computed once
    # for the chains that share the sequence; the VJP runs no exp.
    keep = st[-3] > 1 and T > 0 and K > 0
    iattr = (T, K, len(batch), st[-3], To, 1 if normalize else 0, 1 if keep else 0,
             1 if check_nan else 0)
    aux = _aux_shape(OP_MARKOV_FORWARD, ins, shape, iattr)
    if keep:
        aux = (2 * _prod(shape) + _prod(st[:-3]) * T * K * (K + 1),)
    try:
        return _emit(OP_MARKOV_FORWARD, ins, shape, True, iattr, None, aux)
    except ValueError:
        nan = np.flatnonzero(np.isnan(tt._value)) if check_nan else ()
        if len(nan) == 0:
            raise
        raise ValueError(f"markov_forward: trans must not hold NaN, got NaN at flat index "
                         f"{nan[0]} of shape {st}") from None


cdef Py_ssize_t _prod(tuple shape):
    cdef Py_ssize_t n = 1
    for d in shape:
        n *= d
    return n
