/* Poisson(rate) on 0, 1, 2, ...
 *
 * log p(x) is written in Loader's saddle-point form (as R's dpois):
 *     log p(x) = -stirlerr(x) - bd0(x, r) - log(2 pi x) / 2,      x > 0
 * with log p(0) = -r.  The textbook x log r - r - lgamma(x + 1) subtracts
 * numbers of size r log r to get a result of size log r, so at rates near
 * 1e15 it keeps no digits; here each term is small where the result is. */
#include "csvi_dist.h"


/* lgamma(x + 1) - ((x + 1/2) log x - x + log sqrt(2 pi)): Stirling's error,
 * by its asymptotic series above 15 (where the direct difference cancels). */
static double stirlerr(double x) {
    if (x <= 15.0) return csvi_lgamma(x + 1.0) - (x + 0.5) * log(x) + x - CSVI_LOG_SQRT_2PI;
    const double s0 = 1.0 / 12, s1 = 1.0 / 360, s2 = 1.0 / 1260, s3 = 1.0 / 1680,
                 s4 = 1.0 / 1188, xx = x * x;
    if (x > 500.0) return (s0 - s1 / xx) / x;
    if (x > 80.0) return (s0 - (s1 - s2 / xx) / xx) / x;
    if (x > 35.0) return (s0 - (s1 - (s2 - s3 / xx) / xx) / xx) / x;
    return (s0 - (s1 - (s2 - (s3 - s4 / xx) / xx) / xx) / xx) / x;
}

/* x log(x / r) + r - x >= 0, the deviance term; near x = r by the series in
 * v = (x - r) / (x + r), which sums positive terms instead of cancelling. */
static double bd0(double x, double r) {
    if (fabs(x - r) < 0.1 * (x + r)) {
        double v = (x - r) / (x + r), s = (x - r) * v, ej = 2.0 * x * v;
        v *= v;
        for (int j = 1; j < 1000; j++) {
            ej *= v;
            const double s1 = s + ej / (2 * j + 1);
            if (s1 == s) return s1;
            s = s1;
        }
        return s;
    }
    const double ratio = x / r;
    const double lr = (ratio > 0.0 && ratio < INFINITY) ? log(ratio) : log(x) - log(r);
    return x * lr + r - x;
}

static double poisson_lp(double x, double r, double x_term) {
    if (x < 0.0) return -INFINITY;
    if (x == 0.0) return -r;
    if (r == 0.0) return -INFINITY;
    return x_term - bd0(x, r);
}

int csvi_poisson_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *r = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    /* -stirlerr(x) - log(2 pi x) / 2: counts repeat, e.g. runs of zeros */
    csvi_memo xt = CSVI_MEMO_INIT;
    CSVI_ITER_LOOP(&it, {
        const double xv = x[o1];
        const double term = xv > 0.0 ? CSVI_MEMO(xt, xv, -stirlerr(xv) - CSVI_LOG_SQRT_2PI
                                                          - 0.5 * log(xv)) : 0.0;
        y[o0] = poisson_lp(xv, r[o2], term);
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

/* NumPy's exact sampler returns an int64 and is only valid below this rate
 * (Generator.poisson refuses larger ones): INT64_MAX - 10 sqrt(INT64_MAX). */
#define CSVI_POISSON_LAM_MAX 9.2233720064847708e18

/* Above that bound Poisson(r) is Normal(r, r) rounded: its skewness
 * 1/sqrt(r) < 3.3e-10 is far below what a double resolves at r (its spacing,
 * >= 1024, is 3e-7 standard deviations). */
static double poisson_draw(bitgen_t *rng, double r) {
    if (r < CSVI_POISSON_LAM_MAX) return (double)random_poisson(rng, r);
    return floor(r + sqrt(r) * random_standard_normal(rng) + 0.5);
}

int csvi_poisson_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *r = CSVI_IN(t, op, 0)->data;
    double *y = CSVI_OUT(t, op)->data;
    CSVI_ITER_LOOP(&it, { y[o0] = poisson_draw(t->rng, r[o1]); });
    return CSVI_OK;
}
