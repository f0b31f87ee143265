/* BLAS, which csvi takes from SciPy rather than rewriting it.  The Cython
 * glue (csvi/_ext.pxi) fills this table before the first op that calls it is
 * recorded, so the kernels stay plain C with no Python headers. */
#ifndef CSVI_EXT_H
#define CSVI_EXT_H

typedef void (*csvi_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                              double *alpha, double *a, int *lda, double *b, int *ldb,
                              double *beta, double *c, int *ldc);

typedef struct {
    csvi_dgemm_fn dgemm;
} csvi_ext_table;

extern csvi_ext_table csvi_ext;

#endif
