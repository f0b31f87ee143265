/* Standard-normal draws from a NumPy bit generator (src_c/normal_fill.c). */
#ifndef CSVI_NORMAL_FILL_H
#define CSVI_NORMAL_FILL_H

#include <stdint.h>
#include "numpy/random/bitgen.h"

/* out[0..n-1] = n standard-normal draws, in order; n >= 0. */
void csvi_fill_standard_normal(bitgen_t *rng, double *out, int64_t n);

#endif
