/* Special functions for the distribution kernels, in plain C: loading
 * scipy.special for three functions would cost ~0.2 s on first use.  Checked
 * against scipy.special in tests/test_special.py. */
#ifndef CSVI_SPECIAL_H
#define CSVI_SPECIAL_H

/* log|Gamma(x)| (thread-safe: no global sign). */
double csvi_lgamma(double x);
/* d/dx log Gamma(x); NaN at the poles 0, -1, -2, ... */
double csvi_digamma(double x);
/* log B(a, b) for a, b > 0. */
double csvi_betaln(double a, double b);
/* psi'(x) and psi''(x) (polygamma 1 and 2). */
double csvi_trigamma(double x);
double csvi_tetragamma(double x);
/* log Phi(x), the log of the standard normal CDF, accurate in both tails. */
double csvi_log_ndtr(double x);
/* Exponentially scaled modified Bessel functions e^-|x| I0(x), e^-|x| I1(x). */
double csvi_i0e(double x);
double csvi_i1e(double x);

#endif
