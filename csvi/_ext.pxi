# Fills src_c's table of SciPy functions (special functions, BLAS) on first
# use, through the C-API capsules of scipy's Cython modules.  Importing
# scipy.special takes ~0.2 s -- more than numpy and csvi together -- and only
# Gamma, Beta and Poisson need it, so `import csvi` doesn't pay it.
import re

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer

cdef extern from "csvi_ext.h":
    ctypedef void (*csvi_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                   double *alpha, double *a, int *lda, double *b,
                                   int *ldb, double *beta, double *c, int *ldc) noexcept nogil
    ctypedef struct csvi_ext_table:
        double (*lgamma)(double) noexcept nogil
        double (*digamma)(double) noexcept nogil
        double (*betaln)(double, double) noexcept nogil
        csvi_dgemm_fn dgemm
    csvi_ext_table csvi_ext

# cython_special's cpdef functions take a trailing skip-dispatch flag
ctypedef double (*_special_1)(double, int) noexcept nogil
ctypedef double (*_special_2)(double, double, int) noexcept nogil
cdef _special_1 _gammaln_fn = NULL
cdef _special_1 _psi_fn = NULL
cdef _special_2 _betaln_fn = NULL


cdef double _gammaln(double x) noexcept nogil:
    return _gammaln_fn(x, 0)


cdef double _psi(double x) noexcept nogil:
    return _psi_fn(x, 0)


cdef double _betaln(double a, double b) noexcept nogil:
    return _betaln_fn(a, b, 0)


cdef void *_capi_function(module, str name, str signature) except NULL:
    """The C function `name` (or its fused variant) of a Cython module whose
    signature starts with `signature`."""
    for key, capsule in module.__pyx_capi__.items():
        if re.fullmatch(rf"(__pyx_fuse_\d+)?{name}", key):
            if PyCapsule_GetName(capsule).decode().startswith(signature):
                return PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))
    raise ImportError(f"csvi: scipy's {module.__name__} has no {name}({signature}...)")


cdef void _load_special() except *:
    global _gammaln_fn, _psi_fn, _betaln_fn
    from scipy.special import cython_special
    _gammaln_fn = <_special_1>_capi_function(cython_special, "gammaln", "double (double,")
    _psi_fn = <_special_1>_capi_function(cython_special, "psi", "double (double,")
    _betaln_fn = <_special_2>_capi_function(cython_special, "betaln", "double (double, double,")
    csvi_ext.lgamma = _gammaln
    csvi_ext.digamma = _psi
    csvi_ext.betaln = _betaln


cdef void _load_blas() except *:
    from scipy.linalg import cython_blas
    csvi_ext.dgemm = <csvi_dgemm_fn>_capi_function(cython_blas, "dgemm", "void (char *")


# Per op code: 1 if its kernels call special functions, 2 if they may call BLAS.
cdef unsigned char _ext_use[CSVI_OP_COUNT]
_SPECIAL_OPS = ("BETA_LP", "BETA_RS", "GAMMA_LP", "GAMMA_RS", "STANDARD_GAMMA_GRAD",
                "POISSON_LP")
for _code in range(CSVI_OP_COUNT):
    _name = csvi_kernels[_code].name.decode()
    _ext_use[_code] = 1 if _name in _SPECIAL_OPS else 2 if _name == "MATMUL" else 0


cdef extern from "csvi_linalg.h":
    int csvi_matmul_uses_blas(int64_t n, int64_t k, int64_t m)


cdef inline void _require_ext(int code, tuple iattr) except *:
    """Loads what op `code` with attributes `iattr` calls from SciPy, before
    its first use.  Mat-vecs run in csvi's own kernels: no BLAS to load."""
    if _ext_use[code] == 1 and csvi_ext.lgamma == NULL:
        _load_special()
    elif _ext_use[code] == 2 and csvi_ext.dgemm == NULL \
            and csvi_matmul_uses_blas(iattr[0], iattr[1], iattr[2]):
        _load_blas()
