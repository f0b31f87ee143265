/* SUBSAMPLE: a plate's minibatch, drawn inside the tape so a compiled loop
 * draws a fresh one every step.  iattr[0] = n; the output (k,) holds k
 * distinct indices of range(n).  Robert Floyd's algorithm takes O(k) draws; the
 * aux slot (a power of two >= 2k) is an open-addressing set of chosen
 * indices, so nothing is allocated and nothing of size n is touched. */
#include <math.h>
#include "csvi_opcodes.h"
#include "csvi_rng.h"

static int set_insert(double *table, int64_t mask, int64_t value) {
    /* returns 1 if inserted, 0 if already present; empty cells hold -1 */
    uint64_t h = (uint64_t)value * 0x9E3779B97F4A7C15ULL;
    for (int64_t i = (int64_t)(h >> 11) & mask;; i = (i + 1) & mask) {
        if (table[i] < 0) {
            table[i] = (double)value;
            return 1;
        }
        if (table[i] == (double)value) return 0;
    }
}

int csvi_subsample_fwd(csvi_tape *t, const csvi_op *op) {
    const int64_t n = op->iattr[0];
    csvi_slot *out = CSVI_OUT(t, op), *aux = CSVI_AUX(t, op);
    const int64_t k = out->size;
    const int64_t mask = aux->size - 1;
    if (k > n || aux->size < 2 * k || (aux->size & mask) != 0) return CSVI_ERR_SHAPE;
    for (int64_t i = 0; i < aux->size; i++) aux->data[i] = -1.0;
    int64_t filled = 0;
    for (int64_t j = n - k; j < n; j++) {
        int64_t pick = (int64_t)floor(random_standard_uniform(t->rng) * (double)(j + 1));
        if (pick > j) pick = j;
        if (!set_insert(aux->data, mask, pick)) {
            pick = j; /* j itself is never in the set yet */
            set_insert(aux->data, mask, pick);
        }
        out->data[filled++] = (double)pick;
    }
    return CSVI_OK;
}
