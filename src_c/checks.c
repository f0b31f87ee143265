/* Argument checks run at the Python boundary before any kernel sees a value.
 *
 * They run on every parameter and value a distribution validates, every step
 * (an observed data vector included), so the common case -- every element
 * fine -- is a branch-free pass over blocks that the compiler vectorizes; only
 * a block that may hold a violation is scanned element by element. */
#include <math.h>
#include "csvi_checks.h"

#define CHECK_BLOCK 256

static int64_t first_outside_scalar(const double *x, int64_t n, double lo, double hi,
                                    int lo_open, int hi_open, int integer) {
    for (int64_t i = 0; i < n; i++) {
        const double v = x[i];
        if (v != v) return i; /* NaN */
        if (lo_open ? !(v > lo) : !(v >= lo)) return i;
        if (hi_open ? !(v < hi) : !(v <= hi)) return i;
        if (integer && floor(v) != v) return i;
    }
    return -1;
}

/* Might x[0..n) hold a violation?  Its min, its max and whether it holds a
 * NaN or an infinity (v - v is NaN only for those) are reductions the
 * compiler vectorizes; a block they cannot clear is scanned exactly. */
static int maybe_outside(const double *x, int64_t n, double lo, double hi,
                         int lo_open, int hi_open) {
    double mn = INFINITY, mx = -INFINITY, z = 0.0;
    _Pragma("omp simd reduction(min:mn) reduction(max:mx) reduction(+:z)")
    for (int64_t i = 0; i < n; i++) {
        const double v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        z += v - v;
    }
    if (z != z) return 1;
    if (lo_open ? !(mn > lo) : !(mn >= lo)) return 1;
    return hi_open ? !(mx < hi) : !(mx <= hi);
}

int64_t csvi_first_outside(const double *x, int64_t n, double lo, double hi,
                           int lo_open, int hi_open, int integer) {
    if (integer) return first_outside_scalar(x, n, lo, hi, lo_open, hi_open, integer);
    for (int64_t start = 0; start < n; start += CHECK_BLOCK) {
        const int64_t len = n - start < CHECK_BLOCK ? n - start : CHECK_BLOCK;
        if (maybe_outside(x + start, len, lo, hi, lo_open, hi_open)) {
            const int64_t i = first_outside_scalar(x + start, len, lo, hi, lo_open, hi_open, 0);
            if (i >= 0) return start + i; /* else: an infinity the bounds allow */
        }
    }
    return -1;
}
