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
    if (!x->grad || y->size == 0) return CSVI_OK;
    /* a run of equal indices (a[group] with sorted groups) adds in a register,
     * in the same order as element by element */
    int64_t k = (int64_t)ix->data[0];
    double acc = x->grad[k];
    for (int64_t i = 0; i < y->size; i++) {
        const int64_t ki = (int64_t)ix->data[i];
        if (ki != k) {
            x->grad[k] = acc;
            k = ki;
            acc = x->grad[k];
        }
        acc += y->grad[i];
    }
    x->grad[k] = acc;
    return CSVI_OK;
}

/* TAKE: inputs (x, index); rows of x along axis 0 picked by a runtime index
 * slot (e.g. a sampled category or a plate's subsample), negatives wrap. */
static int take_row(const csvi_slot *x, double v, int64_t *row) {
    /* range-check before converting: casting NaN, inf or |v| >= 2^63 is UB */
    const double n = (double)x->shape[0];
    if (!(v >= -n && v < n) || v != floor(v)) return CSVI_ERR_INDEX;
    int64_t k = (int64_t)v;
    if (k < 0) k += x->shape[0];
    *row = k;
    return CSVI_OK;
}

int csvi_take_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *ix = CSVI_IN(t, op, 1);
    csvi_slot *y = CSVI_OUT(t, op);
    const int64_t inner = x->shape[0] ? x->size / x->shape[0] : 0;
    for (int64_t j = 0; j < ix->size; j++) {
        int64_t k;
        if (take_row(x, ix->data[j], &k)) return CSVI_ERR_INDEX;
        memcpy(y->data + j * inner, x->data + k * inner, (size_t)inner * sizeof(double));
    }
    return CSVI_OK;
}

int csvi_take_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *ix = CSVI_IN(t, op, 1);
    const csvi_slot *y = CSVI_OUT(t, op);
    if (!x->grad) return CSVI_OK;
    const int64_t inner = x->shape[0] ? x->size / x->shape[0] : 0;
    for (int64_t j = 0; j < ix->size; j++) {
        int64_t k;
        if (take_row(x, ix->data[j], &k)) return CSVI_ERR_INDEX;
        double *gx = x->grad + k * inner;
        const double *g = y->grad + j * inner;
        for (int64_t r = 0; r < inner; r++) gx[r] += g[r];
    }
    return CSVI_OK;
}

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
