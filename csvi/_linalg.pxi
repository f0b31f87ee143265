# Dense linear algebra ops (src_c/linalg.def, kernels in src_c/ops_dense.c):
# each function checks shapes, names the culprit, and records one op.  All
# act on the last two dims and broadcast leading batch dims where two
# operands meet.  The public face is csvi/linalg.py.

cdef void _require_lapack() except *:
    """Loads the BLAS/LAPACK routines of the dense ops (first use only: it
    imports scipy.linalg)."""
    if csvi_ext.dpotrf != NULL:
        return
    from scipy.linalg import cython_blas, cython_lapack
    if csvi_ext.dgemm == NULL:
        csvi_ext.dgemm = <csvi_dgemm_fn>_capi_function(cython_blas, "dgemm", "void (char *")
        _on_blas_loaded()
    csvi_ext.dtrsm = <csvi_dtrxm_fn>_capi_function(cython_blas, "dtrsm", "void (char *")
    csvi_ext.dtrmm = <csvi_dtrxm_fn>_capi_function(cython_blas, "dtrmm", "void (char *")
    csvi_ext.dpotrf = <csvi_dpotrf_fn>_capi_function(cython_lapack, "dpotrf", "void (char *")


cdef tuple _square(Tensor t, str what, str arg):
    """t's shape, checked to be (..., n, n)."""
    shape = t._value.shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{what}: {arg} must be a square matrix or a batch of them "
                         f"(..., n, n), got shape {shape}")
    return shape


cdef tuple _batch_of(str what, str arg_a, tuple a, str arg_b, tuple b):
    try:
        return broadcast_shapes(a[:-2], b[:-2])
    except ValueError:
        raise ValueError(f"{what}: the batch dims of {arg_a} {a} and {arg_b} {b} cannot "
                         "be broadcast together") from None


cdef str _not_pd(object arr):
    """Which matrix of arr (..., n, n) NumPy's Cholesky refuses (the error
    path only)."""
    for index in np.ndindex(arr.shape[:-2]):
        try:
            if not np.all(np.isfinite(np.linalg.cholesky(arr[index]))):
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            if arr.ndim > 2:
                return f"the matrix at batch index {index} of an input of shape {arr.shape}"
            break
    return f"the matrix of shape {arr.shape}"


def cholesky(a):
    """The lower-triangular L with a = L L^T of a symmetric positive-definite
    `a` (..., n, n), as torch.linalg.cholesky and numpy.linalg.cholesky.  Only
    a's lower triangle is read; the gradient is symmetric (torch's
    convention: a is treated as a symmetric matrix).  A matrix that is not
    positive definite is numpy.linalg.LinAlgError (a ValueError) naming it."""
    cdef Tensor t = as_tensor(a)
    shape = _square(t, "cholesky", "the input")
    _require_lapack()
    try:
        return _emit(OP_CHOLESKY, (t,), shape, True, None, None, None)
    except ValueError:
        raise np.linalg.LinAlgError(f"cholesky: {_not_pd(t._value)} is not positive "
                                    "definite") from None


def solve_triangular(a, b, *, upper, left=True, unitriangular=False, transpose=False):
    """The solution X of op(a) X = b (left=True) or X op(a) = b (left=False),
    for triangular a (..., n, n) and b (..., n, k) (left) or (..., k, n)
    (right), batch dims broadcast; op(a) is a, or a^T with transpose=True.

    torch.linalg.solve_triangular's signature (upper is required) plus
    `transpose` (scipy's trans=1): solving with a^T without copying it, as
    MultivariateNormal's rows x_i^T L^-T are solve_triangular(L, x,
    upper=False, left=False, transpose=True).  Only a's triangle (and, unless
    unitriangular, its diagonal) is read, and only those get a gradient.  A
    zero on the diagonal is numpy.linalg.LinAlgError."""
    cdef Tensor ta = as_tensor(a), tb = as_tensor(b)
    sa = _square(ta, "solve_triangular", "a")
    sb = tb._value.shape
    n = sa[-1]
    if len(sb) < 2 or sb[-2 if left else -1] != n:
        want = "(..., n, k)" if left else "(..., k, n)"
        raise ValueError(f"solve_triangular: b must be {want} for a of shape {sa} "
                         f"(n = {n}, left={bool(left)}), got shape {sb}")
    batch = _batch_of("solve_triangular", "a", sa, "b", sb)
    _require_lapack()
    iattr = (0 if upper else 1, 1 if left else 0, 1 if transpose else 0,
             1 if unitriangular else 0, len(batch))
    try:
        return _emit(OP_SOLVE_TRIANGULAR, (ta, tb), batch + sb[-2:], True, iattr, None, None)
    except ValueError:
        raise np.linalg.LinAlgError(f"solve_triangular: a of shape {sa} is singular (a zero "
                                    "on its diagonal)") from None


def cholesky_solve(b, L, upper=False):
    """A^-1 b for A = L L^T (or U^T U with upper=True) given its Cholesky
    factor: torch.cholesky_solve's argument order (b first).  b is
    (..., n, k), L (..., n, n), batch dims broadcast; only L's triangle is
    read.  The gradient w.r.t. L is that of A through L (A is never formed)."""
    cdef Tensor tb = as_tensor(b), tl = as_tensor(L)
    sl = _square(tl, "cholesky_solve", "L")
    sb = tb._value.shape
    if len(sb) < 2 or sb[-2] != sl[-1]:
        raise ValueError(f"cholesky_solve: b must be (..., n, k) for L of shape {sl}, got "
                         f"shape {sb}")
    batch = _batch_of("cholesky_solve", "b", sb, "L", sl)
    _require_lapack()
    try:
        return _emit(OP_CHOLESKY_SOLVE, (tb, tl), batch + sb[-2:], True,
                     (1 if upper else 0, len(batch)), None, None)
    except ValueError:
        raise np.linalg.LinAlgError(f"cholesky_solve: L of shape {sl} is singular (a zero "
                                    "on its diagonal)") from None


def tri_logdet(a):
    """log |det a| of triangular matrices a (..., n, n): the sum of
    log |a_ii| (only the diagonal is read), of shape a.shape[:-2].  A
    Cholesky factor's gives half the log-determinant of its matrix."""
    cdef Tensor t = as_tensor(a)
    shape = _square(t, "tri_logdet", "the input")
    return _emit(OP_TRI_LOGDET, (t,), shape[:-2], True, None, None, None)


def tril(x, k=0):
    """numpy.tril: zeros above diagonal k of the last two dims (the gradient
    is zero there too)."""
    return _triangle(x, k, False)


def triu(x, k=0):
    """numpy.triu: zeros below diagonal k of the last two dims."""
    return _triangle(x, k, True)


cdef Tensor _triangle(x, k, bint upper):
    cdef Tensor t = as_tensor(x)
    shape = t._value.shape
    if len(shape) < 2:
        raise ValueError(f"{'triu' if upper else 'tril'}: needs at least 2 dims, got shape "
                         f"{shape}")
    return _emit(OP_TRIL, (t,), shape, True, (int(k), 1 if upper else 0), None, None)


def diagonal(a, offset=0, dim1=-2, dim2=-1):
    """The diagonal `offset` (> 0 above the main one) of the matrices in dims
    dim1 (rows) and dim2 (columns), as a new last dim: torch.diagonal's
    semantics, with torch.linalg.diagonal's default dims (the last two)."""
    cdef Tensor t = as_tensor(a)
    nd = t._value.ndim
    if nd < 2:
        raise ValueError(f"diagonal: needs at least 2 dims, got shape {t._value.shape}")
    d1, d2 = _one_axis(dim1, nd, "diagonal"), _one_axis(dim2, nd, "diagonal")
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    t = _permuted(t, [d for d in range(nd) if d != d1 and d != d2] + [d1, d2])
    shape = t._value.shape
    k = int(offset)
    length = max(0, min(shape[-2] + min(k, 0), shape[-1] - max(k, 0)))
    return _emit(OP_DIAGONAL, (t,), shape[:-2] + (length,), True, (k,), None, None)


def diag_embed(v, offset=0):
    """Matrices (..., n + |offset|, n + |offset|) with the vectors v (..., n)
    on diagonal `offset` and zeros elsewhere (torch.diag_embed over the last
    two dims)."""
    cdef Tensor t = as_tensor(v)
    if t._value.ndim < 1:
        raise ValueError("diag_embed: needs at least 1 dim, got a 0-d tensor")
    k = int(offset)
    m = t._value.shape[-1] + abs(k)
    return _emit(OP_DIAG_EMBED, (t,), t._value.shape[:-1] + (m, m), True, (k,), None, None)


def diag(v, k=0):
    """numpy.diag: the k-th diagonal of a matrix, or a matrix with a vector on
    its k-th diagonal."""
    cdef Tensor t = as_tensor(v)
    if t._value.ndim == 2:
        return diagonal(t, k)
    if t._value.ndim != 1:
        raise ValueError(f"diag: input must be 1-d or 2-d, got shape {t._value.shape}")
    return diag_embed(t, k)
