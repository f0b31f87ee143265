/* The dense layer act(x @ W^T + b) as one op (DENSE, DENSE_ACT in nn.def):
 * dgemm writes x @ W^T, then one pass over the rows adds the bias and applies
 * the activation (keeping the pre-activation z in aux), where the composed
 * form makes a record, an output and a gradient buffer per step.  The VJP
 * forms gz = g * act'(z) in one pass, sums it over rows into the bias's
 * gradient, and gives x's and W's gradients by two dgemms.
 *
 * Values and derivatives are those of the composed ops (ops_unary.c's forms,
 * softplus with torch's threshold as csvi.nn.functional.softplus), element by
 * element, so fused and composed agree to rounding; the bias's gradient adds
 * rows in order, the same for any thread count. */
#include <stdlib.h>
#include "csvi_ext.h"
#include "csvi_nn.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_vmath.h"

typedef struct {
    double *y, *z;          /* forward: output (holding x @ W^T on entry), pre-activation */
    const double *b;        /* bias or NULL */
    const double *g;        /* VJP: output gradient */
    double *gz;             /* VJP: gradient of the pre-activation */
    int64_t n, m, rows_per_task;
    int act;
    double threshold;
} dense_job;

static inline double sigmoid_of(double z) {
    const double e = exp(-fabs(z));
    return (z >= 0.0 ? 1.0 : e) / (1.0 + e);
}

/* z = y + b and y = act(z) with z in aux (DENSE_ACT), or y += b in place
 * (DENSE). */
static CSVI_HOT void dense_rows_fwd(void *ctx, int64_t task) {
    const dense_job *j = ctx;
    const int64_t r0 = task * j->rows_per_task;
    const int64_t r1 = r0 + j->rows_per_task < j->n ? r0 + j->rows_per_task : j->n;
    const int64_t m = j->m;
    const double p = j->threshold;
    const double *restrict b = j->b;
    for (int64_t r = r0; r < r1; r++) {
        double *restrict y = j->y + r * m;
        if (!j->z) {
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) y[c] += b[c];
            continue;
        }
        double *restrict z = j->z + r * m;
        if (b) {
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) z[c] = y[c] + b[c];
        } else {
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) z[c] = y[c];
        }
        switch (j->act) {
        case CSVI_DENSE_RELU:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) y[c] = z[c] > 0 ? z[c] : 0.0;
            break;
        case CSVI_DENSE_SOFTPLUS:
            /* two loops: a call under a condition would keep the first scalar */
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) {
                const double x = z[c];
                y[c] = (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x)));
            }
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) y[c] = z[c] > p ? z[c] : y[c];
            break;
        case CSVI_DENSE_SIGMOID:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) y[c] = sigmoid_of(z[c]);
            break;
        case CSVI_DENSE_TANH:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) y[c] = tanh(z[c]);
            break;
        default:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) y[c] = z[c];
            break;
        }
    }
}

/* gz = g * act'(z), in the forms of ops_unary.c (full relative precision
 * where sigmoid and tanh saturate). */
static CSVI_HOT void dense_rows_vjp(void *ctx, int64_t task) {
    const dense_job *j = ctx;
    const int64_t r0 = task * j->rows_per_task;
    const int64_t r1 = r0 + j->rows_per_task < j->n ? r0 + j->rows_per_task : j->n;
    const int64_t m = j->m;
    const double p = j->threshold;
    for (int64_t r = r0; r < r1; r++) {
        const double *restrict z = j->z + r * m, *restrict g = j->g + r * m;
        double *restrict gz = j->gz + r * m;
        switch (j->act) {
        case CSVI_DENSE_RELU:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) gz[c] = z[c] > 0 ? g[c] : 0.0;
            break;
        case CSVI_DENSE_SOFTPLUS:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) gz[c] = g[c] * sigmoid_of(z[c]);
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) gz[c] = z[c] > p ? g[c] : gz[c];
            break;
        case CSVI_DENSE_SIGMOID:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) {
                const double e = exp(-fabs(z[c]));
                gz[c] = g[c] * (e / ((1.0 + e) * (1.0 + e)));
            }
            break;
        case CSVI_DENSE_TANH:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) {
                const double e = exp(-2.0 * fabs(z[c]));
                gz[c] = g[c] * (4.0 * e / ((1.0 + e) * (1.0 + e)));
            }
            break;
        default:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) gz[c] = g[c];
            break;
        }
    }
}

/* Row chunks of about CSVI_BLOCK elements: fixed by the sizes alone. */
static void split_rows(dense_job *j, int64_t *n_tasks) {
    int64_t rows = j->m > 0 ? CSVI_BLOCK / j->m : j->n;
    j->rows_per_task = rows > 0 ? rows : 1;
    *n_tasks = j->n > 0 ? (j->n + j->rows_per_task - 1) / j->rows_per_task : 0;
}

static int64_t parallel_from(int act) {
    return act == CSVI_DENSE_NONE || act == CSVI_DENSE_RELU ? CSVI_PAR_CHEAP
                                                            : CSVI_PAR_TRANSCENDENTAL;
}

int csvi_dense_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *w = CSVI_IN(t, op, 1);
    csvi_slot *y = CSVI_OUT(t, op);
    int n = (int)x->shape[0], k = (int)x->shape[1], m = (int)w->shape[0];
    const int act = (int)op->iattr[0];
    if (act < 0 || act >= CSVI_DENSE_ACT_COUNT || (act != CSVI_DENSE_NONE && op->aux < 0))
        return CSVI_ERR_VALUE;
    if (n == 0 || m == 0) return CSVI_OK;
    if (k == 0) {
        for (int64_t i = 0; i < y->size; i++) y->data[i] = 0.0;
    } else {
        char N = 'N', T = 'T';
        double one = 1.0, zero = 0.0;
        csvi_ext.dgemm(&T, &N, &m, &n, &k, &one, w->data, &k, x->data, &k, &zero, y->data, &m);
    }
    dense_job j = {.y = y->data, .z = op->aux >= 0 ? t->slots[op->aux].data : NULL,
                   .b = op->n_in > 2 ? CSVI_IN(t, op, 2)->data : NULL, .n = n, .m = m,
                   .act = act, .threshold = op->dattr[0]};
    if (j.b == NULL && j.z == NULL) return CSVI_OK;
    int64_t n_tasks;
    split_rows(&j, &n_tasks);
    csvi_parallel_tasks(n_tasks, y->size >= parallel_from(act), 0, dense_rows_fwd, &j);
    return CSVI_OK;
}

int csvi_dense_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *w = CSVI_IN(t, op, 1);
    const csvi_slot *b = op->n_in > 2 ? CSVI_IN(t, op, 2) : NULL;
    const csvi_slot *y = CSVI_OUT(t, op);
    int n = (int)x->shape[0], k = (int)x->shape[1], m = (int)w->shape[0];
    const int act = (int)op->iattr[0];
    if (n == 0 || m == 0) return CSVI_OK;
    if (!x->grad && !w->grad && !(b && b->grad)) return CSVI_OK;
    double *gz = y->grad, *scratch = NULL;
    if (act != CSVI_DENSE_NONE) {
        scratch = malloc((size_t)n * (size_t)m * sizeof(double));
        if (!scratch) return CSVI_ERR_NOMEM;
        dense_job j = {.z = t->slots[op->aux].data, .g = y->grad, .gz = scratch, .n = n,
                       .m = m, .act = act, .threshold = op->dattr[0]};
        int64_t n_tasks;
        split_rows(&j, &n_tasks);
        csvi_parallel_tasks(n_tasks, y->size >= parallel_from(act), 0, dense_rows_vjp, &j);
        gz = scratch;
    }
    if (b && b->grad) {  /* db += column sums of gz, rows in order */
        double *restrict db = b->grad;
        for (int64_t r = 0; r < n; r++) {
            const double *restrict row = gz + r * (int64_t)m;
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) db[c] += row[c];
        }
    }
    if (k > 0) {
        char N = 'N', T = 'T';
        double one = 1.0;
        if (x->grad)  /* dx += gz W */
            csvi_ext.dgemm(&N, &N, &k, &n, &m, &one, w->data, &k, gz, &m, &one, x->grad, &k);
        if (w->grad)  /* dW += gz^T x */
            csvi_ext.dgemm(&N, &T, &k, &m, &n, &one, x->data, &k, gz, &m, &one, w->grad, &k);
    }
    free(scratch);
    return CSVI_OK;
}
