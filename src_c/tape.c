/* Tape storage and the reverse sweep. */
#include <stdlib.h>
#include <string.h>
#include "csvi_fuse.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"

const csvi_kernel csvi_kernels[CSVI_OP_COUNT] = {
#define CSVI_OP(name, fwd, vjp, flags, aux) [CSVI_OP_##name] = {fwd, vjp, #name, flags, aux},
#include "ops.def"
#include "distributions.def"
#include "transforms.def"
#include "special.def"
#include "draws.def"
#include "linalg.def"
#include "families.def"
#include "continuous.def"
#include "contract.def"
#include "nn.def"
#undef CSVI_OP
};

int csvi_slot_same_shape(const csvi_slot *a, const csvi_slot *b) {
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

int csvi_vjp_none(csvi_tape *t, const csvi_op *op) {
    (void)t;
    (void)op;
    return CSVI_OK;
}

void csvi_tape_init(csvi_tape *t) {
    memset(t, 0, sizeof(*t));
    t->failed_op = -1;
}

void csvi_tape_free(csvi_tape *t) {
    free(t->slots);
    free(t->ops);
    free(t->arena);
    free(t->live);
    free(t->sweep_work);
    csvi_tape_init(t);
}

void csvi_tape_clear(csvi_tape *t) {
    t->n_slots = 0;
    t->n_ops = 0;
    t->failed_op = -1;
}

int32_t csvi_tape_add_slot(csvi_tape *t, double *data, int32_t ndim,
                           const int64_t *shape, int32_t needs_grad) {
    if (ndim < 0 || ndim > CSVI_MAX_DIMS) return -1;
    if (t->n_slots == t->cap_slots) {
        int32_t cap = t->cap_slots ? 2 * t->cap_slots : 256;
        csvi_slot *s = realloc(t->slots, (size_t)cap * sizeof(csvi_slot));
        if (!s) return -1;
        t->slots = s;
        t->cap_slots = cap;
    }
    csvi_slot *s = &t->slots[t->n_slots];
    s->data = data;
    s->grad = NULL;
    s->ndim = ndim;
    s->needs_grad = needs_grad;
    s->copies = 1;
    s->size = 1;
    for (int d = 0; d < CSVI_MAX_DIMS; d++) s->shape[d] = d < ndim ? shape[d] : 1;
    for (int d = 0; d < ndim; d++) s->size *= shape[d];
    return t->n_slots++;
}

int32_t csvi_tape_add_op(csvi_tape *t, const csvi_op *op) {
    if (op->code < 0 || op->code >= CSVI_OP_COUNT) return -1;
    if (t->n_ops == t->cap_ops) {
        int32_t cap = t->cap_ops ? 2 * t->cap_ops : 256;
        csvi_op *o = realloc(t->ops, (size_t)cap * sizeof(csvi_op));
        if (!o) return -1;
        t->ops = o;
        t->cap_ops = cap;
    }
    t->ops[t->n_ops] = *op;
    return t->n_ops++;
}

int csvi_tape_forward_op(csvi_tape *t, int32_t i) {
    const csvi_op *op = &t->ops[i];
    int rc = csvi_kernels[op->code].fwd(t, op);
    if (rc) t->failed_op = i;
    return rc;
}

static void zero_block(void *ctx, int64_t lo, int64_t hi) {
    memset((double *)ctx + lo, 0, (size_t)(hi - lo) * sizeof(double));
}

/* Whether slot i gets a gradient buffer. */
static int gets_grad(const csvi_tape *t, const unsigned char *wanted, int32_t i) {
    return t->slots[i].needs_grad && (!wanted || wanted[i]);
}

/* Lays the buffers out in the arena, the cleared ones first, so that one
 * pass zeroes them all. */
static int assign(csvi_tape *t, const unsigned char *wanted, const unsigned char *uncleared) {
    int64_t total = 0, cleared = 0;
    for (int32_t i = 0; i < t->n_slots; i++)
        if (gets_grad(t, wanted, i)) total += t->slots[i].size * t->slots[i].copies;
    cleared = total;
    for (int32_t i = 0; uncleared && i < t->n_slots; i++)
        if (uncleared[i] && gets_grad(t, wanted, i))
            cleared -= t->slots[i].size * t->slots[i].copies;
    if (total > t->arena_cap) {
        double *a = realloc(t->arena, (size_t)total * sizeof(double));
        if (!a) return CSVI_ERR_NOMEM;
        t->arena = a;
        t->arena_cap = total;
    }
    if (t->n_slots > t->live_cap) {
        unsigned char *l = realloc(t->live, (size_t)t->n_slots);
        if (!l) return CSVI_ERR_NOMEM;
        t->live = l;
        t->live_cap = t->n_slots;
    }
    memset(t->live, 0, (size_t)t->n_slots);
    csvi_parallel_range(cleared, CSVI_PAR_CHEAP, zero_block, t->arena);
    int64_t at_cleared = 0, at_uncleared = cleared;
    for (int32_t i = 0; i < t->n_slots; i++) {
        csvi_slot *s = &t->slots[i];
        if (!gets_grad(t, wanted, i)) {
            s->grad = NULL;
        } else if (uncleared && uncleared[i]) {
            s->grad = t->arena + at_uncleared;
            at_uncleared += s->size * s->copies;
        } else {
            s->grad = t->arena + at_cleared;
            at_cleared += s->size * s->copies;
        }
    }
    if (uncleared)
        for (int32_t i = 0; i < t->n_slots; i++)
            t->grad_fresh[i] = uncleared[i] && t->slots[i].grad ? CSVI_GRAD_FRESH : 0;
    return CSVI_OK;
}

int csvi_tape_assign_grads(csvi_tape *t, const unsigned char *wanted) {
    return assign(t, wanted, NULL);
}

int csvi_tape_assign_grads_uncleared(csvi_tape *t, const unsigned char *wanted,
                                     const unsigned char *uncleared) {
    return assign(t, wanted, uncleared);
}

void csvi_tape_zero_fresh(csvi_tape *t) {
    if (!t->grad_fresh) return;
    for (int32_t i = 0; i < t->n_slots; i++) {
        if (t->grad_fresh[i] != CSVI_GRAD_FRESH) continue;
        const csvi_slot *s = &t->slots[i];
        csvi_parallel_range(s->size * s->copies, CSVI_PAR_CHEAP, zero_block, s->grad);
        t->grad_fresh[i] = 0;
    }
}

int csvi_tape_mark_needed(const csvi_tape *t, const int32_t *keep, int n_keep,
                          unsigned char *runs) {
    unsigned char *needed = calloc((size_t)t->n_slots + 1, 1);  /* per slot: its value is read */
    if (!needed) return CSVI_ERR_NOMEM;
    for (int k = 0; k < n_keep; k++) needed[keep[k]] = 1;
    for (int32_t i = t->n_ops - 1; i >= 0; i--) {
        const csvi_op *op = &t->ops[i];
        if (!needed[op->out] && !(csvi_kernels[op->code].flags & CSVI_DRAWS)) continue;
        runs[i] = 1;
        for (int k = 0; k < op->n_in; k++) needed[op->in[k]] = 1;
    }
    free(needed);
    return CSVI_OK;
}

/* csvi_fuse_sweep's plan for t in t->sweep_work (wanted: its last n_slots
 * bytes), or -1 when out of memory. */
static int32_t plan_fused(csvi_tape *t, int32_t root, unsigned char **wanted,
                          csvi_sweep_chains *c) {
    const size_t work = csvi_fuse_sweep_work(t), need = work + (size_t)t->n_slots + 1;
    if (need > t->sweep_cap) {
        void *w = realloc(t->sweep_work, need);
        if (!w) return -1;
        t->sweep_work = w;
        t->sweep_cap = need;
    }
    *wanted = (unsigned char *)t->sweep_work + work;
    return csvi_fuse_sweep(t, root, t->sweep_work, *wanted, c);
}

/* Runs op's VJP if a gradient has reached its output; marks its inputs. */
static int sweep_op(csvi_tape *t, const csvi_op *op) {
    if (!t->live[op->out] || !t->slots[op->out].grad) return CSVI_OK;
    csvi_kernel_fn vjp = csvi_kernels[op->code].vjp;
    if (vjp == csvi_vjp_none) return CSVI_OK;
    const int rc = vjp(t, op);
    if (rc) return rc;
    for (int k = 0; k < op->n_in; k++)
        if (t->slots[op->in[k]].grad) t->live[op->in[k]] = 1;
    return CSVI_OK;
}

int csvi_tape_backward(csvi_tape *t, int32_t root, int leaves_only) {
    if (root < 0 || root >= t->n_slots) return CSVI_ERR_INDEX;
    unsigned char *wanted = NULL;
    csvi_sweep_chains chains = {NULL, NULL};
    t->sweep_fused = leaves_only ? plan_fused(t, root, &wanted, &chains) : 0;
    if (t->sweep_fused < 0) return CSVI_ERR_NOMEM;
    if (!t->sweep_fused) wanted = NULL;
    int rc = csvi_tape_assign_grads(t, wanted);
    if (rc) return rc;
    csvi_slot *r = &t->slots[root];
    if (!r->grad) return CSVI_OK;
    for (int64_t k = 0; k < r->size; k++) r->grad[k] = 1.0;
    t->live[root] = 1;
    for (int32_t i = t->n_ops - 1; i >= 0; i--) {
        if (wanted && chains.lp[i] >= 0) {
            const csvi_op fused = csvi_sweep_fused(t, &chains, i);
            rc = sweep_op(t, &fused);
        } else {
            rc = sweep_op(t, &t->ops[i]);
        }
        if (rc) {
            t->failed_op = i;
            return rc;
        }
    }
    return CSVI_OK;
}
