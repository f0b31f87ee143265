/* Broadcasting binary ops: forward and VJP.
 *
 * Flat forms get loops the compiler vectorizes, over threads for a large
 * plate: both operands one contiguous run of the output's shape, or one of
 * them a single number (X @ w + b, 2.0 * x).  The gradient of such a number
 * is a sum in csvi_sum.h's fixed order (the same for any ISA and thread
 * count, and the same as a fused kernel's).  Other broadcasts go through the iterator, whose VJP accumulates
 * over broadcast dimensions by zero strides. */
#include <math.h>
#include <stdint.h>
#include "csvi_iter.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_sum.h"
#include "csvi_vmath.h"

#define BINARY_SETUP                                                   \
    const csvi_slot *ins_[2] = {CSVI_IN(t, op, 0), CSVI_IN(t, op, 1)}; \
    csvi_slot *out_ = CSVI_OUT(t, op);                                 \
    csvi_iter it_;                                                     \
    csvi_iter_slots(&it_, out_, 2, ins_);                              \
    double *y = out_->data;                                            \
    const double *a = ins_[0]->data, *b = ins_[1]->data;               \
    (void)y; (void)a; (void)b

/* A flat form: the element strides (1, or 0 for a single number) of a and b,
 * or 0 when the iteration is not flat. */
static int flat_form(const csvi_iter *it, int64_t *sa, int64_t *sb) {
    if (it->contiguous) {
        *sa = *sb = 1;
        return 1;
    }
    if (it->ndim != 1 || it->stride[0][0] != 1) return 0;
    *sa = it->stride[1][0];
    *sb = it->stride[2][0];
    return *sa + *sb == 1;
}

/* A row form: the output's rows (its innermost run) contiguous, and along a
 * row each operand either walks contiguously or holds one number (a row or
 * column vector against a matrix: scale[:, None] * L, X + bias; a factor
 * broadcast over some of a log-space sum's dims).  The strides along a row
 * go to *sa, *sb; CSVI_ITER_ROWS gives each row's offsets. */
static int row_form(const csvi_iter *it, int64_t *sa, int64_t *sb) {
    if (it->ndim < 2 || it->stride[0][it->ndim - 1] != 1) return 0;
    *sa = it->stride[1][it->ndim - 1];
    *sb = it->stride[2][it->ndim - 1];
    return (*sa == 0 || *sa == 1) && (*sb == 0 || *sb == 1) && *sa + *sb >= 1;
}

typedef struct {
    const double *a, *b, *y, *g;
    double *out, *ga, *gb;
    int64_t sa, sb;
} binary_job;

/* BODY over [lo, hi) with av and bv the operands' values at i. */
#define FLAT_LOOP(BODY)                                       \
    do {                                                      \
        if (j_->sa && j_->sb) {                               \
            CSVI_SIMD                                         \
            for (int64_t i = lo; i < hi; i++) {               \
                const double av = a[i], bv = b[i];            \
                (void)av; (void)bv;                           \
                BODY;                                         \
            }                                                 \
        } else if (j_->sa) {                                  \
            const double bv = b[0];                           \
            (void)bv;                                         \
            CSVI_SIMD                                         \
            for (int64_t i = lo; i < hi; i++) {               \
                const double av = a[i];                       \
                (void)av;                                     \
                BODY;                                         \
            }                                                 \
        } else {                                              \
            const double av = a[0];                           \
            (void)av;                                         \
            CSVI_SIMD                                         \
            for (int64_t i = lo; i < hi; i++) {               \
                const double bv = b[i];                       \
                (void)bv;                                     \
                BODY;                                         \
            }                                                 \
        }                                                     \
    } while (0)

#define JOB_SETUP                                              \
    const binary_job *j_ = ctx;                                \
    const double *restrict a = j_->a, *restrict b = j_->b;     \
    (void)a; (void)b

#define DEFINE_BINARY_FWD(name, EXPR)                                        \
    static void name##_fwd_block(void *ctx, int64_t lo, int64_t hi) {        \
        JOB_SETUP;                                                           \
        double *restrict y = j_->out;                                        \
        FLAT_LOOP(y[i] = (EXPR));                                            \
    }                                                                        \
    int csvi_##name##_fwd(csvi_tape *t, const csvi_op *op) {                 \
        BINARY_SETUP;                                                        \
        binary_job j = {a, b, NULL, NULL, y, NULL, NULL, 0, 0};              \
        if (flat_form(&it_, &j.sa, &j.sb)) {                                 \
            csvi_parallel_range(it_.size, CSVI_PAR_CHEAP, name##_fwd_block, &j); \
            return CSVI_OK;                                                  \
        }                                                                    \
        if (row_form(&it_, &j.sa, &j.sb)) {                                  \
            CSVI_ITER_ROWS(&it_, {                                           \
                j.a = a + o1;                                                \
                j.b = b + o2;                                                \
                j.out = y + o0;                                              \
                name##_fwd_block(&j, 0, row);                                \
            });                                                              \
            return CSVI_OK;                                                  \
        }                                                                    \
        CSVI_ITER_LOOP(&it_, {                                               \
            const double av = a[o1], bv = b[o2];                             \
            y[o0] = (EXPR);                                                  \
        });                                                                  \
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

/* The terms of a single-number operand's gradient, g * (PARTIAL), with
 * SCALAR (av or bv) its value and OTHER the other operand's. */
#define DEFINE_SCALAR_TERMS(fn, SCALAR, s_src, OTHER, o_src, PARTIAL)           \
    static void fn(void *ctx, int64_t lo, int64_t hi, double *terms) {         \
        const binary_job *j_ = ctx;                                            \
        const double SCALAR = j_->s_src[0];                                    \
        const double *restrict o_ = j_->o_src, *restrict y_ = j_->y,           \
                     *restrict g_ = j_->g;                                     \
        for (int64_t k = lo; k < hi; k++) {                                    \
            const double OTHER = o_[k], yv = y_[k];                            \
            (void)SCALAR; (void)OTHER; (void)yv;                               \
            terms[k - lo] = g_[k] * (PARTIAL);                                 \
        }                                                                      \
    }

/* DA and DB are the partial derivatives, written with av, bv and yv. */
#define DEFINE_BINARY_VJP(name, DA, DB)                                      \
    DEFINE_SCALAR_TERMS(name##_ga_terms, av, a, bv, b, DA)                   \
    DEFINE_SCALAR_TERMS(name##_gb_terms, bv, b, av, a, DB)                   \
    static void name##_vjp_block(void *ctx, int64_t lo, int64_t hi) {        \
        JOB_SETUP;                                                           \
        const double *restrict y = j_->y, *restrict g = j_->g;               \
        double *ga = j_->ga, *gb = j_->gb;                                   \
        if (ga && j_->sa) FLAT_LOOP({ const double yv = y[i]; (void)yv;       \
                                      ga[i] += g[i] * (DA); });              \
        if (gb && j_->sb) FLAT_LOOP({ const double yv = y[i]; (void)yv;       \
                                      gb[i] += g[i] * (DB); });              \
    }                                                                        \
    /* The row form, row by row: a walking operand's gradient as in the   \
     * flat form, a per-row number's as one fixed-order sum per row. */       \
    static void name##_vjp_rows(const binary_job *j, const csvi_iter *it) {  \
        const double *a = j->a, *b = j->b, *y = j->y, *g = j->g;             \
        double *ga = j->ga, *gb = j->gb;                                     \
        CSVI_ITER_ROWS(it, {                                                 \
            binary_job r_ = {a + o1, b + o2, y + o0, g + o0, NULL,           \
                             ga ? ga + o1 : NULL, gb ? gb + o2 : NULL,       \
                             j->sa, j->sb};                                  \
            name##_vjp_block(&r_, 0, row);                                   \
            if (ga && !r_.sa)                                                \
                ga[o1] += csvi_sum_terms(row, INT64_MAX, name##_ga_terms, &r_); \
            if (gb && !r_.sb)                                                \
                gb[o2] += csvi_sum_terms(row, INT64_MAX, name##_gb_terms, &r_); \
        });                                                                  \
    }                                                                        \
    int csvi_##name##_vjp(csvi_tape *t, const csvi_op *op) {                 \
        BINARY_SETUP;                                                        \
        const double *g = out_->grad;                                        \
        double *ga = CSVI_IN(t, op, 0)->grad, *gb = CSVI_IN(t, op, 1)->grad; \
        binary_job j = {a, b, y, g, NULL, ga, gb, 0, 0};                     \
        if (!flat_form(&it_, &j.sa, &j.sb) && row_form(&it_, &j.sa, &j.sb)) { \
            name##_vjp_rows(&j, &it_);                                       \
            return CSVI_OK;                                                  \
        }                                                                    \
        if (!flat_form(&it_, &j.sa, &j.sb)) {                                \
            if (ga) ACCUMULATE(ins_[0]->size == 1, ga, o1, DA);              \
            if (gb) ACCUMULATE(ins_[1]->size == 1, gb, o2, DB);              \
            return CSVI_OK;                                                  \
        }                                                                    \
        const int64_t n = it_.size;                                          \
        if ((ga && j.sa) || (gb && j.sb))                                    \
            csvi_parallel_range(n, CSVI_PAR_CHEAP, name##_vjp_block, &j);    \
        if (ga && !j.sa) ga[0] += csvi_sum_terms(n, CSVI_PAR_CHEAP, name##_ga_terms, &j); \
        if (gb && !j.sb) gb[0] += csvi_sum_terms(n, CSVI_PAR_CHEAP, name##_gb_terms, &j); \
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

/* where(cond, a, b): inputs (cond, a, b); cond is a constant 0/1 slot.
 *
 * The flat form (one run, cond walking it, a and b each walking it or one
 * number: where(mask, x, 0.0)) loads both sides before choosing, so the loop
 * becomes vector blends. */
static int where_flat(const csvi_iter *it, int64_t *sa, int64_t *sb) {
    if (it->contiguous) {
        *sa = *sb = 1;
        return 1;
    }
    if (it->ndim != 1 || it->stride[0][0] != 1 || it->stride[1][0] != 1) return 0;
    *sa = it->stride[2][0];
    *sb = it->stride[3][0];
    return (*sa == 0 || *sa == 1) && (*sb == 0 || *sb == 1);
}

static CSVI_HOT void where_run(double *restrict y, const double *restrict c,
                               const double *restrict a, int64_t sa, const double *restrict b,
                               int64_t sb, int64_t n) {
    if (sa && sb) {
        for (int64_t i = 0; i < n; i++) {
            const double av = a[i], bv = b[i];
            y[i] = c[i] != 0.0 ? av : bv;
        }
    } else if (sa) {
        const double bv = b[0];
        for (int64_t i = 0; i < n; i++) {
            const double av = a[i];
            y[i] = c[i] != 0.0 ? av : bv;
        }
    } else if (sb) {
        const double av = a[0];
        for (int64_t i = 0; i < n; i++) {
            const double bv = b[i];
            y[i] = c[i] != 0.0 ? av : bv;
        }
    } else {
        const double av = a[0], bv = b[0];
        for (int64_t i = 0; i < n; i++) y[i] = c[i] != 0.0 ? av : bv;
    }
}

/* gx[i] += g[i] where cond[i] != 0 (pick) or == 0 (!pick), else += 0, over
 * one run: a blend and an add, no branch and no conditional store. */
static CSVI_HOT void where_grad_run(double *restrict gx, const double *restrict g,
                                    const double *restrict c, int pick, int64_t n) {
    if (pick) {
        for (int64_t i = 0; i < n; i++) {
            const double gi = g[i];
            gx[i] += c[i] != 0.0 ? gi : 0.0;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            const double gi = g[i];
            gx[i] += c[i] == 0.0 ? gi : 0.0;
        }
    }
}

/* The row form: nd >= 2, each row of the output contiguous with the
 * condition walking it (a mask over a plate), a and b each walking it or
 * holding one number per row (a factor broadcast over the plate). */
static int where_rows(const csvi_iter *it, int64_t *sa, int64_t *sb) {
    const int last = it->ndim - 1;
    if (it->ndim < 2 || it->stride[0][last] != 1 || it->stride[1][last] != 1) return 0;
    *sa = it->stride[2][last];
    *sb = it->stride[3][last];
    return (*sa == 0 || *sa == 1) && (*sb == 0 || *sb == 1);
}

/* gx[0] += g[i] where cond[i] picks x, over one run along which x holds one
 * number: summed in a register in the order the element loop adds through
 * memory, so the result is that loop's to the bit. */
static CSVI_HOT void where_grad_one(double *restrict gx, const double *restrict g,
                                    const double *restrict c, int pick, int64_t n) {
    double acc = gx[0];
    for (int64_t i = 0; i < n; i++)
        if ((c[i] != 0.0) == pick) acc += g[i];
    gx[0] = acc;
}

static void where_grad_rows(const csvi_iter *it, double *gx, const double *g,
                            const double *c, int pick, int64_t sx) {
    if (sx)
        CSVI_ITER_ROWS(it, where_grad_run(gx + (pick ? o2 : o3), g + o0, c + o1, pick, row));
    else
        CSVI_ITER_ROWS(it, where_grad_one(gx + (pick ? o2 : o3), g + o0, c + o1, pick, row));
}

int csvi_where_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *ins[3] = {CSVI_IN(t, op, 0), CSVI_IN(t, op, 1), CSVI_IN(t, op, 2)};
    csvi_slot *out = CSVI_OUT(t, op);
    csvi_iter it;
    csvi_iter_slots(&it, out, 3, ins);
    const double *c = ins[0]->data, *a = ins[1]->data, *b = ins[2]->data;
    double *y = out->data;
    int64_t sa, sb;
    if (where_flat(&it, &sa, &sb)) {
        where_run(y, c, a, sa, b, sb, it.size);
        return CSVI_OK;
    }
    if (where_rows(&it, &sa, &sb)) {
        CSVI_ITER_ROWS(&it, where_run(y + o0, c + o1, a + o2, sa, b + o3, sb, row));
        return CSVI_OK;
    }
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
    int64_t sa, sb;
    const int flat = where_flat(&it, &sa, &sb);
    if (!flat && where_rows(&it, &sa, &sb)) {
        if (ga) where_grad_rows(&it, ga, g, c, 1, sa);
        if (gb) where_grad_rows(&it, gb, g, c, 0, sb);
        return CSVI_OK;
    }
    if (ga && flat && sa) where_grad_run(ga, g, c, 1, it.size);
    else if (ga) CSVI_ITER_LOOP(&it, { if (c[o1] != 0.0) ga[o2] += g[o0]; });
    if (gb && flat && sb) where_grad_run(gb, g, c, 0, it.size);
    else if (gb) CSVI_ITER_LOOP(&it, { if (c[o1] == 0.0) gb[o3] += g[o0]; });
    return CSVI_OK;
}
