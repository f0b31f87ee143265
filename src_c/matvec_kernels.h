/* The row-dot mat-vec kernel shared by MATMUL's mat-vec path (ops_linalg.c)
 * and MARKOV_FORWARD's backward pass (ops_contract.c). */
#ifndef CSVI_MATVEC_KERNELS_H
#define CSVI_MATVEC_KERNELS_H

#include <stdint.h>
#include "csvi_v4.h"

/* y[r] (+= when `add`) M[r, :] . v for r < rows (M row-major, rows x cols),
 * four rows at a time with four-lane accumulators (they hide the FMA
 * latency): a row's sum is the same in or out of a group of four, and its
 * order is fixed by the code, not by the vector width the clone runs with.
 * Always inlined, so each ISA clone of a caller compiles it for its ISA. */
static inline __attribute__((always_inline)) void csvi_rows_dot(const double *M, int64_t rows,
                                                               int64_t cols, const double *v,
                                                               double *y, int add) {
    const int64_t cv = cols & ~(int64_t)3;
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const double *x0 = M + r * cols, *x1 = x0 + cols, *x2 = x1 + cols, *x3 = x2 + cols;
        v4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t c = 0; c < cv; c += 4) {
            const v4 vc = load4(v + c);
            a0 += load4(x0 + c) * vc;
            a1 += load4(x1 + c) * vc;
            a2 += load4(x2 + c) * vc;
            a3 += load4(x3 + c) * vc;
        }
        v4 s = hsum4(a0, a1, a2, a3);
        for (int64_t c = cv; c < cols; c++) {
            s[0] += x0[c] * v[c];
            s[1] += x1[c] * v[c];
            s[2] += x2[c] * v[c];
            s[3] += x3[c] * v[c];
        }
        for (int q = 0; q < 4; q++) y[r + q] = add ? y[r + q] + s[q] : s[q];
    }
    for (; r < rows; r++) {
        const double *x0 = M + r * cols;
        v4 a0 = {0};
        for (int64_t c = 0; c < cv; c += 4) a0 += load4(x0 + c) * load4(v + c);
        double s = (a0[0] + a0[1]) + (a0[2] + a0[3]);
        for (int64_t c = cv; c < cols; c++) s += x0[c] * v[c];
        y[r] = add ? y[r] + s : s;
    }
}

#endif
