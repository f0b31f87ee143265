/* Particle fast paths (csvi_particles.h).  MATMUL of a data matrix by a
 * per-particle vector -- the linear predictor X @ w of a regression -- is P
 * mat-vecs over the same X; as one dgemm, X is read once for all particles. */
#include "csvi_ext.h"
#include "csvi_opcodes.h"
#include "csvi_particles.h"

/* (n, k) @ (k,) with only the vector per particle: true and sets n, k. */
static int matrix_times_particle_vectors(const csvi_tape *t, const csvi_op *op,
                                         const unsigned char *batched, int *n, int *k) {
    const csvi_slot *a = CSVI_IN(t, op, 0);
    if (op->code != CSVI_OP_MATMUL || batched[op->in[0]] || !batched[op->in[1]]) return 0;
    if (op->iattr[3] != 2 || op->iattr[4] != 1 || op->iattr[5] != 0 || a->ndim != 2) return 0;
    *n = (int)op->iattr[0];
    *k = (int)op->iattr[1];
    return *n > 0 && *k > 0;
}

int csvi_particles_fwd(csvi_tape *t, const csvi_op *op, const unsigned char *batched,
                       int64_t particles) {
    int n, k, p = (int)particles;
    if (!matrix_times_particle_vectors(t, op, batched, &n, &k)) return CSVI_DECLINED;
    /* column-major: Y^T (n, P) = X^T^T (n, k) W^T (k, P) */
    char T = 'T', N = 'N';
    double one = 1.0, zero = 0.0;
    csvi_ext.dgemm(&T, &N, &n, &p, &k, &one, CSVI_IN(t, op, 0)->data, &k,
                   CSVI_IN(t, op, 1)->data, &k, &zero, CSVI_OUT(t, op)->data, &n);
    return CSVI_OK;
}

int csvi_particles_vjp(csvi_tape *t, const csvi_op *op, const unsigned char *batched,
                       int64_t particles) {
    int n, k, p = (int)particles;
    if (!matrix_times_particle_vectors(t, op, batched, &n, &k)) return CSVI_DECLINED;
    const csvi_slot *x = CSVI_IN(t, op, 0), *w = CSVI_IN(t, op, 1);
    double *G = CSVI_OUT(t, op)->grad;
    char T = 'T', N = 'N';
    double one = 1.0;
    if (w->grad) /* dW (P, k) += G (P, n) X (n, k) */
        csvi_ext.dgemm(&N, &N, &k, &p, &n, &one, x->data, &k, G, &n, &one, w->grad, &k);
    if (x->grad) /* dX (n, k) += G^T (n, P) W (P, k) */
        csvi_ext.dgemm(&N, &T, &k, &n, &p, &one, w->data, &k, G, &n, &one, x->grad, &k);
    return CSVI_OK;
}
