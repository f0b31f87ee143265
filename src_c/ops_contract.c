/* Log-space contractions: LOGMATMULEXP, log(exp(A) @ exp(B)) over the last
 * two dims with NumPy's matmul broadcasting (MATMUL's attributes: [0] n,
 * [1] k, [2] m, [3] matrix rank of a, [4] of b, [5] output batch dims).
 *
 * Stable as Pyro's _logmatmulexp: each row of A is shifted by its max and
 * each column of B by its max, so the product is of numbers in [0, 1] and
 * one exp per input entry serves all n*k*m terms.  A row or column of -inf
 * (zero probabilities) is shifted by 0, not by -inf, so no -inf - -inf NaN
 * appears; its results are -inf and its gradient is 0.
 *
 * VJP: with P = exp(A - a) @ exp(B - b) (the shifted product) and
 * R = G / P (0 where P = 0), dA = exp(A - a) * (R @ exp(B - b)^T) and
 * dB = exp(B - b) * (exp(A - a)^T @ R): the shifts cancel.
 *
 * Scratch (the shifted inputs, R) lives on the task's stack up to
 * STACK_SCRATCH doubles, else in one block allocated per call; batches are
 * split over threads in tasks fixed by the sizes (results do not depend on
 * the thread count). */
#include <math.h>
#include <stdlib.h>
#include "csvi_iter.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_v4.h"
#include "csvi_vmath.h"

/* Doubles of scratch a task keeps on its own stack (68 KiB): two 64 x 64
 * matrices and eight vectors, MARKOV_FORWARD's need at K = 64. */
#define STACK_SCRATCH (2 * 64 * 64 + 8 * 64)
/* Multiply-adds per task when a batch is split over threads. */
#define TASK_WORK 32768

/* Element offsets (one per operand of `it`) of batch element `idx`. */
static void batch_offsets(const csvi_iter *it, int64_t idx, int64_t *o) {
    for (int q = 0; q < it->n; q++) o[q] = it->contiguous ? idx : 0;
    if (it->contiguous) return;
    for (int d = it->ndim - 1; d >= 0; d--) {
        const int64_t c = idx % it->shape[d];
        idx /= it->shape[d];
        for (int q = 0; q < it->n; q++) o[q] += c * it->stride[q][d];
    }
}

/* E[i, :] = exp(X[i, :] - mx[i]), mx[i] the row's max, or 0 for a row of
 * -inf (then E = 0, and the results that read the row are log 0 = -inf
 * whatever the shift).  A NaN propagates into E. */
static CSVI_HOT void shift_rows(const double *X, int64_t rows, int64_t cols, double *E,
                                double *mx) {
    for (int64_t i = 0; i < rows; i++) {
        const double *restrict x = X + i * cols;
        double *restrict e = E + i * cols;
        double top = cols ? x[0] : -INFINITY;
        for (int64_t c = 1; c < cols; c++) top = x[c] > top ? x[c] : top;
        const double s = top == -INFINITY ? 0.0 : top;
        mx[i] = s;
        CSVI_SIMD
        for (int64_t c = 0; c < cols; c++) e[c] = exp(x[c] - s);
    }
}

/* The same by columns: E[:, j] = exp(X[:, j] - mx[j]). */
static CSVI_HOT void shift_cols(const double *X, int64_t rows, int64_t cols, double *E,
                                double *mx) {
    for (int64_t j = 0; j < cols; j++) mx[j] = rows ? X[j] : -INFINITY;
    for (int64_t r = 1; r < rows; r++) {
        const double *restrict x = X + r * cols;
        for (int64_t j = 0; j < cols; j++) mx[j] = x[j] > mx[j] ? x[j] : mx[j];
    }
    for (int64_t j = 0; j < cols; j++) mx[j] = mx[j] == -INFINITY ? 0.0 : mx[j];
    for (int64_t r = 0; r < rows; r++) {
        const double *restrict x = X + r * cols;
        const double *restrict m = mx;
        double *restrict e = E + r * cols;
        CSVI_SIMD
        for (int64_t j = 0; j < cols; j++) e[j] = exp(x[j] - m[j]);
    }
}

/* y[r] = M[r, :] . v for r < rows (M row-major, rows x cols), four rows at a
 * time with four-lane accumulators: the sums' order is fixed by the code,
 * not by the vector width the clone runs with.  Always inlined, so each
 * clone of its callers compiles it for its own ISA. */
static inline __attribute__((always_inline)) void rows_dot(const double *M, int64_t rows,
                                                          int64_t cols, const double *v,
                                                          double *y) {
    const int64_t cv = cols & ~(int64_t)3;
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const double *x0 = M + r * cols, *x1 = x0 + cols, *x2 = x1 + cols, *x3 = x2 + cols;
        v4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t c = 0; c < cv; c += 4) {
            const v4 vc = load4(v + c);
            a0 += load4(x0 + c) * vc;
            a1 += load4(x1 + c) * vc;
            a2 += load4(x2 + c) * vc;
            a3 += load4(x3 + c) * vc;
        }
        v4 s = hsum4(a0, a1, a2, a3);
        for (int64_t c = cv; c < cols; c++) {
            s[0] += x0[c] * v[c];
            s[1] += x1[c] * v[c];
            s[2] += x2[c] * v[c];
            s[3] += x3[c] * v[c];
        }
        for (int q = 0; q < 4; q++) y[r + q] = s[q];
    }
    for (; r < rows; r++) {
        const double *x0 = M + r * cols;
        v4 a0 = {0};
        for (int64_t c = 0; c < cv; c += 4) a0 += load4(x0 + c) * load4(v + c);
        double s = (a0[0] + a0[1]) + (a0[2] + a0[3]);
        for (int64_t c = cv; c < cols; c++) s += x0[c] * v[c];
        y[r] = s;
    }
}

/* Y (n x m) = A (n x k) @ B (k x m), rows of Y accumulated in k order. */
static CSVI_HOT void product(const double *A, const double *B, double *Y, int64_t n,
                             int64_t k, int64_t m) {
    for (int64_t i = 0; i < n; i++) {
        double *restrict y = Y + i * m;
        for (int64_t j = 0; j < m; j++) y[j] = 0.0;
        for (int64_t q = 0; q < k; q++) {
            const double a = A[i * k + q];
            const double *restrict b = B + q * m;
            if (a == 0.0) continue;
            CSVI_SIMD
            for (int64_t j = 0; j < m; j++) y[j] += a * b[j];
        }
    }
}

/* How a batch of independent problems is split into tasks, and where each
 * task's scratch lives.  First member of every job below. */
typedef struct {
    csvi_iter batch;            /* operand 0 the output; offsets in problems */
    int64_t per_task, n_tasks;  /* batch elements per task */
    int64_t scratch;            /* doubles of scratch per task */
    double *heap;               /* heap scratch, or NULL (each task's stack) */
    int64_t heap_stride;        /* doubles between tasks' heap scratch (0: serial) */
} task_split;

/* Tasks of about TASK_WORK multiply-adds (`work` per batch element). */
static void split_batch(task_split *s, int64_t work, int64_t scratch) {
    work += 1;
    s->per_task = work >= TASK_WORK ? 1 : TASK_WORK / work;
    s->n_tasks = (s->batch.size + s->per_task - 1) / s->per_task;
    s->scratch = scratch;
    s->heap = NULL;
    s->heap_stride = 0;
}

/* The scratch of task `task` (its own stack buffer unless on the heap). */
static double *task_scratch(const task_split *s, int64_t task, double *stack) {
    return s->heap ? s->heap + task * s->heap_stride : stack;
}

/* Runs fn(job, task) over the split's tasks, on threads when `parallel`,
 * with heap scratch allocated once when a task's does not fit its stack. */
static int run_split(task_split *s, csvi_task_fn fn, void *job, int parallel) {
    if (s->scratch > STACK_SCRATCH) {
        const int64_t tasks = parallel ? s->n_tasks : 1;
        s->heap = malloc((size_t)(tasks * s->scratch) * sizeof(double));
        if (!s->heap) return CSVI_ERR_NOMEM;
        s->heap_stride = parallel ? s->scratch : 0;
    }
    if (parallel) {
        csvi_parallel_tasks(s->n_tasks, 1, 0, fn, job);
    } else {
        for (int64_t task = 0; task < s->n_tasks; task++) fn(job, task);
    }
    free(s->heap);
    s->heap = NULL;
    return CSVI_OK;
}

/* Whether each input of a batched op (`counts[q]` problems of its own) is
 * read by one batch element only, so tasks can add into its gradient apart. */
static int unshared(const task_split *s, const int64_t *counts, int n) {
    for (int q = 0; q < n; q++)
        if (counts[q] != s->batch.size) return 0;
    return 1;
}

typedef struct {
    task_split split;           /* batch operands: out, a, b */
    int64_t n, k, m;
    const csvi_slot *a, *b, *y;
} lme_job;

static void plan_lme(lme_job *j, const csvi_tape *t, const csvi_op *op, int vjp) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1), *y = CSVI_OUT(t, op);
    j->n = op->iattr[0];
    j->k = op->iattr[1];
    j->m = op->iattr[2];
    const int nb = (int)op->iattr[5];
    csvi_iter *it = &j->split.batch;
    csvi_iter_start(it, nb, y->shape);
    csvi_iter_add(it, nb, y->shape);
    csvi_iter_add(it, a->ndim - (int)op->iattr[3], a->shape);
    csvi_iter_add(it, b->ndim - (int)op->iattr[4], b->shape);
    csvi_iter_finish(it);
    /* shifted A and its row maxes, shifted B and its column maxes; the VJP
     * adds R (n x m) and exp(A - a)^T R (k x m) */
    split_batch(&j->split, j->n * j->k * j->m,
                j->n * j->k + j->n + j->k * j->m + j->m +
                    (vjp ? j->n * j->m + j->k * j->m : 0));
    j->a = a;
    j->b = b;
    j->y = y;
}

/* Forward of one batch element; s holds the job's scratch. */
static CSVI_HOT void lme_forward_one(const lme_job *j, const double *A, const double *B,
                                     double *Y, double *s) {
    const int64_t n = j->n, k = j->k, m = j->m;
    double *EA = s, *ma = EA + n * k, *EB = ma + n, *mb = EB + k * m;
    shift_rows(A, n, k, EA, ma);
    shift_cols(B, k, m, EB, mb);
    product(EA, EB, Y, n, k, m);
    for (int64_t i = 0; i < n; i++) {
        double *restrict y = Y + i * m;
        const double *restrict b = mb;
        const double a = ma[i];
        CSVI_SIMD
        for (int64_t c = 0; c < m; c++) y[c] = a + b[c] + log(y[c]);
    }
}

/* VJP of one batch element: dA and dB (either may be NULL) += as above. */
static CSVI_HOT void lme_vjp_one(const lme_job *j, const double *A, const double *B,
                                 const double *Y, const double *G, double *dA, double *dB,
                                 double *s) {
    const int64_t n = j->n, k = j->k, m = j->m;
    double *EA = s, *ma = EA + n * k, *EB = ma + n, *mb = EB + k * m, *R = mb + m,
           *W = R + n * m;
    shift_rows(A, n, k, EA, ma);
    shift_cols(B, k, m, EB, mb);
    for (int64_t i = 0; i < n; i++) {  /* R = G / P, 0 where P = 0 (y = -inf) */
        const double *restrict y = Y + i * m, *restrict g = G + i * m, *restrict b = mb;
        double *restrict r = R + i * m;
        const double a = ma[i];
        CSVI_SIMD
        for (int64_t c = 0; c < m; c++) r[c] = g[c] * exp(a + b[c] - y[c]);
        for (int64_t c = 0; c < m; c++) r[c] = y[c] == -INFINITY ? 0.0 : r[c];
    }
    if (dA) {  /* W's first k doubles hold one row of R @ exp(B - b)^T */
        for (int64_t i = 0; i < n; i++) {
            rows_dot(EB, k, m, R + i * m, W);
            for (int64_t q = 0; q < k; q++) dA[i * k + q] += EA[i * k + q] * W[q];
        }
    }
    if (dB) {
        for (int64_t x = 0; x < k * m; x++) W[x] = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double *restrict r = R + i * m;
            for (int64_t q = 0; q < k; q++) {
                const double ea = EA[i * k + q];
                double *restrict w = W + q * m;
                if (ea == 0.0) continue;
                CSVI_SIMD
                for (int64_t c = 0; c < m; c++) w[c] += ea * r[c];
            }
        }
        for (int64_t x = 0; x < k * m; x++) dB[x] += EB[x] * W[x];
    }
}

static void lme_forward_task(void *ctx, int64_t task) {
    const lme_job *j = ctx;
    double stack[STACK_SCRATCH];
    double *s = task_scratch(&j->split, task, stack);
    const task_split *sp = &j->split;
    const int64_t lo = task * sp->per_task,
                  hi = lo + sp->per_task < sp->batch.size ? lo + sp->per_task : sp->batch.size;
    int64_t o[CSVI_ITER_MAX_OPERANDS];
    for (int64_t idx = lo; idx < hi; idx++) {
        batch_offsets(&sp->batch, idx, o);
        lme_forward_one(j, j->a->data + o[1] * j->n * j->k, j->b->data + o[2] * j->k * j->m,
                        j->y->data + o[0] * j->n * j->m, s);
    }
}

static void lme_vjp_task(void *ctx, int64_t task) {
    const lme_job *j = ctx;
    double stack[STACK_SCRATCH];
    double *s = task_scratch(&j->split, task, stack);
    const task_split *sp = &j->split;
    const int64_t lo = task * sp->per_task,
                  hi = lo + sp->per_task < sp->batch.size ? lo + sp->per_task : sp->batch.size;
    const int64_t sa = j->n * j->k, sb = j->k * j->m, sy = j->n * j->m;
    int64_t o[CSVI_ITER_MAX_OPERANDS];
    for (int64_t idx = lo; idx < hi; idx++) {
        batch_offsets(&sp->batch, idx, o);
        lme_vjp_one(j, j->a->data + o[1] * sa, j->b->data + o[2] * sb, j->y->data + o[0] * sy,
                    j->y->grad + o[0] * sy, j->a->grad ? j->a->grad + o[1] * sa : NULL,
                    j->b->grad ? j->b->grad + o[2] * sb : NULL, s);
    }
}

int csvi_logmatmulexp_fwd(csvi_tape *t, const csvi_op *op) {
    lme_job j;
    plan_lme(&j, t, op, 0);
    if (j.split.batch.size == 0 || j.n == 0 || j.m == 0) return CSVI_OK;
    return run_split(&j.split, lme_forward_task, &j, 1);
}

int csvi_logmatmulexp_vjp(csvi_tape *t, const csvi_op *op) {
    lme_job j;
    plan_lme(&j, t, op, 1);
    if (j.split.batch.size == 0 || j.n == 0 || j.m == 0 || j.k == 0) return CSVI_OK;
    if (!j.a->grad && !j.b->grad) return CSVI_OK;
    const int64_t counts[2] = {j.a->size / (j.n * j.k), j.b->size / (j.k * j.m)};
    return run_split(&j.split, lme_vjp_task, &j, unshared(&j.split, counts, 2));
}

/* ---- MARKOV_FORWARD: the forward algorithm of a Markov chain ------------
 *
 * Inputs init (..., K), trans (..., T' , K, K) with T' = 1 (homogeneous) or
 * T, and optionally obs (..., T'', K) with T'' = 1 or T; output alpha
 * (batch..., T, K):
 *
 *     alpha[-1] = init
 *     alpha[t][j] = log sum_i exp(alpha[t-1][i] + trans[t][i, j]) + obs[t][j]
 *
 * so logsumexp(alpha[T-1]) sums over all K^T paths in O(T K^2).  iattr:
 * [0] T, [1] K, [2] output batch dims, [3] T', [4] T''.
 *
 * Each step is a vector-matrix product of p = exp(alpha[t-1] - max) and
 * E = exp(trans[t] - column max) (both in [0, 1]; an all -inf vector or
 * column is shifted by 0), S = p @ E.  The aux slot (PAIR) keeps p (aux[0])
 * and 1/S (aux[1], 0 where S = 0) for every step: O(T K) saved, and the VJP
 * needs no exp or log -- with W[i, j] = p[i] E[i, j] / S[j] (the weight of
 * state i in alpha[t][j]) and g the gradient on alpha[t]:
 *
 *     d alpha[t-1][i] += sum_j W[i, j] g[j]     d trans[t][i, j] += W[i, j] g[j]
 *     d obs[t][j] += g[j]
 *
 * A homogeneous chain computes E once per chain and adds its gradient as
 * E * (sum over t of p_t r_t^T), r = g / S. */
typedef struct {
    task_split split;           /* batch operands: out, init, trans, obs */
    int64_t T, K, Tt, To;       /* steps, states, trans and obs time sizes */
    const csvi_slot *init, *trans, *obs, *out, *aux;
} chain_job;

static void plan_chain(chain_job *j, const csvi_tape *t, const csvi_op *op) {
    const csvi_slot *out = CSVI_OUT(t, op);
    j->init = CSVI_IN(t, op, 0);
    j->trans = CSVI_IN(t, op, 1);
    j->obs = op->n_in > 2 ? CSVI_IN(t, op, 2) : NULL;
    j->out = out;
    j->aux = CSVI_AUX(t, op);
    j->T = op->iattr[0];
    j->K = op->iattr[1];
    j->Tt = op->iattr[3];
    j->To = j->obs ? op->iattr[4] : 0;
    const int nb = (int)op->iattr[2];
    csvi_iter *it = &j->split.batch;
    csvi_iter_start(it, nb, out->shape);
    csvi_iter_add(it, nb, out->shape);
    csvi_iter_add(it, j->init->ndim - 1, j->init->shape);
    csvi_iter_add(it, j->trans->ndim - 3, j->trans->shape);
    if (j->obs) csvi_iter_add(it, j->obs->ndim - 2, j->obs->shape);
    csvi_iter_finish(it);
    /* E, the homogeneous gradient's sum, column maxes, S, g, g's next value, r */
    split_batch(&j->split, j->T * j->K * j->K, 2 * j->K * j->K + 5 * j->K);
}

/* One chain's forward: alpha (T x K), saved p and 1/S (T x K each). */
static CSVI_HOT void chain_forward_one(const chain_job *j, const double *init,
                                       const double *trans, const double *obs, double *alpha,
                                       double *P, double *IS, double *s) {
    const int64_t K = j->K;
    double *E = s, *c = E + 2 * K * K, *S = c + K;
    if (j->Tt == 1) shift_cols(trans, K, K, E, c);
    for (int64_t t = 0; t < j->T; t++) {
        const double *restrict prev = t ? alpha + (t - 1) * K : init;
        double *restrict p = P + t * K, *restrict is = IS + t * K, *restrict a = alpha + t * K;
        if (j->Tt > 1) shift_cols(trans + t * K * K, K, K, E, c);
        double top = prev[0];
        for (int64_t i = 1; i < K; i++) top = prev[i] > top ? prev[i] : top;
        const double shift = top == -INFINITY ? 0.0 : top;
        CSVI_SIMD
        for (int64_t i = 0; i < K; i++) p[i] = exp(prev[i] - shift);
        for (int64_t x = 0; x < K; x++) S[x] = 0.0;
        for (int64_t i = 0; i < K; i++) {
            const double pi = p[i];
            const double *restrict e = E + i * K;
            if (pi == 0.0) continue;
            CSVI_SIMD
            for (int64_t x = 0; x < K; x++) S[x] += pi * e[x];
        }
        const double *restrict cs = c, *restrict sums = S;
        CSVI_SIMD
        for (int64_t x = 0; x < K; x++) a[x] = shift + cs[x] + log(sums[x]);
        for (int64_t x = 0; x < K; x++) is[x] = sums[x] > 0.0 ? 1.0 / sums[x] : 0.0;
        if (obs) {
            const double *restrict o = obs + (j->To > 1 ? t * K : 0);
            for (int64_t x = 0; x < K; x++) a[x] += o[x];
        }
    }
}

/* One chain's VJP; each gradient pointer may be NULL. */
static CSVI_HOT void chain_vjp_one(const chain_job *j, const double *trans, const double *G,
                                   const double *P, const double *IS, double *dinit,
                                   double *dtrans, double *dobs, double *s) {
    const int64_t K = j->K, T = j->T;
    const int homogeneous = j->Tt == 1;
    double *E = s, *acc = E + K * K, *c = acc + K * K, *g = c + K, *gp = g + K, *r = gp + K;
    if (homogeneous) {
        shift_cols(trans, K, K, E, c);
        if (dtrans)
            for (int64_t x = 0; x < K * K; x++) acc[x] = 0.0;
    }
    for (int64_t x = 0; x < K; x++) g[x] = G[(T - 1) * K + x];
    for (int64_t t = T - 1; t >= 0; t--) {
        const double *restrict p = P + t * K, *restrict is = IS + t * K;
        if (dobs) {
            double *restrict d = dobs + (j->To > 1 ? t * K : 0);
            for (int64_t x = 0; x < K; x++) d[x] += g[x];
        }
        for (int64_t x = 0; x < K; x++) r[x] = g[x] * is[x];
        if (!homogeneous) shift_cols(trans + t * K * K, K, K, E, c);
        rows_dot(E, K, K, r, gp);
        for (int64_t i = 0; i < K; i++) {
            const double *restrict e = E + i * K;
            const double pi = p[i];
            gp[i] *= pi;
            if (!dtrans || pi == 0.0) continue;
            if (homogeneous) {
                double *restrict w = acc + i * K;
                CSVI_SIMD
                for (int64_t x = 0; x < K; x++) w[x] += pi * r[x];
            } else {
                double *restrict w = dtrans + t * K * K + i * K;
                CSVI_SIMD
                for (int64_t x = 0; x < K; x++) w[x] += pi * e[x] * r[x];
            }
        }
        const double *restrict below = t ? G + (t - 1) * K : NULL;
        for (int64_t x = 0; x < K; x++) g[x] = gp[x] + (below ? below[x] : 0.0);
    }
    if (dinit)
        for (int64_t x = 0; x < K; x++) dinit[x] += g[x];
    if (homogeneous && dtrans)
        for (int64_t x = 0; x < K * K; x++) dtrans[x] += E[x] * acc[x];
}

static void chain_forward_task(void *ctx, int64_t task) {
    const chain_job *j = ctx;
    const task_split *sp = &j->split;
    double stack[STACK_SCRATCH];
    double *s = task_scratch(sp, task, stack);
    const int64_t lo = task * sp->per_task,
                  hi = lo + sp->per_task < sp->batch.size ? lo + sp->per_task : sp->batch.size;
    const int64_t K = j->K, so = j->T * K, st = j->Tt * K * K, sobs = j->To * K;
    int64_t o[CSVI_ITER_MAX_OPERANDS];
    for (int64_t idx = lo; idx < hi; idx++) {
        batch_offsets(&sp->batch, idx, o);
        chain_forward_one(j, j->init->data + o[1] * K, j->trans->data + o[2] * st,
                          j->obs ? j->obs->data + o[3] * sobs : NULL,
                          j->out->data + o[0] * so, j->aux->data + o[0] * so,
                          j->aux->data + j->out->size + o[0] * so, s);
    }
}

static void chain_vjp_task(void *ctx, int64_t task) {
    const chain_job *j = ctx;
    const task_split *sp = &j->split;
    double stack[STACK_SCRATCH];
    double *s = task_scratch(sp, task, stack);
    const int64_t lo = task * sp->per_task,
                  hi = lo + sp->per_task < sp->batch.size ? lo + sp->per_task : sp->batch.size;
    const int64_t K = j->K, so = j->T * K, st = j->Tt * K * K, sobs = j->To * K;
    double *dobs = j->obs ? j->obs->grad : NULL;
    int64_t o[CSVI_ITER_MAX_OPERANDS];
    for (int64_t idx = lo; idx < hi; idx++) {
        batch_offsets(&sp->batch, idx, o);
        chain_vjp_one(j, j->trans->data + o[2] * st, j->out->grad + o[0] * so,
                      j->aux->data + o[0] * so, j->aux->data + j->out->size + o[0] * so,
                      j->init->grad ? j->init->grad + o[1] * K : NULL,
                      j->trans->grad ? j->trans->grad + o[2] * st : NULL,
                      dobs ? dobs + o[3] * sobs : NULL, s);
    }
}

int csvi_markov_forward_fwd(csvi_tape *t, const csvi_op *op) {
    chain_job j;
    plan_chain(&j, t, op);
    if (j.split.batch.size == 0 || j.T == 0 || j.K == 0) return CSVI_OK;
    return run_split(&j.split, chain_forward_task, &j, 1);
}

int csvi_markov_forward_vjp(csvi_tape *t, const csvi_op *op) {
    chain_job j;
    plan_chain(&j, t, op);
    if (j.split.batch.size == 0 || j.T == 0 || j.K == 0) return CSVI_OK;
    if (!j.init->grad && !j.trans->grad && !(j.obs && j.obs->grad)) return CSVI_OK;
    const int64_t K = j.K, counts[3] = {j.init->size / K, j.trans->size / (j.Tt * K * K),
                                        j.obs ? j.obs->size / (j.To * K) : j.split.batch.size};
    return run_split(&j.split, chain_vjp_task, &j, unshared(&j.split, counts, 3));
}
