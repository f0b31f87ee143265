/* Argument checks run at the Python boundary before any kernel sees a value. */
#include <math.h>
#include "csvi_checks.h"

int64_t csvi_first_outside(const double *x, int64_t n, double lo, double hi,
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
