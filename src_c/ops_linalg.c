/* MATMUL with NumPy semantics through BLAS dgemm.  iattr: [0] n, [1] k,
 * [2] m, [3] matrix rank of a (1 or 2), [4] matrix rank of b (1 or 2),
 * [5] number of batch dims of the output.  Batch dims broadcast; the VJP
 * accumulates (beta = 1), which also sums over broadcast batch dims. */
#include "csvi_ext.h"
#include "csvi_iter.h"
#include "csvi_opcodes.h"

typedef struct {
    int n, k, m;
    csvi_iter batch;   /* operands: out, a, b; strides in matrices */
} matmul_plan;

static void plan_matmul(matmul_plan *p, const csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1), *y = CSVI_OUT(t, op);
    p->n = (int)op->iattr[0];
    p->k = (int)op->iattr[1];
    p->m = (int)op->iattr[2];
    const int nb = (int)op->iattr[5];
    csvi_iter_start(&p->batch, nb, y->shape);
    csvi_iter_add(&p->batch, nb, y->shape);
    csvi_iter_add(&p->batch, a->ndim - (int)op->iattr[3], a->shape);
    csvi_iter_add(&p->batch, b->ndim - (int)op->iattr[4], b->shape);
    csvi_iter_finish(&p->batch);
}

static int ld(int x) { return x > 0 ? x : 1; }

int csvi_matmul_fwd(csvi_tape *t, const csvi_op *op) {
    matmul_plan p;
    plan_matmul(&p, t, op);
    const double *A = CSVI_IN(t, op, 0)->data, *B = CSVI_IN(t, op, 1)->data;
    double *Y = CSVI_OUT(t, op)->data;
    const int64_t sa = (int64_t)p.n * p.k, sb = (int64_t)p.k * p.m, sy = (int64_t)p.n * p.m;
    char N = 'N';
    double one = 1.0, zero = 0.0;
    int lm = ld(p.m), lk = ld(p.k);
    if (p.k == 0) {
        for (int64_t i = 0; i < CSVI_OUT(t, op)->size; i++) Y[i] = 0.0;
        return CSVI_OK;
    }
    CSVI_ITER_LOOP(&p.batch, {
        csvi_ext.dgemm(&N, &N, &p.m, &p.n, &p.k, &one, (double *)B + o2 * sb, &lm,
                       (double *)A + o1 * sa, &lk, &zero, Y + o0 * sy, &lm);
    });
    return CSVI_OK;
}

int csvi_matmul_vjp(csvi_tape *t, const csvi_op *op) {
    matmul_plan p;
    plan_matmul(&p, t, op);
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1);
    double *G = CSVI_OUT(t, op)->grad;
    const int64_t sa = (int64_t)p.n * p.k, sb = (int64_t)p.k * p.m, sy = (int64_t)p.n * p.m;
    char N = 'N', T = 'T';
    double one = 1.0;
    int lm = ld(p.m), lk = ld(p.k);
    if (p.k == 0 || p.n == 0 || p.m == 0) return CSVI_OK;
    if (a->grad) /* dA = G B^T */
        CSVI_ITER_LOOP(&p.batch, {
            csvi_ext.dgemm(&T, &N, &p.k, &p.n, &p.m, &one, b->data + o2 * sb, &lm,
                           G + o0 * sy, &lm, &one, a->grad + o1 * sa, &lk);
        });
    if (b->grad) /* dB = A^T G */
        CSVI_ITER_LOOP(&p.batch, {
            csvi_ext.dgemm(&N, &T, &p.m, &p.k, &p.n, &one, G + o0 * sy, &lm,
                           a->data + o1 * sa, &lk, &one, b->grad + o2 * sb, &lm);
        });
    return CSVI_OK;
}
