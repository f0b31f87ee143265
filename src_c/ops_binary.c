/* Broadcasting binary ops: forward and VJP.  A VJP accumulates through the
 * broadcast iterator, so broadcast dimensions are summed by zero strides. */
#include <math.h>
#include "csvi_iter.h"
#include "csvi_opcodes.h"
#include "csvi_vmath.h"

#define BINARY_SETUP                                                   \
    const csvi_slot *ins_[2] = {CSVI_IN(t, op, 0), CSVI_IN(t, op, 1)}; \
    csvi_slot *out_ = CSVI_OUT(t, op);                                 \
    csvi_iter it_;                                                     \
    csvi_iter_slots(&it_, out_, 2, ins_);                              \
    double *y = out_->data;                                            \
    const double *a = ins_[0]->data, *b = ins_[1]->data;               \
    const int64_t n_ = it_.size;                                       \
    (void)y; (void)a; (void)b; (void)n_

/* The common broadcast, an array with a single number (X @ w + b, 2.0 * x):
 * operand k (1 = a, 2 = b) is the number, the others one contiguous run.
 * These get flat loops the compiler vectorizes. */
static int scalar_operand(const csvi_iter *it, int k) {
    if (it->ndim != 1) return 0;
    for (int q = 0; q < 3; q++)
        if (it->stride[q][0] != (q == k ? 0 : 1)) return 0;
    return 1;
}

#define DEFINE_BINARY_FWD(name, EXPR)                                        \
    int csvi_##name##_fwd(csvi_tape *t, const csvi_op *op) {                 \
        BINARY_SETUP;                                                        \
        if (scalar_operand(&it_, 2)) {                                       \
            const double bv = b[0];                                          \
            CSVI_SIMD                                                        \
            for (int64_t i = 0; i < n_; i++) {                               \
                const double av = a[i];                                      \
                y[i] = (EXPR);                                               \
            }                                                                \
        } else if (scalar_operand(&it_, 1)) {                                \
            const double av = a[0];                                          \
            CSVI_SIMD                                                        \
            for (int64_t i = 0; i < n_; i++) {                               \
                const double bv = b[i];                                      \
                y[i] = (EXPR);                                               \
            }                                                                \
        } else {                                                             \
            CSVI_ITER_LOOP(&it_, {                                           \
                const double av = a[o1], bv = b[o2];                         \
                y[o0] = (EXPR);                                              \
            });                                                              \
        }                                                                    \
        return CSVI_OK;                                                      \
    }

/* Accumulates g * PARTIAL into GRAD at offset OFF; a scalar input (size 1)
 * sums in a register instead of through memory at a zero stride. */
#define ACCUMULATE(IS_SCALAR, GRAD, OFF, PARTIAL)                              \
    do {                                                                       \
        if (IS_SCALAR) {                                                       \
            double acc = 0.0;                                                  \
            CSVI_ITER_LOOP(&it_, {                                             \
                const double av = a[o1], bv = b[o2], yv = y[o0];               \
                (void)av; (void)bv; (void)yv;                                  \
                acc += g[o0] * (PARTIAL);                                      \
            });                                                                \
            GRAD[0] += acc;                                                    \
        } else {                                                               \
            CSVI_ITER_LOOP(&it_, {                                             \
                const double av = a[o1], bv = b[o2], yv = y[o0];               \
                (void)av; (void)bv; (void)yv;                                  \
                GRAD[OFF] += g[o0] * (PARTIAL);                                \
            });                                                                \
        }                                                                      \
    } while (0)

/* The VJP of an array (ARR: a or b) with a number (NUM): the array's
 * gradient in a flat loop, the number's as a sum in eight interleaved
 * partial sums, which vectorizes and is the same for any ISA. */
#define SCALAR_VJP(ARR, NUM, GARR, GNUM, DARR, DNUM)                          \
    do {                                                                      \
        const double NUM##v = NUM[0];                                         \
        (void)NUM##v;                                                         \
        if (GARR) {                                                           \
            CSVI_SIMD                                                         \
            for (int64_t i = 0; i < n_; i++) {                                \
                const double ARR##v = ARR[i], yv = y[i];                      \
                (void)ARR##v; (void)yv;                                       \
                GARR[i] += g[i] * (DARR);                                     \
            }                                                                 \
        }                                                                     \
        if (GNUM) {                                                           \
            double lane[8] = {0.0};                                           \
            const int64_t n8 = n_ & ~(int64_t)7;                              \
            for (int64_t i = 0; i < n8; i += 8)                               \
                for (int q = 0; q < 8; q++) {                                 \
                    const double ARR##v = ARR[i + q], yv = y[i + q];          \
                    (void)ARR##v; (void)yv;                                   \
                    lane[q] += g[i + q] * (DNUM);                             \
                }                                                             \
            double sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) +        \
                         ((lane[1] + lane[5]) + (lane[3] + lane[7]));         \
            for (int64_t i = n8; i < n_; i++) {                               \
                const double ARR##v = ARR[i], yv = y[i];                      \
                (void)ARR##v; (void)yv;                                       \
                sum += g[i] * (DNUM);                                         \
            }                                                                 \
            GNUM[0] += sum;                                                   \
        }                                                                     \
    } while (0)

/* DA and DB are the partial derivatives, written with av, bv and yv. */
#define DEFINE_BINARY_VJP(name, DA, DB)                                      \
    int csvi_##name##_vjp(csvi_tape *t, const csvi_op *op) {                 \
        BINARY_SETUP;                                                        \
        const double *g = out_->grad;                                        \
        double *ga = CSVI_IN(t, op, 0)->grad, *gb = CSVI_IN(t, op, 1)->grad; \
        if (scalar_operand(&it_, 2)) {                                       \
            SCALAR_VJP(a, b, ga, gb, DA, DB);                                \
        } else if (scalar_operand(&it_, 1)) {                                \
            SCALAR_VJP(b, a, gb, ga, DB, DA);                                \
        } else {                                                             \
            if (ga) ACCUMULATE(ins_[0]->size == 1, ga, o1, DA);              \
            if (gb) ACCUMULATE(ins_[1]->size == 1, gb, o2, DB);              \
        }                                                                    \
        return CSVI_OK;                                                      \
    }

DEFINE_BINARY_FWD(add, av + bv)
DEFINE_BINARY_VJP(add, 1.0, 1.0)
DEFINE_BINARY_FWD(sub, av - bv)
DEFINE_BINARY_VJP(sub, 1.0, -1.0)
DEFINE_BINARY_FWD(mul, av * bv)
DEFINE_BINARY_VJP(mul, bv, av)
DEFINE_BINARY_FWD(div, av / bv)
DEFINE_BINARY_VJP(div, 1.0 / bv, -yv / bv)

/* d(a^b)/da = b a^(b-1) (0 when b == 0); d(a^b)/db = a^b log a (0 when a^b == 0). */
DEFINE_BINARY_FWD(pow, pow(av, bv))
DEFINE_BINARY_VJP(pow, bv == 0.0 ? 0.0 : bv * pow(av, bv - 1.0),
                  yv == 0.0 ? 0.0 : yv * log(av))

DEFINE_BINARY_FWD(gt, av > bv ? 1.0 : 0.0)
DEFINE_BINARY_FWD(ge, av >= bv ? 1.0 : 0.0)
DEFINE_BINARY_FWD(lt, av < bv ? 1.0 : 0.0)
DEFINE_BINARY_FWD(le, av <= bv ? 1.0 : 0.0)

/* where(cond, a, b): inputs (cond, a, b); cond is a constant 0/1 slot. */
int csvi_where_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *ins[3] = {CSVI_IN(t, op, 0), CSVI_IN(t, op, 1), CSVI_IN(t, op, 2)};
    csvi_slot *out = CSVI_OUT(t, op);
    csvi_iter it;
    csvi_iter_slots(&it, out, 3, ins);
    const double *c = ins[0]->data, *a = ins[1]->data, *b = ins[2]->data;
    double *y = out->data;
    CSVI_ITER_LOOP(&it, { y[o0] = c[o1] != 0.0 ? a[o2] : b[o3]; });
    return CSVI_OK;
}

int csvi_where_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *ins[3] = {CSVI_IN(t, op, 0), CSVI_IN(t, op, 1), CSVI_IN(t, op, 2)};
    csvi_slot *out = CSVI_OUT(t, op);
    csvi_iter it;
    csvi_iter_slots(&it, out, 3, ins);
    const double *c = ins[0]->data, *g = out->grad;
    double *ga = CSVI_IN(t, op, 1)->grad, *gb = CSVI_IN(t, op, 2)->grad;
    if (ga) CSVI_ITER_LOOP(&it, { if (c[o1] != 0.0) ga[o2] += g[o0]; });
    if (gb) CSVI_ITER_LOOP(&it, { if (c[o1] == 0.0) gb[o3] += g[o0]; });
    return CSVI_OK;
}
