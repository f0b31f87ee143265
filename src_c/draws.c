/* Draw ops for composed families: standard noise that a reparameterized
 * sampler transforms with differentiable ops, and NumPy's C samplers for the
 * families whose draws have no reparameterization (binomial, von Mises,
 * multinomial).  Recorded like any op, so a compiled program redraws them
 * every step from the tape's bit generator; none has a gradient.
 *
 * The Python side validates parameters; a value outside a sampler's domain
 * (which could make NumPy's rejection loops spin) is still refused here with
 * CSVI_ERR_VALUE rather than sampled. */
#include "csvi_dist.h"
#include "csvi_normal_fill.h"

enum { NOISE_NORMAL = 0, NOISE_UNIFORM = 1, NOISE_EXPONENTIAL = 2, NOISE_CAUCHY = 3 };

/* Uniform on the open interval (0, 1): inverse CDFs stay finite at both ends. */
static double open_uniform(bitgen_t *rng) {
    double u;
    do {
        u = random_standard_uniform(rng);
    } while (u == 0.0);
    return u;
}

/* iattr[0]: which standard noise; no inputs, the output shape is the draw's. */
int csvi_draw_noise_fwd(csvi_tape *t, const csvi_op *op) {
    double *y = CSVI_OUT(t, op)->data;
    const int64_t n = CSVI_OUT(t, op)->size;
    bitgen_t *rng = t->rng;
    switch (op->iattr[0]) {
    case NOISE_NORMAL:
        csvi_fill_standard_normal(rng, y, n);
        return CSVI_OK;
    case NOISE_UNIFORM:
        for (int64_t i = 0; i < n; i++) y[i] = open_uniform(rng);
        return CSVI_OK;
    case NOISE_EXPONENTIAL:
        for (int64_t i = 0; i < n; i++) y[i] = random_standard_exponential(rng);
        return CSVI_OK;
    case NOISE_CAUCHY:
        for (int64_t i = 0; i < n; i++) y[i] = random_standard_cauchy(rng);
        return CSVI_OK;
    default:
        return CSVI_ERR_VALUE;
    }
}

/* inputs (total_count, probs), broadcast to the output. */
int csvi_draw_binomial_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *n = CSVI_IN(t, op, 0)->data, *p = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    csvi_binomial_t state = {0};
    int bad = 0;
    CSVI_ITER_LOOP(&it, {
        const double nv = n[o1], pv = p[o2];
        if (!(nv >= 0.0 && nv < 9.2e18 && nv == floor(nv) && pv >= 0.0 && pv <= 1.0)) {
            bad = 1;
            y[o0] = NAN;
        } else {
            y[o0] = (double)random_binomial(t->rng, pv, (int64_t)nv, &state);
        }
    });
    return bad ? CSVI_ERR_VALUE : CSVI_OK;
}

/* inputs (loc, concentration), broadcast to the output; values in [-pi, pi]. */
int csvi_draw_vonmises_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_iter it;
    if (csvi_dist_iter(&it, t, op)) return CSVI_ERR_SHAPE;
    const double *mu = CSVI_IN(t, op, 0)->data, *kappa = CSVI_IN(t, op, 1)->data;
    double *y = CSVI_OUT(t, op)->data;
    int bad = 0;
    CSVI_ITER_LOOP(&it, {
        const double m = mu[o1], k = kappa[o2];
        if (!(k >= 0.0 && k < INFINITY && isfinite(m))) {
            bad = 1;
            y[o0] = NAN;
        } else {
            y[o0] = random_vonmises(t->rng, m, k);
        }
    });
    return bad ? CSVI_ERR_VALUE : CSVI_OK;
}

/* inputs (total_count of shape R, probs of shape R x K), both contiguous
 * (the caller expands them to the draw's batch shape); output R x K.  Each
 * row is K - 1 conditional binomials: category k takes Binomial(remaining,
 * p_k / (mass of categories k..K-1)), the last one 1.  Probs need not sum
 * to 1. */
int csvi_draw_multinomial_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *ns = CSVI_IN(t, op, 0), *ps = CSVI_IN(t, op, 1);
    csvi_slot *out = CSVI_OUT(t, op);
    if (out->ndim < 1 || ps->size != out->size) return CSVI_ERR_SHAPE;
    const int64_t K = out->shape[out->ndim - 1];
    const int64_t rows = K ? out->size / K : 0;
    if (ns->size != rows) return CSVI_ERR_SHAPE;
    csvi_binomial_t state = {0};
    for (int64_t r = 0; r < rows; r++) {
        const double *p = ps->data + r * K;
        double *y = out->data + r * K;
        const double nv = ns->data[r];
        if (!(nv >= 0.0 && nv < 9.2e18 && nv == floor(nv))) return CSVI_ERR_VALUE;
        /* y[k] holds the mass of categories k..K-1 until category k is drawn */
        double mass = 0.0;
        for (int64_t k = K - 1; k >= 0; k--) {
            if (!(p[k] >= 0.0 && p[k] < INFINITY)) return CSVI_ERR_VALUE;
            mass += p[k];
            y[k] = mass;
        }
        if (!(mass > 0.0 && mass < INFINITY)) return CSVI_ERR_VALUE;
        int64_t remaining = (int64_t)nv;
        for (int64_t k = 0; k < K; k++) {
            double q = y[k] > 0.0 ? p[k] / y[k] : 0.0;
            if (q > 1.0) q = 1.0;
            const int64_t c = remaining ? random_binomial(t->rng, q, remaining, &state) : 0;
            y[k] = (double)c;
            remaining -= c;
        }
    }
    return CSVI_OK;
}
