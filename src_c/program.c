/* The compiled SVI loop (see csvi_program.h). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "csvi_fuse.h"
#include "csvi_nn.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_particles.h"
#include "csvi_program.h"
#include "csvi_vmath.h"

/* Particles from which an op's copies run over threads, not inside each copy. */
#define MIN_PARALLEL_COPIES 4

/* x * 0 is 0 for a finite x and NaN otherwise: four running sums with no
 * early exit, so the check runs at vector speed over a large gradient. */
static int all_finite(const double *x, int64_t n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i] * 0.0;
        s1 += x[i + 1] * 0.0;
        s2 += x[i + 2] * 0.0;
        s3 += x[i + 3] * 0.0;
    }
    for (; i < n; i++) s0 += x[i] * 0.0;
    return (s0 + s1) + (s2 + s3) == 0.0;
}

/* all_finite of a float32 gradient (finite exactly when its widened value
 * is): an exponent field of all ones is inf or NaN.  Integer tests OR
 * together in any order, so the loop runs in vector registers (a float sum
 * may not be reordered without -ffast-math: the loop it replaced ran one
 * element per add's latency). */
static CSVI_HOT int all_finite32(const float *restrict x, int64_t n) {
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

/* all_finite of a large gradient over csvi's pool, block by block (the
 * answer is the same for any split).  Below FINITE_PARALLEL elements one
 * thread: a small step must not wait for a worker (RESULTS.md, session 24's
 * hierarchical step). */
#define FINITE_PARALLEL 65536

typedef struct {
    const double *x;
    const float *x32;
    _Atomic int bad;
} finite_job;

static void finite_range(void *ctx, int64_t lo, int64_t hi) {
    finite_job *j = ctx;
    const int ok = j->x32 ? all_finite32(j->x32 + lo, hi - lo) : all_finite(j->x + lo, hi - lo);
    if (!ok) atomic_store_explicit(&j->bad, 1, memory_order_relaxed);
}

/* Whether g (or g32, if not NULL) holds only finite numbers. */
static int grad_finite(const double *g, const float *g32, int64_t n) {
    if (n < FINITE_PARALLEL) return g32 ? all_finite32(g32, n) : all_finite(g, n);
    finite_job j = {.x = g, .x32 = g32, .bad = 0};
    csvi_parallel_range(n, FINITE_PARALLEL, finite_range, &j);
    return !atomic_load(&j.bad);
}

/* Marks the slots that depend on a draw, and the ops that must run
 * particle-major: the draws and every op whose output they read, directly or
 * not.  Returns CSVI_OK or CSVI_ERR_NOMEM. */
static int mark_particle_dims(csvi_program *p) {
    csvi_tape *t = p->tape;
    int32_t *producer = malloc(((size_t)t->n_slots + 1) * sizeof(int32_t));
    if (!producer) return CSVI_ERR_NOMEM;
    for (int32_t s = 0; s < t->n_slots; s++) producer[s] = -1;
    for (int32_t i = 0; i < t->n_ops; i++) {
        const csvi_op *op = &t->ops[i];
        producer[op->out] = i;
        int b = (csvi_kernels[op->code].flags & CSVI_DRAWS);
        for (int k = 0; k < op->n_in; k++) b |= p->batched[op->in[k]];
        if (!b) continue;
        p->batched[op->out] = 1;
        if (op->aux >= 0) p->batched[op->aux] = 1;
    }
    for (int32_t i = t->n_ops - 1; i >= 0; i--) {
        const csvi_op *op = &t->ops[i];
        if ((csvi_kernels[op->code].flags & CSVI_DRAWS)) p->draw_phase[i] = 1;
        if (!p->draw_phase[i]) continue;
        for (int k = 0; k < op->n_in; k++)
            if (producer[op->in[k]] >= 0) p->draw_phase[producer[op->in[k]]] = 1;
    }
    free(producer);
    return CSVI_OK;
}

/* p->runs and p->grad_wanted (see csvi_program_init).  Returns CSVI_OK or
 * CSVI_ERR_NOMEM. */
static int mark_needed(csvi_program *p) {
    csvi_tape *t = p->tape;
    const int32_t keep[2] = {p->root, p->loss};
    if (csvi_tape_mark_needed(t, keep, 2, p->runs)) return CSVI_ERR_NOMEM;
    p->grad_wanted[p->root] = 1;
    for (int32_t i = t->n_ops - 1; i >= 0; i--) {
        const csvi_op *op = &t->ops[i];
        if (!p->runs[i] || !p->grad_wanted[op->out] || !t->slots[op->out].needs_grad) continue;
        if (csvi_kernels[op->code].vjp == csvi_vjp_none) continue;
        for (int k = 0; k < op->n_in; k++)
            if (t->slots[op->in[k]].needs_grad) p->grad_wanted[op->in[k]] = 1;
    }
    for (int32_t k = 0; k < p->n_params; k++) p->grad_wanted[p->params[k].leaf] = 1;
    return CSVI_OK;
}

/* Whether input k of op may have its gradient buffer left uncleared: a
 * float32 dense record's x or W, whose VJP writes the widened product and
 * stores it when it writes first (ops_nn.c, csvi_grad_claim), and the probs
 * of a flat BERNOULLI_PROBS_ROWSUM (dist_bernoulli.c), likewise.  Float64
 * records are left out: OpenBLAS may compute beta = 0 products by other
 * kernels, which could differ from 0 + the product in a zero's sign. */
static int stores_first_write(const csvi_op *op, int k) {
    if (op->code == CSVI_OP_BERNOULLI_PROBS_ROWSUM) return k == 1 && op->aux < 0;
    return (op->code == CSVI_OP_DENSE || op->code == CSVI_OP_DENSE_ACT) && k < 2
           && op->iattr[1] == CSVI_DENSE_FLOAT32;
}

/* p->uncleared and the tape's grad_fresh (one particle only): the slots
 * whose gradient only such writes reach -- a network's weights and hidden
 * layers, most of a VAE step's gradient memory -- need no clearing, since
 * the first write stores.  Returns CSVI_OK or CSVI_ERR_NOMEM. */
static int mark_uncleared(csvi_program *p) {
    csvi_tape *t = p->tape;
    const int32_t n = t->n_slots;
    p->uncleared = calloc((size_t)n + 1, 1);
    t->grad_fresh = calloc((size_t)n + 1, 1);
    if (!p->uncleared || !t->grad_fresh) return CSVI_ERR_NOMEM;
    unsigned char *other = p->uncleared;  /* first: read by any other kind of input */
    for (int32_t i = 0; i < t->n_ops; i++) {  /* of an op that runs (the others have no VJP
                                               * in the step: their outputs are read by none) */
        if (!p->runs[i]) continue;
        const csvi_op *op = &t->ops[i];
        for (int k = 0; k < op->n_in; k++)
            if (!stores_first_write(op, k)) other[op->in[k]] = 1;
    }
    int32_t count = 0;
    for (int32_t s = 0; s < n; s++) {
        other[s] = !other[s] && s != p->root && p->grad_wanted[s];
        count += other[s];
    }
    if (!count) {  /* no such slot: the step clears as it always did */
        free(p->uncleared);
        free(t->grad_fresh);
        p->uncleared = NULL;
        t->grad_fresh = NULL;
    }
    return CSVI_OK;
}

/* p->grad32: a weight whose only reader is one float32 dense record (as W)
 * keeps its gradient as that record's float32 product (the VJP skips
 * widening it, CSVI_DENSE_IATTR_GRAD32) and Adam reads it there: no pass
 * widening ~10^5-10^6 elements into float64 and back out.  Needs
 * mark_uncleared first.  Returns CSVI_OK or CSVI_ERR_NOMEM. */
static int mark_grad32(csvi_program *p) {
    csvi_tape *t = p->tape;
    if (!p->uncleared) return CSVI_OK;
    p->grad32 = calloc(2 * (size_t)p->n_params + 1, sizeof(int32_t));
    if (!p->grad32) return CSVI_ERR_NOMEM;
    for (int32_t k = 0; k < p->n_params; k++) {
        const int32_t leaf = p->params[k].leaf;
        if (!p->uncleared[leaf]) continue;
        int32_t reader = -1, readers = 0;
        for (int32_t i = 0; i < t->n_ops; i++)
            for (int j = 0; j < t->ops[i].n_in; j++)
                if (t->ops[i].in[j] == leaf) {
                    readers++;
                    reader = i;
                }
        if (readers != 1 || t->ops[reader].in[1] != leaf) continue;
        t->ops[reader].iattr[CSVI_DENSE_IATTR_GRAD32] = 1;
        t->ops[reader].iattr[CSVI_DENSE_IATTR_W32_KEPT] = 1;
        p->grad32[k] = reader + 1;
    }
    return CSVI_OK;
}

/* Whether op is a float32 dense record that runs, with its float32 layout. */
static int dense32_runs(const csvi_program *p, int32_t i) {
    const csvi_op *op = &p->tape->ops[i];
    return p->runs[i] && (op->code == CSVI_OP_DENSE || op->code == CSVI_OP_DENSE_ACT) &&
           op->iattr[1] == CSVI_DENSE_FLOAT32 && csvi_dense_weight32(p->tape, op) != NULL;
}

/* The float32 copies of dense layers' inputs (one particle only): an x
 * that several float32 dense records read is rounded once, by the first,
 * whose copy the others read (CSVI_DENSE_IATTR_X32_FROM: the VAE tutorial's
 * fc21 and fc22 both read the hidden layer); and an x that a float32 dense
 * record computes is rounded by that record's forward as it writes it
 * (CSVI_DENSE_IATTR_X32_TO), a few rows at a time while they are in cache,
 * instead of by a pass of the reader over all of it.  The copies hold the
 * same numbers.  csvi_program_free unmarks them. */
static void mark_x32(csvi_program *p) {
    csvi_tape *t = p->tape;
    for (int32_t i = 0; i < t->n_ops; i++) {
        if (!dense32_runs(p, i) || t->ops[i].iattr[CSVI_DENSE_IATTR_X32_FROM]) continue;
        const int32_t x = t->ops[i].in[0];
        for (int32_t j = i + 1; j < t->n_ops; j++)
            if (dense32_runs(p, j) && t->ops[j].in[0] == x)
                t->ops[j].iattr[CSVI_DENSE_IATTR_X32_FROM] = i + 1;
        for (int32_t q = 0; q < i; q++)
            if (t->ops[q].out == x && dense32_runs(p, q)) {
                t->ops[q].iattr[CSVI_DENSE_IATTR_X32_TO] = i + 1;
                t->ops[i].iattr[CSVI_DENSE_IATTR_X32_FROM] = i + 1;
            }
    }
}

/* The gradients of dense layers' inputs that float32 dense records compute
 * (one particle only): when every running reader of such an x is a float32
 * dense record reading it as x, and wants its own output's gradient (so
 * its VJP runs each step and, its output not empty, makes the product), at
 * most CSVI_DENSE_DX32_READERS of them, each
 * reader keeps its product gz W in float32 (CSVI_DENSE_IATTR_DX32_KEPT)
 * and the record that computed x widens and adds them in its own VJP's
 * pass, in the reverse sweep's order (CSVI_DENSE_IATTR_DX32_FROM): the
 * bits of the widening stores and adds into x's gradient, with no float64
 * buffer for it (grad_wanted cleared) and no pass writing and reading one
 * (a VAE's hidden layers: 2 x 256 x 400 gradients a step).  Runs before
 * mark_uncleared, which reads grad_wanted. */
static void mark_dx32(csvi_program *p) {
    csvi_tape *t = p->tape;
    for (int32_t i = 0; i < t->n_ops; i++) {
        const int32_t x = t->ops[i].out;
        if (!dense32_runs(p, i) || x == p->root || x == p->loss || !p->grad_wanted[x]) continue;
        int32_t readers[CSVI_DENSE_DX32_READERS];
        int n = 0, ok = 1;
        for (int32_t j = t->n_ops - 1; j > i && ok; j--) {  /* the sweep's order */
            if (!p->runs[j]) continue;
            const csvi_op *r = &t->ops[j];
            int reads = 0;
            for (int k = 0; k < r->n_in; k++) reads |= r->in[k] == x ? 1 << k : 0;
            if (!reads) continue;
            ok = reads == 1 && dense32_runs(p, j) && p->grad_wanted[r->out] &&
                 t->slots[r->out].size > 0 && n < CSVI_DENSE_DX32_READERS;
            if (ok) readers[n++] = j;
        }
        if (!ok || n == 0) continue;
        for (int q = 0; q < n; q++) {
            t->ops[readers[q]].iattr[CSVI_DENSE_IATTR_DX32_KEPT] = 1;
            t->ops[i].iattr[CSVI_DENSE_IATTR_DX32_FROM + q] = readers[q] + 1;
        }
        p->grad_wanted[x] = 0;
    }
}

/* A dense record's output read, among the ops that run, only by a flat
 * BERNOULLI_PROBS_ROWSUM as its probs (the decoder's pixels; one particle
 * only): the output gets no gradient buffer (the Bernoulli's VJP then has
 * nothing to write), and the record's VJP forms that gradient in its own
 * column pass from the Bernoulli's data and row gradients
 * (CSVI_DENSE_IATTR_PROBS_OF), the same numbers: no 256 x 784 gradient
 * stored and read back.  Runs before mark_uncleared, which reads
 * grad_wanted. */
static void mark_probs_into_dense(csvi_program *p) {
    csvi_tape *t = p->tape;
    for (int32_t b = 0; b < t->n_ops; b++) {
        const csvi_op *bern = &t->ops[b];
        if (!p->runs[b] || bern->code != CSVI_OP_BERNOULLI_PROBS_ROWSUM || bern->aux >= 0 ||
            bern->n_in != 2 || bern->in[0] == bern->in[1] || !p->grad_wanted[bern->out])
            continue;
        const int32_t probs = bern->in[1];
        int32_t producer = -1, readers = 0;
        for (int32_t i = 0; i < t->n_ops; i++) {
            const csvi_op *op = &t->ops[i];
            if (op->out == probs) producer = i;
            for (int k = 0; k < op->n_in && p->runs[i]; k++) readers += op->in[k] == probs;
        }
        if (producer < 0 || readers != 1 || !p->runs[producer] || !p->grad_wanted[probs]) continue;
        const csvi_op *dense = &t->ops[producer];
        const csvi_slot *y = &t->slots[probs], *x = &t->slots[bern->in[0]];
        if ((dense->code != CSVI_OP_DENSE && dense->code != CSVI_OP_DENSE_ACT) || y->ndim != 2 ||
            y->size < 1 || x->size != y->size || bern->iattr[1] < 1 ||
            bern->iattr[1 + bern->iattr[1]] != y->shape[1])
            continue;
        t->ops[producer].iattr[CSVI_DENSE_IATTR_PROBS_OF] = b + 1;
        p->grad_wanted[probs] = 0;
    }
}

/* p->tril: the params read only by UNIT_TRIL ops, as input 0, of one size d;
 * each run then updates them below the diagonal only when that is exact
 * (csvi_optim_tril_exact).  Returns CSVI_OK or CSVI_ERR_NOMEM. */
static int mark_tril(csvi_program *p) {
    const csvi_tape *t = p->tape;
    p->tril = calloc(2 * (size_t)p->n_params + 1, sizeof(int64_t));
    if (!p->tril) return CSVI_ERR_NOMEM;
    for (int32_t k = 0; k < p->n_params; k++) {
        const int32_t leaf = p->params[k].leaf;
        int64_t d = 0;
        for (int32_t i = 0; i < t->n_ops && d >= 0; i++)
            for (int j = 0; j < t->ops[i].n_in; j++) {
                if (t->ops[i].in[j] != leaf) continue;
                const csvi_op *op = &t->ops[i];
                const int fits = op->code == CSVI_OP_UNIT_TRIL && j == 0 && op->iattr[0] > 0
                                 && (d == 0 || d == op->iattr[0]);
                d = fits ? op->iattr[0] : -1;
            }
        p->tril[k] = d > 0 ? d : 0;
    }
    return CSVI_OK;
}

int csvi_program_init(csvi_program *p, int32_t particles, int fuse) {
    csvi_tape *t = p->tape;
    const int32_t n = t->n_slots;
    p->particles = particles;
    p->batched = calloc((size_t)n + 1, 1);
    p->draw_phase = calloc((size_t)t->n_ops + 1, 1);
    p->runs = calloc((size_t)t->n_ops + 1, 1);
    p->grad_wanted = calloc((size_t)n + 1, 1);
    p->traced_data = calloc((size_t)n + 1, sizeof(double *));
    p->particle_values = NULL;
    p->views = NULL;
    p->view_slots = NULL;
    p->copy_rc = NULL;
    p->uncleared = NULL;
    p->grad32 = NULL;
    p->tril = NULL;
    p->params_changed = 1;
    if (!p->batched || !p->draw_phase || !p->runs || !p->grad_wanted || !p->traced_data)
        return CSVI_ERR_NOMEM;
    const int32_t keep[2] = {p->root, p->loss};
    if (fuse && csvi_fuse(t, keep, 2) < 0) return CSVI_ERR_NOMEM;
    if (mark_needed(p) || mark_tril(p)) return CSVI_ERR_NOMEM;
    for (int32_t s = 0; s < n; s++) p->traced_data[s] = t->slots[s].data;
    if (particles > 1 && mark_particle_dims(p)) return CSVI_ERR_NOMEM;
    if (fuse) csvi_bernoulli_link_tables(t, p->runs, p->draw_phase);
    if (particles == 1) {
        mark_x32(p);
        mark_dx32(p);
        mark_probs_into_dense(p);
        return mark_uncleared(p) ? CSVI_ERR_NOMEM : mark_grad32(p);
    }
    int64_t total = 0;
    for (int32_t s = 0; s < n; s++)
        if (p->batched[s]) total += t->slots[s].size * particles;
    p->particle_values = malloc((size_t)(total ? total : 1) * sizeof(double));
    if (!p->particle_values) return CSVI_ERR_NOMEM;
    int64_t offset = 0;
    for (int32_t s = 0; s < n; s++) {
        if (!p->batched[s]) continue;
        t->slots[s].data = p->particle_values + offset;
        t->slots[s].copies = particles;
        offset += t->slots[s].size * particles;
    }
    p->views = malloc((size_t)particles * sizeof(csvi_tape));
    p->view_slots = malloc((size_t)particles * ((size_t)n + 1) * sizeof(csvi_slot));
    p->copy_rc = calloc((size_t)particles, sizeof(int));
    if (!p->views || !p->view_slots || !p->copy_rc) return CSVI_ERR_NOMEM;
    for (int64_t c = 0; c < particles; c++) {
        csvi_tape *v = &p->views[c];
        *v = *t;
        v->slots = p->view_slots + c * n;
        for (int32_t s = 0; s < n; s++) {
            v->slots[s] = t->slots[s];
            if (p->batched[s]) v->slots[s].data += c * t->slots[s].size;
        }
    }
    return CSVI_OK;
}

/* Points every particle's view at this step's gradient buffers. */
static void view_grads(csvi_program *p) {
    const csvi_tape *t = p->tape;
    for (int64_t c = 0; c < p->particles; c++)
        for (int32_t s = 0; s < t->n_slots; s++) {
            double *g = t->slots[s].grad;
            p->views[c].slots[s].grad = g && p->batched[s] ? g + c * t->slots[s].size : g;
        }
}

void csvi_program_free(csvi_program *p) {
    csvi_tape *t = p->tape;
    if (p->traced_data)
        for (int32_t s = 0; s < t->n_slots; s++) {
            t->slots[s].data = p->traced_data[s];
            t->slots[s].copies = 1;
        }
    free(p->batched);
    free(p->draw_phase);
    free(p->runs);
    free(p->grad_wanted);
    free(p->traced_data);
    free(p->particle_values);
    free(p->views);
    free(p->view_slots);
    free(p->copy_rc);
    for (int32_t k = 0; p->grad32 && k < p->n_params; k++)
        if (p->grad32[k]) {
            t->ops[p->grad32[k] - 1].iattr[CSVI_DENSE_IATTR_GRAD32] = 0;
            t->ops[p->grad32[k] - 1].iattr[CSVI_DENSE_IATTR_W32_KEPT] = 0;
        }
    free(p->grad32);
    p->grad32 = NULL;
    for (int32_t i = 0; i < t->n_ops; i++)
        if (t->ops[i].code == CSVI_OP_DENSE || t->ops[i].code == CSVI_OP_DENSE_ACT) {
            t->ops[i].iattr[CSVI_DENSE_IATTR_X32_FROM] = 0;
            t->ops[i].iattr[CSVI_DENSE_IATTR_X32_TO] = 0;
            t->ops[i].iattr[CSVI_DENSE_IATTR_DX32_KEPT] = 0;
            t->ops[i].iattr[CSVI_DENSE_IATTR_PROBS_OF] = 0;
            for (int q = 0; q < CSVI_DENSE_DX32_READERS; q++)
                t->ops[i].iattr[CSVI_DENSE_IATTR_DX32_FROM + q] = 0;
        }
    free(p->tril);
    p->tril = NULL;
    free(p->uncleared);
    free(t->grad_fresh);
    t->grad_fresh = NULL;
    p->uncleared = NULL;
    p->batched = p->draw_phase = p->runs = p->grad_wanted = NULL;
    p->traced_data = NULL;
    p->particle_values = NULL;
    p->views = NULL;
    p->view_slots = NULL;
    p->copy_rc = NULL;
}

void csvi_program_bind(csvi_program *p, const int32_t *slots, const int64_t *offsets,
                       int32_t n, double *base) {
    for (int32_t k = 0; k < n; k++) {
        p->tape->slots[slots[k]].data = base + offsets[k];
        for (int64_t c = 0; p->views && c < p->particles; c++)
            p->views[c].slots[slots[k]].data = base + offsets[k];
    }
}

typedef struct {
    csvi_program *p;
    const csvi_op *op;
    csvi_kernel_fn kernel;
} copy_job;

static void run_copy(void *ctx, int64_t c) {
    const copy_job *j = ctx;
    j->p->copy_rc[c] = j->kernel(&j->p->views[c], j->op);
}

/* Whether op's particle copies may run at once: each writes only its own
 * copies (a VJP into an input without copies would race). */
static int copies_independent(const csvi_program *p, const csvi_op *op, int vjp) {
    if (p->particles < MIN_PARALLEL_COPIES) return 0;
    if (vjp)
        for (int k = 0; k < op->n_in; k++)
            if (p->tape->slots[op->in[k]].needs_grad && !p->batched[op->in[k]]) return 0;
    return 1;
}

/* Runs op i (forward or VJP) for every particle its output carries: once
 * for all through a fast path, else copy by copy -- over threads when the
 * copies are independent (each kernel then runs serially inside). */
static int run_op(csvi_program *p, int32_t i, int vjp) {
    csvi_tape *t = p->tape;
    const csvi_op *op = &t->ops[i];
    const csvi_kernel_fn kernel = vjp ? csvi_kernels[op->code].vjp : csvi_kernels[op->code].fwd;
    if (!p->batched[op->out]) return kernel(t, op);
    int rc = vjp ? csvi_particles_vjp(t, op, p->batched, p->particles)
                 : csvi_particles_fwd(t, op, p->batched, p->particles);
    if (rc != CSVI_DECLINED) return rc;
    if (copies_independent(p, op, vjp)) {
        copy_job job = {p, op, kernel};
        csvi_parallel_tasks(p->particles, CSVI_WAKE_OVER, 0, run_copy, &job);
        for (int64_t c = 0; c < p->particles; c++)
            if (p->copy_rc[c]) return p->copy_rc[c];
        return CSVI_OK;
    }
    for (int64_t c = 0; c < p->particles; c++)
        if ((rc = kernel(&p->views[c], op))) return rc;
    return CSVI_OK;
}

static int failed(csvi_tape *t, int32_t i, int rc) {
    t->failed_op = i;
    return rc;
}

/* The step's forward; with `skipped`, instead the ops a step skips (their
 * inputs are this step's: nothing they read is overwritten). */
static int forward(csvi_program *p, int skipped) {
    csvi_tape *t = p->tape;
    int rc;
    if (skipped) {
        for (int32_t i = 0; i < t->n_ops; i++)
            if (!p->runs[i] && (rc = run_op(p, i, 0))) return failed(t, i, rc);
        return CSVI_OK;
    }
    for (int64_t c = 0; c < p->particles; c++)
        for (int32_t i = 0; i < t->n_ops; i++) {
            if (!p->draw_phase[i] || !p->runs[i]) continue;
            const csvi_op *op = &t->ops[i];
            if (!p->batched[op->out] && c > 0) continue;
            csvi_tape *view = p->batched[op->out] ? &p->views[c] : t;
            if ((rc = csvi_kernels[op->code].fwd(view, op))) return failed(t, i, rc);
        }
    for (int32_t i = 0; i < t->n_ops; i++)
        if (!p->draw_phase[i] && p->runs[i] && (rc = run_op(p, i, 0))) return failed(t, i, rc);
    return CSVI_OK;
}

/* The step's loss: particle losses added in order, as eager steps add them. */
static double total_loss(const csvi_program *p) {
    const double first = p->tape->slots[p->loss].data[0];
    double loss = first;
    for (int64_t c = 1; c < p->particles; c++)
        loss += p->batched[p->loss] ? p->views[c].slots[p->loss].data[0] : first;
    return loss;
}

static int backward(csvi_program *p) {
    csvi_tape *t = p->tape;
    int rc = p->uncleared ? csvi_tape_assign_grads_uncleared(t, p->grad_wanted, p->uncleared)
                          : csvi_tape_assign_grads(t, p->grad_wanted);
    if (rc) return rc;
    if (p->particles > 1) view_grads(p);
    csvi_slot *r = &t->slots[p->root];
    if (!r->grad) {
        csvi_tape_zero_fresh(t);
        return CSVI_OK;
    }
    /* every particle's surrogate is one term of the total: gradient one each */
    const double seed = p->batched[p->root] ? 1.0 : (double)p->particles;
    for (int64_t k = 0; k < r->size * r->copies; k++) r->grad[k] = seed;
    t->live[p->root] = 1;
    for (int32_t i = t->n_ops - 1; i >= 0; i--) {
        const csvi_op *op = &t->ops[i];
        if (!t->live[op->out] || !t->slots[op->out].needs_grad) continue;
        if (csvi_kernels[op->code].vjp == csvi_vjp_none) continue;
        if ((rc = run_op(p, i, 1))) return failed(t, i, rc);
        for (int k = 0; k < op->n_in; k++)
            if (t->slots[op->in[k]].needs_grad) t->live[op->in[k]] = 1;
    }
    csvi_tape_zero_fresh(t);  /* a buffer no VJP reached (none, usually) */
    return CSVI_OK;
}

/* Param k's gradient as float32 in its dense record's aux (the VJP left it
 * there this step: mark_grad32), or NULL: it is in leaf->grad. */
static const float *grad_in_float32(const csvi_program *p, int32_t k) {
    const csvi_tape *t = p->tape;
    const int32_t leaf = p->params[k].leaf;
    if (!p->grad32 || !p->grad32[k] || t->grad_fresh[leaf] != CSVI_GRAD_FLOAT32) return NULL;
    return csvi_dense_weight_grad32(t, &t->ops[p->grad32[k] - 1]);
}

/* Widens param k's float32 gradient into leaf->grad (0.0 + g, the bits of
 * the VJP's own widening), for the paths that read float64. */
static void widen_grad(csvi_program *p, int32_t k) {
    const float *g32 = grad_in_float32(p, k);
    if (!g32) return;
    csvi_slot *leaf = &p->tape->slots[p->params[k].leaf];
    for (int64_t i = 0; i < leaf->size; i++) leaf->grad[i] = 0.0 + (double)g32[i];
    p->tape->grad_fresh[p->params[k].leaf] = 0;
}

/* Param k's float32 copy in its dense record (mark_grad32), or NULL. */
static float *weight_copy(const csvi_program *p, int32_t k) {
    if (!p->grad32 || !p->grad32[k]) return NULL;
    return csvi_dense_weight32(p->tape, &p->tape->ops[p->grad32[k] - 1]);
}

/* Widens param k's float32 copy into its float64 array when the copy holds
 * the newer value (csvi_optim_step_master32). */
static void widen_value(csvi_program *p, int32_t k) {
    if (!p->grad32 || !p->grad32[p->n_params + k]) return;
    csvi_slot *w = &p->tape->slots[p->params[k].leaf];
    csvi_dense_widen(weight_copy(p, k), w->size, w->data);
    p->grad32[p->n_params + k] = 0;
}

/* Rounds param k into its record's float32 copy, if it has one. */
static void round_weight(csvi_program *p, int32_t k) {
    float *copy = weight_copy(p, k);
    const csvi_slot *w = &p->tape->slots[p->params[k].leaf];
    if (copy) csvi_dense_narrow(w->data, w->size, copy);
}

/* One step's forward and backward: CSVI_PROGRAM_DONE, or why it failed. */
static int32_t forward_backward(csvi_program *p, double *loss) {
    csvi_tape *t = p->tape;
    int rc = forward(p, 0);
    if (rc) {
        p->kernel_rc = rc;
        return CSVI_PROGRAM_KERNEL_ERROR;
    }
    *loss = total_loss(p);
    if (!isfinite(*loss)) {
        forward(p, 1);  /* for the diagnosis; a failure there changes nothing */
        return CSVI_PROGRAM_LOSS_NOT_FINITE;
    }
    rc = backward(p);
    if (rc) {
        p->kernel_rc = rc;
        return CSVI_PROGRAM_KERNEL_ERROR;
    }
    for (int32_t k = 0; k < p->n_params; k++) {
        const csvi_slot *leaf = &t->slots[p->params[k].leaf];
        const float *g32 = grad_in_float32(p, k);
        if ((g32 || leaf->grad) && !grad_finite(leaf->grad, g32, leaf->size)) {
            p->failed_param = k;
            return CSVI_PROGRAM_GRAD_NOT_FINITE;
        }
    }
    return CSVI_PROGRAM_DONE;
}

int64_t csvi_program_hook_size(const csvi_program *p) {
    int64_t n = 2;
    for (int32_t k = 0; k < p->n_params; k++) n += p->tape->slots[p->params[k].leaf].size;
    return n;
}

/* The gradient hook's exchange (csvi_program.h): packs this step's
 * gradients, loss and failure flag, calls the hook, unpacks.  Returns the
 * step's status after the exchange. */
static int32_t exchange(csvi_program *p, int32_t status, double *loss) {
    csvi_tape *t = p->tape;
    double *b = p->hook_buffer;
    const int64_t n = csvi_program_hook_size(p);
    int64_t at = 0;
    for (int32_t k = 0; k < p->n_params; k++) {
        const csvi_slot *leaf = &t->slots[p->params[k].leaf];
        for (int64_t i = 0; i < leaf->size; i++)
            b[at + i] = status == CSVI_PROGRAM_DONE && leaf->grad ? leaf->grad[i] : 0.0;
        at += leaf->size;
    }
    b[at] = status == CSVI_PROGRAM_DONE ? *loss : 0.0;
    b[at + 1] = status == CSVI_PROGRAM_DONE ? 0.0 : 1.0;
    if (p->grad_hook(p->hook_ctx, b, n)) return CSVI_PROGRAM_HOOK_FAILED;
    if (status != CSVI_PROGRAM_DONE) return status;
    if (b[at + 1] != 0.0) return CSVI_PROGRAM_PEER_FAILED;
    at = 0;
    for (int32_t k = 0; k < p->n_params; k++) {
        const csvi_slot *leaf = &t->slots[p->params[k].leaf];
        if (leaf->grad)
            for (int64_t i = 0; i < leaf->size; i++) leaf->grad[i] = b[at + i];
        at += leaf->size;
    }
    *loss = b[at];
    return CSVI_PROGRAM_DONE;
}

int64_t csvi_program_run(csvi_program *p, int64_t n_steps, double *losses) {
    csvi_tape *t = p->tape;
    p->status = CSVI_PROGRAM_DONE;
    for (int64_t c = 0; c < (p->views ? p->particles : 0); c++) p->views[c].rng = t->rng;
    if (p->params_changed) {  /* the weights' float32 copies, afresh */
        for (int32_t k = 0; k < p->n_params; k++) round_weight(p, k);
        p->params_changed = 0;
    }
    for (int32_t k = 0; k < p->n_params; k++) {  /* optimizer state may have been loaded */
        const csvi_program_param *q = &p->params[k];
        p->tril[p->n_params + k] =
            p->tril[k] && csvi_optim_tril_exact(q->config, q->state, t->slots[q->leaf].size,
                                                p->tril[k]) ? p->tril[k] : 0;
    }
    for (int64_t s = 0; s < n_steps; s++) {
        double loss = 0.0;
        int32_t status = forward_backward(p, &loss);
        if (p->grad_hook) {
            for (int32_t k = 0; status == CSVI_PROGRAM_DONE && k < p->n_params; k++)
                widen_grad(p, k);
            status = exchange(p, status, &loss);
        }
        if (status != CSVI_PROGRAM_DONE) {
            p->status = status;
            return s;
        }
        for (int32_t k = 0; k < p->n_params; k++) {
            csvi_program_param *q = &p->params[k];
            csvi_slot *leaf = &t->slots[q->leaf];
            if (!leaf->grad) continue;
            *q->step += 1;
            const float *g32 = grad_in_float32(p, k);
            if (g32 && !csvi_optim_reads_grad32(q->config)) {
                widen_grad(p, k);
                g32 = NULL;
            }
            /* a float32 module's Adam (its param holds float32 values: optim.c)
             * keeps the value in the float32 copy alone, 28 bytes an element
             * instead of 40; csvi_program_sync widens it when the run is over */
            if (g32 && csvi_optim_state_float32(q->config)) {
                csvi_optim_step_master32(q->config, weight_copy(p, k), g32, q->state, leaf->size,
                                         *q->step);
                p->grad32[p->n_params + k] = 1;
                continue;
            }
            widen_value(p, k);
            if (g32) {
                csvi_optim_step_grad32(q->config, leaf->data, g32, q->state, leaf->size, *q->step,
                                       weight_copy(p, k));
            } else if (p->tril[p->n_params + k]) {
                csvi_optim_step_tril(q->config, leaf->data, leaf->grad, q->state, leaf->size,
                                     *q->step, p->tril[p->n_params + k]);
            } else {
                csvi_optim_step(q->config, leaf->data, leaf->grad, q->state, leaf->size, *q->step);
                if (p->grad32) round_weight(p, k);
            }
        }
        losses[s] = loss;
    }
    return n_steps;
}

void csvi_program_sync(csvi_program *p) {
    for (int32_t k = 0; k < p->n_params; k++) widen_value(p, k);
}
