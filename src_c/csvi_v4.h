/* Four-lane double vectors (GCC vector extensions, which clang has too) for
 * kernels with a fixed lane order (ops_linalg.c, ops_particles.c, ops_reduce.c). */
#ifndef CSVI_V4_H
#define CSVI_V4_H

#include <stdint.h>

/* Four lanes in a fixed order whatever the ISA: a clone for AVX-512, for
 * AVX2 or the baseline gives the same sums (up to FMA contraction).  GCC
 * vector extensions, which clang has too but for the shuffle's name. */
typedef double v4 __attribute__((vector_size(32), aligned(8)));
typedef int64_t v4i __attribute__((vector_size(32)));
#if defined(__clang__)
#define SHUFFLE(a, b, i, j, k, l) __builtin_shufflevector(a, b, i, j, k, l)
#else
#define SHUFFLE(a, b, i, j, k, l) __builtin_shuffle(a, b, (v4i){i, j, k, l})
/* hsum4 is always inlined, so GCC's note on passing vectors without AVX is moot */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define load4(p) (*(const v4 *)(p))

/* {sum a0, sum a1, sum a2, sum a3}, each as (x[0] + x[1]) + (x[2] + x[3]). */
static inline v4 hsum4(v4 a0, v4 a1, v4 a2, v4 a3) {
    const v4 h01 = SHUFFLE(a0, a1, 0, 4, 2, 6) + SHUFFLE(a0, a1, 1, 5, 3, 7);
    const v4 h23 = SHUFFLE(a2, a3, 0, 4, 2, 6) + SHUFFLE(a2, a3, 1, 5, 3, 7);
    return SHUFFLE(h01, h23, 0, 1, 4, 5) + SHUFFLE(h01, h23, 2, 3, 6, 7);
}

#endif
