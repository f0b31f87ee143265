/* Fusion of a frozen program's ops (csvi_fuse.h). */
#include <stdlib.h>
#include "csvi_fuse.h"
#include "csvi_opcodes.h"

typedef struct {
    csvi_tape *t;
    int32_t *uses;         /* per slot: how many op inputs read it (keep: +1) */
    int32_t *producer;     /* per slot: the op writing it, or -1 */
    unsigned char *gone;   /* per op: folded into another */
} fuser;

/* The op reading slot s, when exactly one op reads it. */
static int32_t only_reader(const fuser *f, int32_t s) {
    if (f->uses[s] != 1) return -1;
    for (int32_t i = 0; i < f->t->n_ops; i++)
        for (int k = 0; k < f->t->ops[i].n_in; k++)
            if (f->t->ops[i].in[k] == s) return i;
    return -1;
}

/* BERNOULLI_LP of logits over equal shapes, its result read only by a
 * SUM_N: fold its logits' "+ c" (when the add's result is read by nothing
 * else) and the sum into BERNOULLI_LOGITS_SUM.  The fused op takes the add's
 * place when its data is ready by then, so the reverse sweep adds c's
 * gradient where the add did (a param read by several ops sums their
 * gradients in the same order as the eager tape). */
static int fuse_bernoulli_logits(fuser *f, int32_t i) {
    csvi_tape *t = f->t;
    csvi_op *op = &t->ops[i];
    if (op->code != CSVI_OP_BERNOULLI_LP || !op->iattr[0] || op->n_in != 2 || op->aux < 0)
        return 0;
    const int32_t x = op->in[0], l = op->in[1], o = op->out;
    csvi_slot *so = &t->slots[o];
    if (t->slots[x].needs_grad || !csvi_slot_same_shape(&t->slots[x], &t->slots[l]) ||
        !csvi_slot_same_shape(&t->slots[l], so) || t->slots[op->aux].size != so->size)
        return 0;
    const int32_t reader = only_reader(f, o);
    if (reader < 0 || t->ops[reader].code != CSVI_OP_SUM_N) return 0;
    op->code = CSVI_OP_BERNOULLI_LOGITS_SUM;
    so->ndim = 0;
    so->size = 1;
    const int32_t a = f->producer[l];
    if (a < 0 || t->ops[a].code != CSVI_OP_ADD || f->uses[l] != 1) return 1;
    const csvi_op add = t->ops[a];
    for (int k = 0; k < 2; k++) {
        const csvi_slot *z = &t->slots[add.in[k]], *c = &t->slots[add.in[1 - k]];
        if (!csvi_slot_same_shape(z, &t->slots[l]) || c->size != 1) continue;
        op->in[1] = add.in[k];
        op->in[2] = add.in[1 - k];
        op->n_in = 3;
        t->slots[l].needs_grad = 0;
        if (f->producer[x] < a) {
            t->ops[a] = *op;
            f->gone[i] = 1;
        } else {
            f->gone[a] = 1;
        }
        break;
    }
    return 1;
}

int csvi_fuse(csvi_tape *t, const int32_t *keep, int n_keep) {
    fuser f = {t, calloc((size_t)t->n_slots + 1, sizeof(int32_t)),
               malloc(((size_t)t->n_slots + 1) * sizeof(int32_t)),
               calloc((size_t)t->n_ops + 1, 1)};
    int fused = -1;
    if (!f.uses || !f.producer || !f.gone) goto done;
    for (int32_t s = 0; s < t->n_slots; s++) f.producer[s] = -1;
    for (int k = 0; k < n_keep; k++) f.uses[keep[k]] += 1;
    for (int32_t i = 0; i < t->n_ops; i++) {
        const csvi_op *op = &t->ops[i];
        for (int k = 0; k < op->n_in; k++) f.uses[op->in[k]] += 1;
        f.producer[op->out] = i;
    }
    fused = 0;
    for (int32_t i = 0; i < t->n_ops; i++) fused += fuse_bernoulli_logits(&f, i);
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_ops; i++)
        if (!f.gone[i]) t->ops[n++] = t->ops[i];
    t->n_ops = n;
done:
    free(f.uses);
    free(f.producer);
    free(f.gone);
    return fused;
}
