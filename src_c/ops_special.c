/* Special-function ops: the functions families compose their log-densities
 * from (lgamma, digamma, log_ndtr, i0e, ...), each a forward and a VJP over
 * src_c/special.c.  The unary ones are flat loops (csvi_unary.h); xlogy,
 * xlog1py and betaln broadcast their two inputs through the iterator, whose
 * VJP accumulates over broadcast dims by zero strides. */
#include <math.h>
#include "csvi_dist.h"
#include "csvi_unary.h"

#define TWO_OVER_SQRT_PI 1.12837916709551257390
#define LOG_SQRT_2PI 0.91893853320467274178

/* log sigmoid(x) = min(x, 0) - log1p(e^-|x|); its derivative sigmoid(-x). */
static inline double log_sigmoid(double x) {
    return (x < 0.0 ? x : 0.0) - log1p(exp(-fabs(x)));
}

static inline double sigmoid_neg(double x) {
    const double e = exp(-fabs(x));
    return (x < 0.0 ? 1.0 : e) / (1.0 + e);
}

/* d/dx e^-|x| I1(x) = e^-|x| (I0 - I1 / x) - sign(x) e^-|x| I1, with the
 * limit 1/2 at 0. */
static inline double i1e_grad(double x, double y) {
    if (x == 0.0) return 0.5;
    return csvi_i0e(x) - y / x - (x > 0.0 ? y : -y);
}

DEFINE_UNARY(lgamma, csvi_lgamma(x), csvi_digamma(x))
DEFINE_UNARY(digamma, csvi_digamma(x), csvi_trigamma(x))
DEFINE_UNARY(trigamma, csvi_trigamma(x), csvi_tetragamma(x))
DEFINE_UNARY(log_sigmoid, log_sigmoid(x), sigmoid_neg(x))
DEFINE_UNARY(logit, log(x) - log1p(-x), 1.0 / (x * (1.0 - x)))
DEFINE_UNARY(erf, erf(x), TWO_OVER_SQRT_PI * exp(-x * x))
DEFINE_UNARY(erfc, erfc(x), -TWO_OVER_SQRT_PI * exp(-x * x))
DEFINE_UNARY(ndtr, 0.5 * erfc(-x * M_SQRT1_2), exp(-0.5 * x * x - LOG_SQRT_2PI))
/* (log Phi)' = phi / Phi, formed in logs so that it is finite in both tails */
DEFINE_UNARY(log_ndtr, csvi_log_ndtr(x), exp(-0.5 * x * x - LOG_SQRT_2PI - y))
DEFINE_UNARY(i0e, csvi_i0e(x), csvi_i1e(x) - (x > 0.0 ? y : -y))
DEFINE_UNARY(i1e, csvi_i1e(x), i1e_grad(x, y))

/* The binary ones: FWD in a and b; DA and DB their partial derivatives. */
#define DEFINE_SPECIAL_BINARY(name, FWD, DA, DB)                                \
    int csvi_##name##_fwd(csvi_tape *t, const csvi_op *op) {                  \
        csvi_iter it;                                                         \
        if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;                \
        const double *a_ = CSVI_IN(t, op, 0)->data, *b_ = CSVI_IN(t, op, 1)->data; \
        double *y_ = CSVI_OUT(t, op)->data;                                   \
        CSVI_ITER_LOOP(&it, {                                                 \
            const double a = a_[o1], b = b_[o2];                              \
            y_[o0] = (FWD);                                                   \
        });                                                                   \
        return CSVI_OK;                                                       \
    }                                                                         \
    int csvi_##name##_vjp(csvi_tape *t, const csvi_op *op) {                  \
        double *ga = CSVI_IN(t, op, 0)->grad, *gb = CSVI_IN(t, op, 1)->grad;  \
        if (!ga && !gb) return CSVI_OK;                                       \
        csvi_iter it;                                                         \
        if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;                \
        const double *a_ = CSVI_IN(t, op, 0)->data, *b_ = CSVI_IN(t, op, 1)->data, \
                     *g = CSVI_OUT(t, op)->grad;                              \
        CSVI_ITER_LOOP(&it, {                                                 \
            const double a = a_[o1], b = b_[o2];                              \
            if (ga) ga[o1] += csvi_gmul(g[o0], (DA));                         \
            if (gb) gb[o2] += csvi_gmul(g[o0], (DB));                         \
        });                                                                   \
        return CSVI_OK;                                                       \
    }

/* x log y and x log1p y are 0 where x is 0 (scipy's convention, so a zero
 * count contributes nothing even at y = 0).  Their partial in x is log y
 * (log1p y) at x = 0 too -- a Dirichlet's concentration of exactly 1 needs
 * it, though torch gives 0 there -- except at the point 0 log 0 itself, where
 * it is 0; the partial in y is 0 wherever x is. */
DEFINE_SPECIAL_BINARY(xlogy, csvi_xlogy(a, b), (a == 0.0 && b == 0.0) ? 0.0 : log(b),
                      a == 0.0 ? 0.0 : a / b)
DEFINE_SPECIAL_BINARY(xlog1py, csvi_xlog1py(a, b), (a == 0.0 && b == -1.0) ? 0.0 : log1p(b),
                      a == 0.0 ? 0.0 : a / (1.0 + b))
DEFINE_SPECIAL_BINARY(betaln, csvi_betaln(a, b), csvi_digamma(a) - csvi_digamma(a + b),
                      csvi_digamma(b) - csvi_digamma(a + b))
