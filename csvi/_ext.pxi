# Fills src_c's table of SciPy functions (special functions, BLAS) at import.
from scipy.special cimport cython_special as _cs
from scipy.linalg cimport cython_blas as _blas

cdef extern from "csvi_ext.h":
    ctypedef void (*csvi_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                   double *alpha, double *a, int *lda, double *b,
                                   int *ldb, double *beta, double *c, int *ldc) noexcept nogil
    ctypedef struct csvi_ext_table:
        double (*lgamma)(double) noexcept nogil
        double (*digamma)(double) noexcept nogil
        double (*betaln)(double, double) noexcept nogil
        double (*gammainc)(double, double) noexcept nogil
        double (*gammaincc)(double, double) noexcept nogil
        csvi_dgemm_fn dgemm
    csvi_ext_table csvi_ext


# Typed double wrappers so the real (not complex) fused variants are bound.
cdef double _gammaln(double x) noexcept nogil:
    return _cs.gammaln(x)


cdef double _psi(double x) noexcept nogil:
    return _cs.psi(x)


cdef double _betaln(double a, double b) noexcept nogil:
    return _cs.betaln(a, b)


cdef double _gammainc(double a, double x) noexcept nogil:
    return _cs.gammainc(a, x)


cdef double _gammaincc(double a, double x) noexcept nogil:
    return _cs.gammaincc(a, x)


csvi_ext.lgamma = _gammaln
csvi_ext.digamma = _psi
csvi_ext.betaln = _betaln
csvi_ext.gammainc = _gammainc
csvi_ext.gammaincc = _gammaincc
csvi_ext.dgemm = <csvi_dgemm_fn>_blas.dgemm
