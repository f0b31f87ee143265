/* Long sums in one fixed order, whoever computes the terms.
 *
 * A sum of n terms splits into at most CSVI_SUM_CHUNKS chunks fixed by n
 * alone (run over threads), each summed in sixteen interleaved lanes (four
 * vectors of four) so the adds pipeline, and the chunks' sums are added in
 * order.  So the total is the same for any thread count, and the same
 * whether the terms sit in an array (SUM of a log-density) or are computed a
 * block at a time and never stored (a fused kernel, csvi_fuse.h): a compiled
 * program with fused ops matches the eager tape bit for bit. */
#ifndef CSVI_SUM_H
#define CSVI_SUM_H

#include <stdint.h>

/* Writes terms[k - lo] for k in [lo, hi) (hi - lo <= CSVI_SUM_BLOCK); may
 * also store per-element results of its own, at k. */
typedef void (*csvi_terms_fn)(void *ctx, int64_t lo, int64_t hi, double *terms);

/* Terms per csvi_terms_fn call: a multiple of 16, small enough for L1. */
#define CSVI_SUM_BLOCK 512

/* The sum of the n terms fn writes, over threads when n >= min_parallel. */
double csvi_sum_terms(int64_t n, int64_t min_parallel, csvi_terms_fn fn, void *ctx);
/* The sum of x[0..n), in the order csvi_sum_terms adds n terms. */
double csvi_sum_array(const double *x, int64_t n);
/* One chunk's order, for a short run (one row of a matrix). */
double csvi_sum_run(const double *x, int64_t n);

#endif
