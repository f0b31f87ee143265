/* BLAS, which csvi takes from SciPy rather than rewriting it.  The Cython
 * glue (csvi/_ext.pxi) fills this table before the first op that calls it is
 * recorded, so the kernels stay plain C with no Python headers. */
#ifndef CSVI_EXT_H
#define CSVI_EXT_H

typedef void (*csvi_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                              double *alpha, double *a, int *lda, double *b, int *ldb,
                              double *beta, double *c, int *ldc);
/* float32 products of the dense layer (ops_nn.c), loaded by its first
 * float32 record. */
typedef void (*csvi_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                              float *alpha, float *a, int *lda, float *b, int *ldb,
                              float *beta, float *c, int *ldc);
/* dtrsm and dtrmm share a signature: side, uplo, trans, diag, m, n, alpha, a,
 * lda, b, ldb. */
typedef void (*csvi_dtrxm_fn)(char *side, char *uplo, char *transa, char *diag, int *m,
                              int *n, double *alpha, double *a, int *lda, double *b, int *ldb);
typedef void (*csvi_dpotrf_fn)(char *uplo, int *n, double *a, int *lda, int *info);

typedef struct {
    csvi_dgemm_fn dgemm;
    /* the dense linear-algebra ops' (ops_dense.c), loaded together */
    csvi_dtrxm_fn dtrsm, dtrmm;
    csvi_dpotrf_fn dpotrf;
    csvi_sgemm_fn sgemm;
} csvi_ext_table;

extern csvi_ext_table csvi_ext;

#endif
