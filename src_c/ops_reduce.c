/* Reductions over a set of axes: iattr[0] is a bitmask of reduced input axes.
 * The output is walked as the input shape with size-1 (stride-0) reduced dims,
 * whether or not the output slot keeps those dims.  Also the scans along one
 * axis (cumulative sum and product; iattr[0] is the axis). */
#include <math.h>
#include "csvi_iter.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_sum.h"
#include "csvi_vmath.h"

/* Operand 0: output seen with reduced dims of size 1; operand 1: input. */
static void reduce_iter(csvi_iter *it, const csvi_slot *x, int64_t mask) {
    int64_t kept[CSVI_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) kept[d] = (mask >> d) & 1 ? 1 : x->shape[d];
    csvi_iter_start(it, x->ndim, x->shape);
    csvi_iter_add(it, x->ndim, kept);
    csvi_iter_add(it, x->ndim, x->shape);
    csvi_iter_finish(it);
}

/* gx[i] += v for every i: the VJP of a total. */
typedef struct {
    double *gx;
    double v;
} add_job;

static void add_block(void *ctx, int64_t lo, int64_t hi) {
    const add_job *j = ctx;
    double *gx = j->gx;
    const double v = j->v;
    for (int64_t i = lo; i < hi; i++) gx[i] += v;
}

static void add_to_all(double *gx, double v, int64_t n) {
    add_job j = {gx, v};
    csvi_parallel_range(n, CSVI_PAR_CHEAP, add_block, &j);
}

/* SUM's VJP when rows of a matrix reduce to a vector (a per-image
 * log-density summed over its pixels): each row gets scale * g[r], the loop
 * form's value, in vector loops over csvi's pool in row chunks fixed by the
 * sizes (each element written once: any split, the same bits); from
 * SUM_ROWS_PARALLEL elements, so a small step waits for no worker. */
#define SUM_ROWS_PARALLEL 65536

typedef struct {
    double *gx;
    const double *g;
    double scale;
    int64_t m, n, rows_per_task;
} sum_rows_job;

static CSVI_HOT void sum_rows_vjp(void *ctx, int64_t task) {
    const sum_rows_job *j = ctx;
    const int64_t r0 = task * j->rows_per_task;
    const int64_t r1 = r0 + j->rows_per_task < j->n ? r0 + j->rows_per_task : j->n;
    for (int64_t r = r0; r < r1; r++) {
        const double v = j->scale * j->g[r];
        double *restrict row = j->gx + r * j->m;
        CSVI_SIMD
        for (int64_t c = 0; c < j->m; c++) row[c] += v;
    }
}

/* SUM: y = dattr[0] * sum(x over axes) (dattr[0] = 1/count gives the mean). */
int csvi_sum_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    const double scale = op->dattr[0];
    csvi_iter it;
    reduce_iter(&it, x, op->iattr[0]);
    double *yd = y->data;
    const double *xd = x->data;
    if (y->size == 1) {
        /* everything reduces to one number */
        yd[0] = csvi_sum_array(xd, x->size);
    } else if (it.ndim == 2 && it.stride[0][1] == 0 && it.stride[1][1] == 1 &&
               it.stride[0][0] == 1 && it.stride[1][0] == it.shape[1]) {
        /* rows of a matrix reduce to a vector */
        for (int64_t r = 0; r < it.shape[0]; r++) yd[r] = csvi_sum_run(xd + r * it.shape[1], it.shape[1]);
    } else {
        for (int64_t i = 0; i < y->size; i++) yd[i] = 0.0;
        CSVI_ITER_LOOP(&it, { yd[o0] += xd[o1]; });
    }
    if (scale != 1.0)
        for (int64_t i = 0; i < y->size; i++) yd[i] *= scale;
    return CSVI_OK;
}

int csvi_sum_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    double *gx = x->grad;
    const double *g = CSVI_OUT(t, op)->grad;
    const double scale = op->dattr[0];
    if (!gx) return CSVI_OK;
    if (CSVI_OUT(t, op)->size == 1) {
        add_to_all(gx, scale * g[0], x->size);
        return CSVI_OK;
    }
    csvi_iter it;
    reduce_iter(&it, x, op->iattr[0]);
    if (it.ndim == 2 && it.stride[0][1] == 0 && it.stride[1][1] == 1 && it.stride[0][0] == 1 &&
        it.stride[1][0] == it.shape[1]) {  /* rows of a matrix: each row's number spread */
        sum_rows_job j = {.gx = gx, .g = g, .scale = scale, .m = it.shape[1], .n = it.shape[0]};
        j.rows_per_task = it.shape[1] < CSVI_BLOCK ? CSVI_BLOCK / it.shape[1] : 1;
        csvi_parallel_tasks((j.n + j.rows_per_task - 1) / j.rows_per_task,
                            CSVI_OVER(x->size, SUM_ROWS_PARALLEL), 0, sum_rows_vjp, &j);
        return CSVI_OK;
    }
    CSVI_ITER_LOOP(&it, { gx[o1] += scale * g[o0]; });
    return CSVI_OK;
}

/* LOGSUMEXP over leading dims (a variable summed out of a factor whose
 * other dims stay): every row of the input meets a row of the output, so
 * the rows run as vector loops (libmvec's exp) in the same order as the
 * element loop would. */
/* e^d, but 0 below -708, where e^d is at most a denormal: libmvec's vector
 * exp leaves such lanes to the scalar exp (a factor's states that the data
 * rule out sit thousands of nats down, so most lanes would), and their sum
 * with anything of the order of 1 is that thing. */
static inline double exp_or_zero(double d) {
    return csvi_kept_if(!(d < -708.0), exp(d < -708.0 ? -708.0 : d));
}

static CSVI_HOT void lse_row_max(double *restrict m, const double *restrict x, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) m[i] = x[i] > m[i] ? x[i] : m[i];
}

static CSVI_HOT void lse_row_exp(double *restrict y, double *restrict e,
                                 const double *restrict m, const double *restrict x, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        const double mv = isfinite(m[i]) ? m[i] : 0.0;
        e[i] = exp_or_zero(x[i] - mv);
        y[i] += e[i];
    }
}

static CSVI_HOT void lse_row_exp_in_place(double *restrict y, const double *restrict m,
                                          double *restrict x, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) {
        const double mv = isfinite(m[i]) ? m[i] : 0.0;
        const double e = exp_or_zero(x[i] - mv);
        x[i] = e;
        y[i] += e;
    }
}

static CSVI_HOT void lse_row_vjp(double *restrict gx, const double *restrict g,
                                 const double *restrict y, const double *restrict e,
                                 const double *restrict r, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++)
        gx[i] += csvi_kept_if(isfinite(y[i]), g[i] * (e[i] * r[i]));
}

/* The log-sum-exp of x's rows (it: reduce_iter over x) into y (ny outputs),
 * each term's e = exp(x - max) into e -- x itself, written in place, when
 * e == x -- and per output the running maximum into r, replaced at the end
 * by 1/sum e: the VJP's softmax weights exp(x - y) are e / sum e, so the
 * reverse sweep takes no second exp. */
static void lse_reduce(const csvi_iter *it, const double *x, double *e, double *y,
                       double *r, int64_t ny) {
    for (int64_t i = 0; i < ny; i++) {
        r[i] = -INFINITY;
        y[i] = 0.0;
    }
    if (csvi_iter_unit_rows(it, 2)) {
        CSVI_ITER_ROWS(it, lse_row_max(r + o0, x + o1, row));
        if (e == x)
            CSVI_ITER_ROWS(it, lse_row_exp_in_place(y + o0, r + o0, e + o1, row));
        else
            CSVI_ITER_ROWS(it, lse_row_exp(y + o0, e + o1, r + o0, x + o1, row));
    } else {
        CSVI_ITER_LOOP(it, { if (x[o1] > r[o0]) r[o0] = x[o1]; });
        CSVI_ITER_LOOP(it, {
            const double mv = isfinite(r[o0]) ? r[o0] : 0.0;
            const double v = exp(x[o1] - mv);
            e[o1] = v;
            y[o0] += v;
        });
    }
    for (int64_t i = 0; i < ny; i++) {
        const int finite = isfinite(r[i]);
        const double total = y[i];
        y[i] = finite ? r[i] + log(total) : r[i];
        r[i] = finite ? 1.0 / total : 0.0;
    }
}

/* LOGSUMEXP: the aux slot keeps each term's exp (the input's layout), then
 * per output the maximum and then 1/sum (lse_reduce). */
int csvi_logsumexp_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    double *e = CSVI_AUX(t, op)->data;
    csvi_iter it;
    reduce_iter(&it, x, op->iattr[0]);
    lse_reduce(&it, x->data, e, y->data, e + x->size, y->size);
    return CSVI_OK;
}

int csvi_logsumexp_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    double *gx = x->grad;
    const double *g = CSVI_OUT(t, op)->grad, *yd = CSVI_OUT(t, op)->data;
    const double *e = CSVI_AUX(t, op)->data, *r = e + x->size;
    if (!gx) return CSVI_OK;
    csvi_iter it;
    reduce_iter(&it, x, op->iattr[0]);
    if (csvi_iter_unit_rows(&it, 2))
        CSVI_ITER_ROWS(&it, lse_row_vjp(gx + o1, g + o0, yd + o0, e + o1, r + o0, row));
    else
        CSVI_ITER_LOOP(&it, {
            if (isfinite(yd[o0])) gx[o1] += g[o0] * (e[o1] * r[o0]);
        });
    return CSVI_OK;
}

/* SUM_LOGSUMEXP (a, b[, c]): logsumexp over the axes iattr[0] (a bitmask of
 * the joint's axes) of the broadcast sum (a + b) + c -- a variable summed
 * out of the product of the factors that hold it.  The joint lives only in
 * the aux slot: summed there, turned into its terms' exps in place, and in
 * the VJP into g times the softmax weights, which each factor's gradient
 * then sums over the dims it is broadcast along.  After the joint, the aux
 * keeps LOGSUMEXP's per-output part (the running maximum, then 1/sum). */
/* The joint: the factors' broadcast shape, its values in the aux slot. */
static void joint_of(const csvi_tape *t, const csvi_op *op, csvi_slot *joint) {
    int nd = 0;
    for (int k = 0; k < op->n_in; k++)
        if (CSVI_IN(t, op, k)->ndim > nd) nd = CSVI_IN(t, op, k)->ndim;
    for (int d = 0; d < nd; d++) joint->shape[d] = 1;
    for (int k = 0; k < op->n_in; k++) {
        const csvi_slot *x = CSVI_IN(t, op, k);
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] != 1) joint->shape[nd - x->ndim + d] = x->shape[d];
    }
    joint->ndim = nd;
    joint->size = 1;
    for (int d = 0; d < nd; d++) joint->size *= joint->shape[d];
    joint->data = CSVI_AUX(t, op)->data;
}

/* The iteration over the joint (operand 0) and the factors. */
static void joint_iter(csvi_iter *it, const csvi_tape *t, const csvi_op *op,
                       const csvi_slot *joint) {
    csvi_iter_start(it, joint->ndim, joint->shape);
    csvi_iter_add(it, joint->ndim, joint->shape);
    for (int k = 0; k < op->n_in; k++)
        csvi_iter_add(it, CSVI_IN(t, op, k)->ndim, CSVI_IN(t, op, k)->shape);
    csvi_iter_finish(it);
}

/* s (+)= x over one row, x walking it (sx = 1) or one number (sx = 0). */
static CSVI_HOT void joint_row(double *restrict s, const double *restrict x, int64_t sx,
                               int64_t n, int first) {
    if (first && sx)
        for (int64_t i = 0; i < n; i++) s[i] = x[i];
    else if (first)
        for (int64_t i = 0; i < n; i++) s[i] = x[0];
    else if (sx)
        for (int64_t i = 0; i < n; i++) s[i] += x[i];
    else
        for (int64_t i = 0; i < n; i++) s[i] += x[0];
}

static int unit_or_zero_rows(const csvi_iter *it) {
    if (it->ndim < 1 || it->stride[0][it->ndim - 1] != 1) return 0;
    for (int k = 1; k < it->n; k++)
        if (it->stride[k][it->ndim - 1] > 1) return 0;
    return 1;
}

static CSVI_HOT void lse_row_weights(double *restrict e, const double *restrict g,
                                     const double *restrict y, const double *restrict r,
                                     int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) e[i] = csvi_kept_if(isfinite(y[i]), g[i] * (e[i] * r[i]));
}

/* gx[0] += the row's p, summed in a register in the element loop's order. */
static void grad_row_one(double *restrict gx, const double *restrict p, int64_t n) {
    double acc = gx[0];
    for (int64_t i = 0; i < n; i++) acc += p[i];
    gx[0] = acc;
}

static CSVI_HOT void grad_row(double *restrict gx, const double *restrict p, int64_t n) {
    CSVI_SIMD
    for (int64_t i = 0; i < n; i++) gx[i] += p[i];
}

int csvi_sum_logsumexp_fwd(csvi_tape *t, const csvi_op *op) {
    csvi_slot joint;
    joint_of(t, op, &joint);
    double *s = joint.data, *yd = CSVI_OUT(t, op)->data, *m = s + joint.size;
    const int64_t ny = CSVI_OUT(t, op)->size;
    const double *a = CSVI_IN(t, op, 0)->data, *b = CSVI_IN(t, op, 1)->data;
    const double *c = op->n_in > 2 ? CSVI_IN(t, op, 2)->data : NULL;
    csvi_iter it;
    joint_iter(&it, t, op, &joint);
    if (unit_or_zero_rows(&it)) {
        const int last = it.ndim - 1;
        CSVI_ITER_ROWS(&it, {
            joint_row(s + o0, a + o1, it.stride[1][last], row, 1);
            joint_row(s + o0, b + o2, it.stride[2][last], row, 0);
            if (c) joint_row(s + o0, c + o3, it.stride[3][last], row, 0);
        });
    } else if (c) {
        CSVI_ITER_LOOP(&it, { s[o0] = (a[o1] + b[o2]) + c[o3]; });
    } else {
        CSVI_ITER_LOOP(&it, { s[o0] = a[o1] + b[o2]; });
    }
    reduce_iter(&it, &joint, op->iattr[0]);
    lse_reduce(&it, s, s, yd, m, ny);
    return CSVI_OK;
}

/* Runs once per forward: it overwrites the aux's exps with the weights. */
int csvi_sum_logsumexp_vjp(csvi_tape *t, const csvi_op *op) {
    int want = 0;
    for (int k = 0; k < op->n_in; k++) want |= CSVI_IN(t, op, k)->grad != NULL;
    if (!want) return CSVI_OK;
    csvi_slot joint;
    joint_of(t, op, &joint);
    double *p = joint.data;
    const double *r = p + joint.size, *g = CSVI_OUT(t, op)->grad, *yd = CSVI_OUT(t, op)->data;
    csvi_iter it;
    reduce_iter(&it, &joint, op->iattr[0]);
    if (csvi_iter_unit_rows(&it, 2))
        CSVI_ITER_ROWS(&it, lse_row_weights(p + o1, g + o0, yd + o0, r + o0, row));
    else
        CSVI_ITER_LOOP(&it, {
            p[o1] = isfinite(yd[o0]) ? g[o0] * (p[o1] * r[o0]) : 0.0;
        });
    for (int k = 0; k < op->n_in; k++) {
        const csvi_slot *x = CSVI_IN(t, op, k);
        double *gx = x->grad;
        if (!gx) continue;
        if (x->size == joint.size) {
            grad_row(gx, p, joint.size);
            continue;
        }
        csvi_iter_start(&it, joint.ndim, joint.shape);
        csvi_iter_add(&it, joint.ndim, joint.shape);
        csvi_iter_add(&it, x->ndim, x->shape);
        csvi_iter_finish(&it);
        if (unit_or_zero_rows(&it) && it.stride[1][it.ndim - 1])
            CSVI_ITER_ROWS(&it, grad_row(gx + o1, p + o0, row));
        else if (unit_or_zero_rows(&it))
            CSVI_ITER_ROWS(&it, grad_row_one(gx + o1, p + o0, row));
        else
            CSVI_ITER_LOOP(&it, { gx[o1] += p[o0]; });
    }
    return CSVI_OK;
}

/* SUM_N: y (a scalar) = the sum of every element of every input; one op
 * totals an ELBO's per-site log-densities instead of a chain of sums and adds. */
int csvi_sum_n_fwd(csvi_tape *t, const csvi_op *op) {
    double total = 0.0;
    for (int k = 0; k < op->n_in; k++) {
        const csvi_slot *x = CSVI_IN(t, op, k);
        total += csvi_sum_array(x->data, x->size);
    }
    CSVI_OUT(t, op)->data[0] = total;
    return CSVI_OK;
}

int csvi_sum_n_vjp(csvi_tape *t, const csvi_op *op) {
    const double g = CSVI_OUT(t, op)->grad[0];
    for (int k = 0; k < op->n_in; k++) {
        const csvi_slot *x = CSVI_IN(t, op, k);
        if (x->grad) add_to_all(x->grad, g, x->size);
    }
    return CSVI_OK;
}

/* MAX and MIN over axes; the aux slot (output's shape) counts the elements
 * equal to the extreme.  NaN propagates, as in numpy.max.  The VJP splits g
 * evenly among tied elements (torch.amax's subgradient): any convex
 * combination of the ties is a subgradient, and the even split is the one
 * that does not depend on the order of the elements. */
static int extreme_fwd(csvi_tape *t, const csvi_op *op, int is_max) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    double *yd = y->data, *cnt = CSVI_AUX(t, op)->data;
    const double *xd = x->data;
    csvi_iter it;
    reduce_iter(&it, x, op->iattr[0]);
    for (int64_t i = 0; i < y->size; i++) {
        yd[i] = is_max ? -INFINITY : INFINITY;
        cnt[i] = 0.0;
    }
    /* once NaN, a slot stays NaN: every comparison with it is false */
    if (is_max)
        CSVI_ITER_LOOP(&it, { if (!isnan(yd[o0]) && !(xd[o1] <= yd[o0])) yd[o0] = xd[o1]; });
    else
        CSVI_ITER_LOOP(&it, { if (!isnan(yd[o0]) && !(xd[o1] >= yd[o0])) yd[o0] = xd[o1]; });
    CSVI_ITER_LOOP(&it, { cnt[o0] += xd[o1] == yd[o0]; });
    return CSVI_OK;
}

static int extreme_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    double *gx = x->grad;
    const double *g = CSVI_OUT(t, op)->grad, *yd = CSVI_OUT(t, op)->data;
    const double *xd = x->data, *cnt = CSVI_AUX(t, op)->data;
    if (!gx) return CSVI_OK;
    csvi_iter it;
    reduce_iter(&it, x, op->iattr[0]);
    /* x == y implies cnt >= 1 */
    CSVI_ITER_LOOP(&it, { if (xd[o1] == yd[o0]) gx[o1] += g[o0] / cnt[o0]; });
    return CSVI_OK;
}

int csvi_max_fwd(csvi_tape *t, const csvi_op *op) { return extreme_fwd(t, op, 1); }
int csvi_max_vjp(csvi_tape *t, const csvi_op *op) { return extreme_vjp(t, op); }
int csvi_min_fwd(csvi_tape *t, const csvi_op *op) { return extreme_fwd(t, op, 0); }
int csvi_min_vjp(csvi_tape *t, const csvi_op *op) { return extreme_vjp(t, op); }

/* Scans along axis iattr[0] (CUMSUM, CUMPROD): the shape seen as
 * (outer, n, inner), element (o, j, i) at (o * n + j) * inner + i. */
static void scan_geometry(const csvi_slot *x, int64_t axis, int64_t *outer, int64_t *n,
                          int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->shape[d];
    for (int d = (int)axis + 1; d < x->ndim; d++) *inner *= x->shape[d];
    *n = x->shape[axis];
}

/* y[j] = y[j-1] (+ or *) x[j], added in order as numpy.cumsum does; the
 * inner loop runs over contiguous i. */
static int scan_fwd(csvi_tape *t, const csvi_op *op, int product) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    double *y = CSVI_OUT(t, op)->data;
    int64_t outer, n, inner;
    scan_geometry(x, op->iattr[0], &outer, &n, &inner);
    if (n == 0 || inner == 0) return CSVI_OK;
    for (int64_t o = 0; o < outer; o++) {
        const double *xs = x->data + o * n * inner;
        double *ys = y + o * n * inner;
        for (int64_t i = 0; i < inner; i++) ys[i] = xs[i];
        for (int64_t j = 1; j < n; j++) {
            const double *prev = ys + (j - 1) * inner, *xj = xs + j * inner;
            double *yj = ys + j * inner;
            if (product)
                for (int64_t i = 0; i < inner; i++) yj[i] = prev[i] * xj[i];
            else
                for (int64_t i = 0; i < inner; i++) yj[i] = prev[i] + xj[i];
        }
    }
    return CSVI_OK;
}

int csvi_cumsum_fwd(csvi_tape *t, const csvi_op *op) { return scan_fwd(t, op, 0); }
int csvi_cumprod_fwd(csvi_tape *t, const csvi_op *op) { return scan_fwd(t, op, 1); }

/* gx[j] += sum over k >= j of g[k]: a reverse running sum per (o, i). */
int csvi_cumsum_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    const double *g = CSVI_OUT(t, op)->grad;
    double *gx = x->grad;
    if (!gx) return CSVI_OK;
    int64_t outer, n, inner;
    scan_geometry(x, op->iattr[0], &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i;
            double acc = 0.0;
            for (int64_t j = n - 1; j >= 0; j--) {
                acc += g[base + j * inner];
                gx[base + j * inner] += acc;
            }
        }
    return CSVI_OK;
}

/* d y[k] / d x[j] = prod of x[m] for m <= k, m != j (k >= j), so
 *   gx[j] = y[j-1] * S[j],  S[j] = g[j] + x[j+1] * S[j+1]  (y[-1] = 1),
 * a reverse recurrence with no division: exact with zeros and signs. */
int csvi_cumprod_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *x = CSVI_IN(t, op, 0);
    const double *g = CSVI_OUT(t, op)->grad, *y = CSVI_OUT(t, op)->data, *xd = x->data;
    double *gx = x->grad;
    if (!gx) return CSVI_OK;
    int64_t outer, n, inner;
    scan_geometry(x, op->iattr[0], &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i;
            double s = 0.0;
            for (int64_t j = n - 1; j >= 0; j--) {
                const int64_t k = base + j * inner;
                s = (j < n - 1 ? xd[k + inner] * s : 0.0) + g[k];
                gx[k] += (j > 0 ? y[k - inner] : 1.0) * s;
            }
        }
    return CSVI_OK;
}
