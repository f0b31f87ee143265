/* Row-block mat-vec kernels (ops_linalg.c), shared by MATMUL and its
 * particle fast path (ops_particles.c).  Serial: callers split rows into
 * tasks (csvi_parallel.h). */
#ifndef CSVI_LINALG_H
#define CSVI_LINALG_H

#include <stdint.h>

/* y[r] (+)= a[r, :] . v for r in [r0, r1); a is row-major with `cols` columns. */
void csvi_matvec_block(const double *a, const double *v, double *y, int64_t cols,
                       int64_t r0, int64_t r1, int add);

/* acc[c] = sum over r in [r0, r1) of a[r, c] v[r], for c < cols. */
void csvi_mtv_block(const double *a, const double *v, double *acc, int64_t cols,
                    int64_t r0, int64_t r1);

/* Whether MATMUL of (n, k) @ (k, m) products may call BLAS dgemm (the glue
 * loads BLAS before recording one that does). */
int csvi_matmul_uses_blas(int64_t n, int64_t k, int64_t m);

#endif
