/* Exponential(rate): log p(x) = log rate - rate x on x >= 0; z = E / rate
 * with E standard exponential (aux). */
#include "csvi_dist.h"

int csvi_exponential_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *r = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    csvi_memo lr = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        y[o0] = x[o1] >= 0.0 ? CSVI_MEMO(lr, r[o2], log(r[o2])) - r[o2] * x[o1] : -INFINITY;
    });
    return CSVI_OK;
}

int csvi_exponential_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *r = CSVI_IN(t, op, 1)->data,
                 *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *gr = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        if (x[o1] >= 0.0) {
            if (gx) gx[o1] -= g[o0] * r[o2];
            if (gr) gr[o2] += g[o0] * (1.0 / r[o2] - x[o1]);
        }
    });
    return CSVI_OK;
}

int csvi_exponential_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *r = CSVI_IN(t, op, 0)->data;
    double *y = CSVI_OUT(t, op)->data, *e = CSVI_AUX(t, op)->data;
    CSVI_ITER_LOOP(&it, {
        const double v = random_standard_exponential(t->rng);
        e[o0] = v;
        y[o0] = v / r[o1];
    });
    return CSVI_OK;
}

/* dz/drate = -E / rate^2. */
int csvi_exponential_rs_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *r = CSVI_IN(t, op, 0)->data, *e = CSVI_AUX(t, op)->data,
                 *g = CSVI_OUT(t, op)->grad;
    double *gr = CSVI_IN(t, op, 0)->grad;
    if (gr) CSVI_ITER_LOOP(&it, { gr[o1] -= g[o0] * e[o0] / (r[o1] * r[o1]); });
    return CSVI_OK;
}
