/* The elementwise unary op: one macro defines an op's forward and VJP
 * kernels from two expressions, FWD in x and DER (dy/dx) in x and y, with
 * constants p = dattr[0] and q = dattr[1].  Shared by ops_unary.c and
 * ops_special.c.
 *
 * The transcendental ones (DEFINE_UNARY_HOT) are branch-free so that their
 * loops vectorize with libmvec, are compiled per ISA (CSVI_HOT) and run
 * over threads on large inputs; every element's result depends only on its
 * input, so the split changes no bit. */
#ifndef CSVI_UNARY_H
#define CSVI_UNARY_H

#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_vmath.h"

typedef struct {
    const double *x, *y, *g;
    double *out;
    double p, q;
} unary_job;

/* ATTR: CSVI_HOT or nothing; FWD_PAR/VJP_PAR: the size from which the
 * forward/VJP runs over threads. */
#define DEFINE_UNARY_(name, ATTR, FWD_PAR, VJP_PAR, FWD, DER)                 \
    static ATTR void name##_fwd_block(void *ctx, int64_t lo, int64_t hi) {    \
        const unary_job *j_ = ctx;                                            \
        const double *restrict x_ = j_->x;                                    \
        double *restrict y_ = j_->out;                                        \
        const double p = j_->p, q = j_->q;                                    \
        (void)p; (void)q;                                                     \
        CSVI_SIMD                                                             \
        for (int64_t i = lo; i < hi; i++) {                                   \
            const double x = x_[i];                                           \
            y_[i] = (FWD);                                                    \
        }                                                                     \
    }                                                                         \
    static ATTR void name##_vjp_block(void *ctx, int64_t lo, int64_t hi) {    \
        const unary_job *j_ = ctx;                                            \
        const double *restrict x_ = j_->x, *restrict y_ = j_->y,              \
                     *restrict g_ = j_->g;                                    \
        double *restrict gx = j_->out;                                        \
        const double p = j_->p, q = j_->q;                                    \
        (void)p; (void)q;                                                     \
        CSVI_SIMD                                                             \
        for (int64_t i = lo; i < hi; i++) {                                   \
            const double x = x_[i], y = y_[i];                                \
            (void)x; (void)y;                                                 \
            gx[i] += g_[i] * (DER);                                           \
        }                                                                     \
    }                                                                         \
    int csvi_##name##_fwd(csvi_tape *t, const csvi_op *op) {                  \
        unary_job j = {CSVI_IN(t, op, 0)->data, NULL, NULL,                   \
                       CSVI_OUT(t, op)->data, op->dattr[0], op->dattr[1]};    \
        csvi_parallel_range(CSVI_OUT(t, op)->size, FWD_PAR, name##_fwd_block, &j); \
        return CSVI_OK;                                                       \
    }                                                                         \
    int csvi_##name##_vjp(csvi_tape *t, const csvi_op *op) {                  \
        if (!CSVI_IN(t, op, 0)->grad) return CSVI_OK;                         \
        unary_job j = {CSVI_IN(t, op, 0)->data, CSVI_OUT(t, op)->data,        \
                       CSVI_OUT(t, op)->grad, CSVI_IN(t, op, 0)->grad,        \
                       op->dattr[0], op->dattr[1]};                           \
        csvi_parallel_range(CSVI_OUT(t, op)->size, VJP_PAR, name##_vjp_block, &j); \
        return CSVI_OK;                                                       \
    }

/* A few flops per element: one build for every ISA, over threads from
 * CSVI_PAR_CHEAP. */
#define DEFINE_UNARY(name, FWD, DER) \
    DEFINE_UNARY_(name, , CSVI_PAR_CHEAP, CSVI_PAR_CHEAP, FWD, DER)
/* A libmvec call in the forward (and in the VJP when VJP_PAR says so). */
#define DEFINE_UNARY_HOT(name, VJP_PAR, FWD, DER) \
    DEFINE_UNARY_(name, CSVI_HOT, CSVI_PAR_TRANSCENDENTAL, VJP_PAR, FWD, DER)

#endif
