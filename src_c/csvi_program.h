/* A frozen SVI step: the tape's op list replayed N times in one C loop --
 * forward (fresh noise from the bit generator), reverse sweep, then every
 * parameter's optimizer update -- with no allocation per step.
 *
 * Particles.  With P > 1 particles the tape holds ONE particle's step (its
 * loss already scaled by 1/P) and every slot that depends on a draw becomes
 * a particle dimension: P contiguous copies (copy c at data + c * size).  An
 * op on such slots runs once for all particles through a fast path
 * (csvi_particles.h) or else once per copy; ops on slots that don't depend on
 * a draw (the params' transforms, the data) run once.  Each particle has a
 * view of the tape whose batched slots point at its copy, so copies of one
 * op can run on different threads.  Draws keep the eager
 * order -- particle by particle -- because the ops that draw, and the ops
 * that feed them, run first, particle-major; the rest runs op by op. */
#ifndef CSVI_PROGRAM_H
#define CSVI_PROGRAM_H

#include "csvi_optim.h"
#include "csvi_tape.h"

typedef struct {
    int32_t leaf;                /* slot of the unconstrained param (its buffer is the param) */
    csvi_optim_config *config;
    void *state;                 /* csvi_optim_init_state's layout (doubles or floats) */
    int64_t *step;               /* updates done so far; advanced with each update */
} csvi_program_param;

/* Why a run stopped early (csvi_program.status). */
enum {
    CSVI_PROGRAM_DONE = 0,
    CSVI_PROGRAM_KERNEL_ERROR = 1,   /* a kernel returned an error (tape->failed_op) */
    CSVI_PROGRAM_LOSS_NOT_FINITE = 2,
    CSVI_PROGRAM_GRAD_NOT_FINITE = 3, /* failed_param names the param */
    CSVI_PROGRAM_HOOK_FAILED = 4,    /* the gradient hook returned nonzero */
    CSVI_PROGRAM_PEER_FAILED = 5     /* the hook's buffer came back with a failure flag */
};

/* Gradient hook: an optional per-step exchange between the reverse sweep and
 * the updates (data-parallel SVI averages gradients across processes here).
 * The program packs the step into `buffer`: every param's gradient in param
 * order (zeros for a param without one), then the loss, then a failure flag
 * (1 if this process's step failed -- its gradients and loss are then 0).
 * The hook replaces the buffer in place with what every process agrees on
 * (e.g. the average over processes) and returns 0, or nonzero on an error.
 * The program unpacks the gradients and loss and updates, unless its own
 * step failed or the flag came back nonzero: then it stops before the
 * update, so every process stops at the same step with params unchanged. */
typedef int (*csvi_program_grad_hook)(void *ctx, double *buffer, int64_t n);

typedef struct {
    csvi_tape *tape;
    int32_t root;                /* surrogate loss: the reverse sweep starts here */
    int32_t loss;                /* slot holding the step's loss value */
    int32_t n_params;
    csvi_program_param *params;
    int32_t status;
    int32_t kernel_rc;
    int32_t failed_param;
    csvi_program_grad_hook grad_hook;  /* NULL: no exchange (the usual case) */
    void *hook_ctx;
    double *hook_buffer;         /* csvi_program_hook_size() doubles, owned by the caller */
    int32_t params_changed;      /* the caller sets it when params may have been written
                                  * outside the loop since the last run (Program.run: at
                                  * each call); the run then rounds the float32 weight
                                  * copies it keeps afresh (program.c, mark_grad32) */
    /* set by csvi_program_init */
    int32_t particles;
    unsigned char *batched;      /* per slot: one value per particle */
    unsigned char *draw_phase;   /* per op: draws, or feeds an op that draws */
    unsigned char *runs;         /* per op: the loss or the surrogate needs it, or it draws */
    unsigned char *grad_wanted;  /* per slot: the surrogate's gradient passes through it */
    double **traced_data;        /* per slot: its buffer at trace time */
    double *particle_values;     /* storage of the batched slots' values */
    csvi_tape *views;            /* per particle: the tape, batched slots at its copy */
    csvi_slot *view_slots;       /* the views' slot arrays */
    int *copy_rc;                /* per particle: its kernel's status in a parallel op */
    unsigned char *uncleared;    /* per slot (one particle only, else NULL): its gradient
                                  * buffer is not cleared each step (program.c) */
    int32_t *grad32;             /* per param (one particle only, else NULL): 1 + the dense
                                  * record whose float32 product is its gradient, or 0;
                                  * then, per param, 1 while that record's float32 copy of
                                  * it holds a value its float64 array does not yet
                                  * (csvi_optim_step_master32; program.c widens it when
                                  * the run returns) */
    int64_t *tril;               /* per param: d when UNIT_TRIL ops of d x d matrices are
                                  * its only readers (its gradient is zero on and above
                                  * the diagonal), else 0; then, per param, d again while
                                  * a run updates below the diagonal only (program.c) */
} csvi_program;

/* With `fuse`, rewrites the tape's op chains into fused kernels
 * (csvi_fuse.h); marks the ops a step runs and the slots that get gradient
 * buffers; then sets up `particles` copies of every draw-dependent slot
 * (tape, root, loss and params must be set).  Returns CSVI_OK or
 * CSVI_ERR_NOMEM.
 *
 * A step runs only the ops whose values reach the loss or the surrogate, and
 * every draw (so the stream of draws is the eager one): the model's values
 * that nothing reads -- e.g. a site's scaled log_prob when the ELBO uses the
 * unscaled one -- cost nothing.  When a step's loss is not finite, the
 * skipped ops run too, so every traced value is that step's for the
 * diagnosis.  Only slots on a path from a leaf to the surrogate get (and
 * clear) gradient buffers each step. */
int csvi_program_init(csvi_program *p, int32_t particles, int fuse);
/* Frees what init allocated and gives the tape's slots back their buffers. */
void csvi_program_free(csvi_program *p);

/* Points slots[k] at base + offsets[k] doubles, in every particle's view
 * too: slots the program reads from an argument's memory then read another
 * array of the same layout, with no copy (CompiledSVI.read). */
void csvi_program_bind(csvi_program *p, const int32_t *slots, const int64_t *offsets,
                       int32_t n, double *base);

/* Doubles in the gradient hook's buffer: the params' sizes, loss, flag. */
int64_t csvi_program_hook_size(const csvi_program *p);

/* Runs up to n_steps steps, writing each loss; returns the number of completed
 * steps.  A step that fails leaves every parameter and optimizer state as the
 * previous step left them, and sets status.  A float32 weight's value may be
 * left in its dense record's float32 copy (grad32's second half):
 * csvi_program_sync before anything else reads the params. */
int64_t csvi_program_run(csvi_program *p, int64_t n_steps, double *losses);

/* Widens the values runs left in float32 copies into their params' float64
 * arrays (a caller's run is over: Program.run calls it once, after its
 * chunks of csvi_program_run). */
void csvi_program_sync(csvi_program *p);

#endif
