/* Beta(concentration1 a, concentration0 b) on [0, 1]:
 *   log p(x) = (a - 1) log x + (b - 1) log1p(-x) - betaln(a, b).
 * Reparameterized draw z = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b), computed
 * as sigmoid(log X - log Y) so tiny concentrations (where X and Y both
 * underflow) still give a number.  aux is (2,) + out shape: log X, log Y. */
#include "csvi_dist.h"

int csvi_beta_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *a = CSVI_IN(t, op, 1)->data,
                 *b = CSVI_IN(t, op, 2)->data;
    double *y = CSVI_OUT(t, op)->data;
    csvi_memo2 lbeta = CSVI_MEMO2_INIT;
    CSVI_ITER_LOOP(&it, {
        const double xv = x[o1], av = a[o2], bv = b[o3];
        y[o0] = (xv >= 0.0 && xv <= 1.0)
                    ? csvi_xlogy(av - 1.0, xv) + csvi_xlog1py(bv - 1.0, -xv) -
                          CSVI_MEMO2(lbeta, av, bv, csvi_betaln(av, bv))
                    : -INFINITY;
    });
    return CSVI_OK;
}

/* d/dx = (a-1)/x - (b-1)/(1-x); d/da = log x - psi(a) + psi(a+b);
 * d/db = log1p(-x) - psi(b) + psi(a+b). */
int csvi_beta_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *a = CSVI_IN(t, op, 1)->data,
                 *b = CSVI_IN(t, op, 2)->data, *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad, *ga = CSVI_IN(t, op, 1)->grad,
           *gb = CSVI_IN(t, op, 2)->grad;
    csvi_memo psa = CSVI_MEMO_INIT, psb = CSVI_MEMO_INIT, psab = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        const double gv = g[o0], xv = x[o1], av = a[o2], bv = b[o3];
        if (gv != 0.0 && xv >= 0.0 && xv <= 1.0) {
            if (gx)
                gx[o1] += gv * ((av == 1.0 ? 0.0 : (av - 1.0) / xv) -
                                (bv == 1.0 ? 0.0 : (bv - 1.0) / (1.0 - xv)));
            if (ga || gb) {
                const double ps = CSVI_MEMO(psab, av + bv, csvi_digamma(av + bv));
                if (ga) ga[o2] += gv * (log(xv) - CSVI_MEMO(psa, av, csvi_digamma(av)) + ps);
                if (gb) gb[o3] += gv * (log1p(-xv) - CSVI_MEMO(psb, bv, csvi_digamma(bv)) + ps);
            }
        }
    });
    return CSVI_OK;
}

int csvi_beta_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *a = CSVI_IN(t, op, 0)->data, *b = CSVI_IN(t, op, 1)->data;
    csvi_slot *out = CSVI_OUT(t, op);
    double *y = out->data, *lx = CSVI_AUX(t, op)->data, *ly = lx + out->size;
    CSVI_ITER_LOOP(&it, {
        const double u = csvi_log_std_gamma(t->rng, a[o1]);
        const double v = csvi_log_std_gamma(t->rng, b[o2]);
        lx[o0] = u;
        ly[o0] = v;
        /* keep the draw strictly inside (0, 1) as Pyro does, so log_prob stays finite */
        const double z = csvi_sigmoid(u - v);
        y[o0] = z < DBL_MIN ? DBL_MIN : (z > 1.0 - DBL_EPSILON / 2 ? 1.0 - DBL_EPSILON / 2 : z);
    });
    return CSVI_OK;
}

/* z = sigmoid(lx - ly): dz/da = z (1 - z) dlogX/da, dz/db = -z (1 - z) dlogY/db,
 * with 1 - z = sigmoid(ly - lx) computed directly (no cancellation near 1). */
int csvi_beta_rs_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *a = CSVI_IN(t, op, 0)->data, *b = CSVI_IN(t, op, 1)->data;
    const csvi_slot *out = CSVI_OUT(t, op);
    const double *g = out->grad, *lx = CSVI_AUX(t, op)->data, *ly = lx + out->size;
    double *ga = CSVI_IN(t, op, 0)->grad, *gb = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        const double gv = g[o0], u = lx[o0], v = ly[o0];
        if (gv != 0.0) {
            const double zz = csvi_sigmoid(u - v) * csvi_sigmoid(v - u);
            if (ga && zz > 0.0) ga[o1] += gv * zz * csvi_gamma_dlogx_dalpha(a[o1], exp(u), u);
            if (gb && zz > 0.0) gb[o2] -= gv * zz * csvi_gamma_dlogx_dalpha(b[o2], exp(v), v);
        }
    });
    return CSVI_OK;
}
