/* Bernoulli over {0, 1}, parameterized by probs p (iattr[0] = 0) or logits l
 * (iattr[0] = 1).  Inputs: LP (value, param), RS (param); with logits, LP has an
 * aux slot of the output's shape (see lp_logits_block); with probs broadcast
 * over a larger output, one of the param's tables (see probs_tables); probs
 * of the value's shape run flat (see flat_probs).
 *   probs:  log p(x) = x log p + (1 - x) log1p(-p)
 *   logits: log p(x) = -(x softplus(-l) + (1 - x) softplus(l)), stable for any l.
 * The value gradient is that of the formula's continuous extension in x. */
#include <string.h>
#include "csvi_dist.h"
#include "csvi_fuse.h"
#include "csvi_parallel.h"
#include "csvi_sum.h"

static inline double lp_logits(double x, double l) {
    if (x == 1.0) return -csvi_softplus(-l);
    if (x == 0.0) return -csvi_softplus(l);
    return -(x * csvi_softplus(-l) + (1.0 - x) * csvi_softplus(l));
}

/* Logits over equal shapes (the data plate of a regression): a loop that
 * vectorizes with libmvec, over threads for a large plate.  With
 * u = e^-|l| and L = log1p(u), softplus(l) = max(l, 0) + L and
 * softplus(-l) = max(-l, 0) + L, so
 *   log p(x) = -(x max(-l, 0) + (1 - x) max(l, 0) + L),
 * with the x = 0 and x = 1 cases selected exactly (no 0 * inf, no
 * cancellation).  The aux slot keeps u, so the VJP's sigmoid(l) =
 * (l >= 0 ? 1 : u) / (1 + u) costs a division instead of a second exp. */
static inline double lp_from_u(double x, double l, double u) {
    const double pos = l > 0.0 ? l : 0.0, neg = l < 0.0 ? -l : 0.0;
    const double hinge = x == 1.0 ? neg : (x == 0.0 ? pos : x * neg + (1.0 - x) * pos);
    return -(hinge + log1p(u));
}

static inline double sigmoid_from_u(double l, double u) { return (l >= 0.0 ? 1.0 : u) / (1.0 + u); }

typedef struct {
    double *y, *u, *gl;
    const double *x, *l, *g;
} lp_job;

/* Two loops over the block (8 KB, in L1): with both libmvec calls in one
 * loop body it runs a third slower. */
static CSVI_HOT void lp_logits_block(void *ctx, int64_t lo, int64_t hi) {
    const lp_job *j = ctx;
    double *restrict y = j->y, *restrict u = j->u;
    const double *restrict x = j->x, *restrict l = j->l;
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) u[i] = exp(-fabs(l[i]));
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) y[i] = lp_from_u(x[i], l[i], u[i]);
}

static CSVI_HOT void lp_logits_vjp_block(void *ctx, int64_t lo, int64_t hi) {
    const lp_job *j = ctx;
    double *restrict gl = j->gl;
    const double *restrict x = j->x, *restrict l = j->l, *restrict g = j->g,
                 *restrict u = j->u;
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) gl[i] += g[i] * (x[i] - sigmoid_from_u(l[i], u[i]));
}

/* Probs broadcast over an output at least twice their size (an enumerated
 * site's table p[state] against every data point): the aux slot holds
 * (4,) + p's shape -- log p, log1p(-p), 1/p and 1/(1 - p) -- computed once
 * per param entry instead of once per output element.  The log-density is
 * then the same value the per-element formula gives (the same log and log1p
 * of the same p); the VJP multiplies by the reciprocals. */
static int probs_tables(const csvi_tape *t, const csvi_op *op) {
    return !op->iattr[0] && op->aux >= 0 && CSVI_AUX(t, op)->size == 4 * CSVI_IN(t, op, 1)->size;
}

static CSVI_HOT void probs_tables_of(const double *restrict p, int64_t n, double *restrict lp,
                                     double *restrict l1p, double *restrict rp,
                                     double *restrict r1p) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        lp[i] = log(p[i]);
        l1p[i] = log1p(-p[i]);
        rp[i] = 1.0 / p[i];
        r1p[i] = 1.0 / (1.0 - p[i]);
    }
}

/* The tables of the probs in op's input 1: those of the earlier op it is
 * linked to (CSVI_IATTR_TABLES) when that op's probs hold the same bytes
 * now, else its own aux slot's, filled here (vector log and log1p) when
 * `fill` (the forward; the VJP reads what the forward chose). */
static const double *probs_tables_for(const csvi_tape *t, const csvi_op *op, int fill) {
    const int64_t n = CSVI_IN(t, op, 1)->size, link = op->iattr[CSVI_IATTR_TABLES];
    const double *p = CSVI_IN(t, op, 1)->data;
    if (link > 0) {
        const csvi_op *first = &t->ops[link - 1];
        if (memcmp(CSVI_IN(t, first, 1)->data, p, (size_t)n * sizeof(double)) == 0)
            return CSVI_AUX(t, first)->data;
    }
    double *lp = CSVI_AUX(t, op)->data;
    if (fill) probs_tables_of(p, n, lp, lp + n, lp + 2 * n, lp + 3 * n);
    return lp;
}

static int table_form(const csvi_tape *t, const csvi_op *op) {
    return op->code == CSVI_OP_BERNOULLI_PROBS_ROWSUM ||
           (op->code == CSVI_OP_BERNOULLI_LP && probs_tables(t, op));
}

/* The first ops of each probs size and phase that others link to; a program
 * with more distinct tables than this links the rest to nothing. */
#define TABLE_ANCHORS 64

void csvi_bernoulli_link_tables(csvi_tape *t, const unsigned char *runs,
                                const unsigned char *phase) {
    int32_t anchors[TABLE_ANCHORS];
    int n_anchors = 0;
    for (int32_t i = 0; i < t->n_ops; i++) {
        csvi_op *op = &t->ops[i];
        if (!runs[i] || !table_form(t, op)) continue;
        const int64_t n = CSVI_IN(t, op, 1)->size;
        int a = 0;
        while (a < n_anchors && !(phase[anchors[a]] == phase[i] &&
                                  CSVI_IN(t, &t->ops[anchors[a]], 1)->size == n))
            a++;
        if (a < n_anchors)
            op->iattr[CSVI_IATTR_TABLES] = anchors[a] + 1;
        else if (n_anchors < TABLE_ANCHORS)
            anchors[n_anchors++] = i;
    }
}

/* One row of the table form: y = x log p + (1 - x) log1p(-p), each term
 * dropped where its weight is 0 (as csvi_xlogy / csvi_xlog1py do). */
static CSVI_HOT void probs_row_lp(double *restrict y, const double *restrict x,
                                  const double *restrict lp, const double *restrict l1p,
                                  int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        const double xv = x[i];
        y[i] = csvi_kept_if(xv != 0.0, xv * lp[i]) + csvi_kept_if(xv != 1.0, (1.0 - xv) * l1p[i]);
    }
}

/* gp += g (x / p - (1 - x) / (1 - p)) over one row, g == 0 adding nothing. */
static CSVI_HOT void probs_row_vjp(double *restrict gp, const double *restrict g,
                                   const double *restrict x, const double *restrict rp,
                                   const double *restrict r1p, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        const double xv = x[i];
        const double d = csvi_kept_if(xv != 0.0, xv * rp[i])
                         - csvi_kept_if(xv != 1.0, (1.0 - xv) * r1p[i]);
        gp[i] += csvi_kept_if(g[i] != 0.0, g[i] * d);
    }
}

/* probs_row_vjp with one g for the whole row (a row's sum's gradient). */
static CSVI_HOT void probs_row_vjp_one(double *restrict gp, double g, const double *restrict x,
                                       const double *restrict rp, const double *restrict r1p,
                                       int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        const double xv = x[i];
        const double d = csvi_kept_if(xv != 0.0, xv * rp[i])
                         - csvi_kept_if(xv != 1.0, (1.0 - xv) * r1p[i]);
        gp[i] += csvi_kept_if(g != 0.0, g * d);
    }
}

/* The fast path: logits, one contiguous run, and the aux slot for u. */
static int flat_logits(const csvi_iter *it, const csvi_op *op) {
    return op->iattr[0] && it->contiguous && op->aux >= 0;
}

/* Probs over equal shapes (a decoder's pixel probabilities against its
 * images): the per-element formula of the general path, with each term
 * dropped where its weight is 0 (csvi_xlogy / csvi_xlog1py's rule) by a mask
 * rather than a branch, in loops that call libmvec's log and log1p, over
 * csvi's threads for a large batch. */
static int flat_probs(const csvi_iter *it, const csvi_op *op) {
    return !op->iattr[0] && it->contiguous && op->aux < 0;
}

typedef struct {
    double *y, *gp;
    const double *x, *p, *g;
} probs_job;

/* Elements per pass of lp_probs_run's loops: a multiple of every SIMD
 * width, so each loop runs whole vectors only. */
#define PROBS_LANES 8

/* y = x log p + (1 - x) log1p(-p) over a run of a multiple of PROBS_LANES
 * elements: two loops, one libmvec call each (as lp_logits_block); y holds
 * log p between them. */
static CSVI_HOT void lp_probs_lanes(double *restrict y, const double *restrict x,
                                    const double *restrict p, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) y[i] = log(p[i]);
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        const double xv = x[i];
        y[i] = csvi_kept_if(xv != 0.0, xv * y[i])
               + csvi_kept_if(xv != 1.0, (1.0 - xv) * log1p(-p[i]));
    }
}

/* The flat log-densities of any run: whole vectors, then the last few
 * elements padded to PROBS_LANES.  A vector loop would leave those to
 * narrower or scalar calls, whose last bits may differ: so every element
 * takes the same call wherever its run starts or ends, and the fused row
 * sums (BERNOULLI_PROBS_ROWSUM) see the flat kernel's values. */
static void lp_probs_run(double *y, const double *x, const double *p, int64_t n) {
    const int64_t body = n - n % PROBS_LANES;
    lp_probs_lanes(y, x, p, body);
    if (body == n) return;
    double xb[PROBS_LANES] = {0.0}, pb[PROBS_LANES], yb[PROBS_LANES];
    for (int k = 0; k < PROBS_LANES; k++) pb[k] = 0.5;
    for (int64_t i = body; i < n; i++) {
        xb[i - body] = x[i];
        pb[i - body] = p[i];
    }
    lp_probs_lanes(yb, xb, pb, PROBS_LANES);
    for (int64_t i = body; i < n; i++) y[i] = yb[i - body];
}

static void lp_probs_block(void *ctx, int64_t lo, int64_t hi) {
    const probs_job *j = ctx;
    lp_probs_run(j->y + lo, j->x + lo, j->p + lo, hi - lo);
}

/* gp += g (x / p - (1 - x) / (1 - p)), as the general path's csvi_gmul:
 * g == 0 adds nothing. */
static CSVI_HOT void lp_probs_vjp_block(void *ctx, int64_t lo, int64_t hi) {
    const probs_job *j = ctx;
    double *restrict gp = j->gp;
    const double *restrict x = j->x, *restrict p = j->p, *restrict g = j->g;
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) {
        const double xv = x[i], pv = p[i];
        const double d = csvi_kept_if(xv != 0.0, xv / pv)
                         - csvi_kept_if(xv != 1.0, (1.0 - xv) / (1.0 - pv));
        gp[i] += csvi_kept_if(g[i] != 0.0, g[i] * d);
    }
}

int csvi_bernoulli_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *p = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    if (flat_logits(&it, op)) {
        lp_job job = {y, CSVI_AUX(t, op)->data, NULL, x, p, NULL};
        csvi_parallel_range(it.size, CSVI_PAR_TRANSCENDENTAL, lp_logits_block, &job);
    } else if (flat_probs(&it, op)) {
        probs_job job = {y, NULL, x, p, NULL};
        csvi_parallel_range(it.size, CSVI_PAR_TRANSCENDENTAL, lp_probs_block, &job);
    } else if (op->iattr[0])
        CSVI_ITER_LOOP(&it, { y[o0] = lp_logits(x[o1], p[o2]); });
    else if (probs_tables(t, op)) {
        const int64_t n = CSVI_IN(t, op, 1)->size;
        const double *lp = probs_tables_for(t, op, 1), *l1p = lp + n;
        if (csvi_iter_unit_rows(&it, 3))
            CSVI_ITER_ROWS(&it, probs_row_lp(y + o0, x + o1, lp + o2, l1p + o2, row));
        else
            CSVI_ITER_LOOP(&it, {
                const double xv = x[o1];
                y[o0] = (xv == 0.0 ? 0.0 : xv * lp[o2]) + (xv == 1.0 ? 0.0 : (1.0 - xv) * l1p[o2]);
            });
    } else
        CSVI_ITER_LOOP(&it, {
            y[o0] = csvi_xlogy(x[o1], p[o2]) + csvi_xlog1py(1.0 - x[o1], -p[o2]);
        });
    return CSVI_OK;
}

int csvi_bernoulli_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *p = CSVI_IN(t, op, 1)->data,
                 *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *gp = CSVI_IN(t, op, 1)->grad;
    if (flat_logits(&it, op) && gp && !gx) {
        lp_job job = {NULL, CSVI_AUX(t, op)->data, gp, x, p, g};
        csvi_parallel_range(it.size, CSVI_PAR_DIVIDE, lp_logits_vjp_block, &job);
    } else if (flat_probs(&it, op) && gp && !gx) {
        probs_job job = {NULL, gp, x, p, g};
        csvi_parallel_range(it.size, CSVI_PAR_DIVIDE, lp_probs_vjp_block, &job);
    } else if (op->iattr[0]) {
        /* d/dl = x - sigmoid(l), d/dx = l */
        CSVI_ITER_LOOP(&it, {
            if (gp) gp[o2] += g[o0] * (x[o1] - csvi_sigmoid(p[o2]));
            if (gx) gx[o1] += csvi_gmul(g[o0], p[o2]);
        });
    } else if (probs_tables(t, op)) {
        const int64_t n = CSVI_IN(t, op, 1)->size;
        const double *lp = probs_tables_for(t, op, 0), *l1p = lp + n, *rp = lp + 2 * n,
                     *r1p = lp + 3 * n;
        if (gp && !gx && csvi_iter_unit_rows(&it, 3))
            CSVI_ITER_ROWS(&it, probs_row_vjp(gp + o2, g + o0, x + o1, rp + o2, r1p + o2, row));
        else
            CSVI_ITER_LOOP(&it, {
                const double xv = x[o1];
                if (gp) {
                    const double d = (xv == 0.0 ? 0.0 : xv * rp[o2])
                                     - (xv == 1.0 ? 0.0 : (1.0 - xv) * r1p[o2]);
                    gp[o2] += csvi_gmul(g[o0], d);
                }
                if (gx) gx[o1] += csvi_gmul(g[o0], lp[o2] - l1p[o2]);
            });
    } else {
        /* d/dp = x/p - (1-x)/(1-p) (a zero weight drops its term), d/dx = log p - log1p(-p) */
        CSVI_ITER_LOOP(&it, {
            const double xv = x[o1], pv = p[o2];
            if (gp) {
                const double d = (xv == 0.0 ? 0.0 : xv / pv) - (xv == 1.0 ? 0.0 : (1.0 - xv) / (1.0 - pv));
                gp[o2] += csvi_gmul(g[o0], d);
            }
            if (gx) gx[o1] += csvi_gmul(g[o0], log(pv) - log1p(-pv));
        });
    }
    return CSVI_OK;
}

int csvi_bernoulli_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *p = CSVI_IN(t, op, 0)->data;
    double *y = CSVI_OUT(t, op)->data;
    const int logits = op->iattr[0] != 0;
    CSVI_ITER_LOOP(&it, {
        const double pv = logits ? csvi_sigmoid(p[o1]) : p[o1];
        y[o0] = random_standard_uniform(t->rng) < pv ? 1.0 : 0.0;
    });
    return CSVI_OK;
}

/* BERNOULLI_LOGITS_SUM, made only by the compiled program's fusion pass
 * (fuse.c): the total log-density of data x (no gradient) under logits
 * l = z + c, where c is an optional single number (inputs x, z[, c]), for a
 * regression's likelihood sum(Bernoulli(logits=X @ w + b).log_prob(y)).
 * One pass replaces three ops' five (add, log-density, sum; and backward
 * the sum's, the log-density's and the add's), l and the per-point
 * log-densities are never stored, and the aux slot keeps the residual
 * r = x - sigmoid(l): the VJP is dz = g r, dc = g sum(r).  Every value is
 * computed as the unfused ops compute it, and summed in the same order
 * (csvi_sum.h). */
typedef struct {
    const double *x, *z;
    double *r, *gz;   /* the residual (aux): written forward, read backward */
    double c, g;
} fused_job;

static CSVI_HOT void logits_sum_terms(void *ctx, int64_t lo, int64_t hi, double *lp) {
    const fused_job *j = ctx;
    const double *restrict x = j->x + lo, *restrict z = j->z + lo;
    double *restrict r = j->r + lo;
    const double c = j->c;
    const int64_t n = hi - lo;
    double l[CSVI_SUM_BLOCK], u[CSVI_SUM_BLOCK];
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        l[i] = z[i] + c;
        u[i] = exp(-fabs(l[i]));
    }
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        lp[i] = lp_from_u(x[i], l[i], u[i]);
        r[i] = x[i] - sigmoid_from_u(l[i], u[i]);
    }
}

int csvi_bernoulli_logits_sum_fwd(csvi_tape *t, const csvi_op *op) {
    const int64_t n = CSVI_IN(t, op, 0)->size;
    if (CSVI_IN(t, op, 1)->size != n || CSVI_AUX(t, op)->size != n) return CSVI_ERR_SHAPE;
    const double c = op->n_in > 2 ? CSVI_IN(t, op, 2)->data[0] : 0.0;
    fused_job j = {CSVI_IN(t, op, 0)->data, CSVI_IN(t, op, 1)->data, CSVI_AUX(t, op)->data,
                   NULL, c, 0.0};
    CSVI_OUT(t, op)->data[0] = csvi_sum_terms(n, CSVI_PAR_TRANSCENDENTAL, logits_sum_terms, &j);
    return CSVI_OK;
}

/* dz += g r, and the terms of dc. */
static CSVI_HOT void residual_terms(void *ctx, int64_t lo, int64_t hi, double *terms) {
    const fused_job *j = ctx;
    const double *restrict r = j->r;
    double *restrict gz = j->gz;
    const double g = j->g;
    if (gz) {
        CSVI_SIMD
        for (int64_t i = lo; i < hi; i++) {
            terms[i - lo] = g * r[i];
            gz[i] += terms[i - lo];
        }
    } else {
        CSVI_SIMD
        for (int64_t i = lo; i < hi; i++) terms[i - lo] = g * r[i];
    }
}

static CSVI_HOT void residual_block(void *ctx, int64_t lo, int64_t hi) {
    const fused_job *j = ctx;
    const double *restrict r = j->r;
    double *restrict gz = j->gz;
    CSVI_SIMD
    for (int64_t i = lo; i < hi; i++) gz[i] += j->g * r[i];
}

int csvi_bernoulli_logits_sum_vjp(csvi_tape *t, const csvi_op *op) {
    const int64_t n = CSVI_IN(t, op, 1)->size;
    double *gc = op->n_in > 2 ? CSVI_IN(t, op, 2)->grad : NULL;
    fused_job j = {NULL, NULL, CSVI_AUX(t, op)->data, CSVI_IN(t, op, 1)->grad, 0.0,
                   CSVI_OUT(t, op)->grad[0]};
    if (gc)
        gc[0] += csvi_sum_terms(n, CSVI_PAR_CHEAP, residual_terms, &j);
    else if (j.gz)
        csvi_parallel_range(n, CSVI_PAR_CHEAP, residual_block, &j);
    return CSVI_OK;
}

/* BERNOULLI_PROBS_ROWSUM, made only by the compiled program's fusion pass
 * (fuse.c): BERNOULLI_LP in its table form (probs broadcast over more data)
 * whose log-densities are read only by a SUM over their last dim -- an
 * emission summed over its data plate, per state and sequence.  Inputs
 * (x, p) and aux as BERNOULLI_LP's; the output is the SUM's; iattr[1] is the
 * log-densities' ndim, iattr[2..] their shape, dattr[0] the SUM's scale.
 * Each row is computed into a stack buffer and summed as SUM sums a row
 * (csvi_sum.h), so the values are the unfused ops', without storing the
 * log-densities or their gradient; the VJP reads one gradient per row. */
typedef struct {
    csvi_iter it;        /* over the rows: operands out, x, p (row offsets) */
    int64_t len;         /* the summed dim */
} rowsum_rows;

static void rowsum_setup(rowsum_rows *r, const csvi_tape *t, const csvi_op *op) {
    const int nd = (int)op->iattr[1];
    int64_t rows[CSVI_MAX_DIMS];   /* the log-densities' shape, the summed dim 1 */
    for (int d = 0; d < nd; d++) rows[d] = op->iattr[2 + d];
    r->len = rows[nd - 1];
    rows[nd - 1] = 1;
    csvi_iter_start(&r->it, nd, rows);
    csvi_iter_add(&r->it, nd, rows);
    for (int k = 0; k < 2; k++) {  /* x and p: element offsets of each row's start */
        const csvi_slot *in = CSVI_IN(t, op, k);
        int64_t strides[CSVI_MAX_DIMS], step = 1;
        for (int d = nd - 1; d >= 0; d--) {
            const int di = d - (nd - in->ndim);
            const int64_t size = di >= 0 ? in->shape[di] : 1;
            strides[d] = size == 1 ? 0 : step;
            step *= size;
        }
        csvi_iter_add_strided(&r->it, strides);
    }
    csvi_iter_finish(&r->it);
}

/* The flat form (no aux: probs of the value's shape, a decoder's pixels
 * against its images): rows of the log-densities in tasks of about
 * CSVI_BLOCK elements, each row computed by the flat kernel's loops
 * (lp_probs_run) into a stack buffer and summed as SUM sums a row; the VJP
 * hands each row's gradient on as SUM's VJP does and applies the flat
 * VJP's formula, storing where the compiled step left the probs' gradient
 * uncleared (csvi_grad_claim: nothing else writes it).  No 256 x 784
 * log-density, its gradient, or the clearing of either. */
typedef struct {
    const double *x, *p, *g;
    double *y, *gp;
    int64_t len, rows_per_task, rows, store;
    double scale;
    int whole;           /* one row summed in csvi_sum_array's order (SUM to a scalar) */
} flat_rowsum_job;

static void flat_rowsum_fwd_task(void *ctx, int64_t task) {
    const flat_rowsum_job *j = ctx;
    const int64_t r0 = task * j->rows_per_task;
    const int64_t r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    double row[CSVI_ROWSUM_MAX];
    for (int64_t r = r0; r < r1; r++) {
        lp_probs_run(row, j->x + r * j->len, j->p + r * j->len, j->len);
        j->y[r] = j->whole ? csvi_sum_array(row, j->len) : csvi_sum_run(row, j->len);
    }
}

/* kept(g != 0, g d) over a run, d = x / p - (1 - x) / (1 - p) as
 * lp_probs_vjp_block's.  A run of 0s and 1s (binary pixels) takes one
 * division an element, d = 1 / p or -1 / (1 - p), the same numbers as the
 * formula's with its other term dropped; others take the formula's two. */
CSVI_HOT void csvi_bernoulli_probs_vjp_run(double *restrict out, double g,
                                           const double *restrict x,
                                           const double *restrict p, int64_t n) {
    int64_t other = 0;
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) other += x[i] != 0.0 && x[i] != 1.0;
    if (other) {
        CSVI_SIMD
        for (int64_t i = 0; i < n; i++) {
            const double xv = x[i], pv = p[i];
            const double d = csvi_kept_if(xv != 0.0, xv / pv)
                             - csvi_kept_if(xv != 1.0, (1.0 - xv) / (1.0 - pv));
            out[i] = csvi_kept_if(g != 0.0, g * d);
        }
    } else {
        CSVI_SIMD
        for (int64_t i = 0; i < n; i++) {
            const int one = x[i] != 0.0;
            const double d = csvi_pick(one, 1.0, -1.0) / csvi_pick(one, p[i], 1.0 - p[i]);
            out[i] = csvi_kept_if(g != 0.0, g * d);
        }
    }
}

/* gp = 0 + g d (store) or gp += g d over one row, g == 0 adding nothing. */
static CSVI_HOT void flat_row_vjp(double *restrict gp, double g, const double *restrict x,
                                  const double *restrict p, int64_t n, int store) {
    double v[CSVI_ROWSUM_MAX];
    csvi_bernoulli_probs_vjp_run(v, g, x, p, n);
    if (store) {
        CSVI_SIMD
        for (int64_t i = 0; i < n; i++) gp[i] = 0.0 + v[i];
    } else {
        CSVI_SIMD
        for (int64_t i = 0; i < n; i++) gp[i] += v[i];
    }
}

static void flat_rowsum_vjp_task(void *ctx, int64_t task) {
    const flat_rowsum_job *j = ctx;
    const int64_t r0 = task * j->rows_per_task;
    const int64_t r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        const double gv = 0.0 + j->scale * j->g[j->whole ? 0 : r];  /* as SUM's VJP */
        flat_row_vjp(j->gp + r * j->len, gv, j->x + r * j->len, j->p + r * j->len, j->len,
                     (int)j->store);
    }
}

static int flat_rowsum_setup(flat_rowsum_job *j, const csvi_tape *t, const csvi_op *op) {
    const int nd = (int)op->iattr[1];
    const csvi_slot *x = CSVI_IN(t, op, 0), *p = CSVI_IN(t, op, 1);
    if (nd < 1) return CSVI_ERR_SHAPE;
    j->len = op->iattr[1 + nd];
    if (j->len < 1 || j->len > CSVI_ROWSUM_MAX || x->size != p->size || x->size % j->len)
        return CSVI_ERR_SHAPE;
    j->rows = x->size / j->len;
    if (CSVI_OUT(t, op)->size != j->rows) return CSVI_ERR_SHAPE;
    j->whole = j->rows == 1;
    j->rows_per_task = j->len < CSVI_BLOCK ? CSVI_BLOCK / j->len : 1;
    j->x = x->data;
    j->p = p->data;
    j->scale = op->dattr[0];
    return CSVI_OK;
}

static int64_t flat_rowsum_tasks(const flat_rowsum_job *j) {
    return (j->rows + j->rows_per_task - 1) / j->rows_per_task;
}

int csvi_bernoulli_probs_rowsum_fwd(csvi_tape *t, const csvi_op *op) {
    if (op->aux < 0) {
        flat_rowsum_job j = {0};
        const int rc = flat_rowsum_setup(&j, t, op);
        if (rc) return rc;
        csvi_slot *out = CSVI_OUT(t, op);
        j.y = out->data;
        csvi_parallel_tasks(flat_rowsum_tasks(&j),
                            CSVI_OVER(j.rows * j.len, CSVI_PAR_TRANSCENDENTAL), 0,
                            flat_rowsum_fwd_task, &j);
        if (j.scale != 1.0)
            for (int64_t i = 0; i < out->size; i++) out->data[i] *= j.scale;
        return CSVI_OK;
    }
    rowsum_rows r;
    rowsum_setup(&r, t, op);
    const double *x = CSVI_IN(t, op, 0)->data;
    const int64_t n = CSVI_IN(t, op, 1)->size, len = r.len;
    const double *lp = probs_tables_for(t, op, 1), *l1p = lp + n, scale = op->dattr[0];
    csvi_slot *out = CSVI_OUT(t, op);
    double *y = out->data, row[CSVI_ROWSUM_MAX];
    CSVI_ITER_LOOP(&r.it, {
        probs_row_lp(row, x + o1, lp + o2, l1p + o2, len);
        y[o0] = out->size == 1 ? csvi_sum_array(row, len) : csvi_sum_run(row, len);
    });
    if (scale != 1.0)
        for (int64_t i = 0; i < out->size; i++) y[i] *= scale;
    return CSVI_OK;
}

int csvi_bernoulli_probs_rowsum_vjp(csvi_tape *t, const csvi_op *op) {
    double *gp = CSVI_IN(t, op, 1)->grad;
    if (!gp) return CSVI_OK;
    if (op->aux < 0) {
        flat_rowsum_job j = {0};
        const int rc = flat_rowsum_setup(&j, t, op);
        if (rc) return rc;
        j.g = CSVI_OUT(t, op)->grad;
        j.gp = gp;
        j.store = csvi_grad_claim(t, op->in[1]);
        csvi_parallel_tasks(flat_rowsum_tasks(&j), CSVI_OVER(j.rows * j.len, CSVI_PAR_DIVIDE),
                            0, flat_rowsum_vjp_task, &j);
        return CSVI_OK;
    }
    rowsum_rows r;
    rowsum_setup(&r, t, op);
    const double *x = CSVI_IN(t, op, 0)->data, *g = CSVI_OUT(t, op)->grad;
    const int64_t n = CSVI_IN(t, op, 1)->size, len = r.len;
    const double *rp = probs_tables_for(t, op, 0) + 2 * n, *r1p = rp + n, scale = op->dattr[0];
    CSVI_ITER_LOOP(&r.it, {
        const double gv = 0.0 + scale * g[o0];   /* as SUM's VJP hands it on */
        probs_row_vjp_one(gp + o2, gv, x + o1, rp + o2, r1p + o2, len);
    });
    return CSVI_OK;
}
