/* Bernoulli over {0, 1}, parameterized by probs p (iattr[0] = 0) or logits l
 * (iattr[0] = 1).  Inputs: LP (value, param), RS (param).
 *   probs:  log p(x) = x log p + (1 - x) log1p(-p)
 *   logits: log p(x) = -(x softplus(-l) + (1 - x) softplus(l)), stable for any l.
 * The value gradient is that of the formula's continuous extension in x. */
#include "csvi_dist.h"

static inline double lp_logits(double x, double l) {
    if (x == 1.0) return -csvi_softplus(-l);
    if (x == 0.0) return -csvi_softplus(l);
    return -(x * csvi_softplus(-l) + (1.0 - x) * csvi_softplus(l));
}

/* Logits over equal shapes (the data plate of a regression): one loop that
 * vectorizes with libmvec.  With L = log1p(e^-|l|), softplus(l) = max(l, 0) + L
 * and softplus(-l) = max(-l, 0) + L, so
 *   log p(x) = -(x max(-l, 0) + (1 - x) max(l, 0) + L),
 * with the x = 0 and x = 1 cases selected exactly (no 0 * inf, no cancellation).
 * L is log(w) u / (w - 1) with u = e^-|l|, w = 1 + u (a few ulp; u once w
 * rounds to 1): glibc vectorizes log well but not log1p. */
static void lp_logits_flat(double *y, const double *x, const double *l, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        const double li = l[i], xi = x[i];
        const double u = exp(-fabs(li)), w = 1.0 + u;
        const double L = w == 1.0 ? u : log(w) * (u / (w - 1.0));
        const double pos = fmax(li, 0.0), neg = fmax(-li, 0.0);
        const double hinge = xi == 1.0 ? neg : (xi == 0.0 ? pos : xi * neg + (1.0 - xi) * pos);
        y[i] = -(hinge + L);
    }
}

static void lp_logits_flat_vjp(double *gl, const double *x, const double *l, const double *g,
                               int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        const double e = exp(-fabs(l[i]));
        const double s = l[i] >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        gl[i] += g[i] * (x[i] - s);
    }
}

int csvi_bernoulli_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *p = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    if (op->iattr[0] && it.contiguous)
        lp_logits_flat(y, x, p, it.size);
    else if (op->iattr[0])
        CSVI_ITER_LOOP(&it, { y[o0] = lp_logits(x[o1], p[o2]); });
    else
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
    if (op->iattr[0] && it.contiguous && gp && !gx) {
        lp_logits_flat_vjp(gp, x, p, g, it.size);
    } else if (op->iattr[0]) {
        /* d/dl = x - sigmoid(l), d/dx = l */
        CSVI_ITER_LOOP(&it, {
            if (gp) gp[o2] += g[o0] * (x[o1] - csvi_sigmoid(p[o2]));
            if (gx) gx[o1] += csvi_gmul(g[o0], p[o2]);
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
