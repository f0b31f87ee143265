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

#endif
