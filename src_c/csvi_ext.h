/* Functions csvi takes from SciPy (special functions, BLAS) rather than
 * rewriting them.  The Cython glue (csvi/_ext.pxi) fills this table before
 * the first op that needs an entry is recorded, so the kernels stay plain C
 * with no Python headers. */
#ifndef CSVI_EXT_H
#define CSVI_EXT_H

typedef void (*csvi_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                              double *alpha, double *a, int *lda, double *b, int *ldb,
                              double *beta, double *c, int *ldc);

typedef struct {
    double (*lgamma)(double);
    double (*digamma)(double);
    double (*betaln)(double, double);
    csvi_dgemm_fn dgemm;
} csvi_ext_table;

extern csvi_ext_table csvi_ext;

#endif
