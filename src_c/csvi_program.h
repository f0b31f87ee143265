/* A frozen SVI step: the tape's op list replayed N times in one C loop --
 * forward (fresh noise from the bit generator), reverse sweep, then every
 * parameter's optimizer update -- with no allocation per step. */
#ifndef CSVI_PROGRAM_H
#define CSVI_PROGRAM_H

#include "csvi_optim.h"
#include "csvi_tape.h"

typedef struct {
    int32_t leaf;                /* slot of the unconstrained param (its buffer is the param) */
    csvi_optim_config *config;
    double *state;               /* csvi_optim_state_count(config) * size doubles */
    int64_t step;                /* updates done so far; advanced by the loop */
} csvi_program_param;

/* Why a run stopped early (csvi_program.status). */
enum {
    CSVI_PROGRAM_DONE = 0,
    CSVI_PROGRAM_KERNEL_ERROR = 1,   /* a kernel returned an error (tape->failed_op) */
    CSVI_PROGRAM_LOSS_NOT_FINITE = 2,
    CSVI_PROGRAM_GRAD_NOT_FINITE = 3 /* failed_param names the param */
};

typedef struct {
    csvi_tape *tape;
    int32_t root;                /* surrogate loss: the reverse sweep starts here */
    int32_t loss;                /* slot holding the step's loss value */
    int32_t n_params;
    csvi_program_param *params;
    int32_t status;
    int32_t kernel_rc;
    int32_t failed_param;
} csvi_program;

/* Runs up to n_steps steps, writing each loss; returns the number of completed
 * steps.  A step that fails leaves every parameter and optimizer state as the
 * previous step left them, and sets status. */
int64_t csvi_program_run(csvi_program *p, int64_t n_steps, double *losses);

#endif
