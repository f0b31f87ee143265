/* The dense layer act(x @ W^T + b) as one op (DENSE, DENSE_ACT in nn.def):
 * dgemm writes x @ W^T, then one pass over the rows adds the bias and applies
 * the activation (keeping the pre-activation z in aux), where the composed
 * form makes a record, an output and a gradient buffer per step.  The VJP
 * forms gz = g * act'(z) in one pass, sums it over rows into the bias's
 * gradient, and gives x's and W's gradients by two dgemms.
 *
 * With iattr[1] = CSVI_DENSE_FLOAT32 the three products run through sgemm:
 * x, W and gz are rounded to float32, and each product is widened back to
 * float64 (added into the gradients), so params, bias and the optimizer
 * stay float64 while the GEMMs, most of a network's time, run at float32
 * speed (torch's default precision); softplus and sigmoid take their exp
 * and log1p in float32 lanes (act32_exp), the rest of the activation in
 * float64.  The float32 operands live in
 * the aux slot (dense32_layout), so the forward's copies of x and W serve
 * the VJP and a compiled step allocates nothing.
 *
 * Values and derivatives are those of the composed ops (ops_unary.c's forms,
 * softplus with torch's threshold as csvi.nn.functional.softplus), element by
 * element, so fused and composed agree to rounding; the bias's gradient adds
 * rows in order, the same for any thread count. */
#include <stdatomic.h>
#include <stdlib.h>
#include "csvi_ext.h"
#include "csvi_fuse.h"
#include "csvi_nn.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_vmath.h"

typedef struct {
    double *y, *z;          /* forward: output (holding x @ W^T on entry), pre-activation
                             * (then the kept derivative: dense_rows_fwd) */
    const float *y32;       /* forward, float32: x @ W^T (then y holds nothing on entry) */
    const double *b;        /* bias or NULL */
    const double *g;        /* VJP: output gradient, or NULL: */
    const float *g32[CSVI_DENSE_DX32_READERS];  /* the readers' float32 products, added
                             * in this order (CSVI_DENSE_IATTR_DX32_FROM) */
    int n_g32;
    const double *probs_x, *probs_g;  /* or the Bernoulli reading y as its probs: its
                             * data and row gradients (CSVI_DENSE_IATTR_PROBS_OF) */
    double probs_scale;
    int probs_whole;
    double *gz;             /* VJP: gradient of the pre-activation, when float64 products
                             * read it (or NULL; forward: scratch) */
    float *gz32;            /* VJP, float32: gz rounded, for the products (or NULL) */
    double *db;             /* VJP: the bias's gradient (or NULL) */
    float *y32_out;         /* forward: y's float32 copy for the next record (or NULL) */
    float *d32;             /* a float32 record's softplus' or sigmoid' (act32_exp), in
                             * its aux's gz half (a float32 record stores no gz), or NULL */
    int64_t n, m, rows_per_task;
    int act;
    double threshold;
} dense_job;

/* A float32 record's softplus and sigmoid take exp and log1p in float32
 * lanes, twice a double's per vector: z carries its float32 product's
 * error (about k float32 roundings) already, so the calls' float32 rounding
 * is of its order, and it was most of the forward pass's time.  The rest
 * stays float64: softplus adds log1p(e) to max(z, 0), and sigmoid divides
 * in float64, so 1 - sigmoid(z) = e / (1 + e) stays positive wherever
 * float64's does (e underflows in float32 only past z = 87; a float64
 * sigmoid is 1.0 from 37).  Chunks of ACT32_CHUNK columns, in stack
 * buffers, so each call's loop is float-only. */
#define ACT32_CHUNK 256

#define ACT32_INLINE static inline __attribute__((always_inline))  /* into each clone */

ACT32_INLINE void act32_exp(float *restrict e, const double *restrict z, int64_t w) {
    float zf[ACT32_CHUNK];
    CSVI_SIMD
    for (int64_t i = 0; i < w; i++) zf[i] = (float)z[i];
    CSVI_SIMD
    for (int64_t i = 0; i < w; i++) e[i] = expf(-fabsf(zf[i]));
}

/* Over one row: y = act(z) in z's place and d = act'(z), for softplus
 * (threshold p) or sigmoid, in the forms of the float64 loops below. */
ACT32_INLINE void act32_row(double *restrict y, float *restrict d, int64_t m, int act,
                            double p) {
    float e[ACT32_CHUNK], l[ACT32_CHUNK];
    for (int64_t c0 = 0; c0 < m; c0 += ACT32_CHUNK) {
        const int64_t w = m - c0 < ACT32_CHUNK ? m - c0 : ACT32_CHUNK;
        double *restrict yc = y + c0;
        float *restrict dc = d + c0;
        act32_exp(e, yc, w);
        if (act == CSVI_DENSE_SIGMOID) {
            CSVI_SIMD
            for (int64_t i = 0; i < w; i++) {
                const double x = yc[i], ev = (double)e[i];
                const double v = csvi_pick(x >= 0.0, 1.0, ev) / (1.0 + ev);
                yc[i] = v;
                dc[i] = (float)(x >= 0.0 ? ev * v * v : v * (1.0 - v));
            }
            continue;
        }
        CSVI_SIMD
        for (int64_t i = 0; i < w; i++) l[i] = log1pf(e[i]);
        CSVI_SIMD
        for (int64_t i = 0; i < w; i++) {
            const double x = yc[i], ev = (double)e[i];
            const double dv = csvi_pick(x >= 0.0, 1.0, ev) / (1.0 + ev);
            yc[i] = csvi_pick(x > p, x, (x > 0.0 ? x : 0.0) + (double)l[i]);
            dc[i] = (float)csvi_pick(x > p, 1.0, dv);
        }
    }
}

/* z = y + b and y = act(z) with z in aux (DENSE_ACT), or y += b in place
 * (DENSE); in float32, the product y32 widened in the same pass.
 *
 * Softplus and sigmoid then overwrite z in aux with act'(z), from the same
 * e = exp(-|z|) as the value (the kept derivative): the VJP is one product
 * g * act'(z) and calls no exp.  A float32 record keeps act'(z) in float32
 * instead (d32: it is rounded with g into the products' float32 gz anyway),
 * half the bytes written here and read back by the VJP, and z only passes
 * through y.  The forms are the composed ops' (softplus' is 1.0 above the
 * threshold, and g * 1.0 is g). */
static CSVI_HOT void dense_rows_fwd(void *ctx, int64_t task) {
    const dense_job *j = ctx;
    const int64_t r0 = task * j->rows_per_task;
    const int64_t r1 = r0 + j->rows_per_task < j->n ? r0 + j->rows_per_task : j->n;
    const int64_t m = j->m;
    const double p = j->threshold;
    const double *restrict b = j->b;
    for (int64_t r = r0; r < r1; r++) {
        double *restrict y = j->y + r * m;
        double *restrict z = j->z ? j->z + r * m : NULL;
        double *restrict e_row = j->gz ? j->gz + r * m : NULL;
        if (j->y32) {  /* the pre-activation, widened from the float32 product */
            const float *restrict y32 = j->y32 + r * m;
            double *restrict pre = z && !j->d32 ? z : y;
            if (b) {
                CSVI_SIMD
                for (int64_t c = 0; c < m; c++) pre[c] = (double)y32[c] + b[c];
            } else {
                CSVI_SIMD
                for (int64_t c = 0; c < m; c++) pre[c] = (double)y32[c];
            }
            if (!z) continue;
        } else if (!z) {
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) y[c] += b[c];
            continue;
        } else if (b) {
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) z[c] = y[c] + b[c];
        } else {
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) z[c] = y[c];
        }
        if (j->d32) {  /* softplus or sigmoid of a float32 record */
            act32_row(y, j->d32 + r * m, m, j->act, p);
            continue;
        }
        switch (j->act) {
        case CSVI_DENSE_RELU:
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) y[c] = z[c] > 0 ? z[c] : 0.0;
            break;
        case CSVI_DENSE_SOFTPLUS:
            /* two loops: a select would sink the calls into its branch,
             * and a call under a condition keeps the loop scalar; e waits
             * in gz's place, which the forward does not use */
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) {
                const double x = z[c], e = exp(-fabs(x));
                e_row[c] = e;
                y[c] = (x > 0.0 ? x : 0.0) + log1p(e);
            }
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) {  /* then softplus'(z) in z's place */
                const double x = z[c], e = e_row[c];
                const double d = csvi_pick(x >= 0.0, 1.0, e) / (1.0 + e);
                y[c] = csvi_pick(x > p, x, y[c]);
                z[c] = csvi_pick(x > p, 1.0, d);
            }
            break;
        case CSVI_DENSE_SIGMOID:
            /* sigmoid' = e / (1 + e)^2 from y, the one division: e y^2 for
             * x >= 0 (y = 1 / (1 + e)), y (1 - y) below (1 - y >= 1/2, no
             * cancellation) -- a few ulp, where a second vector division
             * cost ~2 cycles an element */
            CSVI_SIMD
            for (int64_t c = 0; c < m; c++) {
                const double x = z[c], e = exp(-fabs(x));
                const double v = csvi_pick(x >= 0.0, 1.0, e) / (1.0 + e);
                y[c] = v;
                z[c] = x >= 0.0 ? e * v * v : v * (1.0 - v);
            }
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
    if (j->y32_out) {  /* the next record's x, while the task's rows are in cache */
        const double *restrict y = j->y + r0 * m;
        float *restrict out = j->y32_out + r0 * m;
        CSVI_SIMD
        for (int64_t i = 0; i < (r1 - r0) * m; i++) out[i] = (float)y[i];
    }
}

/* The VJP's one pass, over blocks of VJP_COLUMNS columns with all rows in
 * order: gz = g * act'(z) in the forms of ops_unary.c (full relative
 * precision where sigmoid and tanh saturate; softplus' and sigmoid' kept by
 * the forward), rounded to float32 for the products (gz32), stored in
 * float64 only when float64 products read it (gz), and added into the
 * bias's gradient row after row -- each column's rows in order, so every
 * split gives the same bits.  One pass where a row pass and a bias pass
 * over a stored gz had each read it: in a float32 record gz is never
 * stored.  Blocks of 32 (four cache lines a row): 400 columns make 13
 * tasks, which two threads share 7 : 6, where blocks of 64 made 4 : 3. */
#define VJP_COLUMNS 32

static CSVI_HOT void dense_columns_vjp(void *ctx, int64_t task) {
    const dense_job *j = ctx;
    const int64_t m = j->m, c0 = task * VJP_COLUMNS;
    const int64_t w = c0 + VJP_COLUMNS < m ? VJP_COLUMNS : m - c0;
    double *restrict db = j->db ? j->db + c0 : NULL;
    double t[VJP_COLUMNS], sum[VJP_COLUMNS];
    for (int64_t r = 0; r < j->n; r++) {
        const double *restrict g = j->g ? j->g + r * m + c0 : sum;
        if (j->probs_x) {  /* what the Bernoulli's VJP stores: 0.0 + its term */
            const double gv = 0.0 + j->probs_scale * j->probs_g[j->probs_whole ? 0 : r];
            csvi_bernoulli_probs_vjp_run(sum, gv, j->probs_x + r * m + c0, j->y + r * m + c0,
                                         w);
            CSVI_SIMD
            for (int64_t c = 0; c < w; c++) sum[c] = 0.0 + sum[c];
        } else if (j->n_g32) {  /* 0.0 + the first, then the others: the widening adds' bits */
            const float *restrict first = j->g32[0] + r * m + c0;
            CSVI_SIMD
            for (int64_t c = 0; c < w; c++) sum[c] = 0.0 + (double)first[c];
            for (int q = 1; q < j->n_g32; q++) {
                const float *restrict more = j->g32[q] + r * m + c0;
                CSVI_SIMD
                for (int64_t c = 0; c < w; c++) sum[c] += (double)more[c];
            }
        }
        const double *restrict z = j->z ? j->z + r * m + c0 : NULL;
        switch (j->act) {
        case CSVI_DENSE_RELU:
            CSVI_SIMD
            for (int64_t c = 0; c < w; c++) t[c] = z[c] > 0 ? g[c] : 0.0;
            break;
        case CSVI_DENSE_SOFTPLUS:
        case CSVI_DENSE_SIGMOID:  /* aux holds act'(z) (dense_rows_fwd) */
            if (j->d32) {
                const float *restrict d = j->d32 + r * m + c0;
                CSVI_SIMD
                for (int64_t c = 0; c < w; c++) t[c] = g[c] * (double)d[c];
            } else {
                CSVI_SIMD
                for (int64_t c = 0; c < w; c++) t[c] = g[c] * z[c];
            }
            break;
        case CSVI_DENSE_TANH:
            CSVI_SIMD
            for (int64_t c = 0; c < w; c++) {
                const double e = exp(-2.0 * fabs(z[c]));
                t[c] = g[c] * (4.0 * e / ((1.0 + e) * (1.0 + e)));
            }
            break;
        default:
            CSVI_SIMD
            for (int64_t c = 0; c < w; c++) t[c] = g[c];
            break;
        }
        if (j->gz) {
            double *restrict gz = j->gz + r * m + c0;
            CSVI_SIMD
            for (int64_t c = 0; c < w; c++) gz[c] = t[c];
        }
        if (j->gz32) {
            float *restrict gz32 = j->gz32 + r * m + c0;
            CSVI_SIMD
            for (int64_t c = 0; c < w; c++) gz32[c] = (float)t[c];
        }
        if (db) {
            CSVI_SIMD
            for (int64_t c = 0; c < w; c++) db[c] += t[c];
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

/* The float32 conversions: memory-bound passes over W-sized arrays, split
 * over csvi's threads (elementwise, so any split gives the same bits). */
typedef struct {
    const double *from64;
    float *to32;
    const float *from32;
    double *into64;
} convert_job;

static CSVI_HOT void narrow_range(void *ctx, int64_t lo, int64_t hi) {
    const convert_job *j = ctx;
    const double *restrict a = j->from64;
    float *restrict out = j->to32;
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) out[i] = (float)a[i];
}

static CSVI_HOT void widen_add_range(void *ctx, int64_t lo, int64_t hi) {
    const convert_job *j = ctx;
    const float *restrict a = j->from32;
    double *restrict out = j->into64;
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) out[i] += (double)a[i];
}

/* The first write into an uncleared gradient (csvi_grad_claim): 0.0 + v,
 * the bits an add into a cleared buffer gives (-0.0 becomes 0.0). */
static CSVI_HOT void widen_store_range(void *ctx, int64_t lo, int64_t hi) {
    const convert_job *j = ctx;
    const float *restrict a = j->from32;
    double *restrict out = j->into64;
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) out[i] = 0.0 + (double)a[i];
}

void csvi_dense_narrow(const double *a, int64_t size, float *out) {
    convert_job j = {.from64 = a, .to32 = out};
    csvi_parallel_range(size, CSVI_PAR_CHEAP, narrow_range, &j);
}

static CSVI_HOT void widen_range(void *ctx, int64_t lo, int64_t hi) {
    const convert_job *j = ctx;
    const float *restrict a = j->from32;
    double *restrict out = j->into64;
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) out[i] = (double)a[i];
}

void csvi_dense_widen(const float *a, int64_t size, double *out) {
    convert_job j = {.from32 = a, .into64 = out};
    csvi_parallel_range(size, CSVI_PAR_CHEAP, widen_range, &j);
}

/* out += a, or out = 0 + a when `store` (the buffer holds nothing yet). */
static void widen_add(const float *a, int64_t size, double *out, int store) {
    convert_job j = {.from32 = a, .into64 = out};
    csvi_parallel_range(size, CSVI_PAR_CHEAP, store ? widen_store_range : widen_add_range, &j);
}

/* One GEMM split over csvi's pool, when csvi_dense_set_product_tasks asks
 * for more than one task: OpenBLAS stays on one thread (its own threads and
 * csvi's both spin between jobs, and on a 2-core machine two spinning pools
 * starve each other), and each task multiplies one block of C's columns (or
 * rows) through a one-thread call.  The split is fixed by the setting and
 * the sizes (blocks of at least GEMM_MIN_DIM rows or columns and
 * GEMM_MIN_WORK multiply-adds), never by the thread count: one thread runs
 * the same calls in a loop and every thread count gives the same bits
 * (halving C changes OpenBLAS's bits for many shapes).  It cuts the
 * dimension whose other operand is the smaller one, since each task packs
 * that operand whole: that repacking is the split's cost on one thread, and
 * a task waiting for a descheduled worker its cost on a busy machine (the
 * default, 2, is what a quiet machine asks for; RESULTS.md session 24).
 * Column-major as BLAS sees it: C (m x n) = op(A) (m x k) op(B)
 * (k x n). */
#define GEMM_MIN_DIM 64
#define GEMM_MIN_WORK (1 << 21)

static _Atomic int product_tasks = 2;

void csvi_dense_set_product_tasks(int n) {
    const int clamped = n < 1 ? 1 : n > CSVI_DENSE_MAX_TASKS ? CSVI_DENSE_MAX_TASKS : n;
    atomic_store_explicit(&product_tasks, clamped, memory_order_relaxed);
}

int csvi_dense_product_tasks(void) {
    return atomic_load_explicit(&product_tasks, memory_order_relaxed);
}

typedef struct {
    char ta, tb;
    int m, n, k, lda, ldb, ldc, per_task, split_columns, single;
    const void *a, *b;
    void *c;
    double beta;
} gemm_job;

static void gemm_task(void *ctx, int64_t task) {
    const gemm_job *j = ctx;
    const int64_t lo = task * j->per_task;
    const int dim = j->split_columns ? j->n : j->m;
    int part = (int)(lo + j->per_task < dim ? j->per_task : dim - lo);
    int m = j->split_columns ? j->m : part, n = j->split_columns ? part : j->n;
    int k = j->k, lda = j->lda, ldb = j->ldb, ldc = j->ldc;
    char ta = j->ta, tb = j->tb;
    /* offsets, in elements, of the task's block of op(A) or op(B), and of C */
    const int64_t a_off = j->split_columns ? 0 : (ta == 'N' ? lo : lo * lda);
    const int64_t b_off = j->split_columns ? (tb == 'N' ? lo * ldb : lo) : 0;
    const int64_t c_off = j->split_columns ? lo * ldc : lo;
    if (j->single) {
        float alpha = 1.0f, beta = (float)j->beta;
        csvi_ext.sgemm(&ta, &tb, &m, &n, &k, &alpha, (float *)j->a + a_off, &lda,
                       (float *)j->b + b_off, &ldb, &beta, (float *)j->c + c_off, &ldc);
    } else {
        double alpha = 1.0, beta = j->beta;
        csvi_ext.dgemm(&ta, &tb, &m, &n, &k, &alpha, (double *)j->a + a_off, &lda,
                       (double *)j->b + b_off, &ldb, &beta, (double *)j->c + c_off, &ldc);
    }
}

/* One or two independent products run in one parallel region: a VJP's dx
 * and dW share the cap, so with the default two tasks each is one call on
 * its own thread -- neither operand packed twice, one barrier for both. */
typedef struct {
    gemm_job job[2];
    int tasks[2], n_jobs;
} gemm_set;

/* Adds C = op(A) op(B) + beta C, in float32 when `single`, to the set,
 * split under `cap` (see above). */
static void gemm_set_add(gemm_set *s, int single, char ta, char tb, int m, int n, int k,
                         const void *a, int lda, const void *b, int ldb, double beta, void *c,
                         int ldc, int cap) {
    gemm_job *j = &s->job[s->n_jobs];
    int *tasks = &s->tasks[s->n_jobs++];
    *j = (gemm_job){.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,
                    .ldc = ldc, .single = single, .a = a, .b = b, .c = c, .beta = beta};
    /* cutting C's columns repacks op(A) (m x k) in every task, its rows op(B) */
    j->split_columns = m <= n;
    const int dim = j->split_columns ? n : m;
    const int64_t work = (int64_t)m * n * k;
    *tasks = 1;
    while (*tasks < cap && dim / (*tasks + 1) >= GEMM_MIN_DIM
           && work / (*tasks + 1) >= GEMM_MIN_WORK)
        (*tasks)++;
    j->per_task = (dim + *tasks - 1) / *tasks;
}

static void gemm_set_task(void *ctx, int64_t task) {
    gemm_set *s = ctx;
    if (task < s->tasks[0])
        gemm_task(&s->job[0], task);
    else
        gemm_task(&s->job[1], task - s->tasks[0]);
}

static void gemm_set_run(gemm_set *s) {
    int64_t total = 0, smallest = INT64_MAX;
    for (int i = 0; i < s->n_jobs; i++) {
        const int64_t work = (int64_t)s->job[i].m * s->job[i].n * s->job[i].k;
        total += s->tasks[i];
        smallest = work < smallest ? work : smallest;
    }
    csvi_parallel_tasks(total, total > 1 ? CSVI_OVER(smallest, GEMM_MIN_WORK) : 0, 0,
                        gemm_set_task, s);
}

/* C = op(A) op(B) + beta C, in float32 when `single`, over the pool. */
static void gemm(int single, char ta, char tb, int m, int n, int k, const void *a, int lda,
                 const void *b, int ldb, double beta, void *c, int ldc) {
    gemm_set s = {.n_jobs = 0};
    gemm_set_add(&s, single, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc,
                 csvi_dense_product_tasks());
    gemm_set_run(&s);
}

/* The VJP's products: dx = gz W and dW = gz^T x (either may be absent),
 * stored (float32, into the aux) or added (float64, into the gradients);
 * one after the other when both add into one buffer (x is W). */
static void vjp_products(int single, int k, int n, int m, const void *w, const void *x,
                         const void *gz, void *dx, void *dw, double beta) {
    const int cap = csvi_dense_product_tasks();
    const int together = dx && dw && dx != dw;
    const int share = together && cap > 1 ? cap / 2 : cap;
    gemm_set s = {.n_jobs = 0};
    if (dx) gemm_set_add(&s, single, 'N', 'N', k, n, m, w, k, gz, m, beta, dx, k, share);
    if (dw && !together && s.n_jobs) {
        gemm_set_run(&s);
        s.n_jobs = 0;
    }
    if (dw) gemm_set_add(&s, single, 'N', 'T', k, m, n, x, k, gz, m, beta, dw, k, share);
    if (s.n_jobs) gemm_set_run(&s);
}

/* A record's aux slot: with an activation, the pre-activation z (softplus'
 * or sigmoid' in its place: dense_rows_fwd) and the VJP's gz in float64
 * (n * m doubles each; gz feeds a float64 record's products, and is the
 * forward's scratch for e^-|z|; a float32 record's softplus' or sigmoid'
 * is float32, in gz's first half: act32_derivative); in a float32 record,
 * then float32 copies of x (n * k) and W (m * k), then the product x W^T in
 * the forward and gz in the VJP (n * m), then the VJP's products: x's
 * gradient (n * k; kept there for the record that computed x, when a
 * compiled step says so: CSVI_DENSE_IATTR_DX32_KEPT) and W's (m * k).
 * csvi/_nn.pxi sizes the slot by the same count (_dense32_floats). */
typedef struct {
    float *x, *w, *prod, *dx, *dw;
} dense32_layout;

static int64_t dense32_floats(int64_t n, int64_t k, int64_t m) {
    return 2 * n * k + 2 * m * k + n * m;
}

/* The float32 part of a float32 record's aux, after its first `head`
 * doubles (z and gz), or all NULL if the slot is too small for it. */
static dense32_layout dense32_at(const csvi_slot *aux, int64_t head, int64_t n, int64_t k,
                                 int64_t m) {
    dense32_layout l = {0};
    if (aux->size * 2 < head * 2 + dense32_floats(n, k, m)) return l;
    l.x = (float *)(aux->data + head);
    l.w = l.x + n * k;
    l.prod = l.w + m * k;
    l.dx = l.prod + n * m;
    l.dw = l.dx + n * k;
    return l;
}

/* A float32 record's aux layout, read from the record alone (for program.c). */
static dense32_layout dense32_of(const csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *w = CSVI_IN(t, op, 1);
    const int64_t z_size = op->iattr[0] != CSVI_DENSE_NONE ? CSVI_OUT(t, op)->size : 0;
    return dense32_at(CSVI_AUX(t, op), 2 * z_size, x->shape[0], x->shape[1], w->shape[0]);
}

/* Where a float32 record's x copy is (CSVI_DENSE_IATTR_X32_FROM): its own
 * aux, or the earlier reader's of the same x. */
static float *x32_of(const csvi_tape *t, const csvi_op *op, float *own) {
    const int64_t from = op->iattr[CSVI_DENSE_IATTR_X32_FROM];
    return from > 0 ? dense32_of(t, &t->ops[from - 1]).x : own;
}

const float *csvi_dense_weight_grad32(const csvi_tape *t, const csvi_op *op) {
    return dense32_of(t, op).dw;
}

float *csvi_dense_weight32(const csvi_tape *t, const csvi_op *op) {
    return dense32_of(t, op).w;
}

/* Where a float32 record keeps softplus' or sigmoid' (float32, the first
 * n * m floats of its aux's gz half), or NULL: other records keep act'(z)
 * or z itself in float64. */
static float *act32_derivative(const csvi_tape *t, const csvi_op *op) {
    const int act = (int)op->iattr[0];
    if (op->iattr[1] != CSVI_DENSE_FLOAT32 || op->aux < 0 ||
        (act != CSVI_DENSE_SOFTPLUS && act != CSVI_DENSE_SIGMOID))
        return NULL;
    return (float *)(CSVI_AUX(t, op)->data + CSVI_OUT(t, op)->size);
}

int csvi_dense_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *w = CSVI_IN(t, op, 1);
    csvi_slot *y = CSVI_OUT(t, op);
    int n = (int)x->shape[0], k = (int)x->shape[1], m = (int)w->shape[0];
    const int act = (int)op->iattr[0], precision = (int)op->iattr[1];
    const int float32 = precision == CSVI_DENSE_FLOAT32;
    if (act < 0 || act >= CSVI_DENSE_ACT_COUNT
        || ((act != CSVI_DENSE_NONE || float32) && op->aux < 0)
        || (!float32 && precision != CSVI_DENSE_FLOAT64)
        || (float32 && csvi_ext.sgemm == NULL))
        return CSVI_ERR_VALUE;
    const int64_t z_size = act != CSVI_DENSE_NONE ? y->size : 0;
    if (z_size && CSVI_AUX(t, op)->size < 2 * z_size) return CSVI_ERR_SHAPE;
    dense32_layout l = {0};
    if (float32) {  /* z and gz, then the float32 part */
        l = dense32_at(CSVI_AUX(t, op), 2 * z_size, n, k, m);
        if (!l.x) return CSVI_ERR_SHAPE;
    }
    if (n == 0 || m == 0) return CSVI_OK;
    if (k == 0) {
        if (float32) {
            for (int64_t i = 0; i < y->size; i++) l.prod[i] = 0.0f;
        } else {
            for (int64_t i = 0; i < y->size; i++) y->data[i] = 0.0;
        }
    } else if (float32) {
        if (op->iattr[CSVI_DENSE_IATTR_X32_FROM] > 0)  /* made this step, by another record */
            l.x = x32_of(t, op, l.x);
        else
            csvi_dense_narrow(x->data, (int64_t)n * k, l.x);
        if (!op->iattr[CSVI_DENSE_IATTR_W32_KEPT])
            csvi_dense_narrow(w->data, (int64_t)m * k, l.w);
        gemm(1, 'T', 'N', m, n, k, l.w, k, l.x, k, 0.0, l.prod, m);
    } else {
        gemm(0, 'T', 'N', m, n, k, w->data, k, x->data, k, 0.0, y->data, m);
    }
    dense_job j = {.y = y->data, .z = z_size ? CSVI_AUX(t, op)->data : NULL,
                   .gz = z_size ? CSVI_AUX(t, op)->data + z_size : NULL, .y32 = l.prod,
                   .b = op->n_in > 2 ? CSVI_IN(t, op, 2)->data : NULL, .n = n, .m = m,
                   .act = act, .threshold = op->dattr[0], .d32 = act32_derivative(t, op)};
    if (float32 && op->iattr[CSVI_DENSE_IATTR_X32_TO] > 0)
        j.y32_out = dense32_of(t, &t->ops[op->iattr[CSVI_DENSE_IATTR_X32_TO] - 1]).x;
    if (j.b == NULL && j.z == NULL && j.y32 == NULL) return CSVI_OK;
    int64_t n_tasks;
    split_rows(&j, &n_tasks);
    csvi_parallel_tasks(n_tasks, CSVI_OVER(y->size, parallel_from(act)), 0, dense_rows_fwd, &j);
    return CSVI_OK;
}

/* A compiled step may leave x's and W's gradient buffers uncleared
 * (program.c): the widened products are then stored by the first write
 * (csvi_grad_claim), with the bits an add into zeros gives. */
int csvi_dense_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *w = CSVI_IN(t, op, 1);
    const csvi_slot *b = op->n_in > 2 ? CSVI_IN(t, op, 2) : NULL;
    const csvi_slot *y = CSVI_OUT(t, op);
    int n = (int)x->shape[0], k = (int)x->shape[1], m = (int)w->shape[0];
    const int act = (int)op->iattr[0];
    const int float32 = op->iattr[1] == CSVI_DENSE_FLOAT32;
    const int dx_kept = float32 && op->iattr[CSVI_DENSE_IATTR_DX32_KEPT];
    if (n == 0 || m == 0) return CSVI_OK;
    if (!dx_kept && !x->grad && !w->grad && !(b && b->grad)) return CSVI_OK;
    /* float32: the forward's copies of x and W, and gz rounded once for both
     * products (by the activation's pass while each row is in cache) */
    dense32_layout l = {0};
    const int products32 = k > 0 && float32 && (dx_kept || x->grad || w->grad);
    const int64_t z_size = act != CSVI_DENSE_NONE ? y->size : 0;
    if (products32) {
        l = dense32_at(CSVI_AUX(t, op), 2 * z_size, n, k, m);
        if (!l.x) return CSVI_ERR_SHAPE;
        l.x = x32_of(t, op, l.x);
    }
    /* gz: g itself (no activation), or after z in the record's aux, where
     * float64 products read it */
    double *gz = y->grad;
    if (act != CSVI_DENSE_NONE) {
        if (CSVI_AUX(t, op)->size < 2 * z_size) return CSVI_ERR_SHAPE;
        gz = CSVI_AUX(t, op)->data + z_size;
    }
    dense_job j = {.z = act != CSVI_DENSE_NONE ? t->slots[op->aux].data : NULL, .g = y->grad,
                   .d32 = act32_derivative(t, op),
                   .gz = act != CSVI_DENSE_NONE && !float32 ? gz : NULL, .gz32 = l.prod,
                   .db = b && b->grad ? b->grad : NULL, .n = n, .m = m, .act = act};
    for (int q = 0; float32 && q < CSVI_DENSE_DX32_READERS; q++) {
        const int64_t reader = op->iattr[CSVI_DENSE_IATTR_DX32_FROM + q];
        if (reader > 0) j.g32[j.n_g32++] = dense32_of(t, &t->ops[reader - 1]).dx;
    }
    const int64_t probs_of = op->iattr[CSVI_DENSE_IATTR_PROBS_OF];
    if (probs_of > 0) {
        const csvi_op *bern = &t->ops[probs_of - 1];
        j.probs_x = CSVI_IN(t, bern, 0)->data;
        j.probs_g = CSVI_OUT(t, bern)->grad;
        j.probs_scale = bern->dattr[0];
        j.probs_whole = CSVI_OUT(t, bern)->size == 1;
        j.y = y->data;
        if (!j.probs_g) return CSVI_ERR_VALUE;
    }
    if (j.n_g32 || j.probs_x) j.g = NULL;
    else if (!j.g) return CSVI_ERR_VALUE;
    if (j.gz || j.gz32 || j.db)
        csvi_parallel_tasks((m + VJP_COLUMNS - 1) / VJP_COLUMNS,
                            CSVI_OVER(y->size, parallel_from(act)), 0, dense_columns_vjp, &j);
    if (products32) {
        /* dx (kept: x's producer reads l.dx) and dW, stored into the aux */
        const int want_dx = dx_kept || x->grad != NULL;
        vjp_products(1, k, n, m, l.w, l.x, l.prod, want_dx ? l.dx : NULL,
                     w->grad ? l.dw : NULL, 0.0);
        if (want_dx && !dx_kept)  /* dx += the product */
            widen_add(l.dx, (int64_t)n * k, x->grad, csvi_grad_claim(t, op->in[0]));
        if (w->grad) {  /* dW += the product */
            const int first = csvi_grad_claim(t, op->in[1]);
            if (first && op->iattr[CSVI_DENSE_IATTR_GRAD32])  /* the optimizer reads l.dw */
                t->grad_fresh[op->in[1]] = CSVI_GRAD_FLOAT32;
            else
                widen_add(l.dw, (int64_t)m * k, w->grad, first);
        }
    } else if (k > 0) {  /* dx += gz W, dW += gz^T x */
        vjp_products(0, k, n, m, w->data, x->data, gz, x->grad, w->grad, 1.0);
    }
    return CSVI_OK;
}
