/* Argument checks run at the Python boundary before any kernel sees a value.
 *
 * They run on every parameter and value a distribution validates, every step
 * (an observed data vector included), so the common case -- every element
 * fine -- is a branch-free pass over blocks that the compiler vectorizes; only
 * a block that may hold a violation is scanned element by element. */
#include <math.h>
#include "csvi_checks.h"
#include "csvi_vmath.h"

#define CHECK_BLOCK 1024

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
 * compiler vectorizes, each kept in CHECK_LANES independent lanes (several
 * vector registers) so that no one chain of dependent min/max/add limits the
 * pass; a block they cannot clear is scanned exactly. */
#define CHECK_LANES 32

static CSVI_HOT int maybe_outside(const double *restrict x, int64_t n, double lo, double hi,
                                  int lo_open, int hi_open) {
    double mn[CHECK_LANES], mx[CHECK_LANES], z[CHECK_LANES];
    for (int j = 0; j < CHECK_LANES; j++) {
        mn[j] = INFINITY;
        mx[j] = -INFINITY;
        z[j] = 0.0;
    }
    int64_t i = 0;
    for (; i + CHECK_LANES <= n; i += CHECK_LANES) {
        for (int j = 0; j < CHECK_LANES; j++) {
            const double v = x[i + j];
            mn[j] = v < mn[j] ? v : mn[j];
            mx[j] = v > mx[j] ? v : mx[j];
            z[j] += v - v;
        }
    }
    for (int j = 0; i < n; i++, j++) {
        const double v = x[i];
        mn[j] = v < mn[j] ? v : mn[j];
        mx[j] = v > mx[j] ? v : mx[j];
        z[j] += v - v;
    }
    double lo_all = mn[0], hi_all = mx[0], z_all = z[0];
    for (int j = 1; j < CHECK_LANES; j++) {
        lo_all = mn[j] < lo_all ? mn[j] : lo_all;
        hi_all = mx[j] > hi_all ? mx[j] : hi_all;
        z_all += z[j];
    }
    if (z_all != z_all) return 1;
    if (lo_open ? !(lo_all > lo) : !(lo_all >= lo)) return 1;
    return hi_open ? !(hi_all < hi) : !(hi_all <= hi);
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

/* GATHER's positions for a vector of `size` indexed by an integer array
 * (x[group] in a hierarchical model, every step): the indices as float64,
 * negative ones counted from the end.  The common case (every index in
 * [0, size)) is converted and cleared in one vectorized pass (min/max kept
 * beside the stores); otherwise an element-by-element pass wraps negatives
 * and stops at the first index out of [-size, size), whose position it
 * returns (-1: none). */
static CSVI_HOT int converted_in_range(const int64_t *restrict idx, int64_t n, int64_t size,
                                       double *restrict out) {
    int64_t mn = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        mn = idx[i] < mn ? idx[i] : mn;
        mx = idx[i] > mx ? idx[i] : mx;
        out[i] = (double)idx[i];
    }
    return mn >= 0 && mx < size;
}

int64_t csvi_index_positions(const int64_t *idx, int64_t n, int64_t size, double *out) {
    if (converted_in_range(idx, n, size, out)) return -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = idx[i];
        if (k < 0) k += size;
        if (k < 0 || k >= size) return i;
        out[i] = (double)k;
    }
    return -1;
}

CSVI_HOT int csvi_nondecreasing(const double *restrict x, int64_t n) {
    int down = 0;
    for (int64_t i = 1; i < n; i++) down |= x[i] < x[i - 1];
    return !down;
}

CSVI_HOT int csvi_gather_positions(const double *restrict index, int64_t n, int64_t size,
                                   int32_t *restrict p) {
    const double limit = (double)size;
    int bad = 0;
    for (int64_t k = 0; k < n; k++) {
        const double d = index[k];
        const int ok = (d > -1.0) & (d < limit);  /* truncates into [0, size) */
        p[k] = (int32_t)(ok ? d : 0.0);
        bad |= !ok;
    }
    return bad;
}
