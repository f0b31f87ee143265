/* Normal(loc, scale), LogNormal(loc, scale), HalfNormal(scale).
 * All three are transforms of one standard normal draw eps, kept in aux:
 *   Normal     z = loc + scale eps
 *   LogNormal  z = exp(loc + scale eps)
 *   HalfNormal z = scale |eps|   (aux keeps |eps|) */
#include "csvi_checks.h"
#include "csvi_dist.h"
#include "csvi_normal_fill.h"
#include "csvi_parallel.h"
#include "csvi_sum.h"

/* ---- Normal ------------------------------------------------------------- */

/* The flat form of a log-density op over (x, loc, scale): the output one
 * contiguous run, each input walking it or one number (a data vector against
 * a gathered loc and a fixed scale).  st[k] is input k's element stride. */
static int normal_flat(const csvi_iter *it, int64_t st[3]) {
    if (it->contiguous) {
        st[0] = st[1] = st[2] = 1;
        return 1;
    }
    if (it->ndim != 1 || it->stride[0][0] != 1) return 0;
    for (int k = 0; k < 3; k++) {
        st[k] = it->stride[k + 1][0];
        if (st[k] != 0 && st[k] != 1) return 0;
    }
    return 1;
}

/* x / s == x * (1 / s) for every x, bit for bit, when 1 / s is exact: s a
 * power of two (both are the correctly rounded x 2^-k).  A unit scale, the
 * usual fixed observation noise, then costs a product per element, not a
 * division (a vector division takes ~4x a product's cycles). */
static int reciprocal_exact(double s) {
    int e;
    return isfinite(1.0 / s) && frexp(s, &e) == 0.5;
}

/* One scale: its log once; Z_OVER_S(d) is d / s or d * (1 / s). */
#define NORMAL_LP_ONE_SCALE(Z_OVER_S)                                \
    if (st[0] && st[1]) {                                            \
        for (int64_t i = 0; i < n; i++) {                            \
            const double z = Z_OVER_S(x[i] - mu[i]);                 \
            y[i] = -0.5 * z * z - ls - CSVI_LOG_SQRT_2PI;            \
        }                                                            \
    } else if (st[0]) { /* one loc too: a latent vector under one prior */ \
        const double mv = mu[0];                                     \
        for (int64_t i = 0; i < n; i++) {                            \
            const double z = Z_OVER_S(x[i] - mv);                    \
            y[i] = -0.5 * z * z - ls - CSVI_LOG_SQRT_2PI;            \
        }                                                            \
    } else {                                                         \
        for (int64_t i = 0; i < n; i++) {                            \
            const double z = Z_OVER_S(x[i * st[0]] - mu[i * st[1]]); \
            y[i] = -0.5 * z * z - ls - CSVI_LOG_SQRT_2PI;            \
        }                                                            \
    }

/* The flat forward on restrict pointers (vector loops); one log of a single
 * scale.  The expression is the iterator path's. */
static CSVI_HOT void normal_lp_run(double *restrict y, const double *restrict x,
                                   const double *restrict mu, const double *restrict s,
                                   const int64_t st[3], int64_t n) {
    if (st[2] == 0) {
        const double sv = s[0], ls = log(sv), inv = 1.0 / sv;
#define OVER_S(d) ((d) / sv)
#define TIMES_INV(d) ((d) * inv)
        if (reciprocal_exact(sv)) {
            NORMAL_LP_ONE_SCALE(TIMES_INV)
        } else {
            NORMAL_LP_ONE_SCALE(OVER_S)
        }
#undef OVER_S
#undef TIMES_INV
    } else if (st[0] && st[1]) {
        CSVI_SIMD
        for (int64_t i = 0; i < n; i++) {
            const double z = (x[i] - mu[i]) / s[i];
            y[i] = -0.5 * z * z - log(s[i]) - CSVI_LOG_SQRT_2PI;
        }
    } else {
        CSVI_SIMD
        for (int64_t i = 0; i < n; i++) {
            const double z = (x[i * st[0]] - mu[i * st[1]]) / s[i];
            y[i] = -0.5 * z * z - log(s[i]) - CSVI_LOG_SQRT_2PI;
        }
    }
}

/* The flat VJP when every gradient wanted walks the run (no sum into a
 * single number) and no two are one buffer: each element's terms as the
 * iterator path's. */
#define NORMAL_LP_VJP_LOOP(XI, MI, SI)                        \
    for (int64_t i = 0; i < n; i++) {                         \
        const double inv = 1.0 / (SI);                        \
        const double z = ((XI) - (MI)) * inv;                 \
        const double gz = g[i] * z * inv;                     \
        if (gx) gx[i] -= gz;                                  \
        if (gm) gm[i] += gz;                                  \
        if (gs) gs[i] += g[i] * (z * z - 1.0) * inv;          \
    }

static CSVI_HOT void normal_lp_vjp_run(const double *restrict g, const double *restrict x,
                                       const double *restrict mu, const double *restrict s,
                                       const int64_t st[3], double *restrict gx,
                                       double *restrict gm, double *restrict gs, int64_t n) {
    const int64_t sx = st[0], sm = st[1], ss = st[2];
    if (sx && sm && ss) {
        NORMAL_LP_VJP_LOOP(x[i], mu[i], s[i])
    } else if (sx && sm) {
        const double sv = s[0];
        NORMAL_LP_VJP_LOOP(x[i], mu[i], sv)
    } else {
        NORMAL_LP_VJP_LOOP(x[i * sx], mu[i * sm], s[i * ss])
    }
}

int csvi_normal_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *mu = CSVI_IN(t, op, 1)->data,
                 *s = CSVI_IN(t, op, 2)->data;
    double *y = CSVI_OUT(t, op)->data;
    int64_t st[3];
    if (normal_flat(&it, st)) {
        normal_lp_run(y, x, mu, s, st, it.size);
        return CSVI_OK;
    }
    csvi_memo ls = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        const double z = (x[o1] - mu[o2]) / s[o3];
        y[o0] = -0.5 * z * z - CSVI_MEMO(ls, s[o3], log(s[o3])) - CSVI_LOG_SQRT_2PI;
    });
    return CSVI_OK;
}

/* d/dx = -z/s, d/dloc = z/s, d/dscale = (z^2 - 1)/s with z = (x - loc)/s. */
/* The flat VJP when loc and scale are single numbers (a latent vector under
 * one prior): their gradients sum in registers, in the iterator path's
 * order and with its expressions (so not CSVI_HOT: no contraction the
 * iterator path does not make). */
static void normal_lp_vjp_shared(const double *g, const double *x, double mu, double sv,
                                 double *gx, double *gm, double *gs, int64_t n) {
    double am = gm ? *gm : 0.0, as = gs ? *gs : 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double inv = 1.0 / sv;
        const double z = (x[i] - mu) * inv;
        const double gz = g[i] * z * inv;
        if (gx) gx[i] -= gz;
        am += gz;
        as += g[i] * (z * z - 1.0) * inv;
    }
    if (gm) *gm = am;
    if (gs) *gs = as;
}

int csvi_normal_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *mu = CSVI_IN(t, op, 1)->data,
                 *s = CSVI_IN(t, op, 2)->data, *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *gm = CSVI_IN(t, op, 1)->grad,
           *gs = CSVI_IN(t, op, 2)->grad;
    int64_t st[3];
    if (normal_flat(&it, st) && (!gx || st[0]) && (!gm || st[1]) && (!gs || st[2]) &&
        (!gx || (gx != gm && gx != gs)) && (!gm || gm != gs)) {
        normal_lp_vjp_run(g, x, mu, s, st, gx, gm, gs, it.size);
        return CSVI_OK;
    }
    if (normal_flat(&it, st) && st[0] && !st[1] && !st[2] && (!gm || gm != gs) &&
        (!gx || (gx != gm && gx != gs))) {
        normal_lp_vjp_shared(g, x, mu[0], s[0], gx, gm, gs, it.size);
        return CSVI_OK;
    }
    CSVI_ITER_LOOP(&it, {
        const double inv = 1.0 / s[o3];
        const double z = (x[o1] - mu[o2]) * inv;
        const double gz = g[o0] * z * inv;
        if (gx) gx[o1] -= gz;
        if (gm) gm[o2] += gz;
        if (gs) gs[o3] += g[o0] * (z * z - 1.0) * inv;
    });
    return CSVI_OK;
}

/* ---- NORMAL_GATHER_SUM: GATHER + NORMAL_LP + the ELBO's SUM_N ------------
 * Made only by the compiled program's fusion pass (fuse.c): the total over i
 * of Normal(x[i] | loc[index[i]], scale), scale one number -- an observed
 * `Normal(a[group], s)` summed by the ELBO -- without storing the gathered
 * locs, the log-densities or any gradient but loc's.  Inputs (x, loc, index,
 * scale); the output a scalar.  Each block of terms is the unfused kernels'
 * own work (normal_lp_run, NORMAL_LP's VJP and GATHER's run-wise scatter),
 * summed in SUM's order, so the values are the unfused ops', bit for bit.
 * The gathered locs live in a block on the stack, not in a 10,000-element
 * buffer written by the forward and read back by the VJP: that buffer's
 * stores were most of the forward's time. */
typedef struct {
    const double *x, *loc, *index, *s;
    int64_t n_loc;
} gather_sum_job;

/* The terms of [lo, hi) against m[k] = loc[index[lo + k]]; NaN where an
 * index is out of range (the forward then reports it).  fuse.c fuses only a
 * loc of fewer than 2^31 elements, so positions fit csvi_gather_positions'
 * int32 (a scalar double-to-int64 conversion per element had made this
 * gather ~15% slower). */
static CSVI_HOT void gather_sum_terms(void *ctx, int64_t lo, int64_t hi, double *terms) {
    const gather_sum_job *j = ctx;
    int32_t p[CSVI_SUM_BLOCK];
    double m[CSVI_SUM_BLOCK];
    const int64_t st[3] = {1, 1, 0}, n = hi - lo;
    const int bad = csvi_gather_positions(j->index + lo, n, j->n_loc, p);
    for (int64_t k = 0; k < n; k++) m[k] = j->loc[p[k]];
    if (bad)
        for (int64_t k = 0; k < n; k++)
            if (!(j->index[lo + k] > -1.0 && j->index[lo + k] < (double)j->n_loc)) m[k] = NAN;
    normal_lp_run(terms, j->x + lo, m, j->s, st, n);
}

/* Threads from 65,536 terms, not CSVI_PAR_CHEAP's 8,192: at 10,000 terms
 * (~10 us) this sum was the only job of a ~60 us compiled step that woke
 * csvi's second thread, which did ~10% of its blocks, and whenever another
 * process shared the cores each step then waited for that thread's time
 * slice: wall time per step 1.7x one thread's (benchmarks/RESULTS.md,
 * session 24). */
#define GATHER_SUM_MIN_PARALLEL 65536

int csvi_normal_gather_sum_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *loc = CSVI_IN(t, op, 1), *ix = CSVI_IN(t, op, 2);
    if (ix->size != x->size || CSVI_IN(t, op, 3)->size != 1) return CSVI_ERR_SHAPE;
    gather_sum_job j = {x->data, loc->data, ix->data, CSVI_IN(t, op, 3)->data, loc->size};
    const double total = csvi_sum_terms(x->size, GATHER_SUM_MIN_PARALLEL, gather_sum_terms, &j);
    if (isnan(total))  /* GATHER's check, off the hot path */
        for (int64_t k = 0; k < ix->size; k++)
            if (!(ix->data[k] >= 0.0 && ix->data[k] < (double)loc->size)) return CSVI_ERR_INDEX;
    CSVI_OUT(t, op)->data[0] = total;
    return CSVI_OK;
}

/* gm[k] = 0 + d/dloc of term k and gs += its d/dscale, element by element:
 * NORMAL_LP's iterator path, which the unfused VJP takes when the scale (one
 * number) wants a gradient. */
static void gather_sum_vjp_scale(double g, const double *x, const double *m, double sv,
                                 double *gm, double *gs, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const double inv = 1.0 / sv;
        const double z = (x[i] - m[i]) * inv;
        const double gz = g * z * inv;
        gm[i] = 0.0 + gz;
        *gs += g * (z * z - 1.0) * inv;
    }
}

/* loc's gradient when the scale wants none, in one pass: within a run of
 * equal indices the gathered loc is one number, each term's d/dloc is
 * 0 + (g z) / s with z = (x - loc) / s as NORMAL_LP's VJP makes it (into a
 * cleared buffer, after SUM_N's 0 + g), added in a register as GATHER's VJP
 * adds a run.  Not CSVI_HOT: no contraction the unfused kernels' rounding
 * does not have. */
static void gather_sum_vjp_run(double g, const double *x, const double *loc,
                               const double *index, double sv, double *ga, int64_t n) {
    const double inv = 1.0 / sv;
    double at = index[0];
    int64_t k = (int64_t)at;
    double mk = loc[k], acc = ga[k];
    for (int64_t i = 0; i < n; i++) {
        if (index[i] != at) {
            ga[k] = acc;
            at = index[i];
            k = (int64_t)at;
            mk = loc[k];
            acc = ga[k];
        }
        const double z = (x[i] - mk) * inv;
        acc += 0.0 + g * z * inv;
    }
    ga[k] = acc;
}

/* The same sums in GATHER_VJP_LANES stretches of the terms walked side by
 * side.  One stretch is a chain of dependent adds, each waiting for the last
 * (~4 cycles): ~70% of the step's VJP time at 10,000 terms.  When the
 * indices never decrease (a[group] with the rows sorted by group) and each
 * stretch starts where an index changes, no loc is added to from two
 * stretches, so they are independent chains and each loc's gradient still
 * takes its terms in GATHER's order: the same bits.  Other indices take the
 * one-stretch walk. */
#define GATHER_VJP_LANES 4
#define GATHER_VJP_MIN_LANES 1024

/* Stretch bounds start[0..LANES]: each at the first index change from
 * n * s / LANES on (empty where one run spans a stretch). */
static void gather_vjp_stretches(const double *index, int64_t n, int64_t start[]) {
    start[0] = 0;
    start[GATHER_VJP_LANES] = n;
    for (int s = 1; s < GATHER_VJP_LANES; s++) {
        int64_t b = n * s / GATHER_VJP_LANES;
        if (b < start[s - 1]) b = start[s - 1];
        while (b < n && index[b] == index[b - 1]) b++;
        start[s] = b;
    }
}

static void gather_sum_vjp_loc(double g, const double *x, const double *loc,
                               const double *index, double sv, double *ga, int64_t n) {
    if (n < GATHER_VJP_MIN_LANES || !csvi_nondecreasing(index, n)) {
        gather_sum_vjp_run(g, x, loc, index, sv, ga, n);
        return;
    }
    int64_t start[GATHER_VJP_LANES + 1];
    gather_vjp_stretches(index, n, start);
    const double inv = 1.0 / sv;
    double at[GATHER_VJP_LANES], mk[GATHER_VJP_LANES], acc[GATHER_VJP_LANES];
    int64_t k[GATHER_VJP_LANES], common = n;
    for (int s = 0; s < GATHER_VJP_LANES; s++) {
        const int64_t len = start[s + 1] - start[s];
        common = len < common ? len : common;
        at[s] = len ? index[start[s]] : 0.0;
        k[s] = (int64_t)at[s];
        mk[s] = len ? loc[k[s]] : 0.0;
        acc[s] = len ? ga[k[s]] : 0.0;
    }
    for (int64_t i = 0; i < common; i++) {
        for (int s = 0; s < GATHER_VJP_LANES; s++) {
            const int64_t j = start[s] + i;
            if (index[j] != at[s]) {
                ga[k[s]] = acc[s];
                at[s] = index[j];
                k[s] = (int64_t)at[s];
                mk[s] = loc[k[s]];
                acc[s] = ga[k[s]];
            }
            const double z = (x[j] - mk[s]) * inv;
            acc[s] += 0.0 + g * z * inv;
        }
    }
    for (int s = 0; s < GATHER_VJP_LANES; s++) {
        if (start[s + 1] == start[s]) continue;
        ga[k[s]] = acc[s];
        const int64_t from = start[s] + common;
        if (from < start[s + 1])
            gather_sum_vjp_run(g, x + from, loc, index + from, sv, ga, start[s + 1] - from);
    }
}

int csvi_normal_gather_sum_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *loc = CSVI_IN(t, op, 1), *ix = CSVI_IN(t, op, 2),
                    *s = CSVI_IN(t, op, 3);
    const double *index = ix->data;
    double *ga = loc->grad, *gs = s->grad;
    const int64_t n = x->size;
    if ((!ga && !gs) || n == 0) return CSVI_OK;
    /* SUM_N's VJP hands each log-density 0 + g; GATHER's adds a run of equal
     * indices in a register (carried across blocks), converting an index
     * only where the run changes.  The forward has checked the indices. */
    const double g = 0.0 + CSVI_OUT(t, op)->grad[0];
    if (!gs) {
        gather_sum_vjp_loc(g, x->data, loc->data, index, s->data[0], ga, n);
        return CSVI_OK;
    }
    double m[CSVI_SUM_BLOCK], gm[CSVI_SUM_BLOCK];
    double at = index[0];
    int64_t k = (int64_t)at;
    double acc = ga ? ga[k] : 0.0;
    for (int64_t lo = 0; lo < n; lo += CSVI_SUM_BLOCK) {
        const int64_t len = n - lo < CSVI_SUM_BLOCK ? n - lo : CSVI_SUM_BLOCK;
        for (int64_t i = 0; i < len; i++) m[i] = loc->data[(int64_t)index[lo + i]];
        gather_sum_vjp_scale(g, x->data + lo, m, s->data[0], gm, gs, len);
        if (!ga) continue;
        for (int64_t i = 0; i < len; i++) {
            if (index[lo + i] != at) {
                ga[k] = acc;
                at = index[lo + i];
                k = (int64_t)at;
                acc = ga[k];
            }
            acc += gm[i];
        }
    }
    if (ga) ga[k] = acc;
    return CSVI_OK;
}

int csvi_normal_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *mu = CSVI_IN(t, op, 0)->data, *s = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data, *eps = CSVI_AUX(t, op)->data;
    csvi_fill_standard_normal(t->rng, eps, CSVI_AUX(t, op)->size);
    CSVI_ITER_LOOP(&it, { y[o0] = mu[o1] + s[o2] * eps[o0]; });
    return CSVI_OK;
}

int csvi_normal_rs_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *eps = CSVI_AUX(t, op)->data, *g = CSVI_OUT(t, op)->grad;
    double *gm = CSVI_IN(t, op, 0)->grad, *gs = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        if (gm) gm[o1] += g[o0];
        if (gs) gs[o2] += g[o0] * eps[o0];
    });
    return CSVI_OK;
}

/* ---- LogNormal: log x ~ Normal(loc, scale); density has the extra -log x ---- */

int csvi_lognormal_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *mu = CSVI_IN(t, op, 1)->data,
                 *s = CSVI_IN(t, op, 2)->data;
    double *y = CSVI_OUT(t, op)->data;
    csvi_memo ls = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        const double lx = log(x[o1]);
        const double z = (lx - mu[o2]) / s[o3];
        /* x = 0: the density tends to 0 (log -> -inf) rather than NaN */
        y[o0] = x[o1] > 0.0
                    ? -0.5 * z * z - CSVI_MEMO(ls, s[o3], log(s[o3])) - CSVI_LOG_SQRT_2PI - lx
                    : -INFINITY;
    });
    return CSVI_OK;
}

int csvi_lognormal_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *mu = CSVI_IN(t, op, 1)->data,
                 *s = CSVI_IN(t, op, 2)->data, *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *gm = CSVI_IN(t, op, 1)->grad,
           *gs = CSVI_IN(t, op, 2)->grad;
    CSVI_ITER_LOOP(&it, {
        if (g[o0] != 0.0 && x[o1] > 0.0) {
            const double inv = 1.0 / s[o3];
            const double z = (log(x[o1]) - mu[o2]) * inv;
            if (gx) gx[o1] -= g[o0] * (z * inv + 1.0) / x[o1];
            if (gm) gm[o2] += g[o0] * z * inv;
            if (gs) gs[o3] += g[o0] * (z * z - 1.0) * inv;
        }
    });
    return CSVI_OK;
}

int csvi_lognormal_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *mu = CSVI_IN(t, op, 0)->data, *s = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data, *eps = CSVI_AUX(t, op)->data;
    csvi_fill_standard_normal(t->rng, eps, CSVI_AUX(t, op)->size);
    CSVI_ITER_LOOP(&it, { y[o0] = exp(mu[o1] + s[o2] * eps[o0]); });
    return CSVI_OK;
}

/* dz/dloc = z, dz/dscale = z eps. */
int csvi_lognormal_rs_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *eps = CSVI_AUX(t, op)->data, *g = CSVI_OUT(t, op)->grad,
                 *y = CSVI_OUT(t, op)->data;
    double *gm = CSVI_IN(t, op, 0)->grad, *gs = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        const double gz = g[o0] * y[o0];
        if (gm) gm[o1] += gz;
        if (gs) gs[o2] += gz * eps[o0];
    });
    return CSVI_OK;
}

/* ---- HalfNormal: |Normal(0, scale)|, density doubled on x >= 0 ---------- */

int csvi_halfnormal_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *s = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    csvi_memo ls = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        const double z = x[o1] / s[o2];
        y[o0] = x[o1] >= 0.0
                    ? CSVI_LOG_2 - CSVI_LOG_SQRT_2PI - CSVI_MEMO(ls, s[o2], log(s[o2])) - 0.5 * z * z
                    : -INFINITY;
    });
    return CSVI_OK;
}

int csvi_halfnormal_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *s = CSVI_IN(t, op, 1)->data,
                 *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *gs = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        if (x[o1] >= 0.0) {
            const double inv = 1.0 / s[o2];
            const double z = x[o1] * inv;
            if (gx) gx[o1] -= g[o0] * z * inv;
            if (gs) gs[o2] += g[o0] * (z * z - 1.0) * inv;
        }
    });
    return CSVI_OK;
}

int csvi_halfnormal_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *s = CSVI_IN(t, op, 0)->data;
    double *y = CSVI_OUT(t, op)->data, *eps = CSVI_AUX(t, op)->data;
    csvi_fill_standard_normal(t->rng, eps, CSVI_AUX(t, op)->size);
    CSVI_ITER_LOOP(&it, {
        eps[o0] = fabs(eps[o0]);
        y[o0] = s[o1] * eps[o0];
    });
    return CSVI_OK;
}

/* d(scale * noise)/d scale = noise, kept in aux: HalfNormal and HalfCauchy. */
int csvi_scaled_noise_rs_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *eps = CSVI_AUX(t, op)->data, *g = CSVI_OUT(t, op)->grad;
    double *gs = CSVI_IN(t, op, 0)->grad;
    if (gs) CSVI_ITER_LOOP(&it, { gs[o1] += g[o0] * eps[o0]; });
    return CSVI_OK;
}
