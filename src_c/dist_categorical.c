/* Categorical over {0, ..., K-1} with probs (iattr[0] = 0) or logits
 * (iattr[0] = 1) of shape batch + (K,).  As in Pyro, probs are normalized
 * along the last dim and logits by their logsumexp:
 *   probs:  log p(v) = log p_v - log sum_k p_k
 *   logits: log p(v) = l_v - logsumexp_k l_k
 * Values are float64 category indices.  Inputs: LP (value, param), RS (param).
 * The parameter is walked one row (K contiguous numbers) per output element:
 * its batch dims broadcast against the output like any other operand. */
#include "csvi_dist.h"

/* Iteration over the output; operand 1 is the value (LP only), the last
 * operand gives the offset of the parameter row. */
static void cat_iter(csvi_iter *it, const csvi_slot *out, const csvi_slot *value,
                     const csvi_slot *par) {
    const int64_t K = par->shape[par->ndim - 1];
    const int nb = par->ndim - 1;
    int64_t rows[CSVI_MAX_DIMS];
    int64_t step = K;
    for (int d = out->ndim - 1, e = nb - 1; d >= 0; d--, e--) {
        if (e < 0 || par->shape[e] == 1) {
            rows[d] = 0;
        } else {
            rows[d] = step;
            step *= par->shape[e];
        }
    }
    csvi_iter_start(it, out->ndim, out->shape);
    csvi_iter_add(it, out->ndim, out->shape);
    if (value) csvi_iter_add(it, value->ndim, value->shape);
    csvi_iter_add_strided(it, rows);
    csvi_iter_finish(it);
}

/* The row's category for value v, or -1 when v is not an index in [0, K). */
static inline int64_t cat_index(double v, int64_t K) {
    if (!(v >= 0.0 && v < (double)K) || floor(v) != v) return -1;
    return (int64_t)v;
}

/* log of the row's normalizer: log sum p (probs) or logsumexp l (logits). */
static inline double row_lognorm(const double *r, int64_t K, int logits) {
    if (!logits) {
        double s = 0.0;
        for (int64_t k = 0; k < K; k++) s += r[k];
        return log(s);
    }
    double m = -INFINITY;
    for (int64_t k = 0; k < K; k++)
        if (r[k] > m) m = r[k];
    if (!isfinite(m)) return m;
    double s = 0.0;
    for (int64_t k = 0; k < K; k++) s += exp(r[k] - m);
    return m + log(s);
}

/* A kernel call works out every parameter row's normalizer once, before its
 * loop, when there are at most this many rows and fewer rows than output
 * elements: an HMM's transition row is read once per next state. */
#define CAT_NORM_ROWS 256

/* Fills lz[r] with row r's normalizer and returns 1, or returns 0 (the loop
 * then computes each row's as it reads it; the numbers are the same). */
static int row_lognorms(const csvi_slot *par, const csvi_slot *out, int64_t K, int logits,
                        double *lz) {
    const int64_t rows = par->size / K;
    if (rows > CAT_NORM_ROWS || rows >= out->size) return 0;
    for (int64_t r = 0; r < rows; r++) lz[r] = row_lognorm(par->data + r * K, K, logits);
    return 1;
}

/* With the normalizers worked out once and at most this many parameters,
 * a probs kernel takes the log of every parameter in one vector loop before
 * its element loop reads them (an HMM's transition matrix, read once per
 * next state: libmvec's log instead of one scalar log per element). */
#define CAT_LOG_TABLE 1024

static CSVI_HOT void log_table(double *restrict out, const double *restrict p, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) out[i] = log(p[i]);
}

static int par_check(const csvi_slot *par) {
    return par->ndim >= 1 && par->shape[par->ndim - 1] >= 1 ? CSVI_OK : CSVI_ERR_SHAPE;
}

int csvi_categorical_lp_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *par = CSVI_IN(t, op, 1);
    csvi_slot *out = CSVI_OUT(t, op);
    if (par_check(par)) return CSVI_ERR_SHAPE;
    const int64_t K = par->shape[par->ndim - 1];
    const int logits = op->iattr[0] != 0;
    csvi_iter it;
    cat_iter(&it, out, x, par);
    const double *xd = x->data, *pd = par->data;
    double *y = out->data;
    double lz_rows[CAT_NORM_ROWS], logp[CAT_LOG_TABLE];
    const int once = row_lognorms(par, out, K, logits, lz_rows);
    const int tabled = once && !logits && par->size <= CAT_LOG_TABLE && par->size <= out->size;
    if (tabled) log_table(logp, pd, par->size);
    int rc = CSVI_OK;
    CSVI_ITER_LOOP(&it, {
        const double *r = pd + o2;
        const int64_t v = cat_index(xd[o1], K);
        if (v < 0) {
            rc = CSVI_ERR_INDEX;
            y[o0] = -INFINITY;
        } else {
            const double lz = once ? lz_rows[o2 / K] : row_lognorm(r, K, logits);
            y[o0] = (logits ? r[v] : tabled ? logp[o2 + v] : log(r[v])) - lz;
        }
    });
    return rc;
}

/* logits: d/dl_k = 1[k = v] - softmax_k;  probs: d/dp_k = 1[k = v]/p_v - 1/sum p.
 * The value (an index) gets no gradient.  With the normalizers worked out
 * once, the terms every k of a row shares are summed per row first and
 * spread over the row once after the loop. */
int csvi_categorical_lp_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0), *par = CSVI_IN(t, op, 1);
    const csvi_slot *out = CSVI_OUT(t, op);
    double *gp = par->grad;
    if (!gp) return CSVI_OK;
    const int64_t K = par->shape[par->ndim - 1];
    const int logits = op->iattr[0] != 0;
    csvi_iter it;
    cat_iter(&it, out, x, par);
    const double *xd = x->data, *pd = par->data, *g = out->grad;
    double lz_rows[CAT_NORM_ROWS], g_rows[CAT_NORM_ROWS];  /* g_rows: each row's sum of g */
    const int once = row_lognorms(par, out, K, logits, lz_rows);
    const int64_t rows = par->size / K;
    for (int64_t r = 0; once && r < rows; r++) g_rows[r] = 0.0;
    int rc = CSVI_OK;
    CSVI_ITER_LOOP(&it, {
        const double gv = g[o0];
        const int64_t v = cat_index(xd[o1], K);
        if (v < 0) {
            rc = CSVI_ERR_INDEX;
        } else if (gv != 0.0) {
            const double *r = pd + o2;
            double *gr = gp + o2;
            if (once) {
                g_rows[o2 / K] += gv;
                gr[v] += logits ? gv : gv / r[v];
            } else {
                const double lz = row_lognorm(r, K, logits);
                if (logits) {
                    if (isfinite(lz))
                        for (int64_t k = 0; k < K; k++) gr[k] -= gv * exp(r[k] - lz);
                    gr[v] += gv;
                } else {
                    const double inv = exp(-lz);
                    for (int64_t k = 0; k < K; k++) gr[k] -= gv * inv;
                    gr[v] += gv / r[v];
                }
            }
        }
    });
    for (int64_t r = 0; once && r < rows; r++) {
        const double gs = g_rows[r], lz = lz_rows[r], *pr = pd + r * K;
        double *gr = gp + r * K;
        if (gs == 0.0 || (logits && !isfinite(lz))) continue;
        if (logits) {
            for (int64_t k = 0; k < K; k++) gr[k] -= gs * exp(pr[k] - lz);
        } else {
            const double inv = exp(-lz);  /* 1 / sum p */
            for (int64_t k = 0; k < K; k++) gr[k] -= gs * inv;
        }
    }
    return rc;
}

/* Inverse CDF on the unnormalized row: the first k whose running sum exceeds
 * U * total; rounding can leave none, then the last category with mass. */
int csvi_categorical_rs_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *par = CSVI_IN(t, op, 0);
    csvi_slot *out = CSVI_OUT(t, op);
    if (par_check(par)) return CSVI_ERR_SHAPE;
    const int64_t K = par->shape[par->ndim - 1];
    const int logits = op->iattr[0] != 0;
    csvi_iter it;
    cat_iter(&it, out, NULL, par);
    const double *pd = par->data;
    double *y = out->data;
    /* with no value operand the row offset is the iterator's operand 1 */
    CSVI_ITER_LOOP(&it, {
        const double *r = pd + o1;
        const double m = logits ? row_lognorm(r, K, 1) : 0.0;
        double total = 0.0;
        for (int64_t k = 0; k < K; k++) total += logits ? exp(r[k] - m) : r[k];
        const double u = random_standard_uniform(t->rng) * total;
        double run = 0.0;
        int64_t pick = -1, last = 0;
        for (int64_t k = 0; k < K; k++) {
            const double w = logits ? exp(r[k] - m) : r[k];
            if (w > 0.0) last = k;
            run += w;
            if (run > u && w > 0.0) {
                pick = k;
                break;
            }
        }
        y[o0] = (double)(pick >= 0 ? pick : last);
    });
    return CSVI_OK;
}
