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
#include "matvec_kernels.h"

/* Steps of r a homogeneous chain's VJP holds for one outer_sum. */
#define R_STEPS 32
/* Doubles of scratch a task keeps on its own stack (84 KiB): two 64 x 64
 * matrices and 6 + R_STEPS vectors, MARKOV_FORWARD's need at K = 64. */
#define STACK_SCRATCH (2 * 64 * 64 + (6 + R_STEPS) * 64)
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
        csvi_parallel_tasks(s->n_tasks, s->n_tasks, 0, fn, job); /* each task ~TASK_WORK */
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
            csvi_rows_dot(EB, k, m, R + i * m, W, 0);
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
 *     alpha[t][j] = log sum_i exp(alpha[t-1][i] + L[t][i, j]) + obs[t][j]
 *
 * with L = trans, or with iattr[5] = 1 ("normalize") L = trans - logsumexp
 * of each row (unnormalized transition logits, as DiscreteHMM takes them:
 * the op normalizes them with the same exps its product needs, instead of
 * separate logsumexp and subtraction ops over (T, K, K) and their VJPs).
 * logsumexp(alpha[T-1]) sums over all K^T paths in O(T K^2).  iattr: [0] T,
 * [1] K, [2] output batch dims, [3] T', [4] T'', [5] normalize, [6] per-step
 * factors kept (T' = T > 0), [7] check: a NaN in trans is CSVI_ERR_VALUE
 * (validation's check, found in the pass that exponentiates the logits
 * instead of a pass of its own; the glue names the entry).
 *
 * Each step is a vector-matrix product S = p @ F of numbers in [0, 1]:
 * p = exp(alpha[t-1] - max) (an all -inf vector is shifted by 0) and F the
 * step's factor, exp(L[i, j]) = F[i, j] exp(c[j]) (step_factor).  The aux
 * slot keeps p (aux[0]) and 1/S (aux[1], 0 where S = 0) for every step and
 * chain: O(T K) per chain.  Per-step transitions also keep c and F of every
 * step (T K (K + 1) per transition sequence, about trans's own size): the
 * chains that share a sequence (a batch of sequences under one model) step
 * together, each step's exps done once for all of them, and the VJP runs
 * none.  With W[i, j] = p[i] F[i, j] / S[j] (the weight of state i in
 * alpha[t][j]), g the gradient on alpha[t] and r = g / S:
 *
 *     d alpha[t-1][i] += sum_j W[i, j] g[j] = p[i] (F r)[i] =: h[i]
 *     d L[t][i, j] += W[i, j] g[j]          d obs[t][j] += g[j]
 *
 * and, normalizing, d trans[t][i, j] += d L[i, j] - exp(L[i, j]) h[i]
 * (a row's d L sums to h[i]).  d L is summed, over the chains that share
 * the step, as sum of p r^T (in registers, a row at a time), then
 * multiplied by F once.  A homogeneous chain computes F once and sums over
 * its steps the same way (in acc, blocks of R_STEPS steps). */
typedef struct {
    task_split split;           /* batch operands: out, init, trans, obs */
    int64_t T, K, Tt, To;       /* steps, states, trans and obs time sizes */
    int normalize;              /* L = trans - logsumexp of its rows */
    int keep;                   /* per-step: chains grouped by transitions */
    int check;                  /* set *bad when trans holds a NaN */
    int *bad;                   /* the forward's NaN flag (tasks only set it) */
    int64_t *first, *member;    /* group q's chains: their operand offsets (as
                                 * batch_offsets gives them, CSVI_ITER_MAX_OPERANDS
                                 * each) at member[first[q]..first[q+1]) */
    const csvi_slot *init, *trans, *obs, *out, *aux;
} chain_job;

/* Normalized rows take the one-exp factor when every column of exp(trans -
 * row max) reaches this: then F (those over the row sums, <= K) keeps full
 * precision in S, as a column-shifted factor would. */
#define ROW_SHIFT_MIN 1e-200

/* Sorts the chains into groups by the transition sequence they read, in
 * chain order within a group (first/member, freed by free_groups), their
 * offsets worked out once rather than at every step.
 * Returns the largest group's size, or -1 when out of memory. */
static int64_t group_chains(chain_job *j, int64_t groups) {
    const csvi_iter *it = &j->split.batch;
    int64_t *next = malloc((size_t)(groups ? groups : 1) * sizeof(int64_t));
    j->first = calloc((size_t)groups + 1, sizeof(int64_t));
    j->member = malloc((size_t)(it->size ? it->size : 1) * CSVI_ITER_MAX_OPERANDS *
                       sizeof(int64_t));
    if (!next || !j->first || !j->member) {
        free(next);
        return -1;
    }
    int64_t o[CSVI_ITER_MAX_OPERANDS] = {0}, largest = 0;
    for (int64_t idx = 0; idx < it->size; idx++) {
        batch_offsets(it, idx, o);
        j->first[o[2] + 1]++;
    }
    for (int64_t q = 0; q < groups; q++) {
        largest = j->first[q + 1] > largest ? j->first[q + 1] : largest;
        j->first[q + 1] += j->first[q];
        next[q] = j->first[q];
    }
    for (int64_t idx = 0; idx < it->size; idx++) {
        batch_offsets(it, idx, o);
        int64_t *m = j->member + next[o[2]]++ * CSVI_ITER_MAX_OPERANDS;
        for (int q = 0; q < CSVI_ITER_MAX_OPERANDS; q++) m[q] = o[q];
    }
    free(next);
    return largest;
}

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
    j->normalize = (int)op->iattr[5];
    j->keep = (int)op->iattr[6];
    j->check = (int)op->iattr[7];
    j->bad = NULL;
    j->first = j->member = NULL;
    const int nb = (int)op->iattr[2];
    csvi_iter *it = &j->split.batch;
    csvi_iter_start(it, nb, out->shape);
    csvi_iter_add(it, nb, out->shape);
    csvi_iter_add(it, j->init->ndim - 1, j->init->shape);
    csvi_iter_add(it, j->trans->ndim - 3, j->trans->shape);
    if (j->obs) csvi_iter_add(it, j->obs->ndim - 2, j->obs->shape);
    csvi_iter_finish(it);
    /* homogeneous: F, acc, then c, v, g, g's next value, h's sum, the live
     * rows and R_STEPS steps' r (forward: c, S) */
    split_batch(&j->split, j->T * j->K * j->K, 2 * j->K * j->K + (6 + R_STEPS) * j->K);
}

/* The groups of a per-step chain as tasks: one per transition sequence,
 * with scratch for four vectors and every member's g, p and r. */
static int plan_groups(chain_job *j) {
    const int64_t K = j->K, groups = j->trans->size / (j->Tt * K * K);
    const int64_t largest = group_chains(j, groups);
    if (largest < 0) return CSVI_ERR_NOMEM;
    j->split.per_task = 1;
    j->split.n_tasks = groups;
    j->split.scratch = 4 * K + 3 * largest * K;
    return CSVI_OK;
}

static void free_groups(chain_job *j) {
    free(j->first);
    free(j->member);
    j->first = j->member = NULL;
}

/* Elementwise max of four lanes, keeping b where a is not greater (a NaN in
 * a is skipped, as the scalar `x > top ? x : top`). */
static inline __attribute__((always_inline)) v4 max4(v4 a, v4 b) {
    const v4i m = a > b;
    return (v4)(((v4i)a & m) | ((v4i)b & ~m));
}

/* The largest of x[0..K), K >= 1 (a NaN is skipped unless it is x[0]). */
static inline __attribute__((always_inline)) double row_max(const double *x, int64_t K) {
    int64_t c = 0;
    double top = x[0];
    if (K >= 8) {  /* two accumulators: the compares' latency, not their count */
        v4 m0 = load4(x), m1 = load4(x + 4);
        for (c = 8; c + 8 <= K; c += 8) {
            m0 = max4(load4(x + c), m0);
            m1 = max4(load4(x + c + 4), m1);
        }
        m0 = max4(m1, m0);
        for (int q = 0; q < 4; q++) top = m0[q] > top ? m0[q] : top;
    }
    for (; c < K; c++) top = x[c] > top ? x[c] : top;
    return top;
}

/* 1 / sum of x[0..K), two four-lane accumulators in a fixed order. */
static inline __attribute__((always_inline)) double inv_row_sum(const double *x, int64_t K) {
    const int64_t kv = K & ~(int64_t)7;
    v4 a0 = {0}, a1 = {0};
    for (int64_t c = 0; c < kv; c += 8) {
        a0 += load4(x + c);
        a1 += load4(x + c + 4);
    }
    a0 += a1;
    double s = (a0[0] + a0[1]) + (a0[2] + a0[3]);
    for (int64_t c = kv; c < K; c++) s += x[c];
    return 1.0 / s;
}

/* Whether x[0..n) holds a NaN: the exact scan behind a cheap sign of one. */
static int holds_nan(const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (x[i] != x[i]) return 1;
    return 0;
}

/* The factor of one step with logits X (K x K): F and c with exp(L[i, j]) =
 * F[i, j] exp(c[j]), every column of F reaching high enough that S = p @ F
 * keeps full precision.  Returns 1 when `check` and X holds a NaN, found
 * from the factor's own pass: a NaN makes its row's sum (normalizing) or
 * F's sum NaN, and only then is X scanned (an infinity can too).
 *
 * Not normalizing: F = exp(X - column max), c the column max (0 for a
 * column of -inf).  Normalizing: one exp per entry serves both the
 * normalizer and the product -- F = exp(X - row max) / its row's sum,
 * c = 0 -- when every column of exp(X - row max) reaches ROW_SHIFT_MIN;
 * else (a state every other state all but never enters) F = exp(L - column
 * max of L), c that max.  A row of -inf (no way out of a state) gives NaN
 * in F, as trans - logsumexp(trans) would. */
static CSVI_HOT int step_factor(const double *X, int64_t K, int normalize, int check,
                                double *F, double *c) {
    int bad = 0;
    if (!normalize) {
        shift_cols(X, K, K, F, c);
        if (!check) return 0;
        double z = 0.0;
        _Pragma("omp simd reduction(+:z)")
        for (int64_t x = 0; x < K * K; x++) z += F[x];
        return z != z && holds_nan(X, K * K);
    }
    for (int64_t x = 0; x < K; x++) c[x] = 0.0;  /* the columns' max of F, for the test */
    for (int64_t i = 0; i < K; i++) {
        const double *restrict xi = X + i * K;
        double *restrict f = F + i * K, *restrict cm = c;
        const double top = row_max(xi, K);
        CSVI_SIMD
        for (int64_t x = 0; x < K; x++) f[x] = exp(xi[x] - top);
        const double u = inv_row_sum(f, K);
        if (u != u && check) bad |= holds_nan(xi, K);
        for (int64_t x = 0; x < K; x++) {
            cm[x] = f[x] > cm[x] ? f[x] : cm[x];
            f[x] *= u;
        }
    }
    int fast = 1;
    for (int64_t x = 0; x < K; x++) fast &= c[x] >= ROW_SHIFT_MIN;
    if (fast) {
        for (int64_t x = 0; x < K; x++) c[x] = 0.0;
        return bad;
    }
    for (int64_t x = 0; x < K; x++) c[x] = -INFINITY;
    for (int64_t i = 0; i < K; i++) {  /* F = L and c its column maxes */
        const double *xi = X + i * K;
        double *f = F + i * K;
        const double top = row_max(xi, K);
        double z = 0.0;  /* this rare path recomputes the row's normalizer */
        for (int64_t x = 0; x < K; x++) z += exp(xi[x] - top);
        const double lse = top + log(z);
        for (int64_t x = 0; x < K; x++) {
            f[x] = xi[x] - lse;
            c[x] = f[x] > c[x] ? f[x] : c[x];
        }
    }
    for (int64_t x = 0; x < K; x++) c[x] = c[x] == -INFINITY ? 0.0 : c[x];
    for (int64_t i = 0; i < K; i++)
        for (int64_t x = 0; x < K; x++) F[i * K + x] = exp(F[i * K + x] - c[x]);
    return bad;
}

/* Flags the forward's NaN (tasks on other threads may set it too). */
static void flag_nan(const chain_job *j) {
    __atomic_store_n(j->bad, 1, __ATOMIC_RELAXED);
}

/* One forward step of one chain: a = alpha[t] from prev = alpha[t-1], the
 * step's F and c and obs row o (or NULL); saves p and 1/S; S is scratch. */
static inline __attribute__((always_inline)) void forward_step(
        int64_t K, const double *F, const double *c, const double *prev, const double *o,
        double *restrict a, double *restrict p, double *restrict is, double *restrict S) {
    const double top = row_max(prev, K);
    const double shift = top == -INFINITY ? 0.0 : top;
    CSVI_SIMD
    for (int64_t i = 0; i < K; i++) p[i] = exp(prev[i] - shift);
    for (int64_t x = 0; x < K; x++) S[x] = 0.0;
    for (int64_t i = 0; i < K; i++) {
        const double pi = p[i];
        const double *restrict f = F + i * K;
        if (pi == 0.0) continue;
        CSVI_SIMD
        for (int64_t x = 0; x < K; x++) S[x] += pi * f[x];
    }
    const double *restrict cs = c;
    CSVI_SIMD
    for (int64_t x = 0; x < K; x++) a[x] = shift + cs[x] + log(S[x]);
    for (int64_t x = 0; x < K; x++) is[x] = S[x] > 0.0 ? 1.0 / S[x] : 0.0;
    if (o)
        for (int64_t x = 0; x < K; x++) a[x] += o[x];
}

/* One VJP step of one chain: with g the gradient on alpha[t], adds g to
 * d obs row d (or NULL), sets r = g / S and h = p (F r); the step's d L is
 * p r^T (summed by the caller). */
static inline __attribute__((always_inline)) void vjp_step(
        int64_t K, const double *F, const double *p, const double *is, const double *g,
        double *d, double *restrict r, double *restrict h) {
    if (d)
        for (int64_t x = 0; x < K; x++) d[x] += g[x];
    for (int64_t x = 0; x < K; x++) r[x] = g[x] * is[x];
    csvi_rows_dot(F, K, K, r, h, 0);
    for (int64_t i = 0; i < K; i++) h[i] *= p[i];
}

/* d trans += F (acc - hsum v^T) (normalizing; v = exp(c)) or F acc, rows
 * no chain weighted (live[i] = 0) left alone. */
static inline __attribute__((always_inline)) void add_trans_grad(
        int64_t K, int normalize, const double *F, const double *acc, const double *hsum,
        const double *v, const double *live, double *restrict dtrans) {
    for (int64_t i = 0; i < K; i++) {
        if (live[i] == 0.0) continue;
        const double *restrict f = F + i * K, *restrict w = acc + i * K, *restrict vv = v;
        double *restrict d = dtrans + i * K;
        const double hi = normalize ? hsum[i] : 0.0;
        CSVI_SIMD
        for (int64_t x = 0; x < K; x++) d[x] += f[x] * (w[x] - hi * vv[x]);
    }
}

/* Steps ahead the VJPs prefetch a chain's rows (saved p and 1/S, the
 * gradients on alpha and on obs): they walk back through time, which the
 * hardware's prefetchers do not follow once the rows outgrow the L2 cache. */
#define PREFETCH_STEPS 4

/* Prefetches the K doubles of row x for reading, or for adding into. */
static inline __attribute__((always_inline)) void prefetch_row(const double *x, int64_t K) {
    for (int64_t c = 0; c < K; c += 8) __builtin_prefetch(x + c, 0, 3);
}
static inline __attribute__((always_inline)) void prefetch_row_rw(double *x, int64_t K) {
    for (int64_t c = 0; c < K; c += 8) __builtin_prefetch(x + c, 1, 3);
}

/* d trans += F (A - hsum v^T) (normalizing) or F A, where A = sum over
 * the n chains that read the step of P[b]^T R[b] (their p r^T; P, R: n x
 * K): each row of A summed in registers, sixteen columns at a time, and
 * used at once, so no K x K accumulator is cleared, filled and read back.
 * Rows no chain weighted (live[i] = 0) are left alone: F may be NaN there.
 * With next_f (the previous step's F and d trans, next in the walk back),
 * each row prefetches the same row there: spread over the step, not a burst
 * the load queues drop. */
static inline __attribute__((always_inline)) void add_trans_grad_sum(
        int64_t K, int64_t n, int normalize, const double *F, const double *P, const double *R,
        const double *hsum, const double *v, const double *live, double *restrict dtrans,
        const double *next_f, double *next_d) {
    const int64_t kv = K & ~(int64_t)15;
    for (int64_t i = 0; i < K; i++) {
        if (next_f) {
            prefetch_row(next_f + i * K, K);
            prefetch_row_rw(next_d + i * K, K);
        }
        if (live[i] == 0.0) continue;
        const double *f = F + i * K;
        double *d = dtrans + i * K;
        const double hi = normalize ? hsum[i] : 0.0;
        for (int64_t x = 0; x < kv; x += 16) {
            v4 a[4] = {{0}, {0}, {0}, {0}};
            for (int64_t b = 0; b < n; b++) {
                const double pi = P[b * K + i];
                const double *rb = R + b * K + x;
                for (int q = 0; q < 4; q++) a[q] += pi * load4(rb + 4 * q);
            }
            for (int q = 0; q < 4; q++) {
                const int64_t c = x + 4 * q;
                *(v4 *)(d + c) = load4(d + c) + load4(f + c) * (a[q] - hi * load4(v + c));
            }
        }
        for (int64_t x = kv; x < K; x++) {
            double sum = 0.0;
            for (int64_t b = 0; b < n; b++) sum += P[b * K + i] * R[b * K + x];
            d[x] += f[x] * (sum - hi * v[x]);
        }
    }
}

/* A homogeneous chain's forward: F once, then every step. */
static CSVI_HOT void chain_forward_one(const chain_job *j, const double *init,
                                       const double *trans, const double *obs, double *alpha,
                                       double *P, double *IS, double *s) {
    const int64_t K = j->K;
    double *F = s, *c = F + 2 * K * K, *S = c + K;
    if (step_factor(trans, K, j->normalize, j->check, F, c)) flag_nan(j);
    for (int64_t t = 0; t < j->T; t++)
        forward_step(K, F, c, t ? alpha + (t - 1) * K : init,
                     obs ? obs + (j->To > 1 ? t * K : 0) : NULL, alpha + t * K, P + t * K,
                     IS + t * K, S);
}

/* acc += sum over t of P[t]^T R[t] (P, R: T x K): each acc row's sums held
 * in registers over the T steps, sixteen columns at a time, instead of a
 * load-add-store of acc per step. */
static inline __attribute__((always_inline)) void outer_sum(const double *P, const double *R,
                                                           int64_t T, int64_t K, double *acc) {
    const int64_t kv = K & ~(int64_t)15;
    for (int64_t i = 0; i < K; i++) {
        double *restrict a = acc + i * K;
        for (int64_t x = 0; x < kv; x += 16) {
            v4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t t = 0; t < T; t++) {
                const double pi = P[t * K + i];
                const double *rt = R + t * K + x;
                a0 += pi * load4(rt);
                a1 += pi * load4(rt + 4);
                a2 += pi * load4(rt + 8);
                a3 += pi * load4(rt + 12);
            }
            for (int q = 0; q < 4; q++) {
                a[x + q] += a0[q];
                a[x + 4 + q] += a1[q];
                a[x + 8 + q] += a2[q];
                a[x + 12 + q] += a3[q];
            }
        }
        for (int64_t x = kv; x < K; x++) {
            double sum = 0.0;
            for (int64_t t = 0; t < T; t++) sum += P[t * K + i] * R[t * K + x];
            a[x] += sum;
        }
    }
}

/* A homogeneous chain's VJP; each gradient pointer may be NULL.  R keeps
 * the r of R_STEPS steps for each outer_sum into acc. */
static CSVI_HOT void chain_vjp_one(const chain_job *j, const double *trans, const double *G,
                                   const double *P, const double *IS, double *dinit,
                                   double *dtrans, double *dobs, double *s) {
    const int64_t K = j->K, T = j->T;
    double *F = s, *acc = F + K * K, *c = acc + K * K, *v = c + K, *g = v + K, *gp = g + K,
           *hsum = gp + K, *live = hsum + K, *R = live + K;
    step_factor(trans, K, j->normalize, 0, F, c);
    for (int64_t x = 0; x < K; x++) hsum[x] = live[x] = 0.0;
    if (dtrans)
        for (int64_t x = 0; x < K * K; x++) acc[x] = 0.0;
    for (int64_t x = 0; x < K; x++) g[x] = G[(T - 1) * K + x];
    for (int64_t t = T - 1; t >= 0; t--) {
        const int64_t t0 = t - t % R_STEPS, ahead = t - PREFETCH_STEPS;
        if (ahead >= 0) {
            prefetch_row(P + ahead * K, K);
            prefetch_row(IS + ahead * K, K);
            prefetch_row(G + ahead * K, K);
            if (dobs && j->To > 1) prefetch_row_rw(dobs + ahead * K, K);
        }
        vjp_step(K, F, P + t * K, IS + t * K, g, dobs ? dobs + (j->To > 1 ? t * K : 0) : NULL,
                 R + (t - t0) * K, gp);
        if (dtrans && t == t0)
            outer_sum(P + t0 * K, R, T - t0 < R_STEPS ? T - t0 : R_STEPS, K, acc);
        for (int64_t x = 0; x < K; x++) {
            hsum[x] += gp[x];
            live[x] = P[t * K + x] != 0.0 ? 1.0 : live[x];
        }
        const double *restrict below = t ? G + (t - 1) * K : NULL;
        for (int64_t x = 0; x < K; x++) g[x] = gp[x] + (below ? below[x] : 0.0);
    }
    if (dinit)
        for (int64_t x = 0; x < K; x++) dinit[x] += g[x];
    if (dtrans) {
        for (int64_t x = 0; x < K; x++) v[x] = exp(c[x]);
        add_trans_grad(K, j->normalize, F, acc, hsum, v, live, dtrans);
    }
}

/* Where group q's kept c (T x K) and F (T x K x K) live in aux. */
static double *kept_c(const chain_job *j, int64_t q) {
    return j->aux->data + 2 * j->out->size + q * j->T * j->K;
}
static double *kept_f(const chain_job *j, int64_t q) {
    const int64_t groups = j->trans->size / (j->T * j->K * j->K);
    return j->aux->data + 2 * j->out->size + groups * j->T * j->K + q * j->T * j->K * j->K;
}

/* The chains of one transition sequence, step by step: each step's factor
 * once (kept in aux), then every chain's step. */
static CSVI_HOT void group_forward(const chain_job *j, int64_t q, double *s) {
    const int64_t K = j->K, T = j->T, n = j->first[q + 1] - j->first[q];
    const int64_t *chains = j->member + j->first[q] * CSVI_ITER_MAX_OPERANDS;
    const double *trans = j->trans->data + q * T * K * K;
    double *C = kept_c(j, q), *FF = kept_f(j, q), *S = s;
    if (n == 0) return;
    for (int64_t t = 0; t < T; t++) {
        double *F = FF + t * K * K, *c = C + t * K;
        if (step_factor(trans + t * K * K, K, j->normalize, j->check, F, c)) flag_nan(j);
        for (int64_t b = 0; b < n; b++) {
            const int64_t *o = chains + b * CSVI_ITER_MAX_OPERANDS;
            double *alpha = j->out->data + o[0] * T * K;
            const double *prev = t ? alpha + (t - 1) * K : j->init->data + o[1] * K;
            const double *obs = j->obs ? j->obs->data + o[3] * j->To * K +
                                             (j->To > 1 ? t * K : 0) : NULL;
            forward_step(K, F, c, prev, obs, alpha + t * K, j->aux->data + o[0] * T * K + t * K,
                         j->aux->data + j->out->size + o[0] * T * K + t * K, S);
        }
    }
}

/* The VJP of one group: steps from the last, each chain's gradient carried
 * in g (one K row per chain), its p and r kept in Pm and R for the step's
 * d trans, added once for the group. */
static CSVI_HOT void group_vjp(const chain_job *j, int64_t q, double *s) {
    const int64_t K = j->K, T = j->T, n = j->first[q + 1] - j->first[q];
    const int64_t *chains = j->member + j->first[q] * CSVI_ITER_MAX_OPERANDS;
    double *dtrans = j->trans->grad ? j->trans->grad + q * T * K * K : NULL;
    const double *C = kept_c(j, q), *FF = kept_f(j, q);
    double *v = s, *h = v + K, *hsum = h + K, *live = hsum + K, *g = live + K, *Pm = g + n * K,
           *R = Pm + n * K;
    if (n == 0) return;
    for (int64_t b = 0; b < n; b++) {
        const int64_t *o = chains + b * CSVI_ITER_MAX_OPERANDS;
        for (int64_t x = 0; x < K; x++) g[b * K + x] = j->out->grad[o[0] * T * K + (T - 1) * K + x];
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        const double *F = FF + t * K * K;
        if (t > 0 && !dtrans)  /* the next step's F: the hardware does not guess a walk back */
            for (int64_t x = 0; x < K * K; x += 8) __builtin_prefetch(F - K * K + x, 0, 3);
        for (int64_t x = 0; x < K; x++) hsum[x] = live[x] = 0.0;
        for (int64_t b = 0; b < n; b++) {
            const int64_t *o = chains + b * CSVI_ITER_MAX_OPERANDS;
            const double *P = j->aux->data + o[0] * T * K + t * K;
            const double *IS = j->aux->data + j->out->size + o[0] * T * K + t * K;
            if (t >= PREFETCH_STEPS) {
                prefetch_row(P - PREFETCH_STEPS * K, K);
                prefetch_row(IS - PREFETCH_STEPS * K, K);
                prefetch_row(j->out->grad + o[0] * T * K + (t - PREFETCH_STEPS) * K, K);
            }
            double *dobs = j->obs && j->obs->grad ? j->obs->grad + o[3] * j->To * K +
                                                        (j->To > 1 ? t * K : 0) : NULL;
            if (dobs && j->To > 1 && t >= PREFETCH_STEPS)
                prefetch_row_rw(dobs - PREFETCH_STEPS * K, K);
            double *gb = g + b * K;
            vjp_step(K, F, P, IS, gb, dobs, R + b * K, h);
            for (int64_t x = 0; x < K; x++) {
                Pm[b * K + x] = P[x];
                hsum[x] += h[x];
                live[x] = P[x] != 0.0 ? 1.0 : live[x];
            }
            const double *below = t ? j->out->grad + o[0] * T * K + (t - 1) * K : NULL;
            for (int64_t x = 0; x < K; x++) gb[x] = h[x] + (below ? below[x] : 0.0);
        }
        if (dtrans) {
            for (int64_t x = 0; x < K; x++) v[x] = exp(C[t * K + x]);
            add_trans_grad_sum(K, n, j->normalize, F, Pm, R, hsum, v, live, dtrans + t * K * K,
                               t ? F - K * K : NULL, t ? dtrans + (t - 1) * K * K : NULL);
        }
    }
    if (j->init->grad)
        for (int64_t b = 0; b < n; b++) {
            const int64_t *o = chains + b * CSVI_ITER_MAX_OPERANDS;
            double *d = j->init->grad + o[1] * K;
            for (int64_t x = 0; x < K; x++) d[x] += g[b * K + x];
        }
}

static void chain_forward_task(void *ctx, int64_t task) {
    const chain_job *j = ctx;
    const task_split *sp = &j->split;
    double stack[STACK_SCRATCH];
    double *s = task_scratch(sp, task, stack);
    if (j->keep) {
        group_forward(j, task, s);
        return;
    }
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
    if (j->keep) {
        group_vjp(j, task, s);
        return;
    }
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
    int bad = 0, rc;
    plan_chain(&j, t, op);
    j.bad = &bad;
    if (j.split.batch.size == 0 || j.T == 0 || j.K == 0)  /* no step reads trans */
        return j.check && holds_nan(j.trans->data, j.trans->size) ? CSVI_ERR_VALUE : CSVI_OK;
    if (j.keep) {
        rc = plan_groups(&j);
        if (rc == CSVI_OK) rc = run_split(&j.split, chain_forward_task, &j, 1);
        free_groups(&j);
    } else {
        rc = run_split(&j.split, chain_forward_task, &j, 1);
    }
    return rc == CSVI_OK && bad ? CSVI_ERR_VALUE : rc;
}

int csvi_markov_forward_vjp(csvi_tape *t, const csvi_op *op) {
    chain_job j;
    plan_chain(&j, t, op);
    if (j.split.batch.size == 0 || j.T == 0 || j.K == 0) return CSVI_OK;
    if (!j.init->grad && !j.trans->grad && !(j.obs && j.obs->grad)) return CSVI_OK;
    const int64_t K = j.K, counts[3] = {j.init->size / K, j.trans->size / (j.Tt * K * K),
                                        j.obs ? j.obs->size / (j.To * K) : j.split.batch.size};
    if (j.keep) {  /* a group writes only its own d trans */
        const int64_t apart[3] = {counts[0], j.split.batch.size, counts[2]};
        int rc = plan_groups(&j);
        if (rc == CSVI_OK)
            rc = run_split(&j.split, chain_vjp_task, &j, unshared(&j.split, apart, 3));
        free_groups(&j);
        return rc;
    }
    return run_split(&j.split, chain_vjp_task, &j, unshared(&j.split, counts, 3));
}
