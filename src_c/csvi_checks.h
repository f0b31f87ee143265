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

/* Whether x[0..n) never decreases (one vector pass, no early exit): GATHER's
 * positions, whose VJPs then walk stretches side by side. */
int csvi_nondecreasing(const double *x, int64_t n);

#endif
