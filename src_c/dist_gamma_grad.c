/* Implicit reparameterization of the standard Gamma (Figurnov et al. 2018).
 *
 * At a draw x of X ~ Gamma(a, 1) with u = P(a, x) held fixed,
 *     dx/da = -(dP/da)(a, x) / p(x; a),   p(x; a) = x^(a-1) e^-x / Gamma(a).
 * We return d log x / da = (dx/da) / x, in which the huge or tiny factors
 * x^a e^-x / Gamma(a) cancel analytically, so nothing over- or underflows:
 *
 *  x < a + 1, from the series P(a,x) = x^a e^-x sum_n x^n / Gamma(a+n+1):
 *     d log x/da = -sum_n c_n (log x - psi(a+n+1)),  c_n = x^n / (a (a+1) ... (a+n)).
 *  Terms decay by x/(a+n+1) < 1 and are (after n = 0) all of one sign.
 *
 *  x >= a + 1, from Legendre's continued fraction Gamma(a,x) = e^-x x^a F(a,x):
 *     dQ/da = e^-x x^a (F (log x - psi(a)) + dF/da) / Gamma(a), so
 *     d log x/da = F (log x - psi(a)) + dF/da,
 *  both terms positive.  dF/da comes from running the modified Lentz
 *  recurrence on dual numbers (value, derivative w.r.t. a).
 *
 * Cost grows like sqrt(a) iterations near the mode (about 300 at a = 1e3). */
#include "csvi_dist.h"

#define GG_EPS 1e-17
#define GG_MAX_ITER 1000000
#define GG_TINY 1e-300

static double dlogx_series(double a, double x, double logx) {
    double c = 1.0 / a; /* c_0 */
    /* psi(a + n + 1), started directly: psi(a) + 1/a cancels for small a */
    double psi = csvi_digamma(a + 1.0);
    double sum = c * (logx - psi);
    for (int n = 1; n < GG_MAX_ITER; n++) {
        const double an = a + n;
        psi += 1.0 / an;
        c *= x / an;
        const double term = c * (logx - psi);
        sum += term;
        /* remaining terms shrink at least geometrically by r = x/(a+n+1) */
        const double r = x / (an + 1.0);
        if (c * (fabs(logx - psi) + 1.0) < GG_EPS * fabs(sum) * (1.0 - r)) break;
        if (c == 0.0) break;
    }
    return -sum;
}

static double dlogx_cfrac(double a, double x, double logx) {
    /* Each quantity q carries (q, dq/da). b_i = x + 1 - a + 2i, a_i = -i (i - a). */
    double b = x + 1.0 - a, db = -1.0;
    double c = 1.0 / GG_TINY, dc = 0.0;
    double d = 1.0 / b, dd = -db / (b * b);
    double h = d, dh = dd;
    for (int i = 1; i < GG_MAX_ITER; i++) {
        const double an = -i * (i - a), dan = (double)i;
        b += 2.0;
        /* D = a_i d + b */
        double D = an * d + b, dD = dan * d + an * dd + db;
        if (fabs(D) < GG_TINY) { D = GG_TINY; dD = 0.0; }
        /* C = b + a_i / c */
        double C = b + an / c, dC = db + (dan * c - an * dc) / (c * c);
        if (fabs(C) < GG_TINY) { C = GG_TINY; dC = 0.0; }
        c = C;
        dc = dC;
        d = 1.0 / D;
        dd = -dD * d * d;
        const double del = d * c, ddel = dd * c + d * dc;
        const double dh_old = dh;
        dh = dh * del + h * ddel;
        h *= del;
        if (fabs(del - 1.0) <= 2.0 * DBL_EPSILON && fabs(dh - dh_old) <= 4.0 * DBL_EPSILON * fabs(dh))
            break;
    }
    return h * (logx - csvi_digamma(a)) + dh;
}

double csvi_gamma_dlogx_dalpha(double a, double x, double logx) {
    if (!(logx > -INFINITY)) return 0.0; /* log x = -inf: the draw sits at 0 and stays there */
    if (x < a + 1.0) return dlogx_series(a, x, logx);
    return dlogx_cfrac(a, x, logx);
}

double csvi_log_std_gamma(bitgen_t *rng, double a) {
    double lg;
    if (a >= 1.0) {
        lg = log(random_standard_gamma(rng, a));
    } else {
        /* Gamma(a) = Gamma(a+1) * U^(1/a): in logs, finite where the draw underflows */
        const double g = random_standard_gamma(rng, a + 1.0);
        const double u = 1.0 - random_standard_uniform(rng); /* in (0, 1] */
        lg = log(g) + log(u) / a;
    }
    return lg > -DBL_MAX ? lg : -DBL_MAX;
}

/* STANDARD_GAMMA_GRAD (x, alpha): dx/dalpha at x for X ~ Gamma(alpha, 1), the
 * implicit gradient on its own (as torch._standard_gamma_grad), for checking
 * against quantile differences and for building other implicit samplers. */
int csvi_standard_gamma_grad_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *a = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    CSVI_ITER_LOOP(&it, {
        const double xv = x[o1];
        y[o0] = xv > 0.0 ? xv * csvi_gamma_dlogx_dalpha(a[o2], xv, log(xv)) : 0.0;
    });
    return CSVI_OK;
}
