/* Stick-breaking, the bijection from R^(K-1) to the K-simplex used by
 * biject_to(simplex), in torch/Pyro's convention:
 *
 *   z_i = sigmoid(x_i - log(K-1-i)),   i = 0 .. K-2
 *   y_i = z_i * prod_{j<i} (1 - z_j),  y_{K-1} = prod_{j<K-1} (1 - z_j)
 *
 * The shift by log(K-1-i) maps x = 0 to the simplex's centre.  As in torch,
 * z is clamped to [DBL_MIN, 1 - DBL_EPSILON] so every y_i stays representable
 * and the inverse stays finite; where the clamp is active the map is flat.
 *
 * Each op is a cumulative product along the last axis, one row at a time; the
 * VJP runs the product backwards using only x, y and the output gradient. */
#include <float.h>
#include <math.h>
#include "csvi_opcodes.h"

/* z = sigmoid(s) and 1 - z, each without cancellation. */
static inline void sigmoid_pair(double s, double *z, double *omz) {
    const double e = exp(-fabs(s));
    const double big = 1.0 / (1.0 + e), small = e / (1.0 + e);
    *z = s >= 0 ? big : small;
    *omz = s >= 0 ? small : big;
}

/* sigmoid_pair with z clamped to [DBL_MIN, 1 - DBL_EPSILON]; returns 1 where
 * the clamp is active. */
static inline int clamped_sigmoid(double s, double *z, double *omz) {
    sigmoid_pair(s, z, omz);
    if (*z > 1.0 - DBL_EPSILON) {
        *z = 1.0 - DBL_EPSILON;
        *omz = DBL_EPSILON;
        return 1;
    }
    if (*z < DBL_MIN) {
        *z = DBL_MIN;
        *omz = 1.0;
        return 1;
    }
    return 0;
}

/* log(1 + e^s), stable at both ends. */
static inline double softplus(double s) {
    if (s > 36.0) return s + exp(-s);
    if (s < -36.0) return exp(s);
    return log1p(exp(s));
}

static int rows_of(const csvi_slot *x, const csvi_slot *y, int64_t m, int64_t *rows) {
    if (m < 0 || x->ndim < 1 || x->shape[x->ndim - 1] != m) return CSVI_ERR_SHAPE;
    *rows = y->size / (m + 1);
    if (*rows * (m + 1) != y->size || *rows * m != x->size) return CSVI_ERR_SHAPE;
    return CSVI_OK;
}

int csvi_stick_breaking_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *xs = CSVI_IN(t, op, 0);
    csvi_slot *ys = CSVI_OUT(t, op);
    const int64_t m = op->iattr[0];
    int64_t rows;
    int rc = rows_of(xs, ys, m, &rows);
    if (rc) return rc;
    for (int64_t r = 0; r < rows; r++) {
        const double *x = xs->data + r * m;
        double *y = ys->data + r * (m + 1);
        double rest = 1.0;  /* the stick left: prod_{j<i} (1 - z_j) */
        for (int64_t i = 0; i < m; i++) {
            double z, omz;
            clamped_sigmoid(x[i] - log((double)(m - i)), &z, &omz);
            y[i] = z * rest;
            rest *= omz;
        }
        y[m] = rest;
    }
    return CSVI_OK;
}

/* With R_i the stick left before piece i (y_i = z_i R_i, R_{i+1} = R_i (1-z_i)):
 * dL/dx_i = y_i (1 - z_i) (gy_i - gR_{i+1}) and gR_i = gy_i z_i + gR_{i+1} (1 - z_i). */
int csvi_stick_breaking_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *xs = CSVI_IN(t, op, 0);
    const csvi_slot *ys = CSVI_OUT(t, op);
    double *gx_all = xs->grad;
    const int64_t m = op->iattr[0];
    int64_t rows;
    if (!gx_all) return CSVI_OK;
    int rc = rows_of(xs, ys, m, &rows);
    if (rc) return rc;
    for (int64_t r = 0; r < rows; r++) {
        const double *x = xs->data + r * m;
        const double *y = ys->data + r * (m + 1), *gy = ys->grad + r * (m + 1);
        double *gx = gx_all + r * m;
        double g_rest = gy[m];
        for (int64_t i = m - 1; i >= 0; i--) {
            double z, omz;
            const int flat = clamped_sigmoid(x[i] - log((double)(m - i)), &z, &omz);
            if (!flat) gx[i] += y[i] * omz * (gy[i] - g_rest);
            g_rest = gy[i] * z + g_rest * omz;
        }
    }
    return CSVI_OK;
}

/* log|det J| = sum_i [log y_i + log(1 - z_i)] = sum_i [log z_i + (K-1-i) log(1 - z_i)],
 * evaluated from x with log-sigmoids (no clamp: the smooth map's value). */
int csvi_stick_breaking_ldj_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *xs = CSVI_IN(t, op, 0);
    csvi_slot *out = CSVI_OUT(t, op);
    const int64_t m = op->iattr[0];
    if (m < 0 || xs->ndim < 1 || xs->shape[xs->ndim - 1] != m || out->size * m != xs->size)
        return CSVI_ERR_SHAPE;
    for (int64_t r = 0; r < out->size; r++) {
        const double *x = xs->data + r * m;
        double acc = 0.0;
        for (int64_t i = 0; i < m; i++) {
            const double s = x[i] - log((double)(m - i));
            acc -= softplus(-s) + (double)(m - i) * softplus(s);
        }
        out->data[r] = acc;
    }
    return CSVI_OK;
}

int csvi_stick_breaking_ldj_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *xs = CSVI_IN(t, op, 0);
    const csvi_slot *out = CSVI_OUT(t, op);
    double *gx = xs->grad;
    const int64_t m = op->iattr[0];
    if (!gx) return CSVI_OK;
    if (m < 0 || xs->ndim < 1 || xs->shape[xs->ndim - 1] != m || out->size * m != xs->size)
        return CSVI_ERR_SHAPE;
    for (int64_t r = 0; r < out->size; r++) {
        const double *x = xs->data + r * m;
        const double g = out->grad[r];
        for (int64_t i = 0; i < m; i++) {
            double z, omz;
            sigmoid_pair(x[i] - log((double)(m - i)), &z, &omz);
            gx[r * m + i] += g * (omz - (double)(m - i) * z);
        }
    }
    return CSVI_OK;
}

/* ---- UNIT_TRIL: the map onto unit lower-triangular matrices ---------------
 * y = tril(x, -1) + I over a stack of D x D matrices, one pass each way: the
 * where(mask, x, 0) + eye it replaces made two matrices and swept four times
 * (AutoMultivariateNormal's scale_tril at every step).  The VJP adds the
 * strict lower triangle of the output's gradient; nothing above or on the
 * diagonal depends on x. */
static int unit_tril_stack(const csvi_slot *x, const csvi_slot *y, int64_t d, int64_t *count) {
    if (d < 0 || x->ndim < 2 || x->shape[x->ndim - 1] != d || x->shape[x->ndim - 2] != d ||
        y->size != x->size)
        return CSVI_ERR_SHAPE;
    *count = d ? x->size / (d * d) : 0;
    return CSVI_OK;
}

int csvi_unit_tril_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *xs = CSVI_IN(t, op, 0);
    csvi_slot *ys = CSVI_OUT(t, op);
    const int64_t d = op->iattr[0];
    int64_t count;
    const int rc = unit_tril_stack(xs, ys, d, &count);
    if (rc) return rc;
    for (int64_t b = 0; b < count; b++) {
        const double *x = xs->data + b * d * d;
        double *y = ys->data + b * d * d;
        for (int64_t i = 0; i < d; i++) {
            const double *xi = x + i * d;
            double *yi = y + i * d;
            for (int64_t j = 0; j < i; j++) yi[j] = xi[j];
            yi[i] = 1.0;
            for (int64_t j = i + 1; j < d; j++) yi[j] = 0.0;
        }
    }
    return CSVI_OK;
}

int csvi_unit_tril_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *xs = CSVI_IN(t, op, 0), *ys = CSVI_OUT(t, op);
    double *gx = xs->grad;
    const int64_t d = op->iattr[0];
    int64_t count;
    if (!gx) return CSVI_OK;
    const int rc = unit_tril_stack(xs, ys, d, &count);
    if (rc) return rc;
    for (int64_t b = 0; b < count; b++) {
        const double *gy = ys->grad + b * d * d;
        double *g = gx + b * d * d;
        for (int64_t i = 1; i < d; i++)
            for (int64_t j = 0; j < i; j++) g[i * d + j] += gy[i * d + j];
    }
    return CSVI_OK;
}
