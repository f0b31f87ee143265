/* Special functions (see csvi_special.h). */
#define _DEFAULT_SOURCE /* lgamma_r */
#include <math.h>
#include "csvi_special.h"

double csvi_lgamma(double x) {
    int sign;
    return lgamma_r(x, &sign);
}

/* Recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10, then the asymptotic
 * series ln x - 1/(2x) - sum B_2k / (2k x^2k), whose terms after x^-14 are
 * below double precision there; reflection for negative x. */
double csvi_digamma(double x) {
    if (isnan(x) || x == INFINITY) return x;
    if (x <= 0.0) {
        if (x == floor(x)) return NAN;
        return csvi_digamma(1.0 - x) - M_PI / tan(M_PI * x);
    }
    double shift = 0.0;
    while (x < 10.0) {
        shift += 1.0 / x;
        x += 1.0;
    }
    const double f = 1.0 / (x * x);
    const double series =
        f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132 +
        f * (691.0 / 32760 + f * (-1.0 / 12)))))));
    return log(x) - 0.5 / x + series - shift;
}

/* lgamma(x) - [(x - 1/2) log x - x + log(2 pi) / 2] by Stirling's series;
 * below 1e-17 in absolute error for x >= 100. */
static double stirling_tail(double x) {
    const double f = 1.0 / (x * x);
    return (1.0 / 12 - f * (1.0 / 360 - f / 1260)) / x;
}

/* lgamma(a) + lgamma(b) - lgamma(a + b), except for a large a, where the
 * difference of two huge lgammas would cancel: there lgamma(a) - lgamma(a + b)
 * comes from Stirling's series, with (a - 1/2) log a - (a + b - 1/2) log(a + b)
 * written as -(a - 1/2) log1p(b / a) - b log(a + b), exact for b << a. */
double csvi_betaln(double a, double b) {
    if (a < b) {
        const double t = a;
        a = b;
        b = t;
    }
    if (a < 100.0) return csvi_lgamma(a) + csvi_lgamma(b) - csvi_lgamma(a + b);
    return csvi_lgamma(b) - (a - 0.5) * log1p(b / a) - b * log(a + b) + b + stirling_tail(a) -
           stirling_tail(a + b);
}
