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

#endif
