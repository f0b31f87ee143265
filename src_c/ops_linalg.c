/* MATMUL with NumPy semantics.  iattr: [0] n, [1] k, [2] m, [3] matrix rank
 * of a (1 or 2), [4] matrix rank of b (1 or 2), [5] number of batch dims of
 * the output.  Batch dims broadcast; the VJP accumulates, which also sums
 * over broadcast batch dims.
 *
 * A product with a vector side (m == 1: X @ w, or n == 1: v @ B) runs in the
 * mat-vec kernels below, over threads by rows; matrix-matrix products go to
 * BLAS dgemm.  For a data plate (N large, K small) dgemm's threads spin for
 * microseconds of work and fight csvi's own. */
#include "csvi_ext.h"
#include "csvi_iter.h"
#include "csvi_linalg.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_v4.h"
#include "csvi_vmath.h"
#include "matvec_kernels.h"

/* Rows per task of a row-parallel kernel. */
#define MV_ROWS 256
/* A mat-vec this size (rows * cols) or larger runs over threads. */
#define MV_PARALLEL 8192
/* A^T v sums rows in at most this many fixed chunks, and holds their partial
 * sums of at most MTV_MAX_COLS columns on the stack; wider goes to dgemm. */
#define MTV_CHUNKS 16
#define MTV_MIN_CHUNK_ROWS 64
#define MTV_MAX_COLS 256

typedef struct {
    const double *a, *v;    /* a: rows x cols, row-major; v: a vector */
    double *y;
    int64_t rows, cols;
    int add;                /* y += instead of y = */
    double *partial;        /* A^T v: MTV_CHUNKS x cols */
    int64_t n_chunks;
} mv_job;

/* y[r] (+)= a[r, :] . v for r in [r0, r1). */
static CSVI_HOT void matvec_rows(const mv_job *j, int64_t r0, int64_t r1) {
    csvi_rows_dot(j->a + r0 * j->cols, r1 - r0, j->cols, j->v, j->y + r0, j->add);
}

static void matvec_task(void *ctx, int64_t task) {
    const mv_job *j = ctx;
    const int64_t r0 = task * MV_ROWS;
    matvec_rows(j, r0, j->rows - r0 < MV_ROWS ? j->rows : r0 + MV_ROWS);
}

/* y (+)= a v, a: rows x cols. */
static void matvec(const double *a, const double *v, double *y, int64_t rows, int64_t cols,
                   int add) {
    mv_job j = {a, v, y, rows, cols, add, NULL, 0};
    csvi_parallel_tasks((rows + MV_ROWS - 1) / MV_ROWS, CSVI_OVER(rows * cols, MV_PARALLEL), 0,
                        matvec_task, &j);
}

/* acc[c] = sum over rows r in [r0, r1) of a[r, c] v[r], four rows at a time,
 * from r1 down: A^T v is the backward sweep after A v went up (see
 * csvi_parallel_tasks on descending). */
static CSVI_HOT void mtv_rows(const mv_job *j, double *restrict acc, int64_t r0, int64_t r1) {
    const int64_t k = j->cols, kv = k & ~(int64_t)3;
    const double *restrict v = j->v;
    for (int64_t c = 0; c < k; c++) acc[c] = 0.0;
    int64_t r = r1;
    for (; r - 4 >= r0; r -= 4) {
        const double *x0 = j->a + (r - 4) * k, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
        const double g0 = v[r - 4], g1 = v[r - 3], g2 = v[r - 2], g3 = v[r - 1];
        for (int64_t c = 0; c < kv; c += 4)
            *(v4 *)(acc + c) += (load4(x0 + c) * g0 + load4(x1 + c) * g1) +
                                (load4(x2 + c) * g2 + load4(x3 + c) * g3);
        for (int64_t c = kv; c < k; c++)
            acc[c] += (x0[c] * g0 + x1[c] * g1) + (x2[c] * g2 + x3[c] * g3);
    }
    while (r > r0) {
        r--;
        const double *x0 = j->a + r * k;
        for (int64_t c = 0; c < k; c++) acc[c] += x0[c] * v[r];
    }
}

/* Sums a chunk in the running thread's own stack and stores it once: chunks
 * share cache lines of `partial`, and updating it every four rows from two
 * threads would pass those lines back and forth. */
static void mtv_task(void *ctx, int64_t chunk) {
    const mv_job *j = ctx;
    const int64_t r0 = chunk * j->rows / j->n_chunks, r1 = (chunk + 1) * j->rows / j->n_chunks;
    double acc[MTV_MAX_COLS];
    mtv_rows(j, acc, r0, r1);
    for (int64_t c = 0; c < j->cols; c++) j->partial[chunk * j->cols + c] = acc[c];
}

/* y (+)= a^T v, a: rows x cols with cols <= MTV_MAX_COLS.  The chunks depend
 * on rows alone and their sums are added in chunk order, so the result is the
 * same for any thread count. */
static void matTvec(const double *a, const double *v, double *y, int64_t rows, int64_t cols,
                    int add) {
    double partial[MTV_CHUNKS * MTV_MAX_COLS];
    int64_t n_chunks = rows / MTV_MIN_CHUNK_ROWS;
    n_chunks = n_chunks < 1 ? 1 : (n_chunks > MTV_CHUNKS ? MTV_CHUNKS : n_chunks);
    mv_job j = {a, v, y, rows, cols, add, partial, n_chunks};
    csvi_parallel_tasks(n_chunks, CSVI_OVER(rows * cols, MV_PARALLEL), 1, mtv_task, &j);
    for (int64_t c = 0; c < cols; c++) {
        double s = partial[c];
        for (int64_t q = 1; q < n_chunks; q++) s += partial[q * cols + c];
        y[c] = add ? y[c] + s : s;
    }
}

/* ga (rows x cols) += u v^T, by rows. */
static CSVI_HOT void outer_rows(const mv_job *j, int64_t r0, int64_t r1) {
    const int64_t k = j->cols;
    const double *restrict u = j->a, *restrict v = j->v;
    for (int64_t r = r0; r < r1; r++) {
        double *restrict row = j->y + r * k;
        const double ur = u[r];
        CSVI_SIMD
        for (int64_t c = 0; c < k; c++) row[c] += ur * v[c];
    }
}

static void outer_task(void *ctx, int64_t task) {
    const mv_job *j = ctx;
    const int64_t r0 = task * MV_ROWS;
    outer_rows(j, r0, j->rows - r0 < MV_ROWS ? j->rows : r0 + MV_ROWS);
}

static void outer_add(double *ga, const double *u, const double *v, int64_t rows, int64_t cols) {
    mv_job j = {u, v, ga, rows, cols, 1, NULL, 0};
    csvi_parallel_tasks((rows + MV_ROWS - 1) / MV_ROWS, CSVI_OVER(rows * cols, MV_PARALLEL), 0,
                        outer_task, &j);
}

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

int csvi_matmul_uses_blas(int64_t n, int64_t k, int64_t m) {
    /* the mat-vec cases of product, grad_a and grad_b below */
    return !((m == 1 && k <= MTV_MAX_COLS) || (n == 1 && m <= MTV_MAX_COLS));
}

/* One product of the batch, Y = A B, and the two VJP terms dA += G B^T and
 * dB += A^T G; with a vector side these are mat-vecs and outer products. */
static void product(const matmul_plan *p, const double *A, const double *B, double *Y) {
    if (p->m == 1) {
        matvec(A, B, Y, p->n, p->k, 0);
    } else if (p->n == 1 && p->m <= MTV_MAX_COLS) {
        matTvec(B, A, Y, p->k, p->m, 0);
    } else {
        char N = 'N';
        double one = 1.0, zero = 0.0;
        int n = p->n, k = p->k, m = p->m, lm = ld(m), lk = ld(k);
        csvi_ext.dgemm(&N, &N, &m, &n, &k, &one, (double *)B, &lm, (double *)A, &lk, &zero, Y,
                       &lm);
    }
}

static void grad_a(const matmul_plan *p, const double *G, const double *B, double *dA) {
    if (p->m == 1) {
        outer_add(dA, G, B, p->n, p->k);
    } else if (p->n == 1) {
        matvec(B, G, dA, p->k, p->m, 1);
    } else {
        char N = 'N', T = 'T';
        double one = 1.0;
        int n = p->n, k = p->k, m = p->m, lm = ld(m), lk = ld(k);
        csvi_ext.dgemm(&T, &N, &k, &n, &m, &one, (double *)B, &lm, (double *)G, &lm, &one, dA,
                       &lk);
    }
}

static void grad_b(const matmul_plan *p, const double *A, const double *G, double *dB) {
    if (p->m == 1 && p->k <= MTV_MAX_COLS) {
        matTvec(A, G, dB, p->n, p->k, 1);
    } else if (p->n == 1) {
        outer_add(dB, A, G, p->k, p->m);
    } else {
        char N = 'N', T = 'T';
        double one = 1.0;
        int n = p->n, k = p->k, m = p->m, lm = ld(m), lk = ld(k);
        csvi_ext.dgemm(&N, &T, &m, &k, &n, &one, (double *)G, &lm, (double *)A, &lk, &one, dB,
                       &lm);
    }
}

int csvi_matmul_fwd(csvi_tape *t, const csvi_op *op) {
    matmul_plan p;
    plan_matmul(&p, t, op);
    const double *A = CSVI_IN(t, op, 0)->data, *B = CSVI_IN(t, op, 1)->data;
    double *Y = CSVI_OUT(t, op)->data;
    const int64_t sa = (int64_t)p.n * p.k, sb = (int64_t)p.k * p.m, sy = (int64_t)p.n * p.m;
    if (p.k == 0) {
        for (int64_t i = 0; i < CSVI_OUT(t, op)->size; i++) Y[i] = 0.0;
        return CSVI_OK;
    }
    CSVI_ITER_LOOP(&p.batch, { product(&p, A + o1 * sa, B + o2 * sb, Y + o0 * sy); });
    return CSVI_OK;
}

int csvi_matmul_vjp(csvi_tape *t, const csvi_op *op) {
    matmul_plan p;
    plan_matmul(&p, t, op);
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1);
    const double *G = CSVI_OUT(t, op)->grad;
    const int64_t sa = (int64_t)p.n * p.k, sb = (int64_t)p.k * p.m, sy = (int64_t)p.n * p.m;
    if (p.k == 0 || p.n == 0 || p.m == 0) return CSVI_OK;
    if (a->grad)
        CSVI_ITER_LOOP(&p.batch, { grad_a(&p, G + o0 * sy, b->data + o2 * sb, a->grad + o1 * sa); });
    if (b->grad)
        CSVI_ITER_LOOP(&p.batch, { grad_b(&p, a->data + o1 * sa, G + o0 * sy, b->grad + o2 * sb); });
    return CSVI_OK;
}

/* MATMUL_NT: Y (n, m) = A (n, k) B (m, k)^T, all row-major, by dgemm with B
 * read transposed (in column-major terms Y^T = B^T' A^T').  The glue records
 * it only for n, m > 1, where MATMUL would call dgemm as well. */
int csvi_matmul_nt_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1);
    csvi_slot *y = CSVI_OUT(t, op);
    int n = (int)a->shape[0], k = (int)a->shape[1], m = (int)b->shape[0];
    if (k == 0) {
        for (int64_t i = 0; i < y->size; i++) y->data[i] = 0.0;
        return CSVI_OK;
    }
    if (n == 0 || m == 0) return CSVI_OK;
    char N = 'N', T = 'T';
    double one = 1.0, zero = 0.0;
    csvi_ext.dgemm(&T, &N, &m, &n, &k, &one, b->data, &k, a->data, &k, &zero, y->data, &m);
    return CSVI_OK;
}

int csvi_matmul_nt_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1);
    const double *G = CSVI_OUT(t, op)->grad;
    int n = (int)a->shape[0], k = (int)a->shape[1], m = (int)b->shape[0];
    if (n == 0 || m == 0 || k == 0) return CSVI_OK;
    char N = 'N', T = 'T';
    double one = 1.0;
    if (a->grad)  /* dA += G B */
        csvi_ext.dgemm(&N, &N, &k, &n, &m, &one, b->data, &k, (double *)G, &m, &one, a->grad, &k);
    if (b->grad)  /* dB += G^T A */
        csvi_ext.dgemm(&N, &T, &k, &m, &n, &one, a->data, &k, (double *)G, &m, &one, b->grad, &k);
    return CSVI_OK;
}

void csvi_matvec_block(const double *a, const double *v, double *y, int64_t cols,
                       int64_t r0, int64_t r1, int add) {
    const mv_job j = {.a = a, .v = v, .y = y, .cols = cols, .add = add};
    matvec_rows(&j, r0, r1);
}

void csvi_mtv_block(const double *a, const double *v, double *acc, int64_t cols,
                    int64_t r0, int64_t r1) {
    const mv_job j = {.a = a, .v = v, .cols = cols};
    mtv_rows(&j, acc, r0, r1);
}
