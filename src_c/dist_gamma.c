/* Gamma(concentration a, rate b) on x > 0:
 *   log p(x) = a log b + (a - 1) log x - b x - lgamma(a).
 * Reparameterized draw z = X / b with X ~ Gamma(a, 1) kept in aux; dz/da
 * comes from the implicit gradient of X (dist_gamma_grad.c). */
#include "csvi_dist.h"

int csvi_gamma_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *a = CSVI_IN(t, op, 1)->data,
                 *b = CSVI_IN(t, op, 2)->data;
    double *y = CSVI_OUT(t, op)->data;
    csvi_memo lb = CSVI_MEMO_INIT, lga = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        const double av = a[o2], bv = b[o3], xv = x[o1];
        y[o0] = xv >= 0.0 ? av * CSVI_MEMO(lb, bv, log(bv)) + csvi_xlogy(av - 1.0, xv) - bv * xv -
                                CSVI_MEMO(lga, av, csvi_lgamma(av))
                          : -INFINITY;
    });
    return CSVI_OK;
}

/* d/dx = (a-1)/x - b, d/da = log b + log x - psi(a), d/db = a/b - x. */
int csvi_gamma_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *a = CSVI_IN(t, op, 1)->data,
                 *b = CSVI_IN(t, op, 2)->data, *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *ga = CSVI_IN(t, op, 1)->grad,
           *gb = CSVI_IN(t, op, 2)->grad;
    csvi_memo lb = CSVI_MEMO_INIT, psa = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        const double gv = g[o0], av = a[o2], bv = b[o3], xv = x[o1];
        if (gv != 0.0 && xv >= 0.0) {
            if (gx) gx[o1] += gv * ((av == 1.0 ? 0.0 : (av - 1.0) / xv) - bv);
            if (ga)
                ga[o2] += gv * (CSVI_MEMO(lb, bv, log(bv)) + log(xv) -
                                CSVI_MEMO(psa, av, csvi_digamma(av)));
            if (gb) gb[o3] += gv * (av / bv - xv);
        }
    });
    return CSVI_OK;
}

int csvi_gamma_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *a = CSVI_IN(t, op, 0)->data, *b = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data, *std = CSVI_AUX(t, op)->data;
    CSVI_ITER_LOOP(&it, {
        const double xv = random_standard_gamma(t->rng, a[o1]);
        std[o0] = xv;
        /* keep the draw inside the support (x > 0) when it underflows, as Pyro does */
        const double z = xv / b[o2];
        y[o0] = z > DBL_MIN ? z : DBL_MIN;
    });
    return CSVI_OK;
}

/* dz/da = (X / b) d log X/da, dz/db = -X / b^2. */
int csvi_gamma_rs_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *a = CSVI_IN(t, op, 0)->data, *b = CSVI_IN(t, op, 1)->data,
                 *std = CSVI_AUX(t, op)->data, *g = CSVI_OUT(t, op)->grad;
    double *ga = CSVI_IN(t, op, 0)->grad, *gb = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        const double gv = g[o0], xv = std[o0], bv = b[o2];
        if (gv != 0.0 && xv > 0.0) {
            if (ga) ga[o1] += gv * (xv / bv) * csvi_gamma_dlogx_dalpha(a[o1], xv, log(xv));
            if (gb) gb[o2] -= gv * xv / (bv * bv);
        }
    });
    return CSVI_OK;
}
