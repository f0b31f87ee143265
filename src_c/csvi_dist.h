/* Shared pieces of the distribution kernels (dist_*.c): the broadcast setup
 * every elementwise log-density and sampler uses, stable elementary forms,
 * and the implicit reparameterization gradient of the standard Gamma.
 *
 * Conventions.  <F>_LP ops take (value, params...) and write an elementwise
 * log-density of the broadcast shape; <F>_RS ops take (params...) and write a
 * draw of the output shape (sample_shape + batch_shape), keeping in the aux
 * slot the standard noise (same layout as the output) that the VJP needs. */
#ifndef CSVI_DIST_H
#define CSVI_DIST_H

#include <float.h>
#include <math.h>
#include "csvi_special.h"
#include "csvi_iter.h"
#include "csvi_opcodes.h"
#include "csvi_rng.h"
#include "csvi_vmath.h"

#define CSVI_LOG_SQRT_2PI 0.91893853320467274178
#define CSVI_LOG_2 0.69314718055994530942
#define CSVI_LOG_PI 1.14472988584940017414

/* Iteration over the output with every input as an operand (at most 3, the
 * iterator's limit with the output).  Output offsets o0 also index the aux
 * slot, which has the output's layout. */
static inline int csvi_dist_iter(csvi_iter *it, csvi_tape *t, const csvi_op *op) {
    const csvi_slot *ins[CSVI_ITER_MAX_OPERANDS - 1];
    if (op->n_in > CSVI_ITER_MAX_OPERANDS - 1) return CSVI_ERR_SHAPE;
    for (int k = 0; k < op->n_in; k++) ins[k] = CSVI_IN(t, op, k);
    csvi_iter_slots(it, CSVI_OUT(t, op), op->n_in, ins);
    return CSVI_OK;
}

/* A function of a parameter, recomputed only when the parameter changes from
 * one element to the next.  Parameters are often broadcast scalars (one scale
 * for a whole data vector), so log, lgamma or digamma of them then costs one
 * call per op instead of one per element.  Start with CSVI_MEMO_INIT. */
typedef struct {
    double x, fx;
} csvi_memo;

#define CSVI_MEMO_INIT {NAN, NAN}
#define CSVI_MEMO(m, arg, expr) \
    ((m).x == (arg) ? (m).fx : ((m).x = (arg), (m).fx = (expr)))

/* The same for a function of two parameters. */
typedef struct {
    double x, y, fxy;
} csvi_memo2;

#define CSVI_MEMO2_INIT {NAN, NAN, NAN}
#define CSVI_MEMO2(m, a, b, expr) \
    ((m).x == (a) && (m).y == (b) ? (m).fxy : ((m).x = (a), (m).y = (b), (m).fxy = (expr)))

/* g * d, but 0 when g is 0: a masked or unused element must not turn an
 * infinite partial (log-density at a boundary) into 0 * inf = NaN. */
static inline double csvi_gmul(double g, double d) {
    return g == 0.0 ? 0.0 : g * d;
}

/* x * log(y) with 0 * log(0) = 0 (scipy.special.xlogy). */
static inline double csvi_xlogy(double x, double y) {
    return x == 0.0 ? 0.0 : x * log(y);
}

/* x * log1p(y) with 0 * log1p(-1) = 0 (scipy.special.xlog1py). */
static inline double csvi_xlog1py(double x, double y) {
    return x == 0.0 ? 0.0 : x * log1p(y);
}

/* log(1 + e^x) without overflow or cancellation at either end. */
static inline double csvi_softplus(double x) {
    if (x > 36.0) return x + exp(-x);
    if (x < -36.0) return exp(x);
    return log1p(exp(x));
}

static inline double csvi_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

/* d log X / d alpha at X = x for X ~ Gamma(alpha, 1), holding the CDF fixed
 * (implicit reparameterization).  `logx` is log(x), passed separately so the
 * gradient stays exact when x itself underflows to 0.  dist_gamma_grad.c. */
double csvi_gamma_dlogx_dalpha(double alpha, double x, double logx);

/* log of a standard Gamma(alpha, 1) draw, finite even for tiny alpha where
 * the draw itself underflows.  dist_gamma_grad.c. */
double csvi_log_std_gamma(bitgen_t *rng, double alpha);

#endif
