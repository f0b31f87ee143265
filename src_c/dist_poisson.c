/* Poisson(rate) on 0, 1, 2, ...: log p(x) = x log r - r - lgamma(x + 1),
 * with 0 log 0 = 0 so rate 0 is a point mass at 0. */
#include "csvi_dist.h"

int csvi_poisson_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *r = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    csvi_memo lf = CSVI_MEMO_INIT; /* lgamma(x + 1): counts repeat, e.g. runs of zeros */
    CSVI_ITER_LOOP(&it, {
        const double xv = x[o1];
        y[o0] = xv >= 0.0 ? csvi_xlogy(xv, r[o2]) - r[o2] - CSVI_MEMO(lf, xv, csvi_lgamma(xv + 1.0))
                          : -INFINITY;
    });
    return CSVI_OK;
}

/* d/drate = x/rate - 1; d/dx = log rate - psi(x + 1) (continuous extension). */
int csvi_poisson_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *r = CSVI_IN(t, op, 1)->data,
                 *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *gr = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        const double xv = x[o1], rv = r[o2];
        if (xv >= 0.0) {
            if (gr) gr[o2] += csvi_gmul(g[o0], (xv == 0.0 ? 0.0 : xv / rv) - 1.0);
            if (gx) gx[o1] += csvi_gmul(g[o0], log(rv) - csvi_digamma(xv + 1.0));
        }
    });
    return CSVI_OK;
}

int csvi_poisson_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *r = CSVI_IN(t, op, 0)->data;
    double *y = CSVI_OUT(t, op)->data;
    CSVI_ITER_LOOP(&it, { y[o0] = (double)random_poisson(t->rng, r[o1]); });
    return CSVI_OK;
}
