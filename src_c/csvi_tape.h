/* The tape: slots (buffers with a shape) and op records that refer to slots by
 * index.  A record holds no pointer and no Python object, so the same list can
 * be run eagerly, swept backward, or frozen and replayed as a program.
 *
 * Plain C99; the only outside header is NumPy's bitgen.h (a plain C struct). */
#ifndef CSVI_TAPE_H
#define CSVI_TAPE_H

#include <stddef.h>
#include <stdint.h>
#include "numpy/random/bitgen.h"

#define CSVI_MAX_DIMS 16
#define CSVI_MAX_INPUTS 8
#define CSVI_N_IATTR 16
#define CSVI_N_DATTR 4

/* Status codes returned by every kernel; 0 is success. */
enum {
    CSVI_OK = 0,
    CSVI_ERR_NOMEM = 1,
    CSVI_ERR_INDEX = 2,     /* an index read from a slot is out of bounds */
    CSVI_ERR_VALUE = 3,     /* a runtime value is outside the op's domain */
    CSVI_ERR_SHAPE = 4      /* shapes recorded in the op do not fit */
};

typedef struct {
    double *data;           /* value buffer, C-contiguous */
    double *grad;           /* gradient buffer during backward, else NULL */
    int64_t size;
    int32_t ndim;
    int32_t needs_grad;     /* a gradient must flow into this slot */
    int32_t copies;         /* 1; P when a compiled loop keeps one value per
                               particle (P * size doubles of gradient) */
    int64_t shape[CSVI_MAX_DIMS];
} csvi_slot;

typedef struct {
    int32_t code;
    int32_t n_in;
    int32_t in[CSVI_MAX_INPUTS];
    int32_t out;
    int32_t aux;            /* second output (saved noise, partial results) or -1 */
    int64_t iattr[CSVI_N_IATTR];
    double dattr[CSVI_N_DATTR];
} csvi_op;

typedef struct {
    csvi_slot *slots;
    int32_t n_slots, cap_slots;
    csvi_op *ops;
    int32_t n_ops, cap_ops;
    bitgen_t *rng;          /* NumPy bit generator used by random ops */
    double *arena;          /* gradient storage, reused across backward sweeps */
    int64_t arena_cap;
    unsigned char *live;    /* per slot: a gradient has reached it */
    int32_t live_cap;
    int32_t failed_op;      /* index of the op whose kernel failed, or -1 */
    void *sweep_work;       /* an eager sweep's fusion plan (csvi_fuse_sweep), reused */
    size_t sweep_cap;
    int32_t sweep_fused;    /* chains the last sweep ran fused (csvi_fuse_sweep) */
    unsigned char *grad_fresh;  /* per slot, or NULL (eager tapes): 1 while the slot's
                             * gradient buffer, left uncleared, holds nothing yet this
                             * sweep (csvi_grad_claim); owned by a compiled program */
} csvi_tape;

typedef int (*csvi_kernel_fn)(csvi_tape *t, const csvi_op *op);

/* An op's flags (the .def files' fourth column, or-ed). */
enum {
    CSVI_DRAWS = 1          /* reads the bit generator: the compiled loop runs it
                               (and what it reads) particle by particle, in order */
};

/* The shape of an op's aux slot (the .def files' fifth column); Python
 * allocates it by this rule (csvi/_ops.pxi, _aux_shape) and the kernels rely
 * on it. */
typedef enum {
    CSVI_AUX_NONE = 0,      /* no aux slot */
    CSVI_AUX_OUT,           /* the output's shape */
    CSVI_AUX_PAIR,          /* (2,) + the output's shape */
    CSVI_AUX_BERNOULLI,     /* logits (iattr[0] = 1): the output's shape; probs over an output
                             * at least twice input 1's size: (4,) + input 1's shape; else none */
    CSVI_AUX_IN0,           /* input 0's shape */
    CSVI_AUX_SET,           /* (the least power of two >= 2 * output size,) */
    CSVI_AUX_IN0_OUT,       /* (input 0's size + the output's size,) */
    CSVI_AUX_JOINT_OUT      /* (the inputs' broadcast size + the output's size,) */
} csvi_aux_rule;

typedef struct {
    csvi_kernel_fn fwd;
    csvi_kernel_fn vjp;     /* csvi_vjp_none when the op is not differentiable */
    const char *name;
    int flags;              /* CSVI_DRAWS or 0 */
    csvi_aux_rule aux;
} csvi_kernel;

/* Convenience accessors used by every kernel. */
#define CSVI_IN(t, op, k) (&(t)->slots[(op)->in[k]])
#define CSVI_OUT(t, op) (&(t)->slots[(op)->out])
#define CSVI_AUX(t, op) (&(t)->slots[(op)->aux])

void csvi_tape_init(csvi_tape *t);
void csvi_tape_free(csvi_tape *t);
/* Forget all slots and ops but keep the capacity (no allocation next step). */
void csvi_tape_clear(csvi_tape *t);
/* Returns the new slot index, or -1 when out of memory. */
int32_t csvi_tape_add_slot(csvi_tape *t, double *data, int32_t ndim,
                           const int64_t *shape, int32_t needs_grad);
/* Appends a copy of *op and returns its index, or -1 when out of memory. */
int32_t csvi_tape_add_op(csvi_tape *t, const csvi_op *op);
/* Runs op number i forward. */
int csvi_tape_forward_op(csvi_tape *t, int32_t i);
/* Gives every needs_grad slot a zeroed gradient buffer (size * copies
 * doubles) in the arena and clears the live marks; with `wanted` (per slot),
 * only the needs_grad slots it marks -- the others' grad is NULL. */
int csvi_tape_assign_grads(csvi_tape *t, const unsigned char *wanted);
/* The same, except that the buffers of the slots `uncleared` marks (per slot)
 * are not zeroed but marked in t->grad_fresh (which must be allocated): every
 * VJP that may write such a slot's gradient asks csvi_grad_claim first and
 * stores instead of adding when it says so, and csvi_tape_zero_fresh zeroes
 * any left unwritten after the sweep.  Only slots all of whose readers ask
 * may be marked (a compiled program marks them: program.c). */
int csvi_tape_assign_grads_uncleared(csvi_tape *t, const unsigned char *wanted,
                                     const unsigned char *uncleared);
/* Zeroes the gradient buffers still marked CSVI_GRAD_FRESH, and unmarks them. */
void csvi_tape_zero_fresh(csvi_tape *t);

/* grad_fresh's marks: written or cleared (0), uncleared and not yet written
 * (CSVI_GRAD_FRESH), written as float32 elsewhere by its one writer, which
 * says where (CSVI_GRAD_FLOAT32: csvi_nn.h). */
enum { CSVI_GRAD_FRESH = 1, CSVI_GRAD_FLOAT32 = 2 };

/* Whether a VJP about to write slot s's gradient must store rather than add
 * (its buffer was not cleared and nothing has written it this sweep); the
 * slot then counts as written.  Always 0 on an eager tape. */
static inline int csvi_grad_claim(csvi_tape *t, int32_t s) {
    if (!t->grad_fresh || t->grad_fresh[s] != CSVI_GRAD_FRESH) return 0;
    t->grad_fresh[s] = 0;
    return 1;
}
/* Marks in `runs` (per op, zeroed by the caller) the ops whose values the
 * slots `keep` depend on, and every op that draws (CSVI_DRAWS: a compiled
 * step keeps the eager stream of draws).  Returns CSVI_OK or CSVI_ERR_NOMEM. */
int csvi_tape_mark_needed(const csvi_tape *t, const int32_t *keep, int n_keep,
                          unsigned char *runs);
/* Reverse sweep from slot `root` seeded with ones: assigns the gradient
 * buffers, then runs the VJPs in reverse.  With `leaves_only`, the caller
 * reads no intermediate's gradient afterwards, so chains csvi_fuse_sweep
 * finds run fused and their intermediates get no gradient buffer. */
int csvi_tape_backward(csvi_tape *t, int32_t root, int leaves_only);
/* Whether two slots have the same shape (not merely the same size). */
int csvi_slot_same_shape(const csvi_slot *a, const csvi_slot *b);

int csvi_vjp_none(csvi_tape *t, const csvi_op *op);

#endif
