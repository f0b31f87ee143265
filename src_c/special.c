/* Special functions (see csvi_special.h). */
#define _DEFAULT_SOURCE /* lgamma_r */
#include <math.h>
#include "csvi_special.h"

#define LOG_SQRT_2PI 0.91893853320467274178

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

/* psi^(n)(x) for n = 1, 2: the recurrence psi^(n)(x) = psi^(n)(x + 1)
 * - (-1)^n n! / x^(n+1) up to x >= 12, then the
 * asymptotic series in the Bernoulli numbers B_2k, whose first omitted term
 * is below 1e-17 relative there; reflection for negative x. */
static const double bernoulli_2k[] = {1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66,
                                      -691.0 / 2730, 7.0 / 6};

double csvi_trigamma(double x) {
    if (isnan(x)) return x;
    if (x <= 0.0) {
        if (x == floor(x)) return INFINITY;
        const double s = sin(M_PI * x);
        return M_PI * M_PI / (s * s) - csvi_trigamma(1.0 - x);
    }
    double shift = 0.0;
    while (x < 12.0) {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    /* 1/x + 1/(2x^2) + sum_k B_2k / x^(2k+1) */
    const double f = 1.0 / (x * x);
    double series = 0.0, p = 1.0 / x;
    for (int k = 0; k < 7; k++) {
        p *= f;
        series += bernoulli_2k[k] * p;
    }
    return 1.0 / x + 0.5 * f + series + shift;
}

double csvi_tetragamma(double x) {
    if (isnan(x)) return x;
    if (x <= 0.0) {
        if (x == floor(x)) return NAN;
        const double s = sin(M_PI * x);
        return csvi_tetragamma(1.0 - x) - 2.0 * M_PI * M_PI * M_PI * cos(M_PI * x) / (s * s * s);
    }
    double shift = 0.0;
    while (x < 12.0) {
        shift -= 2.0 / (x * x * x);
        x += 1.0;
    }
    /* -1/x^2 - 1/x^3 - sum_k (2k + 1) B_2k / x^(2k+2) */
    const double f = 1.0 / (x * x);
    double series = 0.0, p = f;
    for (int k = 0; k < 7; k++) {
        p *= f;
        series += (2 * k + 3) * bernoulli_2k[k] * p;
    }
    return -f - f / x - series + shift;
}

/* log Phi(x).  Phi(x) = erfc(-x / sqrt 2) / 2 keeps full relative precision
 * in the lower tail down to x = -30 (erfc ~ 1e-197); below, Mills' ratio
 * Phi(x) = phi(x) / (-x) * (1 - 1/x^2 + 3/x^4 - ...) summed while its terms
 * fall; above 0, log1p of the upper tail. */
double csvi_log_ndtr(double x) {
    if (x > 0.0) return log1p(-0.5 * erfc(x * M_SQRT1_2));
    if (x > -30.0) return log(0.5 * erfc(-x * M_SQRT1_2));
    const double f = 1.0 / (x * x);
    double term = 1.0, sum = 1.0;
    for (int k = 1; k < 20; k++) {
        term *= -(2 * k - 1) * f;
        sum += term;
        if (fabs(term) < 1e-17) break;
    }
    return -0.5 * x * x - LOG_SQRT_2PI - log(-x) + log(sum);
}

/* e^-|x| I_nu(x) for nu = 0, 1: the power series (all terms positive, so
 * no cancellation) below |x| = 20, times e^-|x|; above, the asymptotic
 * series e^|x| / sqrt(2 pi |x|) sum_k t_k with t_k = t_(k-1) ((2k - 1)^2 -
 * 4 nu^2) / (8 k |x|), whose smallest term is ~e^-40 there. */
static double bessel_ie(int nu, double x) {
    const double ax = fabs(x);
    double sum;
    if (ax < 20.0) {
        const double q = 0.25 * ax * ax;
        double term = nu ? 0.5 * ax : 1.0;
        sum = term;
        for (int k = 1; k < 200; k++) {
            term *= q / ((double)k * (double)(k + nu));
            sum += term;
            if (term < 1e-17 * sum) break;
        }
        sum *= exp(-ax);
    } else {
        double term = 1.0, acc = 1.0;
        const double mu = 4.0 * nu * nu;
        for (int k = 1; k < 60; k++) {
            const double next = term * ((2.0 * k - 1) * (2.0 * k - 1) - mu) / (8.0 * k * ax);
            if (fabs(next) >= fabs(term)) break;
            term = next;
            acc += term;
            if (fabs(term) < 1e-17 * fabs(acc)) break;
        }
        sum = acc / sqrt(2.0 * M_PI * ax);
    }
    return nu && x < 0.0 ? -sum : sum;
}

double csvi_i0e(double x) {
    return bessel_ie(0, x);
}

double csvi_i1e(double x) {
    return bessel_ie(1, x);
}
