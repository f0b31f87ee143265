/* HalfCauchy(scale): |Cauchy(0, scale)|, z = scale |c| with c standard Cauchy
 * (aux keeps |c|).  log p(x) = log 2 - log pi - log s - log1p((x/s)^2), x >= 0. */
#include "csvi_dist.h"

/* log1p(r^2) without overflowing r^2 for huge r. */
static inline double log1p_sq(double r) {
    const double a = fabs(r);
    return a > 1e150 ? 2.0 * log(a) : log1p(a * a);
}

int csvi_halfcauchy_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *s = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    csvi_memo ls = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        y[o0] = x[o1] >= 0.0
                    ? CSVI_LOG_2 - CSVI_LOG_PI - CSVI_MEMO(ls, s[o2], log(s[o2])) -
                          log1p_sq(x[o1] / s[o2])
                    : -INFINITY;
    });
    return CSVI_OK;
}

/* With r = x/s: d/dx = -2r / (s (1 + r^2)), d/ds = (r^2 - 1) / (s (1 + r^2)). */
int csvi_halfcauchy_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *s = CSVI_IN(t, op, 1)->data,
                 *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *gs = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        if (x[o1] >= 0.0) {
            const double r = x[o1] / s[o2];
            /* 1/(1 + r^2) and r/(1 + r^2) written to stay finite for huge r */
            const double q = r > 1.0 ? 1.0 / r : r;
            const double w = r > 1.0 ? q * q / (1.0 + q * q) : 1.0 / (1.0 + r * r);
            const double rw = r > 1.0 ? q / (1.0 + q * q) : r * w;
            if (gx) gx[o1] -= g[o0] * 2.0 * rw / s[o2];
            if (gs) gs[o2] += g[o0] * (1.0 - 2.0 * w) / s[o2];
        }
    });
    return CSVI_OK;
}

int csvi_halfcauchy_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *s = CSVI_IN(t, op, 0)->data;
    double *y = CSVI_OUT(t, op)->data, *c = CSVI_AUX(t, op)->data;
    CSVI_ITER_LOOP(&it, {
        const double e = fabs(random_standard_cauchy(t->rng));
        c[o0] = e;
        y[o0] = s[o1] * e;
    });
    return CSVI_OK;
}
