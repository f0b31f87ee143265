/* Optimizer updates over flat double buffers, with torch.optim's (and Pyro's
 * ClippedAdam's) semantics.  One configuration per parameter, one state buffer
 * per parameter, no allocation: a compiled SVI loop can call csvi_optim_step
 * for every parameter after every backward sweep, exactly as the Python face
 * does.
 *
 * Plain C99, no Python headers. */
#ifndef CSVI_OPTIM_H
#define CSVI_OPTIM_H

#include <stdint.h>

typedef enum {
    CSVI_OPTIM_SGD = 0,
    CSVI_OPTIM_ADAM = 1,
    CSVI_OPTIM_CLIPPED_ADAM = 2,
    CSVI_OPTIM_RMSPROP = 3,
    CSVI_OPTIM_ADAGRAD = 4,
    CSVI_OPTIM_KIND_COUNT = 5
} csvi_optim_kind;

/* Bits of csvi_optim_config.flags. */
enum {
    CSVI_OPTIM_NESTEROV = 1,  /* SGD */
    CSVI_OPTIM_CENTERED = 2,  /* RMSprop */
    CSVI_OPTIM_AMSGRAD = 4,   /* Adam */
    CSVI_OPTIM_MAXIMIZE = 8,  /* SGD, Adam, RMSprop, Adagrad: ascend instead */
    /* Adam: float32 moments and update arithmetic, as torch's Adam on a
     * float32 param (csvi_optim_state_float32); the param's float64 array
     * holds float32 values. */
    CSVI_OPTIM_MOMENTS32 = 16
};

/* Status codes (0 is success). */
enum {
    CSVI_OPTIM_OK = 0,
    CSVI_OPTIM_ERR_KIND = 1,  /* kind is not a csvi_optim_kind */
    CSVI_OPTIM_ERR_STEP = 2   /* step < 1 */
};

/* Hyperparameters of one parameter's optimizer.  Fields an algorithm does not
 * use are ignored.  `lr` is state, not only configuration: ClippedAdam
 * multiplies it by `lrd` at the start of every step (as Pyro does), and
 * learning-rate schedulers overwrite it between steps. */
typedef struct {
    int32_t kind;                     /* csvi_optim_kind */
    int32_t flags;                    /* CSVI_OPTIM_* bits */
    double lr;
    double weight_decay;              /* L2 penalty: g += weight_decay * param */
    double eps;
    double beta1, beta2;              /* Adam, ClippedAdam */
    double momentum, dampening;       /* SGD; RMSprop uses momentum */
    double alpha;                     /* RMSprop smoothing constant */
    double lr_decay;                  /* Adagrad */
    double initial_accumulator_value; /* Adagrad */
    double clip_norm;                 /* ClippedAdam: clamp each grad to [-clip_norm, clip_norm] */
    double lrd;                       /* ClippedAdam: lr *= lrd every step */
    /* Pyro's clip_args, applied to the raw gradient before any algorithm:
     * scale it by min(1, max_grad_norm / (||g||_2 + 1e-6)), then clamp each
     * element to [-max_grad_value, max_grad_value].  INFINITY disables each. */
    double max_grad_norm;
    double max_grad_value;
} csvi_optim_config;

/* A config with torch's defaults for `kind` (Pyro's for ClippedAdam) and both
 * clip_args disabled. */
csvi_optim_config csvi_optim_defaults(int32_t kind);

/* How many state vectors of length n the algorithm keeps, in this order:
 *   SGD:          momentum_buffer (only when momentum != 0)
 *   Adam:         exp_avg, exp_avg_sq, max_exp_avg_sq (only with AMSGRAD)
 *   ClippedAdam:  exp_avg, exp_avg_sq
 *   RMSprop:      square_avg, momentum_buffer (momentum > 0), grad_avg (CENTERED)
 *   Adagrad:      sum
 * Returns -1 for an unknown kind. */
int csvi_optim_state_count(const csvi_optim_config *c);

/* Whether the state vectors are float32 (Adam with CSVI_OPTIM_MOMENTS32: the
 * gradient is rounded to float32 and exp_avg, exp_avg_sq, max_exp_avg_sq, the
 * denominator, the step and the param's new value, (float)param - step, are
 * float32 arithmetic, the value stored widened) rather than float64. */
int csvi_optim_state_float32(const csvi_optim_config *c);

/* Fills a fresh state buffer (state_count * n doubles, or floats when
 * csvi_optim_state_float32; vector k at element k*n). */
void csvi_optim_init_state(const csvi_optim_config *c, void *state, int64_t n);

/* One update of param (n doubles) in place from grad, advancing state (laid
 * out as csvi_optim_init_state's).  `step` is this update's 1-based count for
 * this parameter (bias corrections, SGD's first momentum step, Adagrad's lr
 * decay).  grad is not modified. */
int csvi_optim_step(csvi_optim_config *c, double *param, const double *grad,
                    void *state, int64_t n, int64_t step);

/* Whether csvi_optim_step_grad32 takes this config: Adam (amsgrad or not)
 * on the raw gradient (no clip_args, weight decay or maximize). */
int csvi_optim_reads_grad32(const csvi_optim_config *c);
/* csvi_optim_step from a float32 gradient (a compiled step's dense weight
 * gradient, left as its float32 product: program.c), with the bits
 * csvi_optim_step gives on that gradient widened; with `mirror` (or NULL)
 * also writes (float)param there in the same pass (the dense record's
 * float32 copy of W).  CSVI_OPTIM_ERR_KIND unless csvi_optim_reads_grad32,
 * or for float32 state (csvi_optim_step_master32 takes those). */
int csvi_optim_step_grad32(csvi_optim_config *c, double *param, const float *grad,
                           void *state, int64_t n, int64_t step, float *mirror);
/* csvi_optim_step_grad32 of a CSVI_OPTIM_MOMENTS32 Adam whose param's
 * float32 value lives in `value` alone (n floats, updated in place; a
 * compiled run's dense weight copy, widened into the param when the run
 * returns: program.c): the same bits, without reading or writing the
 * float64 array.  CSVI_OPTIM_ERR_KIND unless csvi_optim_reads_grad32 and
 * csvi_optim_state_float32. */
int csvi_optim_step_master32(csvi_optim_config *c, float *value, const float *grad,
                             void *state, int64_t n, int64_t step);

/* Whether csvi_optim_step_tril gives csvi_optim_step's bits for a param of
 * n / (d * d) stacked d x d matrices whose gradient is zero on and above
 * the diagonal (optim.c): Adam on the raw gradient with eps > 0 and float64
 * state, +0 on and above the diagonal. */
int csvi_optim_tril_exact(const csvi_optim_config *c, const double *state, int64_t n,
                          int64_t d);
/* csvi_optim_step for such a param, updating only below the diagonal; the
 * caller has checked csvi_optim_tril_exact. */
int csvi_optim_step_tril(csvi_optim_config *c, double *param, const double *grad,
                         double *state, int64_t n, int64_t step, int64_t d);

/* The per-algorithm updates csvi_optim_step dispatches to; `scale` is the
 * clip_args norm factor (1 when disabled). */
void csvi_sgd_update(const csvi_optim_config *c, double *param, const double *grad,
                     double *state, int64_t n, int64_t step, double scale);
void csvi_adam_update(const csvi_optim_config *c, double *param, const double *grad,
                      double *state, int64_t n, int64_t step, double scale);
void csvi_clipped_adam_update(const csvi_optim_config *c, double *param, const double *grad,
                              double *state, int64_t n, int64_t step, double scale);
void csvi_rmsprop_update(const csvi_optim_config *c, double *param, const double *grad,
                         double *state, int64_t n, int64_t step, double scale);
void csvi_adagrad_update(const csvi_optim_config *c, double *param, const double *grad,
                         double *state, int64_t n, int64_t step, double scale);

#endif
