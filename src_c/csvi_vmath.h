/* Vectorized transcendentals: on x86-64 glibc, declaring exp/log/log1p as
 * OpenMP SIMD functions lets GCC call glibc's libmvec vector variants
 * (_ZGVbN2v_exp, ...) from loops marked CSVI_SIMD, without -ffast-math (IEEE
 * semantics, NaN and inf handling are kept; results may differ from the scalar
 * functions in the last bits).  Elsewhere the loops stay scalar. */
#ifndef CSVI_VMATH_H
#define CSVI_VMATH_H

#include <math.h>

#if defined(CSVI_LIBMVEC) && defined(__x86_64__) && defined(__GLIBC__)
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double log1p(double);
#define CSVI_SIMD _Pragma("omp simd")
#else
#define CSVI_SIMD
#endif

#endif
