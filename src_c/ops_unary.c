/* Elementwise unary ops.  Input and output have the same shape, so the loops
 * are flat.  Each VJP is written with x (input), y (output) and g; the
 * defining macros are in csvi_unary.h. */
#include <math.h>
#include <string.h>
#include "csvi_unary.h"

/* With e = e^-|x|: sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e), and
 * softplus(x) = max(x, 0) + log1p(e), exact at both ends (no overflow, no
 * cancellation) and without a branch the vectorizer would refuse. */
static inline double sigmoid_e(double x, double e) {
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}

/* sigmoid' = y (1 - y) and tanh' = 1 - y^2 cancel to 0 once y rounds to 1
 * (x > 37 and x > 19); these forms in e^-|x| keep full relative precision. */
static inline double sigmoid_grad(double x) {
    const double e = exp(-fabs(x));
    return e / ((1.0 + e) * (1.0 + e));
}

static inline double tanh_grad(double x) {
    const double e = exp(-2.0 * fabs(x));
    return 4.0 * e / ((1.0 + e) * (1.0 + e));
}

DEFINE_UNARY(neg, -x, -1.0)
DEFINE_UNARY_HOT(exp, CSVI_PAR_CHEAP, exp(x), y)
DEFINE_UNARY_HOT(log, CSVI_PAR_DIVIDE, log(x), 1.0 / x)
DEFINE_UNARY_HOT(log1p, CSVI_PAR_DIVIDE, log1p(x), 1.0 / (1.0 + x))
/* expm1' = e^x, not y + 1, which cancels to 0 for x < -37 */
DEFINE_UNARY_HOT(expm1, CSVI_PAR_TRANSCENDENTAL, expm1(x), exp(x))
DEFINE_UNARY(sqrt, sqrt(x), 0.5 / y)
DEFINE_UNARY(abs, fabs(x), x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0))
DEFINE_UNARY_HOT(sigmoid, CSVI_PAR_TRANSCENDENTAL, sigmoid_e(x, exp(-fabs(x))), sigmoid_grad(x))
DEFINE_UNARY_HOT(softplus, CSVI_PAR_TRANSCENDENTAL,
                 (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x))), sigmoid_e(x, exp(-fabs(x))))
DEFINE_UNARY_HOT(tanh, CSVI_PAR_TRANSCENDENTAL, tanh(x), tanh_grad(x))
DEFINE_UNARY(relu, x > 0 ? x : 0.0, x > 0 ? 1.0 : 0.0)
/* x ** p for a constant exponent p = dattr[0]. */
DEFINE_UNARY(pow_scalar, p == 2.0 ? x * x : pow(x, p),
             p == 2.0 ? 2.0 * x : (p == 0.0 ? 0.0 : p * pow(x, p - 1.0)))
/* clip to [p, q] = [dattr[0], dattr[1]]; the gradient passes where p <= x <= q. */
DEFINE_UNARY(clip, x < p ? p : (x > q ? q : x), (x >= p && x <= q) ? 1.0 : 0.0)

/* COPY (reshape) and DETACH: same data, any shape of the same size. */
int csvi_copy_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    if (y->data != x->data) memcpy(y->data, x->data, (size_t)y->size * sizeof(double));
    return CSVI_OK;
}

int csvi_copy_vjp(csvi_tape *t, const csvi_op *op) {
    double *gx = CSVI_IN(t, op, 0)->grad;
    const double *g = CSVI_OUT(t, op)->grad;
    if (!gx) return CSVI_OK;
    const int64_t n = CSVI_OUT(t, op)->size;
    for (int64_t i = 0; i < n; i++) gx[i] += g[i];
    return CSVI_OK;
}

/* TRUNC (Tensor.long()): round toward zero, as a cast to an integer type
 * does; piecewise constant, so no gradient. */
int csvi_trunc_fwd(csvi_tape *t, const csvi_op *op) {
    const double *x = CSVI_IN(t, op, 0)->data;
    double *y = CSVI_OUT(t, op)->data;
    const int64_t n = CSVI_OUT(t, op)->size;
    for (int64_t i = 0; i < n; i++) y[i] = trunc(x[i]);
    return CSVI_OK;
}
