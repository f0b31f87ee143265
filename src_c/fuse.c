/* Fusion of a frozen program's ops (csvi_fuse.h). */
#include <stdlib.h>
#include <string.h>
#include "csvi_fuse.h"
#include "csvi_opcodes.h"

typedef struct {
    csvi_tape *t;
    int32_t *uses;         /* per slot: how many live op inputs read it (keep: +1) */
    int32_t *producer;     /* per slot: the op writing it, or -1 */
    unsigned char *gone;   /* per op: folded into another */
    unsigned char *live;   /* per op: the kept slots need it, or it draws (program.c
                            * skips the others, so their reads don't count); NULL:
                            * every op (an eager sweep's, csvi_fuse_sweep) */
    const int32_t *keep;   /* the kept slots (none in an eager sweep's) */
    int n_keep;
} fuser;

static int op_live(const fuser *f, int32_t i) {
    return !f->live || f->live[i];
}

/* uses and producer, from the live ops' inputs and every op's output. */
static void count_uses(fuser *f) {
    const csvi_tape *t = f->t;
    for (int32_t s = 0; s < t->n_slots; s++) f->producer[s] = -1;
    for (int32_t i = 0; i < t->n_ops; i++) {
        const csvi_op *op = &t->ops[i];
        f->producer[op->out] = i;
        if (!op_live(f, i)) continue;
        for (int k = 0; k < op->n_in; k++) f->uses[op->in[k]] += 1;
    }
}

/* The live op reading slot s, when exactly one does. */
static int32_t only_reader(const fuser *f, int32_t s) {
    if (f->uses[s] != 1) return -1;
    for (int32_t i = 0; i < f->t->n_ops; i++)
        for (int k = 0; k < f->t->ops[i].n_in && op_live(f, i); k++)
            if (f->t->ops[i].in[k] == s) return i;
    return -1;
}

/* Whether a live op strictly between ops a and b reads slot s. */
static int read_between(const fuser *f, int32_t a, int32_t b, int32_t s) {
    for (int32_t i = a + 1; i < b; i++)
        for (int k = 0; k < f->t->ops[i].n_in && op_live(f, i); k++)
            if (f->t->ops[i].in[k] == s) return 1;
    return 0;
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
        !csvi_slot_same_shape(&t->slots[l], so) || t->slots[op->aux].size != so->size ||
        so->size < 1)  /* the slot becomes the scalar sum: it must hold one number */
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

/* BERNOULLI_LP of probs whose log-densities only a SUM over their last dim
 * reads -- in its table form (aux: 4 x p's size), with x and p both
 * spanning that dim (so each summed row walks them contiguously), or in its
 * flat form (no aux; x and p of the log-densities' shape: a decoder's
 * pixels against its images): the fused op takes the SUM's place.  The LP
 * stays on the tape, unread, so the program skips it -- and runs it, with
 * what else it skips, to diagnose a non-finite step. */
static int fuse_bernoulli_probs_rowsum(fuser *f, int32_t i) {
    csvi_tape *t = f->t;
    csvi_op *op = &t->ops[i];
    if (op->code != CSVI_OP_BERNOULLI_LP || op->iattr[0] || op->n_in != 2) return 0;
    const csvi_slot *x = &t->slots[op->in[0]], *p = &t->slots[op->in[1]],
                    *lp = &t->slots[op->out];
    const int nd = lp->ndim;
    const int flat = op->aux < 0;
    if (x->needs_grad || nd < 1 || nd > CSVI_IATTR_TABLES - 2 || x->ndim < 1 || p->ndim < 1)
        return 0;
    if (flat ? !csvi_slot_same_shape(x, lp) || !csvi_slot_same_shape(p, lp)
             : t->slots[op->aux].size != 4 * p->size)
        return 0;
    const int64_t len = lp->shape[nd - 1];
    if (len > CSVI_ROWSUM_MAX || x->shape[x->ndim - 1] != len || p->shape[p->ndim - 1] != len)
        return 0;
    const int32_t r = only_reader(f, op->out);
    if (r < 0 || t->ops[r].code != CSVI_OP_SUM || t->ops[r].iattr[0] != ((int64_t)1 << (nd - 1)))
        return 0;
    /* the fused VJP adds into p's gradient at the SUM's place: in the LP's
     * order only if nothing in between reads p (the flat form's p, a
     * decoder's output, usually has no other reader) */
    if (flat && read_between(f, i, r, op->in[1])) return 0;
    csvi_op *sum = &t->ops[r];
    const int32_t out = sum->out;
    const double scale = sum->dattr[0];
    *sum = *op;
    sum->code = CSVI_OP_BERNOULLI_PROBS_ROWSUM;
    sum->iattr[1] = nd;
    for (int d = 0; d < nd; d++) sum->iattr[2 + d] = lp->shape[d];
    sum->dattr[0] = scale;
    sum->out = out;
    f->uses[op->out] = 0;
    return 1;
}

/* NORMAL_LP op i of data x (no gradient) against locs gathered by a GATHER
 * that only it reads, with one scale, its result read only by a SUM_N -- an
 * observed `Normal(a[group], s)` -- can run as NORMAL_GATHER_SUM(x, a,
 * index, s) in the GATHER's place (dist_normal.c; the gathered locs are
 * never stored): the reverse sweep then adds a's gradient where the GATHER
 * did; the scale's gradient moves with it, so a scale that wants one must be
 * read by nothing in between.  Returns the GATHER's index (*sum: the
 * SUM_N's), or -1. */
static int32_t normal_gather_sum_chain(const fuser *f, int32_t i, int32_t *sum) {
    const csvi_tape *t = f->t;
    const csvi_op *op = &t->ops[i];
    if (op->code != CSVI_OP_NORMAL_LP || op->n_in != 3) return -1;
    const int32_t x = op->in[0], l = op->in[1], s = op->in[2], o = op->out;
    const int32_t g = f->producer[l];
    const csvi_slot *so = &t->slots[o];
    if (g < 0 || t->ops[g].code != CSVI_OP_GATHER || f->uses[l] != 1 || so->size < 1 ||
        t->slots[t->ops[g].in[0]].size > INT32_MAX ||
        t->slots[x].needs_grad || t->slots[s].size != 1 ||
        !csvi_slot_same_shape(&t->slots[x], so) || !csvi_slot_same_shape(&t->slots[l], so) ||
        f->producer[x] >= g || f->producer[s] >= g ||
        (t->slots[s].needs_grad && read_between(f, g, i, s)))
        return -1;
    *sum = only_reader(f, o);
    return *sum >= 0 && t->ops[*sum].code == CSVI_OP_SUM_N ? g : -1;
}

/* The NORMAL_GATHER_SUM that runs the chain from GATHER g to NORMAL_LP
 * `lp`, its value in slot `out`. */
static csvi_op normal_gather_sum(const csvi_tape *t, int32_t g, int32_t lp, int32_t out) {
    csvi_op fused = t->ops[lp];
    fused.code = CSVI_OP_NORMAL_GATHER_SUM;
    fused.n_in = 4;
    fused.in[0] = t->ops[lp].in[0];
    fused.in[1] = t->ops[g].in[0];
    fused.in[2] = t->ops[g].in[1];
    fused.in[3] = t->ops[lp].in[2];
    fused.out = out;
    fused.aux = -1;
    return fused;
}

/* Folds such a chain into NORMAL_GATHER_SUM, a scalar in the NORMAL_LP's
 * slot, in the GATHER's place. */
static int fuse_normal_gather_sum(fuser *f, int32_t i) {
    csvi_tape *t = f->t;
    int32_t sum;
    const int32_t g = normal_gather_sum_chain(f, i, &sum);
    if (g < 0) return 0;
    const int32_t o = t->ops[i].out;
    t->slots[o].ndim = 0;
    t->slots[o].size = 1;
    t->slots[t->ops[i].in[1]].needs_grad = 0;
    t->ops[g] = normal_gather_sum(t, g, i, o);
    f->gone[i] = 1;
    return 1;
}

/* DIST_EXPAND (a distribution's log-density broadcast to its plates' batch
 * shape) read only by a WHERE of that same shape -- the mask of a masked
 * site: the WHERE reads the unexpanded input itself, broadcasting it as the
 * expand did.  Its VJP then sums the gradient over the broadcast dims in
 * the expand's order (both walk the output row-major), at the same point of
 * the reverse sweep as long as nothing in between reads the input; the
 * masked-out entries the expand's VJP added as +0.0 change nothing (a
 * gradient starts at +0.0, so no sum is ever -0.0).  The expand stays
 * on the tape, unread, for the diagnostic run of skipped ops. */
static int fuse_expand_into_where(fuser *f, int32_t i) {
    csvi_tape *t = f->t;
    const csvi_op *op = &t->ops[i];
    if (op->code != CSVI_OP_DIST_EXPAND || op->n_in != 1) return 0;
    const int32_t e = op->out;
    const int32_t r = only_reader(f, e);
    if (r < 0 || t->ops[r].code != CSVI_OP_WHERE ||
        !csvi_slot_same_shape(&t->slots[t->ops[r].out], &t->slots[e]) ||
        read_between(f, i, r, op->in[0]))
        return 0;
    for (int k = 0; k < t->ops[r].n_in; k++)
        if (t->ops[r].in[k] == e) t->ops[r].in[k] = op->in[0];
    f->uses[e] = 0;
    f->uses[op->in[0]] += 1;
    t->slots[e].needs_grad = 0;
    return 1;
}

/* Whether slots a and b hold the same numbers at every step: one slot, or
 * two that no op writes and that view the same memory with one shape -- a
 * data argument the guide and the model each converted (csvi_program_bind
 * re-points slots by their address, so both always move together). */
static int same_values(const fuser *f, int32_t a, int32_t b) {
    if (a == b) return 1;
    const csvi_slot *x = &f->t->slots[a], *y = &f->t->slots[b];
    return f->producer[a] < 0 && f->producer[b] < 0 && !x->needs_grad && !y->needs_grad &&
           x->data == y->data && csvi_slot_same_shape(x, y);
}

/* Whether two records compute the same thing from the same values. */
static int same_record(const fuser *f, const csvi_op *a, const csvi_op *b) {
    if (a->code != b->code || a->n_in != b->n_in) return 0;
    for (int k = 0; k < a->n_in; k++)
        if (!same_values(f, a->in[k], b->in[k])) return 0;
    for (int k = 0; k < CSVI_N_IATTR; k++)
        if (a->iattr[k] != b->iattr[k]) return 0;
    for (int k = 0; k < CSVI_N_DATTR; k++)
        if (a->dattr[k] != b->dattr[k]) return 0;
    return 1;
}

/* A TAKE of the same values as an earlier live TAKE -- the minibatch
 * `data[idx]` that the guide and the model each take: its readers read the
 * earlier output, which holds the same numbers (a slot is written once per
 * step and TAKE draws nothing), and one copy of the rows a step is saved.
 * Not when its output wants a gradient (the two VJPs would scatter it in
 * another order) or is kept.  The TAKE stays on the tape, unread, for the
 * diagnostic run of skipped ops. */
static int fuse_repeated_take(fuser *f, int32_t i) {
    csvi_tape *t = f->t;
    const csvi_op *op = &t->ops[i];
    if (op->code != CSVI_OP_TAKE || op->aux >= 0 || t->slots[op->out].needs_grad) return 0;
    for (int k = 0; k < f->n_keep; k++)
        if (f->keep[k] == op->out) return 0;
    int32_t j = 0;
    while (j < i && !(op_live(f, j) && same_record(f, &t->ops[j], op) &&
                      csvi_slot_same_shape(&t->slots[t->ops[j].out], &t->slots[op->out])))
        j++;
    if (j == i) return 0;
    const int32_t from = op->out, to = t->ops[j].out;
    for (int32_t r = i + 1; r < t->n_ops; r++)
        for (int k = 0; k < t->ops[r].n_in && op_live(f, r); k++)
            if (t->ops[r].in[k] == from) t->ops[r].in[k] = to;
    f->uses[to] += f->uses[from];
    f->uses[from] = 0;
    return 1;
}

int csvi_fuse(csvi_tape *t, const int32_t *keep, int n_keep) {
    fuser f = {t, calloc((size_t)t->n_slots + 1, sizeof(int32_t)),
               malloc(((size_t)t->n_slots + 1) * sizeof(int32_t)),
               calloc((size_t)t->n_ops + 1, 1), calloc((size_t)t->n_ops + 1, 1), keep, n_keep};
    int fused = -1;
    if (!f.uses || !f.producer || !f.gone || !f.live) goto done;
    if (csvi_tape_mark_needed(t, keep, n_keep, f.live)) goto done;
    for (int k = 0; k < n_keep; k++) f.uses[keep[k]] += 1;
    count_uses(&f);
    fused = 0;
    for (int32_t i = 0; i < t->n_ops; i++)
        if (f.live[i])
            fused += fuse_repeated_take(&f, i) || fuse_bernoulli_logits(&f, i) ||
                     fuse_bernoulli_probs_rowsum(&f, i) ||
                     fuse_normal_gather_sum(&f, i) || fuse_expand_into_where(&f, i);
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_ops; i++)
        if (!f.gone[i]) t->ops[n++] = t->ops[i];
    t->n_ops = n;
done:
    free(f.uses);
    free(f.producer);
    free(f.gone);
    free(f.live);
    return fused;
}

size_t csvi_fuse_sweep_work(const csvi_tape *t) {
    return (2 * (size_t)t->n_slots + 2 * (size_t)t->n_ops + 4) * sizeof(int32_t);
}

int32_t csvi_fuse_sweep(csvi_tape *t, int32_t root, void *work, unsigned char *wanted,
                        csvi_sweep_chains *c) {
    int32_t *w = work;
    fuser f = {t, w, w + t->n_slots + 1, NULL, NULL, NULL, 0};
    c->lp = w + 2 * ((size_t)t->n_slots + 1);
    c->sum = c->lp + t->n_ops + 1;
    memset(f.uses, 0, (size_t)t->n_slots * sizeof(int32_t));
    count_uses(&f);
    for (int32_t s = 0; s < t->n_slots; s++) wanted[s] = 1;
    for (int32_t i = 0; i < t->n_ops; i++) c->lp[i] = -1;
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_ops; i++) {
        int32_t sum;
        const int32_t g = normal_gather_sum_chain(&f, i, &sum);
        if (g < 0 || t->ops[i].in[1] == root || t->ops[i].out == root) continue;
        c->lp[g] = i;
        c->sum[g] = sum;
        wanted[t->ops[i].in[1]] = 0;
        wanted[t->ops[i].out] = 0;
        n++;
    }
    return n;
}

csvi_op csvi_sweep_fused(const csvi_tape *t, const csvi_sweep_chains *c, int32_t g) {
    return normal_gather_sum(t, g, c->lp[g], t->ops[c->sum[g]].out);
}
