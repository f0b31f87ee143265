/* Uniform(low, high): log p(x) = -log(high - low) on low <= x < high (as
 * Pyro: -inf outside); z = low + (high - low) U with U standard uniform (aux). */
#include "csvi_dist.h"

int csvi_uniform_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *lo = CSVI_IN(t, op, 1)->data,
                 *hi = CSVI_IN(t, op, 2)->data;
    double *y = CSVI_OUT(t, op)->data;
    CSVI_ITER_LOOP(&it, {
        y[o0] = (x[o1] >= lo[o2] && x[o1] < hi[o3]) ? -log(hi[o3] - lo[o2]) : -INFINITY;
    });
    return CSVI_OK;
}

/* Flat in x; d/dlow = 1/(high - low), d/dhigh = -1/(high - low) inside. */
int csvi_uniform_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *lo = CSVI_IN(t, op, 1)->data,
                 *hi = CSVI_IN(t, op, 2)->data, *g = CSVI_OUT(t, op)->grad;
    double *gl = CSVI_IN(t, op, 1)->grad, *gh = CSVI_IN(t, op, 2)->grad;
    CSVI_ITER_LOOP(&it, {
        if (x[o1] >= lo[o2] && x[o1] < hi[o3]) {
            const double d = g[o0] / (hi[o3] - lo[o2]);
            if (gl) gl[o2] += d;
            if (gh) gh[o3] -= d;
        }
    });
    return CSVI_OK;
}

int csvi_uniform_rs_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *lo = CSVI_IN(t, op, 0)->data, *hi = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data, *u = CSVI_AUX(t, op)->data;
    CSVI_ITER_LOOP(&it, {
        const double v = random_standard_uniform(t->rng);
        u[o0] = v;
        y[o0] = lo[o1] + (hi[o2] - lo[o1]) * v;
    });
    return CSVI_OK;
}

/* dz/dlow = 1 - U, dz/dhigh = U. */
int csvi_uniform_rs_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *u = CSVI_AUX(t, op)->data, *g = CSVI_OUT(t, op)->grad;
    double *gl = CSVI_IN(t, op, 0)->grad, *gh = CSVI_IN(t, op, 1)->grad;
    CSVI_ITER_LOOP(&it, {
        if (gl) gl[o1] += g[o0] * (1.0 - u[o0]);
        if (gh) gh[o2] += g[o0] * u[o0];
    });
    return CSVI_OK;
}
