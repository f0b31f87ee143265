/* Standard-normal draws: NumPy's ziggurat algorithm (Marsaglia & Tsang's,
 * as in random_standard_normal: one uint64 gives the layer, the sign and a
 * 52-bit position; the wedges and the tail beyond r draw doubles), with
 * csvi's own tables (csvi_normal_tables.h, derived in normal_tables.py).
 *
 * Why not NumPy's function: it costs ~12 ns a draw, mostly a branch on the
 * random sign bit (mispredicted half the time), the call and its register
 * saves.  Here the fast path is inline and branch-free but for the
 * accept test (taken ~99.3% of the time), and the sign is an XOR of the
 * sign bit: ~3.5 ns, of which the bit generator's call is ~2.3.
 *
 * The draws come one after the other from the stream, as NumPy's do: a
 * draw of n equals n draws of one, whatever the block or particle split.
 * The tables are NumPy's layout, derived exactly (NumPy's own differ in
 * the last bits), so a seed gives NumPy's normals to ~1e-14 relative but
 * not bit for bit.  The fast path uses exact IEEE operations only (a
 * 52-bit integer's conversion, one product, a sign flip), so its bits do
 * not depend on the ISA or libm; the rare wedge and tail tests call libm's
 * exp and log1p, as NumPy's do. */
#include <math.h>
#include <string.h>

#include "csvi_normal_fill.h"
#include "csvi_normal_tables.h"

#define POSITION_MASK UINT64_C(0xfffffffffffff) /* 52 bits */

/* The draw whose fast test failed: whether it is accepted after the wedge
 * or tail test (x then holds it); if not, the caller draws afresh. */
static int slow_path(bitgen_t *rng, uint64_t position, int layer, double *x) {
    if (layer == 0) {
        /* beyond r: Marsaglia's tail method; 1 - U keeps log away from 0 */
        for (;;) {
            const double xx = -CSVI_ZIG_INV_R * log1p(-rng->next_double(rng->state));
            const double yy = -log1p(-rng->next_double(rng->state));
            if (yy + yy > xx * xx) {
                *x = ((position >> 8) & 1) ? -(CSVI_ZIG_R + xx) : CSVI_ZIG_R + xx;
                return 1;
            }
        }
    }
    /* the wedge between the layer's box and the curve */
    const double y = (csvi_zig_f[layer - 1] - csvi_zig_f[layer]) * rng->next_double(rng->state)
                     + csvi_zig_f[layer];
    return y < exp(-0.5 * *x * *x);
}

void csvi_fill_standard_normal(bitgen_t *rng, double *out, int64_t n) {
    for (int64_t i = 0; i < n;) {
        const uint64_t r = rng->next_uint64(rng->state);
        const int layer = (int)(r & 0xff);
        const uint64_t position = (r >> 9) & POSITION_MASK;
        double x = (double)(int64_t)position * csvi_zig_w[layer];
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        bits ^= ((r >> 8) & 1) << 63;
        memcpy(&x, &bits, sizeof x);
        if (position < csvi_zig_k[layer] || slow_path(rng, position, layer, &x)) out[i++] = x;
    }
}
