/* Data movement: transpose, gather by flat index, take by runtime indices, concat. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "csvi_checks.h"
#include "csvi_iter.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_vmath.h"

/* Iteration over the output with the input walked through permutation
 * iattr[0..ndim): out axis d is input axis perm[d]. */
static void transpose_iter(csvi_iter *it, const csvi_slot *x, const csvi_slot *y,
                           const int64_t *perm) {
    int64_t xstride[CSVI_MAX_DIMS], perm_stride[CSVI_MAX_DIMS];
    int64_t step = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        xstride[d] = step;
        step *= x->shape[d];
    }
    for (int d = 0; d < y->ndim; d++) perm_stride[d] = xstride[perm[d]];
    csvi_iter_start(it, y->ndim, y->shape);
    csvi_iter_add(it, y->ndim, y->shape);
    csvi_iter_add_strided(it, perm_stride);
    csvi_iter_finish(it);
}

/* A matrix's transpose (a Linear layer's weight, 400 x 784) in 32 x 32
 * tiles: the strided side stays in cache.  Each element is copied (or, in
 * the VJP, added) once, as by the general loop, so the results are the same. */
#define TILE 32

static void transpose_2d(const double *x, double *y, int64_t rows, int64_t cols, int add) {
    for (int64_t i0 = 0; i0 < rows; i0 += TILE) {
        const int64_t i1 = i0 + TILE < rows ? i0 + TILE : rows;
        for (int64_t j0 = 0; j0 < cols; j0 += TILE) {
            const int64_t j1 = j0 + TILE < cols ? j0 + TILE : cols;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) {
                    if (add) y[j * rows + i] += x[i * cols + j];
                    else y[j * rows + i] = x[i * cols + j];
                }
        }
    }
}

static int is_matrix_transpose(const csvi_slot *x, const csvi_op *op) {
    return x->ndim == 2 && op->iattr[0] == 1 && op->iattr[1] == 0;
}

int csvi_transpose_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    if (is_matrix_transpose(x, op)) {
        transpose_2d(x->data, y->data, x->shape[0], x->shape[1], 0);
        return CSVI_OK;
    }
    csvi_iter it;
    transpose_iter(&it, x, y, op->iattr);
    const double *xd = x->data;
    double *yd = y->data;
    CSVI_ITER_LOOP(&it, { yd[o0] = xd[o1]; });
    return CSVI_OK;
}

int csvi_transpose_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    const csvi_slot *y = CSVI_OUT(t, op);
    double *gx = x->grad;
    const double *g = y->grad;
    if (!gx) return CSVI_OK;
    if (is_matrix_transpose(x, op)) {  /* gx += g^T, g being (cols, rows) */
        transpose_2d(g, gx, y->shape[0], y->shape[1], 1);
        return CSVI_OK;
    }
    csvi_iter it;
    transpose_iter(&it, x, y, op->iattr);
    CSVI_ITER_LOOP(&it, { gx[o1] += g[o0]; });
    return CSVI_OK;
}

/* Positions per block of GATHER's forward (on the stack). */
#define GATHER_BLOCK 512

/* y[k] = x[p[k]]: vector gathers where the CPU has them (the scalar loop
 * was half of an eager a[group]'s gather of 10,000). */
static CSVI_HOT void gather_block(const double *restrict x, const int32_t *restrict p,
                                  double *restrict y, int64_t n) {
    for (int64_t k = 0; k < n; k++) y[k] = x[p[k]];
}

/* GATHER: inputs (x, index); out[i] = x[index[i]], index holding flat
 * positions in x (any NumPy indexing expression, resolved when recorded),
 * checked and converted a block at a time (an early exit per element had
 * kept a[group]'s eager gather scalar). */
int csvi_gather_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *ix = CSVI_IN(t, op, 1);
    csvi_slot *y = CSVI_OUT(t, op);
    if (x->size > INT32_MAX) {  /* positions beyond int32: one at a time */
        for (int64_t i = 0; i < y->size; i++) {
            const double d = ix->data[i];
            if (!(d > -1.0 && d < (double)x->size)) return CSVI_ERR_INDEX;
            y->data[i] = x->data[(int64_t)d];
        }
        return CSVI_OK;
    }
    int32_t p[GATHER_BLOCK];
    for (int64_t i0 = 0; i0 < y->size; i0 += GATHER_BLOCK) {
        const int64_t count = y->size - i0 < GATHER_BLOCK ? y->size - i0 : GATHER_BLOCK;
        if (csvi_gather_positions(ix->data + i0, count, x->size, p)) return CSVI_ERR_INDEX;
        gather_block(x->data, p, y->data + i0, count);
    }
    return CSVI_OK;
}

/* gx[position[i]] += g[i] for i in [lo, hi), in order; a run of equal
 * positions (a[group] with sorted groups) adds in a register, which gives
 * the element-by-element sums. */
static void gather_vjp_walk(const double *position, const double *g, double *gx, int64_t lo,
                            int64_t hi) {
    if (hi <= lo) return;
    int64_t k = (int64_t)position[lo];
    double acc = gx[k];
    for (int64_t i = lo; i < hi; i++) {
        const int64_t ki = (int64_t)position[i];
        if (ki != k) {
            gx[k] = acc;
            k = ki;
            acc = gx[k];
        }
        acc += g[i];
    }
    gx[k] = acc;
}

/* One walk is a chain of dependent adds (an eager a[group]'s VJP was ~6 us
 * at 10,000 rows).  When the positions never decrease, GATHER_VJP_LANES
 * stretches, each starting where the (truncated) position changes, touch
 * disjoint elements of gx, so their walks run side by side and every
 * element still takes its terms in order: the same bits. */
#define GATHER_VJP_LANES 4
#define GATHER_VJP_MIN_LANES 1024

int csvi_gather_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *ix = CSVI_IN(t, op, 1);
    const csvi_slot *y = CSVI_OUT(t, op);
    const double *position = ix->data, *g = y->grad;
    double *gx = x->grad;
    const int64_t n = y->size;
    if (!gx || n == 0) return CSVI_OK;
    if (n < GATHER_VJP_MIN_LANES || !csvi_nondecreasing(position, n)) {
        gather_vjp_walk(position, g, gx, 0, n);
        return CSVI_OK;
    }
    int64_t start[GATHER_VJP_LANES + 1], k[GATHER_VJP_LANES], common = n;
    double acc[GATHER_VJP_LANES];
    start[0] = 0;
    start[GATHER_VJP_LANES] = n;
    for (int s = 1; s < GATHER_VJP_LANES; s++) {
        int64_t b = n * s / GATHER_VJP_LANES;
        if (b < start[s - 1]) b = start[s - 1];
        while (b < n && (int64_t)position[b] == (int64_t)position[b - 1]) b++;
        start[s] = b;
    }
    for (int s = 0; s < GATHER_VJP_LANES; s++) {
        const int64_t len = start[s + 1] - start[s];
        common = len < common ? len : common;
        k[s] = len ? (int64_t)position[start[s]] : 0;
        acc[s] = len ? gx[k[s]] : 0.0;
    }
    for (int64_t i = 0; i < common; i++)
        for (int s = 0; s < GATHER_VJP_LANES; s++) {
            const int64_t j = start[s] + i, kj = (int64_t)position[j];
            if (kj != k[s]) {
                gx[k[s]] = acc[s];
                k[s] = kj;
                acc[s] = gx[kj];
            }
            acc[s] += g[j];
        }
    for (int s = 0; s < GATHER_VJP_LANES; s++) {
        if (start[s + 1] == start[s]) continue;
        gx[k[s]] = acc[s];  /* the rest of the stretch picks the run up from here */
        gather_vjp_walk(position, g, gx, start[s] + common, start[s + 1]);
    }
    return CSVI_OK;
}

/* TAKE: inputs (x, i_0, ..., i_{m-1}), 1 <= m <= 7, picked at run time (a
 * sampled category, a plate's subsample, enumerated values):
 *     out[b..., r...] = x[i_0[b...], ..., i_{m-1}[b...], r...]
 * The index slots broadcast (right-aligned, NumPy's rule) against the batch
 * shape B, the output's leading ndim - (x->ndim - m) dims; negatives wrap.
 * An index that is not a whole number in [-n, n) of its dim is CSVI_ERR_INDEX
 * (Python names the dim from the slots, csvi/_ops.pxi).  iattr[k] is left to
 * Python (the user's dim that index k picks from, for that message). */
typedef struct {
    int m, nb;
    int64_t bshape[CSVI_MAX_DIMS];
    int64_t stride[CSVI_MAX_INPUTS - 1][CSVI_MAX_DIMS];  /* per index, per batch dim */
    int64_t rows[CSVI_MAX_INPUTS - 1];                    /* rows of x per unit of index k */
    int64_t batch, inner;
} take_geometry;

static int take_setup(const csvi_tape *t, const csvi_op *op, take_geometry *g) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *y = CSVI_OUT(t, op);
    g->m = op->n_in - 1;
    g->nb = y->ndim - (x->ndim - g->m);
    if (g->m < 1 || g->m > x->ndim || g->nb < 0) return CSVI_ERR_SHAPE;
    g->inner = 1;
    for (int d = g->m; d < x->ndim; d++) {
        if (y->shape[g->nb + d - g->m] != x->shape[d]) return CSVI_ERR_SHAPE;
        g->inner *= x->shape[d];
    }
    g->batch = 1;
    for (int d = 0; d < g->nb; d++) {
        g->bshape[d] = y->shape[d];
        g->batch *= y->shape[d];
    }
    int64_t rows = 1;
    for (int k = g->m - 1; k >= 0; k--) {
        g->rows[k] = rows;
        rows *= x->shape[k];
        const csvi_slot *ix = CSVI_IN(t, op, k + 1);
        const int lead = g->nb - ix->ndim;
        if (lead < 0) return CSVI_ERR_SHAPE;
        int64_t step = 1;
        for (int d = g->nb - 1; d >= 0; d--) {
            const int64_t n = d < lead ? 1 : ix->shape[d - lead];
            if (n != 1 && n != g->bshape[d]) return CSVI_ERR_SHAPE;
            g->stride[k][d] = n == 1 ? 0 : step;
            step *= n;
        }
    }
    return CSVI_OK;
}

/* Converts index slot k once, before the loop that may read each value many
 * times (an enumerated index broadcast over a batch): out[e] = the value's
 * row offset in x (wrapped, times rows[k]), or an error for a value that is
 * not a whole number in [-n, n). */
static int take_offsets(const csvi_slot *ix, int64_t n, int64_t rows, int64_t *out) {
    const double hi = (double)n;
    for (int64_t e = 0; e < ix->size; e++) {
        const double v = ix->data[e];
        /* range-check before converting: casting NaN, inf or |v| >= 2^63 is UB */
        if (!(v >= -hi && v < hi)) return CSVI_ERR_INDEX;
        int64_t i = (int64_t)v;
        if ((double)i != v) return CSVI_ERR_INDEX;
        out[e] = (i < 0 ? i + n : i) * rows;
    }
    return CSVI_OK;
}

/* Copies rows out (forward) or adds them back (VJP), the last batch dim as
 * the inner loop and the others by an odometer; offs[k] are index k's row
 * offsets. */
static void take_loop(const take_geometry *g, int64_t *const *offs, const double *src,
                      double *dst, int vjp) {
    const int64_t last = g->nb ? g->bshape[g->nb - 1] : 1, inner = g->inner;
    int64_t step[CSVI_MAX_INPUTS - 1], off[CSVI_MAX_INPUTS - 1] = {0}, ctr[CSVI_MAX_DIMS] = {0};
    for (int k = 0; k < g->m; k++) step[k] = g->nb ? g->stride[k][g->nb - 1] : 0;
    int64_t j = 0;
    for (int64_t o = 0; o < g->batch / last; o++) {
        for (int64_t c = 0; c < last; c++, j++) {
            int64_t row = 0;
            for (int k = 0; k < g->m; k++) row += offs[k][off[k] + c * step[k]];
            if (inner == 1) {
                if (vjp) dst[row] += src[j];
                else dst[j] = src[row];
            } else if (vjp) {
                for (int64_t r = 0; r < inner; r++) dst[row * inner + r] += src[j * inner + r];
            } else {
                memcpy(dst + j * inner, src + row * inner, (size_t)inner * sizeof(double));
            }
        }
        for (int d = g->nb - 2; d >= 0; d--) {
            for (int k = 0; k < g->m; k++) off[k] += g->stride[k][d];
            if (++ctr[d] < g->bshape[d]) break;
            for (int k = 0; k < g->m; k++) off[k] -= g->stride[k][d] * g->bshape[d];
            ctr[d] = 0;
        }
    }
}

#define TAKE_STACK_OFFSETS 512

/* A large forward with one index over one batch dim (a minibatch of data
 * rows, x[idx]) copies its rows over csvi's pool, in tasks of about
 * CSVI_BLOCK elements fixed by the sizes (a copy: any split, the same
 * bits); from TAKE_PARALLEL elements, so a small step waits for no worker. */
#define TAKE_PARALLEL 65536

typedef struct {
    const int64_t *offs;
    int64_t step, inner, rows_per_task, batch;
    const double *src;
    double *dst;
} take_rows_job;

static void take_rows(void *ctx, int64_t task) {
    const take_rows_job *j = ctx;
    const int64_t r0 = task * j->rows_per_task;
    const int64_t r1 = r0 + j->rows_per_task < j->batch ? r0 + j->rows_per_task : j->batch;
    for (int64_t r = r0; r < r1; r++)
        memcpy(j->dst + r * j->inner, j->src + j->offs[r * j->step] * j->inner,
               (size_t)j->inner * sizeof(double));
}

/* The forward or the VJP of TAKE: indices converted once (into a stack
 * buffer when they are few, else one allocation per call), then the loop. */
static int take_run(csvi_tape *t, const csvi_op *op, int vjp) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *y = CSVI_OUT(t, op);
    if (vjp && !x->grad) return CSVI_OK;
    take_geometry g;
    int rc = take_setup(t, op, &g);
    if (rc || g.batch == 0) return rc;
    int64_t total = 0;
    for (int k = 0; k < g.m; k++) total += CSVI_IN(t, op, k + 1)->size;
    int64_t stack[TAKE_STACK_OFFSETS];
    int64_t *buffer = total <= TAKE_STACK_OFFSETS ? stack : malloc((size_t)total * sizeof(int64_t));
    if (!buffer) return CSVI_ERR_NOMEM;
    int64_t *offs[CSVI_MAX_INPUTS - 1];
    int64_t *next = buffer;
    for (int k = 0; k < g.m && rc == CSVI_OK; k++) {
        const csvi_slot *ix = CSVI_IN(t, op, k + 1);
        offs[k] = next;
        rc = take_offsets(ix, x->shape[k], g.rows[k], next);
        next += ix->size;
    }
    if (rc == CSVI_OK && !vjp && g.m == 1 && g.nb == 1 && g.batch * g.inner >= TAKE_PARALLEL) {
        take_rows_job j = {.offs = offs[0], .step = g.stride[0][0], .inner = g.inner,
                           .batch = g.batch, .src = x->data, .dst = y->data};
        j.rows_per_task = g.inner < CSVI_BLOCK ? CSVI_BLOCK / g.inner : 1;
        csvi_parallel_tasks((g.batch + j.rows_per_task - 1) / j.rows_per_task,
                            CSVI_OVER(g.batch * g.inner, CSVI_PAR_CHEAP), 0, take_rows, &j);
    } else if (rc == CSVI_OK) {
        if (vjp) take_loop(&g, offs, y->grad, x->grad, 1);
        else take_loop(&g, offs, x->data, y->data, 0);
    }
    if (buffer != stack) free(buffer);
    return rc;
}

int csvi_take_fwd(csvi_tape *t, const csvi_op *op) { return take_run(t, op, 0); }

int csvi_take_vjp(csvi_tape *t, const csvi_op *op) { return take_run(t, op, 1); }

/* CONCAT along axis iattr[0] of n_in inputs of equal rank. */
static void concat_geometry(const csvi_slot *y, int axis, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= y->shape[d];
    for (int d = axis + 1; d < y->ndim; d++) *inner *= y->shape[d];
}

int csvi_concat_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_slot *y = CSVI_OUT(t, op);
    const int axis = (int)op->iattr[0];
    int64_t outer, inner;
    concat_geometry(y, axis, &outer, &inner);
    const int64_t row = y->shape[axis] * inner;
    int64_t col = 0;
    for (int k = 0; k < op->n_in; k++) {
        const csvi_slot *x = CSVI_IN(t, op, k);
        const int64_t w = x->shape[axis] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(y->data + o * row + col, x->data + o * w, (size_t)w * sizeof(double));
        col += w;
    }
    return CSVI_OK;
}

int csvi_concat_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *y = CSVI_OUT(t, op);
    const int axis = (int)op->iattr[0];
    int64_t outer, inner;
    concat_geometry(y, axis, &outer, &inner);
    const int64_t row = y->shape[axis] * inner;
    int64_t col = 0;
    for (int k = 0; k < op->n_in; k++) {
        const csvi_slot *x = CSVI_IN(t, op, k);
        const int64_t w = x->shape[axis] * inner;
        if (x->grad)
            for (int64_t o = 0; o < outer; o++)
                for (int64_t r = 0; r < w; r++) x->grad[o * w + r] += y->grad[o * row + col + r];
        col += w;
    }
    return CSVI_OK;
}
