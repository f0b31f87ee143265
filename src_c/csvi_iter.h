/* Broadcast iteration: one loop nest over an iteration shape with an element
 * stride per operand (0 along broadcast dimensions).  Elementwise ops, their
 * VJPs (which then reduce over broadcast dimensions by accumulating through a
 * zero stride), reductions and strided copies all use it. */
#ifndef CSVI_ITER_H
#define CSVI_ITER_H

#include "csvi_tape.h"

#define CSVI_ITER_MAX_OPERANDS 4

typedef struct {
    int ndim;
    int n;                   /* number of operands */
    int64_t size;            /* product of shape */
    int64_t shape[CSVI_MAX_DIMS];
    int64_t stride[CSVI_ITER_MAX_OPERANDS][CSVI_MAX_DIMS];
    int contiguous;          /* every operand has stride 1 over a single run */
} csvi_iter;

/* Starts an iteration over `shape` (ndim dims). */
void csvi_iter_start(csvi_iter *it, int ndim, const int64_t *shape);
/* Adds an operand of shape `shape` (ndim <= it->ndim), right-aligned and
 * broadcast against the iteration shape (size-1 dims get stride 0). */
void csvi_iter_add(csvi_iter *it, int ndim, const int64_t *shape);
/* Adds an operand with explicit element strides, one per iteration dim. */
void csvi_iter_add_strided(csvi_iter *it, const int64_t *strides);
/* Merges adjacent dims that every operand walks contiguously and drops size-1
 * dims, so the inner loop is as long as possible. Call after the last add. */
void csvi_iter_finish(csvi_iter *it);

/* Moves the four operands' row offsets b0..b3 to the next row: an odometer
 * over every dim but the last, _ctr its counters. */
#define CSVI_ITER_NEXT_ROW_(_it, _nd, _ctr, b0, b1, b2, b3)                     \
    for (int _d = (_nd) - 2; _d >= 0; _d--) {                                    \
        b0 += (_it)->stride[0][_d]; b1 += (_it)->stride[1][_d];                  \
        b2 += (_it)->stride[2][_d]; b3 += (_it)->stride[3][_d];                  \
        if (++(_ctr)[_d] < (_it)->shape[_d]) break;                              \
        b0 -= (_it)->stride[0][_d] * (_it)->shape[_d];                           \
        b1 -= (_it)->stride[1][_d] * (_it)->shape[_d];                           \
        b2 -= (_it)->stride[2][_d] * (_it)->shape[_d];                           \
        b3 -= (_it)->stride[3][_d] * (_it)->shape[_d];                           \
        (_ctr)[_d] = 0;                                                          \
    }

/* The loop body (the variadic part, so it may hold commas) sees element
 * offsets o0..o3, one per operand.  The contiguous
 * case is a flat loop the compiler can vectorize. */
#define CSVI_ITER_LOOP(it, ...)                                                 \
    do {                                                                         \
        const csvi_iter *_it = (it);                                             \
        if (_it->size == 0) break;                                               \
        if (_it->contiguous) {                                                   \
            for (int64_t _k = 0; _k < _it->size; _k++) {                         \
                const int64_t o0 = _k, o1 = _k, o2 = _k, o3 = _k;                \
                (void)o0; (void)o1; (void)o2; (void)o3;                          \
                __VA_ARGS__;                                                     \
            }                                                                    \
            break;                                                               \
        }                                                                        \
        const int _nd = _it->ndim;                                               \
        const int64_t _inner = _nd ? _it->shape[_nd - 1] : 1;                    \
        const int64_t _s0 = _nd ? _it->stride[0][_nd - 1] : 0;                   \
        const int64_t _s1 = _nd ? _it->stride[1][_nd - 1] : 0;                   \
        const int64_t _s2 = _nd ? _it->stride[2][_nd - 1] : 0;                   \
        const int64_t _s3 = _nd ? _it->stride[3][_nd - 1] : 0;                   \
        int64_t _ctr[CSVI_MAX_DIMS] = {0};                                       \
        int64_t _b0 = 0, _b1 = 0, _b2 = 0, _b3 = 0;                              \
        const int64_t _outer = _it->size / _inner;                               \
        for (int64_t _o = 0; _o < _outer; _o++) {                                \
            int64_t o0 = _b0, o1 = _b1, o2 = _b2, o3 = _b3;                      \
            for (int64_t _k = 0; _k < _inner; _k++) {                            \
                __VA_ARGS__;                                                     \
                o0 += _s0; o1 += _s1; o2 += _s2; o3 += _s3;                      \
            }                                                                    \
            (void)o0; (void)o1; (void)o2; (void)o3;                              \
            CSVI_ITER_NEXT_ROW_(_it, _nd, _ctr, _b0, _b1, _b2, _b3);             \
        }                                                                        \
    } while (0)

/* Iteration over the output slot's shape with the listed slots as operands:
 * the usual setup for an elementwise op (operand 0 is the output). */
/* Whether operands 0..n-1 all walk the innermost dim with stride 1 (then a
 * row kernel with restrict pointers can run each row; CSVI_ITER_ROWS). */
static inline int csvi_iter_unit_rows(const csvi_iter *it, int n) {
    if (it->contiguous) return 1;
    if (!it->ndim) return 0;
    for (int k = 0; k < n; k++)
        if (it->stride[k][it->ndim - 1] != 1) return 0;
    return 1;
}

/* Runs the body once per innermost row: o0..o3 are the row's first
 * offsets and `row` its length (the whole run when contiguous).  For
 * kernels whose rows vectorize (csvi_iter_unit_rows), a broadcast operand
 * -- a table indexed by state against every datum -- costing nothing to
 * re-walk per row. */
#define CSVI_ITER_ROWS(it, ...)                                                 \
    do {                                                                         \
        const csvi_iter *_it = (it);                                             \
        if (_it->size == 0) break;                                               \
        if (_it->contiguous) {                                                   \
            const int64_t o0 = 0, o1 = 0, o2 = 0, o3 = 0, row = _it->size;      \
            (void)o0; (void)o1; (void)o2; (void)o3;                              \
            __VA_ARGS__;                                                         \
            break;                                                               \
        }                                                                        \
        const int _nd = _it->ndim;                                               \
        const int64_t row = _it->shape[_nd - 1];                                 \
        int64_t _ctr[CSVI_MAX_DIMS] = {0};                                       \
        int64_t o0 = 0, o1 = 0, o2 = 0, o3 = 0;                                  \
        for (int64_t _o = 0; _o < _it->size / row; _o++) {                       \
            __VA_ARGS__;                                                         \
            CSVI_ITER_NEXT_ROW_(_it, _nd, _ctr, o0, o1, o2, o3);                 \
        }                                                                        \
    } while (0)

void csvi_iter_slots(csvi_iter *it, const csvi_slot *out, int n_in,
                     const csvi_slot *const *ins);

#endif
