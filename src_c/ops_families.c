/* Ops behind the existing families' cdf/icdf: the standard normal quantile
 * ndtri (Normal, LogNormal and HalfNormal icdf), arctan and tan (HalfCauchy
 * cdf and icdf), each a flat unary loop (csvi_unary.h). */
#include <math.h>
#include "csvi_unary.h"

#define SQRT_2PI 2.50662827463100050242

/* Acklam's rational approximation of the lower half of the quantile
 * (relative error < 1.2e-9) for 0 < p <= 1/2. */
static double ndtri_guess(double p) {
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                                2.445134137142996e+00, 3.754408661907416e+00};
    if (p < 0.02425) {
        const double q = sqrt(-2.0 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    const double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

/* The guess refined by Halley steps on ndtr(x) = p, computed from erfc so
 * the lower tail keeps its relative accuracy; p > 1/2 by symmetry from
 * 1 - p, which is exact there.  0 -> -inf, 1 -> inf, NaN outside [0, 1]. */
static double csvi_ndtri(double p) {
    if (!(p > 0.0 && p < 1.0)) {
        if (p == 0.0) return -INFINITY;
        if (p == 1.0) return INFINITY;
        return NAN;
    }
    const int upper = p > 0.5;
    const double lo = upper ? 1.0 - p : p;
    double x = ndtri_guess(lo);
    for (int k = 0; k < 2; k++) {
        const double e = 0.5 * erfc(-x * M_SQRT1_2) - lo;
        const double u = e * SQRT_2PI * exp(0.5 * x * x);
        x -= u / (1.0 + 0.5 * x * u);
    }
    return upper ? -x : x;
}

DEFINE_UNARY(ndtri, csvi_ndtri(x), SQRT_2PI * exp(0.5 * y * y))
DEFINE_UNARY(arctan, atan(x), 1.0 / (1.0 + x * x))
DEFINE_UNARY(tan, tan(x), 1.0 + y * y)
