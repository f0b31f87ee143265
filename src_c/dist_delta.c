/* Delta(v, log_density) and the broadcast copy behind Delta's sample and
 * ExpandedDistribution.
 *   DELTA_LP (value, v, log_density): log_density where value == v, else -inf.
 *     Like Pyro, the indicator has no gradient; log_density gets g.
 *   DIST_EXPAND (x): x broadcast to the output shape; the VJP sums g back
 *     over the broadcast dims through zero strides. */
#include "csvi_dist.h"

int csvi_delta_lp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data, *v = CSVI_IN(t, op, 1)->data,
                 *ld = CSVI_IN(t, op, 2)->data;
    double *y = CSVI_OUT(t, op)->data;
    CSVI_ITER_LOOP(&it, { y[o0] = x[o1] == v[o2] ? ld[o3] : -INFINITY; });
    return CSVI_OK;
}

int csvi_delta_lp_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *g = CSVI_OUT(t, op)->grad;
    double *gl = CSVI_IN(t, op, 2)->grad;
    if (gl) CSVI_ITER_LOOP(&it, { gl[o3] += g[o0]; });
    return CSVI_OK;
}

int csvi_dist_expand_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *x = CSVI_IN(t, op, 0)->data;
    double *y = CSVI_OUT(t, op)->data;
    CSVI_ITER_LOOP(&it, { y[o0] = x[o1]; });
    return CSVI_OK;
}

int csvi_dist_expand_vjp(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *g = CSVI_OUT(t, op)->grad;
    double *gx = CSVI_IN(t, op, 0)->grad;
    if (gx) CSVI_ITER_LOOP(&it, { gx[o1] += g[o0]; });
    return CSVI_OK;
}
