/* Vectorized transcendentals: on x86-64 glibc, declaring exp/log/... as
 * OpenMP SIMD functions lets GCC call glibc's libmvec vector variants
 * (_ZGVbN2v_exp, ...) from loops marked CSVI_SIMD, without -ffast-math (IEEE
 * semantics, NaN and inf handling are kept; results may differ from the scalar
 * functions in the last bits).  Elsewhere the loops stay scalar.
 *
 * CSVI_HOT on a function compiles it three times (AVX-512, AVX2+FMA and the
 * baseline) and picks one when the library loads (GCC target_clones, an
 * IFUNC), so a loop in it calls the 8- or 4-wide libmvec variant where the CPU
 * has one and the wheel still runs on any x86-64.  IFUNC resolvers run before
 * the sanitizers' runtime starts, so sanitizer builds (CSVI_NO_CLONES, set by
 * setup.py) get one plain copy. */
#ifndef CSVI_VMATH_H
#define CSVI_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(CSVI_LIBMVEC) && defined(__x86_64__) && defined(__GLIBC__)
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double log1p(double);
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
double expm1(double);
#pragma omp declare simd notinbranch
double tanh(double);
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float log1pf(float);
#endif
#define CSVI_SIMD _Pragma("omp simd")
#if defined(__GNUC__) && !defined(__clang__) && !defined(CSVI_NO_CLONES) && \
    !defined(__SANITIZE_ADDRESS__)
#define CSVI_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#else
#define CSVI_SIMD
#endif

#ifndef CSVI_HOT
#define CSVI_HOT
#endif

/* v where c holds, else +0.0, by masking v's bits: a select the compiler
 * vectorizes, where `c ? v : 0.0` around a product or a call stays a branch
 * (which mispredicts on random data bits). */
static inline double csvi_kept_if(int c, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= (uint64_t)0 - (uint64_t)(c != 0);
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* a where c holds, else b, by their bits: a blend the compiler computes
 * once, where `(c ? a : b) / d` may become two masked vector divisions, one
 * per side (a vector division costs ~2 cycles an element). */
static inline double csvi_pick(int c, double a, double b) {
    uint64_t ab, bb;
    memcpy(&ab, &a, sizeof ab);
    memcpy(&bb, &b, sizeof bb);
    const uint64_t mask = (uint64_t)0 - (uint64_t)(c != 0);
    ab = (ab & mask) | (bb & ~mask);
    memcpy(&a, &ab, sizeof a);
    return a;
}

#endif
