# Fills src_c's BLAS table on first use, through the C-API capsule of
# scipy.linalg.cython_blas.  Importing scipy.linalg takes ~0.15 s and only
# matrix-matrix products need it (mat-vecs run in csvi's own kernels), so
# `import csvi` doesn't pay it.
import re

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer

cdef extern from "csvi_ext.h":
    ctypedef void (*csvi_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                   double *alpha, double *a, int *lda, double *b,
                                   int *ldb, double *beta, double *c, int *ldc) noexcept nogil
    ctypedef void (*csvi_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                   float *alpha, float *a, int *lda, float *b,
                                   int *ldb, float *beta, float *c, int *ldc) noexcept nogil
    ctypedef void (*csvi_dtrxm_fn)(char *side, char *uplo, char *transa, char *diag, int *m,
                                   int *n, double *alpha, double *a, int *lda, double *b,
                                   int *ldb) noexcept nogil
    ctypedef void (*csvi_dpotrf_fn)(char *uplo, int *n, double *a, int *lda,
                                    int *info) noexcept nogil
    ctypedef struct csvi_ext_table:
        csvi_dgemm_fn dgemm
        csvi_dtrxm_fn dtrsm
        csvi_dtrxm_fn dtrmm
        csvi_dpotrf_fn dpotrf
        csvi_sgemm_fn sgemm
    csvi_ext_table csvi_ext

cdef extern from "csvi_linalg.h":
    int csvi_matmul_uses_blas(int64_t n, int64_t k, int64_t m)


cdef void *_capi_function(module, str name, str signature) except NULL:
    """The C function `name` (or its fused variant) of a Cython module whose
    signature starts with `signature`."""
    for key, capsule in module.__pyx_capi__.items():
        if re.fullmatch(rf"(__pyx_fuse_\d+)?{name}", key):
            if PyCapsule_GetName(capsule).decode().startswith(signature):
                return PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))
    raise ImportError(f"csvi: scipy's {module.__name__} has no {name}({signature}...)")


cdef void _on_blas_loaded() except *:
    """csvi's BLAS thread policy (csvi/blas_threads.py) and its products'
    split (CSVI_PRODUCT_TASKS, _nn.pxi), when BLAS first loads."""
    from csvi import blas_threads
    blas_threads.apply_default()
    _apply_product_tasks_env()


cdef inline void _require_ext(int code, tuple iattr) except *:
    """Loads BLAS before the first MATMUL (attributes `iattr`) that calls it."""
    if csvi_ext.dgemm == NULL and (code == OP_MATMUL_NT or code == OP_MATMUL
                                   and csvi_matmul_uses_blas(iattr[0], iattr[1], iattr[2])):
        from scipy.linalg import cython_blas
        csvi_ext.dgemm = <csvi_dgemm_fn>_capi_function(cython_blas, "dgemm", "void (char *")
        _on_blas_loaded()


cdef void _require_sgemm() except *:
    """Loads sgemm before the first float32 dense record (with dgemm, so the
    thread policy is applied once, when BLAS first loads)."""
    _require_ext(OP_MATMUL_NT, None)
    if csvi_ext.sgemm == NULL:
        from scipy.linalg import cython_blas
        csvi_ext.sgemm = <csvi_sgemm_fn>_capi_function(cython_blas, "sgemm", "void (char *")
