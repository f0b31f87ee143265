#ifndef CSVI_CHECKS_H
#define CSVI_CHECKS_H
#include <stdint.h>

/* Index of the first element that is NaN, outside [lo, hi] (an open end
 * excludes its bound) or, with `integer`, not a whole number; -1 if none. */
int64_t csvi_first_outside(const double *x, int64_t n, double lo, double hi,
                           int lo_open, int hi_open, int integer);

/* GATHER's positions of an integer index into a vector of `size`: out[i] =
 * idx[i] as float64, negatives counted from the end; returns the first i
 * whose index is out of [-size, size), else -1. */
int64_t csvi_index_positions(const int64_t *idx, int64_t n, int64_t size, double *out);

/* GATHER's positions index[0..n) truncated to int32 (size <= INT32_MAX),
 * 0 where one is not in [0, size); returns whether any is not.  Branch-free,
 * so checks and conversions run in vector lanes (an int64 conversion is
 * scalar below AVX-512), and only a checked number is converted (a NaN is
 * refused, not converted). */
int csvi_gather_positions(const double *index, int64_t n, int64_t size, int32_t *p);

/* Whether x[0..n) never decreases (one vector pass, no early exit): GATHER's
 * positions, whose VJPs then walk stretches side by side. */
int csvi_nondecreasing(const double *x, int64_t n);

#endif
