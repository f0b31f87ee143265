/* Optimizer updates (see csvi_optim.h).  Each algorithm follows the update
 * equations published in torch.optim's documentation (Pyro wraps torch.optim)
 * and Pyro's ClippedAdam, with the same order of operations. */
#include <math.h>
#include <stddef.h>
#include "csvi_optim.h"
#include "csvi_parallel.h"
#include "csvi_vmath.h"

csvi_optim_config csvi_optim_defaults(int32_t kind) {
    csvi_optim_config c;
    c.kind = kind;
    c.flags = 0;
    c.lr = 1e-3;
    c.weight_decay = 0.0;
    c.eps = 1e-8;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.momentum = 0.0;
    c.dampening = 0.0;
    c.alpha = 0.99;
    c.lr_decay = 0.0;
    c.initial_accumulator_value = 0.0;
    c.clip_norm = 10.0;
    c.lrd = 1.0;
    c.max_grad_norm = INFINITY;
    c.max_grad_value = INFINITY;
    if (kind == CSVI_OPTIM_RMSPROP) c.lr = 1e-2;
    if (kind == CSVI_OPTIM_ADAGRAD) {
        c.lr = 1e-2;
        c.eps = 1e-10;
    }
    return c;
}

int csvi_optim_state_count(const csvi_optim_config *c) {
    switch (c->kind) {
    case CSVI_OPTIM_SGD:
        return c->momentum != 0.0 ? 1 : 0;
    case CSVI_OPTIM_ADAM:
        return (c->flags & CSVI_OPTIM_AMSGRAD) ? 3 : 2;
    case CSVI_OPTIM_CLIPPED_ADAM:
        return 2;
    case CSVI_OPTIM_RMSPROP:
        return 1 + (c->momentum > 0.0) + ((c->flags & CSVI_OPTIM_CENTERED) != 0);
    case CSVI_OPTIM_ADAGRAD:
        return 1;
    default:
        return -1;
    }
}

int csvi_optim_state_float32(const csvi_optim_config *c) {
    return c->kind == CSVI_OPTIM_ADAM && (c->flags & CSVI_OPTIM_MOMENTS32) != 0;
}

void csvi_optim_init_state(const csvi_optim_config *c, void *state, int64_t n) {
    const int k = csvi_optim_state_count(c);
    const int64_t len = (int64_t)(k > 0 ? k : 0) * n;
    if (csvi_optim_state_float32(c)) {  /* Adam's moments start at zero */
        float *s = state;
        for (int64_t i = 0; i < len; i++) s[i] = 0.0f;
        return;
    }
    double *s = state;
    const double fill = c->kind == CSVI_OPTIM_ADAGRAD ? c->initial_accumulator_value : 0.0;
    for (int64_t i = 0; i < len; i++) s[i] = fill;
}

/* The raw gradient element as every algorithm sees it: Pyro's clip_args
 * (norm scale, value clamp), then torch's `maximize` sign flip. */
static inline double pre_grad(const csvi_optim_config *c, double g, double scale) {
    g *= scale;
    if (g > c->max_grad_value) g = c->max_grad_value;
    else if (g < -c->max_grad_value) g = -c->max_grad_value;
    return (c->flags & CSVI_OPTIM_MAXIMIZE) ? -g : g;
}

void csvi_sgd_update(const csvi_optim_config *c, double *param, const double *grad,
                     double *state, int64_t n, int64_t step, double scale) {
    const double lr = c->lr, wd = c->weight_decay, mu = c->momentum;
    const double damp = 1.0 - c->dampening;
    const int nesterov = (c->flags & CSVI_OPTIM_NESTEROV) != 0;
    double *buf = state;
    for (int64_t i = 0; i < n; i++) {
        double d = pre_grad(c, grad[i], scale);
        if (wd != 0.0) d += wd * param[i];
        if (mu != 0.0) {
            /* The first step starts the buffer at the gradient, undamped. */
            buf[i] = step == 1 ? d : mu * buf[i] + damp * d;
            d = nesterov ? d + mu * buf[i] : buf[i];
        }
        param[i] -= lr * d;
    }
}

/* 1 - beta^step, Adam's bias correction.  Once beta^step is below 2^-54 the
 * difference rounds to exactly 1, so pow is skipped there: glibc's pow takes
 * a slow path for every result that underflows (after ~7,000 steps at
 * beta = 0.9), which made it the costliest call of a small compiled step. */
static double bias_correction(double beta, int64_t step) {
    if (beta > 0.0 && beta < 1.0 && (double)step * log(beta) < -40.0) return 1.0;
    return 1.0 - pow(beta, (double)step);
}

/* Elements per block of the gradient as an algorithm sees it (effective_grad):
 * a stack buffer, so the update loops below stay free of per-element branches. */
#define OPTIM_BLOCK 512

/* Whether the gradient reaches the update as it is: no clip_args, no
 * maximize, no weight decay. */
static int grad_is_raw(const csvi_optim_config *c, double scale) {
    return scale == 1.0 && c->max_grad_value == INFINITY && c->weight_decay == 0.0 &&
           !(c->flags & CSVI_OPTIM_MAXIMIZE);
}

/* out[i] = pre_grad(grad[i]) + weight_decay * param[i], the same arithmetic as
 * the per-element form (with scale 1 and no clamp pre_grad is exact). */
static void effective_grad(const csvi_optim_config *c, const double *param, const double *grad,
                           double *out, int64_t n, double scale) {
    const double wd = c->weight_decay;
    for (int64_t i = 0; i < n; i++) {
        double g = pre_grad(c, grad[i], scale);
        if (wd != 0.0) g += wd * param[i];
        out[i] = g;
    }
}

/* Adam's update of n elements from the effective gradient g: branch-free and
 * on restrict pointers, so it runs in vector registers (sqrt and division
 * included); vmax is read only with amsgrad. */
static CSVI_HOT void adam_block(double *restrict param, const double *restrict g,
                                double *restrict m, double *restrict v, double *restrict vmax,
                                int64_t n, double b1, double b2, double step_size,
                                double bc2_sqrt, double eps, int amsgrad) {
    if (amsgrad) {
        for (int64_t i = 0; i < n; i++) {
            m[i] += (1.0 - b1) * (g[i] - m[i]);
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            vmax[i] = v[i] > vmax[i] ? v[i] : vmax[i];
            param[i] -= step_size * m[i] / (sqrt(vmax[i]) / bc2_sqrt + eps);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            m[i] += (1.0 - b1) * (g[i] - m[i]);
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            param[i] -= step_size * m[i] / (sqrt(v[i]) / bc2_sqrt + eps);
        }
    }
}

/* Adam on the raw gradient, in blocks over csvi's threads: a network's
 * weights are ~10^5-10^6 elements read and written three times a step, bound
 * by memory, and each element's update is independent (any split, the same
 * bits). */
typedef struct {
    double *param, *m, *v, *vmax;
    const double *grad;
    double b1, b2, step_size, bc2_sqrt, eps;
    int amsgrad;
} adam_job;

static void adam_range(void *ctx, int64_t lo, int64_t hi) {
    const adam_job *j = ctx;
    adam_block(j->param + lo, j->grad + lo, j->m + lo, j->v + lo,
               j->amsgrad ? j->vmax + lo : NULL, hi - lo, j->b1, j->b2, j->step_size,
               j->bc2_sqrt, j->eps, j->amsgrad);
}

void csvi_adam_update(const csvi_optim_config *c, double *param, const double *grad,
                      double *state, int64_t n, int64_t step, double scale) {
    const double b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    const double bc1 = bias_correction(b1, step);
    const double bc2_sqrt = sqrt(bias_correction(b2, step));
    const double step_size = c->lr / bc1;
    const int amsgrad = (c->flags & CSVI_OPTIM_AMSGRAD) != 0;
    double *m = state, *v = state + n, *vmax = amsgrad ? state + 2 * n : NULL;
    if (grad_is_raw(c, scale)) {
        adam_job j = {.param = param, .m = m, .v = v, .vmax = vmax, .grad = grad, .b1 = b1,
                      .b2 = b2, .step_size = step_size, .bc2_sqrt = bc2_sqrt, .eps = eps,
                      .amsgrad = amsgrad};
        csvi_parallel_range(n, CSVI_PAR_DIVIDE, adam_range, &j);
        return;
    }
    double g[OPTIM_BLOCK];
    for (int64_t i0 = 0; i0 < n; i0 += OPTIM_BLOCK) {
        const int64_t len = n - i0 < OPTIM_BLOCK ? n - i0 : OPTIM_BLOCK;
        effective_grad(c, param + i0, grad + i0, g, len, scale);
        adam_block(param + i0, g, m + i0, v + i0, amsgrad ? vmax + i0 : NULL, len, b1, b2,
                   step_size, bc2_sqrt, eps, amsgrad);
    }
}

int csvi_optim_reads_grad32(const csvi_optim_config *c) {
    return c->kind == CSVI_OPTIM_ADAM && !(c->max_grad_norm < INFINITY) && grad_is_raw(c, 1.0);
}

/* Adam from a float32 gradient: each block widened (0.0 + g, the bits of an
 * add into a cleared float64 buffer) into a stack block, then adam_block. */
typedef struct {
    double *param, *m, *v, *vmax;
    const float *grad;
    float *mirror;
    double b1, b2, step_size, bc2_sqrt, eps;
    int amsgrad;
} adam32_job;

static CSVI_HOT void adam32_range(void *ctx, int64_t lo, int64_t hi) {
    const adam32_job *j = ctx;
    double g[CSVI_BLOCK];
    for (int64_t i0 = lo; i0 < hi; i0 += CSVI_BLOCK) {
        const int64_t len = hi - i0 < CSVI_BLOCK ? hi - i0 : CSVI_BLOCK;
        const float *restrict g32 = j->grad + i0;
        CSVI_SIMD
        for (int64_t i = 0; i < len; i++) g[i] = 0.0 + (double)g32[i];
        adam_block(j->param + i0, g, j->m + i0, j->v + i0, j->amsgrad ? j->vmax + i0 : NULL, len,
                   j->b1, j->b2, j->step_size, j->bc2_sqrt, j->eps, j->amsgrad);
        if (j->mirror) {  /* while the block is in cache */
            const double *restrict p = j->param + i0;
            float *restrict out = j->mirror + i0;
            CSVI_SIMD
            for (int64_t i = 0; i < len; i++) out[i] = (float)p[i];
        }
    }
}

/* Adam in float32 (CSVI_OPTIM_MOMENTS32): torch's Adam on a float32 param, in
 * its order of operations.  The param holds a float32 value in its float64
 * array: each update is (float)param - step in float32, stored widened (a
 * param loaded with more precision is rounded by its first update), so a
 * compiled run may keep the value in the dense record's float32 copy alone
 * and widen it into the param when the run returns (csvi_optim_step_master32).
 * Float32 lanes halve the cost of the square roots and divisions, which bound
 * the float64 update as much as its memory traffic does, and the moments'
 * traffic (a compiled run's update reads and writes 28 bytes an element,
 * where float64 Adam with a float32 copy of the param moved 56). */
typedef struct {
    float w1, b2, w2, step_size, bc2_sqrt, eps;
} adam32_consts;

static adam32_consts adam32_setup(const csvi_optim_config *c, int64_t step) {
    adam32_consts k = {.w1 = (float)(1.0 - c->beta1), .b2 = (float)c->beta2,
                       .w2 = (float)(1.0 - c->beta2),
                       .step_size = (float)(c->lr / bias_correction(c->beta1, step)),
                       .bc2_sqrt = (float)sqrt(bias_correction(c->beta2, step)),
                       .eps = (float)c->eps};
    return k;
}

/* Element i's moments from g[i], then its step s, in float32; vmax is read
 * only with amsgrad. */
#define ADAM32_MOMENTS(i)                    \
    m[i] += k.w1 * (g[i] - m[i]);            \
    v[i] = k.b2 * v[i] + k.w2 * g[i] * g[i];
#define ADAM32_STEP(i, moment) (k.step_size * m[i] / (sqrtf(moment) / k.bc2_sqrt + k.eps))

/* n elements from the float32 gradient g into the float32 values the
 * params hold: in param, widened, or, when param is NULL, in value (a
 * compiled run's copy, csvi_optim_step_master32). */
static CSVI_HOT void adam_block_f32(double *restrict param, float *restrict value,
                                    const float *restrict g, float *restrict m,
                                    float *restrict v, float *restrict vmax, int64_t n,
                                    adam32_consts k, int amsgrad) {
    if (amsgrad) {
        for (int64_t i = 0; i < n; i++) {
            ADAM32_MOMENTS(i)
            vmax[i] = v[i] > vmax[i] ? v[i] : vmax[i];
            const float s = ADAM32_STEP(i, vmax[i]);
            if (param)
                param[i] = (double)((float)param[i] - s);
            else
                value[i] -= s;
        }
    } else if (param) {
        for (int64_t i = 0; i < n; i++) {
            ADAM32_MOMENTS(i)
            param[i] = (double)((float)param[i] - ADAM32_STEP(i, v[i]));
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            ADAM32_MOMENTS(i)
            value[i] -= ADAM32_STEP(i, v[i]);
        }
    }
}

/* One job for both gradients: g32 (a compiled step's float32 product), or
 * g64 with the config and clip scale (rounded per block after clip_args and
 * weight decay, as effective_grad). */
typedef struct {
    const csvi_optim_config *c;
    double *param;
    float *m, *v, *vmax, *value;
    const float *g32;
    const double *g64;
    double scale;
    adam32_consts k;
    int amsgrad;
} adam_f32_job;

static void adam_f32_range(void *ctx, int64_t lo, int64_t hi) {
    const adam_f32_job *j = ctx;
    double e[CSVI_BLOCK];
    float g[CSVI_BLOCK];
    for (int64_t i0 = lo; i0 < hi; i0 += CSVI_BLOCK) {
        const int64_t len = hi - i0 < CSVI_BLOCK ? hi - i0 : CSVI_BLOCK;
        const float *gb = j->g32 ? j->g32 + i0 : g;
        if (!j->g32) {
            effective_grad(j->c, j->param + i0, j->g64 + i0, e, len, j->scale);
            for (int64_t i = 0; i < len; i++) g[i] = (float)e[i];
        }
        adam_block_f32(j->param ? j->param + i0 : NULL, j->value ? j->value + i0 : NULL, gb,
                       j->m + i0, j->v + i0, j->amsgrad ? j->vmax + i0 : NULL, len, j->k,
                       j->amsgrad);
    }
}

/* Into param (from g64, after clip_args and weight decay) or into value
 * (from the raw g32). */
static void adam_f32_update(const csvi_optim_config *c, double *param, float *value,
                            const float *g32, const double *g64, float *state, int64_t n,
                            int64_t step, double scale) {
    const int amsgrad = (c->flags & CSVI_OPTIM_AMSGRAD) != 0;
    adam_f32_job j = {.c = c, .param = param, .m = state, .v = state + n,
                      .vmax = amsgrad ? state + 2 * n : NULL, .value = value, .g32 = g32,
                      .g64 = g64, .scale = scale, .k = adam32_setup(c, step),
                      .amsgrad = amsgrad};
    csvi_parallel_range(n, CSVI_PAR_DIVIDE, adam_f32_range, &j);
}

int csvi_optim_step_master32(csvi_optim_config *c, float *value, const float *grad,
                             void *state, int64_t n, int64_t step) {
    if (step < 1) return CSVI_OPTIM_ERR_STEP;
    if (!csvi_optim_reads_grad32(c) || !csvi_optim_state_float32(c)) return CSVI_OPTIM_ERR_KIND;
    adam_f32_update(c, NULL, value, grad, NULL, state, n, step, 1.0);
    return CSVI_OPTIM_OK;
}

int csvi_optim_step_grad32(csvi_optim_config *c, double *param, const float *grad,
                           void *state, int64_t n, int64_t step, float *mirror) {
    if (step < 1) return CSVI_OPTIM_ERR_STEP;
    if (!csvi_optim_reads_grad32(c) || csvi_optim_state_float32(c)) return CSVI_OPTIM_ERR_KIND;
    double *s = state;
    const double bc2_sqrt = sqrt(bias_correction(c->beta2, step));
    const int amsgrad = (c->flags & CSVI_OPTIM_AMSGRAD) != 0;
    adam32_job j = {.param = param, .m = s, .v = s + n,
                    .vmax = amsgrad ? s + 2 * n : NULL, .grad = grad, .mirror = mirror,
                    .b1 = c->beta1, .b2 = c->beta2,
                    .step_size = c->lr / bias_correction(c->beta1, step),
                    .bc2_sqrt = bc2_sqrt, .eps = c->eps, .amsgrad = amsgrad};
    csvi_parallel_range(n, CSVI_PAR_DIVIDE, adam32_range, &j);
    return CSVI_OPTIM_OK;
}

/* Pyro's ClippedAdam: clamp each gradient element, then Adam with eps added to
 * sqrt(v) before the bias correction is folded into the step size. */
void csvi_clipped_adam_update(const csvi_optim_config *c, double *param, const double *grad,
                              double *state, int64_t n, int64_t step, double scale) {
    const double b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay, eps = c->eps;
    const double clip = c->clip_norm;
    const double bc1 = bias_correction(b1, step);
    const double bc2 = bias_correction(b2, step);
    const double step_size = c->lr * sqrt(bc2) / bc1;
    double *m = state, *v = state + n;
    for (int64_t i = 0; i < n; i++) {
        double g = pre_grad(c, grad[i], scale);
        if (g > clip) g = clip;
        else if (g < -clip) g = -clip;
        if (wd != 0.0) g += wd * param[i];
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        param[i] -= step_size * m[i] / (sqrt(v[i]) + eps);
    }
}

void csvi_rmsprop_update(const csvi_optim_config *c, double *param, const double *grad,
                         double *state, int64_t n, int64_t step, double scale) {
    (void)step;
    const double lr = c->lr, wd = c->weight_decay, eps = c->eps, a = c->alpha;
    const double mu = c->momentum;
    const int centered = (c->flags & CSVI_OPTIM_CENTERED) != 0;
    double *sq = state;
    double *buf = mu > 0.0 ? state + n : NULL;
    double *gavg = centered ? state + (mu > 0.0 ? 2 : 1) * n : NULL;
    for (int64_t i = 0; i < n; i++) {
        double g = pre_grad(c, grad[i], scale);
        if (wd != 0.0) g += wd * param[i];
        sq[i] = a * sq[i] + (1.0 - a) * g * g;
        double var = sq[i];
        if (centered) {
            gavg[i] += (1.0 - a) * (g - gavg[i]);
            var -= gavg[i] * gavg[i];
        }
        const double avg = sqrt(var) + eps;
        if (buf) {
            buf[i] = mu * buf[i] + g / avg;
            param[i] -= lr * buf[i];
        } else {
            param[i] -= lr * g / avg;
        }
    }
}

void csvi_adagrad_update(const csvi_optim_config *c, double *param, const double *grad,
                         double *state, int64_t n, int64_t step, double scale) {
    const double wd = c->weight_decay, eps = c->eps;
    const double clr = c->lr / (1.0 + (double)(step - 1) * c->lr_decay);
    double *sum = state;
    for (int64_t i = 0; i < n; i++) {
        double g = pre_grad(c, grad[i], scale);
        if (wd != 0.0) g += wd * param[i];
        sum[i] += g * g;
        param[i] -= clr * g / (sqrt(sum[i]) + eps);
    }
}

/* clip_grad_norm_'s factor for one parameter: min(1, max / (||g|| + 1e-6)). */
static double norm_scale(const double *grad, int64_t n, double max_norm) {
    if (!(max_norm < INFINITY)) return 1.0;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += grad[i] * grad[i];
    const double coef = max_norm / (sqrt(ss) + 1e-6);
    return coef < 1.0 ? coef : 1.0;
}

int csvi_optim_step(csvi_optim_config *c, double *param, const double *grad,
                    void *state, int64_t n, int64_t step) {
    if (step < 1) return CSVI_OPTIM_ERR_STEP;
    const double scale = norm_scale(grad, n, c->max_grad_norm);
    switch (c->kind) {
    case CSVI_OPTIM_SGD:
        csvi_sgd_update(c, param, grad, state, n, step, scale);
        return CSVI_OPTIM_OK;
    case CSVI_OPTIM_ADAM:
        if (csvi_optim_state_float32(c))
            adam_f32_update(c, param, NULL, NULL, grad, state, n, step, scale);
        else
            csvi_adam_update(c, param, grad, state, n, step, scale);
        return CSVI_OPTIM_OK;
    case CSVI_OPTIM_CLIPPED_ADAM:
        c->lr *= c->lrd;  /* Pyro decays before the update it is used in */
        csvi_clipped_adam_update(c, param, grad, state, n, step, scale);
        return CSVI_OPTIM_OK;
    case CSVI_OPTIM_RMSPROP:
        csvi_rmsprop_update(c, param, grad, state, n, step, scale);
        return CSVI_OPTIM_OK;
    case CSVI_OPTIM_ADAGRAD:
        csvi_adagrad_update(c, param, grad, state, n, step, scale);
        return CSVI_OPTIM_OK;
    default:
        return CSVI_OPTIM_ERR_KIND;
    }
}

/* A unit lower Cholesky factor's unconstrained param (UNIT_TRIL, e.g.
 * AutoMultivariateNormal's scale_tril: 100 x 100, of which the 4,950
 * elements below the diagonal train) gets no gradient on or above the
 * diagonal.  There Adam with zero moments moves nothing -- m and v stay +0
 * and the step is +0 / (0 + eps) = +0 when eps > 0 -- so an update of the
 * strictly lower triangles alone gives csvi_optim_step's bits, at half the
 * memory traffic. */
int csvi_optim_tril_exact(const csvi_optim_config *c, const double *state, int64_t n,
                          int64_t d) {
    if (c->kind != CSVI_OPTIM_ADAM || csvi_optim_state_float32(c) || c->max_grad_norm < INFINITY
        || !grad_is_raw(c, 1.0) || !(c->eps > 0.0) || d < 1 || n % (d * d))
        return 0;
    const int vectors = csvi_optim_state_count(c);
    for (int k = 0; k < vectors; k++)
        for (int64_t b = k * n; b < (k + 1) * n; b += d * d)
            for (int64_t i = 0; i < d; i++)
                for (int64_t j = i; j < d; j++) {
                    const double s = state[b + i * d + j];
                    if (s != 0.0 || signbit(s)) return 0;  /* +0 only: -0 would turn +0 */
                }
    return 1;
}

int csvi_optim_step_tril(csvi_optim_config *c, double *param, const double *grad,
                         double *state, int64_t n, int64_t step, int64_t d) {
    if (step < 1) return CSVI_OPTIM_ERR_STEP;
    const double b1 = c->beta1, b2 = c->beta2;
    const double bc2_sqrt = sqrt(bias_correction(b2, step));
    const double step_size = c->lr / bias_correction(b1, step);
    const int amsgrad = (c->flags & CSVI_OPTIM_AMSGRAD) != 0;
    double *m = state, *v = state + n, *vmax = amsgrad ? state + 2 * n : NULL;
    for (int64_t b = 0; b < n; b += d * d)
        for (int64_t i = 1; i < d; i++) {
            const int64_t o = b + i * d;  /* row i's i elements left of the diagonal */
            adam_block(param + o, grad + o, m + o, v + o, amsgrad ? vmax + o : NULL, i, b1, b2,
                       step_size, bc2_sqrt, c->eps, amsgrad);
        }
    return CSVI_OPTIM_OK;
}
