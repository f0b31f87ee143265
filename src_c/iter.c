/* Broadcast iteration setup (the loop itself is the CSVI_ITER_LOOP macro). */
#include <string.h>
#include "csvi_iter.h"

void csvi_iter_start(csvi_iter *it, int ndim, const int64_t *shape) {
    memset(it, 0, sizeof(*it));
    it->ndim = ndim;
    it->size = 1;
    for (int d = 0; d < ndim; d++) {
        it->shape[d] = shape[d];
        it->size *= shape[d];
    }
}

void csvi_iter_add(csvi_iter *it, int ndim, const int64_t *shape) {
    int64_t *st = it->stride[it->n++];
    int64_t step = 1;
    for (int d = it->ndim - 1, e = ndim - 1; d >= 0; d--, e--) {
        if (e < 0 || shape[e] == 1) {
            st[d] = 0;
        } else {
            st[d] = step;
            step *= shape[e];
        }
    }
}

void csvi_iter_add_strided(csvi_iter *it, const int64_t *strides) {
    int64_t *st = it->stride[it->n++];
    for (int d = 0; d < it->ndim; d++) st[d] = strides[d];
}

void csvi_iter_finish(csvi_iter *it) {
    /* drop size-1 dims */
    int nd = 0;
    for (int d = 0; d < it->ndim; d++) {
        if (it->shape[d] == 1) continue;
        it->shape[nd] = it->shape[d];
        for (int k = 0; k < it->n; k++) it->stride[k][nd] = it->stride[k][d];
        nd++;
    }
    /* merge dim d into d+1 when every operand steps through them as one run */
    int m = 0;
    for (int d = 0; d < nd; d++) {
        if (m > 0) {
            int ok = 1;
            for (int k = 0; k < it->n; k++)
                if (it->stride[k][m - 1] != it->stride[k][d] * it->shape[d]) ok = 0;
            if (ok) {
                it->shape[m - 1] *= it->shape[d];
                for (int k = 0; k < it->n; k++) it->stride[k][m - 1] = it->stride[k][d];
                continue;
            }
        }
        it->shape[m] = it->shape[d];
        for (int k = 0; k < it->n; k++) it->stride[k][m] = it->stride[k][d];
        m++;
    }
    for (int d = m; d < CSVI_MAX_DIMS; d++) {
        it->shape[d] = 1;
        for (int k = 0; k < CSVI_ITER_MAX_OPERANDS; k++) it->stride[k][d] = 0;
    }
    it->ndim = m;
    it->contiguous = 1;
    if (m > 1) it->contiguous = 0;
    for (int k = 0; k < it->n && m == 1; k++)
        if (it->stride[k][0] != 1) it->contiguous = 0;
}

/* The usual case -- every input the output's shape or a single number --
 * set up directly as one flat dim: what start, add and finish would give,
 * without their work over every dim (a small model's ops are mostly setup). */
static int flat_slots(csvi_iter *it, const csvi_slot *out, int n_in,
                      const csvi_slot *const *ins) {
    for (int k = 0; k < n_in; k++)
        if (ins[k]->size != 1 && !csvi_slot_same_shape(ins[k], out)) return 0;
    it->n = n_in + 1;
    it->size = out->size;
    it->ndim = out->size > 1;
    it->contiguous = 1;
    for (int d = 0; d < CSVI_MAX_DIMS; d++) it->shape[d] = 1;
    it->shape[0] = out->size;
    for (int k = 0; k < CSVI_ITER_MAX_OPERANDS; k++)
        for (int d = 0; d < CSVI_MAX_DIMS; d++) it->stride[k][d] = 0;
    if (!it->ndim) return 1;
    it->stride[0][0] = 1;
    for (int k = 0; k < n_in; k++) {
        it->stride[k + 1][0] = ins[k]->size == 1 ? 0 : 1;
        if (ins[k]->size == 1) it->contiguous = 0;
    }
    return 1;
}

void csvi_iter_slots(csvi_iter *it, const csvi_slot *out, int n_in,
                     const csvi_slot *const *ins) {
    if (flat_slots(it, out, n_in, ins)) return;
    csvi_iter_start(it, out->ndim, out->shape);
    csvi_iter_add(it, out->ndim, out->shape);
    for (int k = 0; k < n_in; k++) csvi_iter_add(it, ins[k]->ndim, ins[k]->shape);
    csvi_iter_finish(it);
}
