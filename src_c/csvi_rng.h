/* NumPy's C random API (libnpyrandom), declared here without Python.h.
 * Signatures as in numpy/random/distributions.h. */
#ifndef CSVI_RNG_H
#define CSVI_RNG_H

#include <stdint.h>
#include "numpy/random/bitgen.h"

double random_standard_uniform(bitgen_t *bitgen_state);
double random_standard_normal(bitgen_t *bitgen_state);
double random_standard_exponential(bitgen_t *bitgen_state);
double random_standard_gamma(bitgen_t *bitgen_state, double shape);
double random_standard_cauchy(bitgen_t *bitgen_state);
double random_beta(bitgen_t *bitgen_state, double a, double b);
int64_t random_poisson(bitgen_t *bitgen_state, double lam);
double random_vonmises(bitgen_t *bitgen_state, double mu, double kappa);

/* The binomial sampler's setup for its last (n, p), reused while they repeat;
 * has_binomial = 0 marks it empty.  Layout as NumPy's binomial_t. */
typedef struct {
    int has_binomial;
    double psave;
    long nsave; /* NumPy's RAND_INT_TYPE */
    double r, q, fm;
    long m;
    double p1, xm, xl, xr, c, laml, lamr, p2, p3, p4;
} csvi_binomial_t;

int64_t random_binomial(bitgen_t *bitgen_state, double p, int64_t n, csvi_binomial_t *binomial);

#endif
