/* Data movement: transpose, gather by flat index, take along axis 0, concat. */
#include <math.h>
#include <string.h>
#include "csvi_iter.h"
#include "csvi_opcodes.h"

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

/* GATHER: inputs (x, index); out[i] = x[index[i]], index holding flat
 * positions in x (any NumPy indexing expression, resolved when recorded). */
int csvi_gather_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *ix = CSVI_IN(t, op, 1);
    csvi_slot *y = CSVI_OUT(t, op);
    for (int64_t i = 0; i < y->size; i++) {
        const int64_t k = (int64_t)ix->data[i];
        if (k < 0 || k >= x->size) return CSVI_ERR_INDEX;
        y->data[i] = x->data[k];
    }
    return CSVI_OK;
}

int csvi_gather_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *ix = CSVI_IN(t, op, 1);
    const csvi_slot *y = CSVI_OUT(t, op);
    if (!x->grad) return CSVI_OK;
    for (int64_t i = 0; i < y->size; i++) x->grad[(int64_t)ix->data[i]] += y->grad[i];
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

/* The flat row of x that index values at offsets off[] pick, or an error. */
static int take_row(const csvi_tape *t, const csvi_op *op, const take_geometry *g,
                    const int64_t *off, int64_t *row) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    int64_t r = 0;
    for (int k = 0; k < g->m; k++) {
        /* range-check before converting: casting NaN, inf or |v| >= 2^63 is UB */
        const double v = CSVI_IN(t, op, k + 1)->data[off[k]], n = (double)x->shape[k];
        if (!(v >= -n && v < n) || v != floor(v)) return CSVI_ERR_INDEX;
        int64_t i = (int64_t)v;
        if (i < 0) i += x->shape[k];
        r += i * g->rows[k];
    }
    *row = r;
    return CSVI_OK;
}

/* Steps the batch counter ctr and every index's offset to the next element. */
static void take_next(const take_geometry *g, int64_t *ctr, int64_t *off) {
    for (int d = g->nb - 1; d >= 0; d--) {
        for (int k = 0; k < g->m; k++) off[k] += g->stride[k][d];
        if (++ctr[d] < g->bshape[d]) return;
        for (int k = 0; k < g->m; k++) off[k] -= g->stride[k][d] * g->bshape[d];
        ctr[d] = 0;
    }
}

/* Runs the forward (copy rows out) or the VJP (add rows back) of TAKE. */
static int take_run(csvi_tape *t, const csvi_op *op, int vjp) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *y = CSVI_OUT(t, op);
    if (vjp && !x->grad) return CSVI_OK;
    take_geometry g;
    int rc = take_setup(t, op, &g);
    if (rc) return rc;
    int64_t ctr[CSVI_MAX_DIMS] = {0}, off[CSVI_MAX_INPUTS - 1] = {0};
    for (int64_t j = 0; j < g.batch; j++) {
        int64_t row;
        if ((rc = take_row(t, op, &g, off, &row))) return rc;
        if (vjp) {
            double *gx = x->grad + row * g.inner;
            const double *gy = y->grad + j * g.inner;
            for (int64_t r = 0; r < g.inner; r++) gx[r] += gy[r];
        } else {
            memcpy(y->data + j * g.inner, x->data + row * g.inner,
                   (size_t)g.inner * sizeof(double));
        }
        take_next(&g, ctr, off);
    }
    return CSVI_OK;
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
