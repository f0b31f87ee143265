/* Elementwise unary ops.  Input and output have the same shape, so the loops
 * are flat.  Each VJP is written with x (input), y (output) and g. */
#include <math.h>
#include <string.h>
#include "csvi_opcodes.h"
#include "csvi_vmath.h"

#define DEFINE_UNARY(name, FWD, DER)                                          \
    int csvi_##name##_fwd(csvi_tape *t, const csvi_op *op) {                  \
        const double *x_ = CSVI_IN(t, op, 0)->data;                           \
        double *y_ = CSVI_OUT(t, op)->data;                                   \
        const double p = op->dattr[0], q = op->dattr[1];                      \
        (void)p; (void)q;                                                     \
        const int64_t n = CSVI_OUT(t, op)->size;                              \
        CSVI_SIMD                                                             \
        for (int64_t i = 0; i < n; i++) {                                     \
            const double x = x_[i];                                           \
            y_[i] = (FWD);                                                    \
        }                                                                     \
        return CSVI_OK;                                                       \
    }                                                                         \
    int csvi_##name##_vjp(csvi_tape *t, const csvi_op *op) {                  \
        const double *x_ = CSVI_IN(t, op, 0)->data;                           \
        double *gx = CSVI_IN(t, op, 0)->grad;                                 \
        const double *y_ = CSVI_OUT(t, op)->data, *g_ = CSVI_OUT(t, op)->grad; \
        const double p = op->dattr[0], q = op->dattr[1];                      \
        (void)p; (void)q;                                                     \
        if (!gx) return CSVI_OK;                                              \
        const int64_t n = CSVI_OUT(t, op)->size;                              \
        CSVI_SIMD                                                             \
        for (int64_t i = 0; i < n; i++) {                                     \
            const double x = x_[i], y = y_[i];                                \
            (void)x; (void)y;                                                 \
            gx[i] += g_[i] * (DER);                                           \
        }                                                                     \
        return CSVI_OK;                                                       \
    }

static inline double stable_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

/* log(1 + e^x) without overflow or loss of precision at either end. */
static inline double stable_softplus(double x) {
    if (x > 36.0) return x + exp(-x);
    if (x < -36.0) return exp(x);
    return log1p(exp(x));
}

DEFINE_UNARY(neg, -x, -1.0)
DEFINE_UNARY(exp, exp(x), y)
DEFINE_UNARY(log, log(x), 1.0 / x)
DEFINE_UNARY(log1p, log1p(x), 1.0 / (1.0 + x))
DEFINE_UNARY(expm1, expm1(x), y + 1.0)
DEFINE_UNARY(sqrt, sqrt(x), 0.5 / y)
DEFINE_UNARY(abs, fabs(x), x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0))
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

DEFINE_UNARY(sigmoid, stable_sigmoid(x), sigmoid_grad(x))
DEFINE_UNARY(softplus, stable_softplus(x), stable_sigmoid(x))
DEFINE_UNARY(tanh, tanh(x), tanh_grad(x))
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
