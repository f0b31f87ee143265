/* Dense linear algebra over the last two dims, with leading batch dims:
 * CHOLESKY, SOLVE_TRIANGULAR, CHOLESKY_SOLVE (LAPACK/BLAS from SciPy, through
 * csvi_ext), and TRI_LOGDET, TRIL, DIAGONAL, DIAG_EMBED (plain loops).
 *
 * Matrices are row-major; BLAS is column-major, where a row-major matrix
 * reads as its transpose.  So a row-major left solve T X = B is the
 * column-major right solve X^T T^T = B^T, with T's triangle flipped (see
 * trsm_rm).  VJPs follow the standard identities: for X = op(T)^-1 B,
 * dB = op(T)^-T G and dT = -dB X^T (restricted to T's triangle); for the
 * Cholesky factor, Murray (2016), as torch computes it, giving the symmetric
 * gradient.  Workspaces are allocated once per call, never per matrix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "csvi_ext.h"
#include "csvi_iter.h"
#include "csvi_opcodes.h"

static int ld(int64_t x) { return x > 0 ? (int)x : 1; }

/* B (rows x cols) := op(T)^-1 B (left, T rows x rows) or B op(T)^-1 (right,
 * T cols x cols); op(T) = T or T^T. */
static void trsm_rm(int left, int lower, int trans, int unit, int64_t rows, int64_t cols,
                    const double *T, double *B) {
    if (rows == 0 || cols == 0) return;
    char side = left ? 'R' : 'L', uplo = lower ? 'U' : 'L', tr = trans ? 'T' : 'N',
         dg = unit ? 'U' : 'N';
    int m = (int)cols, n = (int)rows, lt = ld(left ? rows : cols), lb = ld(cols);
    double one = 1.0;
    csvi_ext.dtrsm(&side, &uplo, &tr, &dg, &m, &n, &one, (double *)T, &lt, B, &lb);
}

/* B (rows x cols) := alpha op(T) B (left) or alpha B op(T) (right). */
static void trmm_rm(int left, int lower, int trans, int64_t rows, int64_t cols, double alpha,
                    const double *T, double *B) {
    if (rows == 0 || cols == 0) return;
    char side = left ? 'R' : 'L', uplo = lower ? 'U' : 'L', tr = trans ? 'T' : 'N', dg = 'N';
    int m = (int)cols, n = (int)rows, lt = ld(left ? rows : cols), lb = ld(cols);
    csvi_ext.dtrmm(&side, &uplo, &tr, &dg, &m, &n, &alpha, (double *)T, &lt, B, &lb);
}

/* C (n x m) := alpha op(A) op(B), op(A) n x k, op(B) k x m, all row-major. */
static void gemm_rm(int ta, int tb, int64_t n, int64_t m, int64_t k, double alpha,
                    const double *A, const double *B, double *C) {
    if (n == 0 || m == 0) return;
    if (k == 0) {
        memset(C, 0, (size_t)(n * m) * sizeof(double));
        return;
    }
    char a = ta ? 'T' : 'N', b = tb ? 'T' : 'N';
    int nn = (int)n, mm = (int)m, kk = (int)k, la = ld(ta ? n : k), lb = ld(tb ? k : m),
        lc = ld(m);
    double zero = 0.0;
    csvi_ext.dgemm(&b, &a, &mm, &nn, &kk, &alpha, (double *)B, &lb, (double *)A, &la, &zero, C,
                   &lc);
}

/* Whether triangular T (n x n) has a zero on its diagonal (a singular solve). */
static int singular(const double *T, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (T[i * n + i] == 0.0) return 1;
    return 0;
}

/* dT += the lower (or upper) triangle of W (n x n), its diagonal too unless
 * `unit` (a unit-triangular T's diagonal is not read). */
static void add_triangle(double *dT, const double *W, int64_t n, int lower, int unit) {
    for (int64_t i = 0; i < n; i++) {
        const int64_t j0 = lower ? 0 : i + unit, j1 = lower ? i + 1 - unit : n;
        for (int64_t j = j0; j < j1; j++) dT[i * n + j] += W[i * n + j];
    }
}

/* The batch iteration of a two-input op: operands out, in0, in1 over the
 * output's `nb` leading dims; offsets count matrices. */
static void plan_batch(csvi_iter *it, const csvi_tape *t, const csvi_op *op, int nb) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1), *y = CSVI_OUT(t, op);
    csvi_iter_start(it, nb, y->shape);
    csvi_iter_add(it, nb, y->shape);
    csvi_iter_add(it, a->ndim - 2, a->shape);
    csvi_iter_add(it, b->ndim - 2, b->shape);
    csvi_iter_finish(it);
}

/* ---- CHOLESKY: L (..., n, n) lower with A = L L^T, from A's lower triangle.
 * A matrix that is not positive definite (dpotrf's info > 0) or not finite
 * is CSVI_ERR_VALUE; the glue names it. */

int csvi_cholesky_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    const int64_t n = a->shape[a->ndim - 1], nn = n * n;
    if (nn == 0) return CSVI_OK;
    char uplo = 'U';  /* column-major upper = row-major lower */
    int order = (int)n, info = 0;
    for (int64_t s = 0; s < a->size / nn; s++) {
        const double *A = a->data + s * nn;
        double *L = y->data + s * nn;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) L[i * n + j] = j <= i ? A[i * n + j] : 0.0;
        csvi_ext.dpotrf(&uplo, &order, L, &order, &info);
        if (info != 0) return CSVI_ERR_VALUE;
        for (int64_t i = 0; i < n; i++)  /* NaN or inf, which OpenBLAS lets through */
            if (!isfinite(L[i * n + i])) return CSVI_ERR_VALUE;
    }
    return CSVI_OK;
}

/* dA = sym(L^-T Phi L^-1), Phi = tril(L^T G) with its diagonal halved and
 * mirrored into a symmetric matrix. */
int csvi_cholesky_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *y = CSVI_OUT(t, op);
    if (!a->grad) return CSVI_OK;
    const int64_t n = a->shape[a->ndim - 1], nn = n * n;
    if (nn == 0) return CSVI_OK;
    double *W = malloc((size_t)nn * sizeof(double));
    if (!W) return CSVI_ERR_NOMEM;
    for (int64_t s = 0; s < a->size / nn; s++) {
        const double *L = y->data + s * nn, *G = y->grad + s * nn;
        double *dA = a->grad + s * nn;
        gemm_rm(1, 0, n, n, n, 1.0, L, G, W);
        for (int64_t i = 0; i < n; i++) {
            W[i * n + i] *= 0.5;
            for (int64_t j = 0; j < i; j++) W[j * n + i] = W[i * n + j] *= 0.5;
        }
        trsm_rm(1, 1, 1, 0, n, n, L, W);  /* L^-T Phi */
        trsm_rm(0, 1, 0, 0, n, n, L, W);  /* (L^-T Phi) L^-1 */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) dA[i * n + j] += 0.5 * (W[i * n + j] + W[j * n + i]);
    }
    free(W);
    return CSVI_OK;
}

/* ---- One right-hand side: a vector solve and a rank-1 triangle update by
 * plain loops.  dtrsm and dgemm pack whole matrices first, which for one
 * vector (a MultivariateNormal's log_prob at one point) cost more than the
 * arithmetic. */

/* sum_k a[k] x[k] over n terms, in four interleaved sums (then (s0 + s1) +
 * (s2 + s3), then the tail), so the adds pipeline. */
static double dot4(const double *a, const double *x, int64_t n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += a[k] * x[k];
        s1 += a[k + 1] * x[k + 1];
        s2 += a[k + 2] * x[k + 2];
        s3 += a[k + 3] * x[k + 3];
    }
    double s = (s0 + s1) + (s2 + s3);
    for (; k < n; k++) s += a[k] * x[k];
    return s;
}

/* x := M^-1 x for M = T (trans 0) or T^T (trans 1), T (n x n) lower or
 * upper triangular: with M = T a dot product with each row of T, with
 * M = T^T an update along each row (both read T by rows). */
static void trsv_rm(int lower, int trans, int unit, int64_t n, const double *T, double *x) {
    if (!trans) {
        for (int64_t q = 0; q < n; q++) {
            const int64_t i = lower ? q : n - 1 - q;
            const double *row = T + i * n;
            double xi = x[i] - (lower ? dot4(row, x, i) : dot4(row + i + 1, x + i + 1, n - 1 - i));
            x[i] = unit ? xi : xi / row[i];
        }
        return;
    }
    for (int64_t q = 0; q < n; q++) {
        const int64_t i = lower ? n - 1 - q : q;
        const double *row = T + i * n;
        const double xi = unit ? x[i] : x[i] / row[i];
        x[i] = xi;
        const int64_t j0 = lower ? 0 : i + 1, j1 = lower ? i : n;
        for (int64_t j = j0; j < j1; j++) x[j] -= xi * row[j];
    }
}

/* dT -= the lower (or upper) triangle of u v^T (n x n), its diagonal too
 * unless `unit`: add_triangle of -u v^T without forming it. */
static void sub_outer_triangle(double *dT, const double *u, const double *v, int64_t n,
                               int lower, int unit) {
    for (int64_t i = 0; i < n; i++) {
        const int64_t j0 = lower ? 0 : i + unit, j1 = lower ? i + 1 - unit : n;
        const double ui = u[i];
        double *row = dT + i * n;
        for (int64_t j = j0; j < j1; j++) row[j] += -(ui * v[j]);
    }
}

/* ---- SOLVE_TRIANGULAR: inputs T (..., t, t), B (..., r, c); X = op(T)^-1 B
 * (left, t = r) or B op(T)^-1 (right, t = c).  iattr: [0] lower, [1] left,
 * [2] transpose (op(T) = T^T), [3] unit diagonal, [4] batch dims of X. */

int csvi_solve_triangular_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1);
    csvi_slot *y = CSVI_OUT(t, op);
    const int lower = (int)op->iattr[0], left = (int)op->iattr[1], trans = (int)op->iattr[2],
              unit = (int)op->iattr[3];
    const int64_t n = a->shape[a->ndim - 1], r = y->shape[y->ndim - 2],
                  c = y->shape[y->ndim - 1], sa = n * n, sx = r * c;
    const int one_rhs = left ? c == 1 : r == 1;
    csvi_iter it;
    plan_batch(&it, t, op, (int)op->iattr[4]);
    int rc = CSVI_OK;
    CSVI_ITER_LOOP(&it, {
        const double *T = a->data + o1 * sa;
        double *X = y->data + o0 * sx;
        if (!unit && singular(T, n)) rc = CSVI_ERR_VALUE;
        memcpy(X, b->data + o2 * sx, (size_t)sx * sizeof(double));
        if (one_rhs)  /* X op(T) = B with one row is op(T)^T X^T = B^T */
            trsv_rm(lower, left ? trans : !trans, unit, n, T, X);
        else
            trsm_rm(left, lower, trans, unit, r, c, T, X);
    });
    return rc;
}

int csvi_solve_triangular_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *b = CSVI_IN(t, op, 1), *y = CSVI_OUT(t, op);
    if (!a->grad && !b->grad) return CSVI_OK;
    const int lower = (int)op->iattr[0], left = (int)op->iattr[1], trans = (int)op->iattr[2],
              unit = (int)op->iattr[3];
    const int64_t n = a->shape[a->ndim - 1], r = y->shape[y->ndim - 2],
                  c = y->shape[y->ndim - 1], sa = n * n, sx = r * c;
    if (sx == 0) return CSVI_OK;
    const int one_rhs = left ? c == 1 : r == 1;
    double *gB = malloc((size_t)(sx + (one_rhs ? 0 : sa)) * sizeof(double)), *W = gB + sx;
    if (!gB) return CSVI_ERR_NOMEM;
    csvi_iter it;
    plan_batch(&it, t, op, (int)op->iattr[4]);
    CSVI_ITER_LOOP(&it, {
        const double *T = a->data + o1 * sa, *X = y->data + o0 * sx;
        memcpy(gB, y->grad + o0 * sx, (size_t)sx * sizeof(double));
        if (one_rhs)
            trsv_rm(lower, left ? !trans : trans, unit, n, T, gB);
        else
            trsm_rm(left, lower, !trans, unit, r, c, T, gB);  /* op(T)^-T G or G op(T)^-T */
        if (b->grad) {
            double *dB = b->grad + o2 * sx;
            for (int64_t k = 0; k < sx; k++) dB[k] += gB[k];
        }
        if (a->grad && one_rhs) {  /* the same outer products, of vectors */
            const int x_first = left ? trans : !trans;
            sub_outer_triangle(a->grad + o1 * sa, x_first ? X : gB, x_first ? gB : X, n, lower,
                               unit);
        } else if (a->grad) {
            if (left)  /* -gB X^T, or its transpose -X gB^T */
                gemm_rm(0, 1, n, n, c, -1.0, trans ? X : gB, trans ? gB : X, W);
            else       /* -X^T gB, or its transpose -gB^T X */
                gemm_rm(1, 0, n, n, r, -1.0, trans ? gB : X, trans ? X : gB, W);
            add_triangle(a->grad + o1 * sa, W, n, lower, unit);
        }
    });
    free(gB);
    return CSVI_OK;
}

/* ---- CHOLESKY_SOLVE: inputs B (..., n, k), F (..., n, n) a Cholesky factor
 * of A (lower: A = F F^T; upper: A = F^T F); X = A^-1 B.  iattr: [0] upper,
 * [1] batch dims of X. */

static void cholesky_solve_one(int upper, int64_t n, int64_t k, const double *F, double *X) {
    trsm_rm(1, !upper, upper, 0, n, k, F, X);   /* lower: F^-1 B; upper: F^-T B */
    trsm_rm(1, !upper, !upper, 0, n, k, F, X);  /* then F^-T or F^-1 */
}

int csvi_cholesky_solve_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *b = CSVI_IN(t, op, 0), *f = CSVI_IN(t, op, 1);
    csvi_slot *y = CSVI_OUT(t, op);
    const int upper = (int)op->iattr[0];
    const int64_t n = f->shape[f->ndim - 1], k = y->shape[y->ndim - 1], sf = n * n, sx = n * k;
    csvi_iter it;
    plan_batch(&it, t, op, (int)op->iattr[1]);
    int rc = CSVI_OK;
    /* operands: 0 out, 1 b, 2 f */
    CSVI_ITER_LOOP(&it, {
        const double *F = f->data + o2 * sf;
        double *X = y->data + o0 * sx;
        if (singular(F, n)) rc = CSVI_ERR_VALUE;
        memcpy(X, b->data + o1 * sx, (size_t)sx * sizeof(double));
        cholesky_solve_one(upper, n, k, F, X);
    });
    return rc;
}

/* dB = A^-1 G; with M = dB X^T, dF = -tril((M + M^T) F) (lower) or
 * -triu(F (M + M^T)) (upper). */
int csvi_cholesky_solve_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *b = CSVI_IN(t, op, 0), *f = CSVI_IN(t, op, 1), *y = CSVI_OUT(t, op);
    if (!b->grad && !f->grad) return CSVI_OK;
    const int upper = (int)op->iattr[0];
    const int64_t n = f->shape[f->ndim - 1], k = y->shape[y->ndim - 1], sf = n * n, sx = n * k;
    if (sx == 0) return CSVI_OK;
    double *gB = malloc((size_t)(sx + sf) * sizeof(double)), *W = gB + sx;
    if (!gB) return CSVI_ERR_NOMEM;
    csvi_iter it;
    plan_batch(&it, t, op, (int)op->iattr[1]);
    CSVI_ITER_LOOP(&it, {
        const double *F = f->data + o2 * sf, *X = y->data + o0 * sx;
        memcpy(gB, y->grad + o0 * sx, (size_t)sx * sizeof(double));
        cholesky_solve_one(upper, n, k, F, gB);
        if (b->grad) {
            double *dB = b->grad + o1 * sx;
            for (int64_t q = 0; q < sx; q++) dB[q] += gB[q];
        }
        if (f->grad) {
            gemm_rm(0, 1, n, n, k, 1.0, gB, X, W);
            for (int64_t i = 0; i < n; i++) {
                W[i * n + i] *= 2.0;
                for (int64_t j = 0; j < i; j++) W[j * n + i] = W[i * n + j] += W[j * n + i];
            }
            trmm_rm(upper, !upper, 0, n, n, -1.0, F, W);  /* -W F (lower), -F W (upper) */
            add_triangle(f->grad + o2 * sf, W, n, !upper, 0);
        }
    });
    free(gB);
    return CSVI_OK;
}

/* ---- TRI_LOGDET: (..., n, n) -> (...), sum of log|T_ii|: the log |det| of a
 * triangular matrix (only its diagonal is read). */

int csvi_tri_logdet_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    const int64_t n = a->shape[a->ndim - 1];
    for (int64_t s = 0; s < y->size; s++) {
        const double *T = a->data + s * n * n;
        double acc = 0.0;
        for (int64_t i = 0; i < n; i++) acc += log(fabs(T[i * n + i]));
        y->data[s] = acc;
    }
    return CSVI_OK;
}

int csvi_tri_logdet_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *y = CSVI_OUT(t, op);
    if (!a->grad) return CSVI_OK;
    const int64_t n = a->shape[a->ndim - 1];
    for (int64_t s = 0; s < y->size; s++) {
        const double *T = a->data + s * n * n;
        double *dT = a->grad + s * n * n;
        for (int64_t i = 0; i < n; i++) dT[i * n + i] += y->grad[s] / T[i * n + i];
    }
    return CSVI_OK;
}

/* ---- TRIL: (..., r, c), zeros above diagonal iattr[0] (or, with iattr[1],
 * below it: triu); the gradient passes where the value is kept. */

static int kept(int64_t i, int64_t j, int64_t k, int upper) {
    return upper ? j - i >= k : j - i <= k;
}

int csvi_tril_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    const int64_t r = a->shape[a->ndim - 2], c = a->shape[a->ndim - 1], k = op->iattr[0];
    const int upper = (int)op->iattr[1];
    if (r * c == 0) return CSVI_OK;
    for (int64_t s = 0; s < a->size / (r * c); s++)
        for (int64_t i = 0; i < r; i++) {
            const int64_t o = s * r * c + i * c;
            for (int64_t j = 0; j < c; j++)
                y->data[o + j] = kept(i, j, k, upper) ? a->data[o + j] : 0.0;
        }
    return CSVI_OK;
}

int csvi_tril_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *y = CSVI_OUT(t, op);
    if (!a->grad) return CSVI_OK;
    const int64_t r = a->shape[a->ndim - 2], c = a->shape[a->ndim - 1], k = op->iattr[0];
    const int upper = (int)op->iattr[1];
    if (r * c == 0) return CSVI_OK;
    for (int64_t s = 0; s < a->size / (r * c); s++)
        for (int64_t i = 0; i < r; i++) {
            const int64_t o = s * r * c + i * c;
            for (int64_t j = 0; j < c; j++)
                if (kept(i, j, k, upper)) a->grad[o + j] += y->grad[o + j];
        }
    return CSVI_OK;
}

/* ---- DIAGONAL: (..., r, c) -> (..., d), diagonal iattr[0] (> 0 above the
 * main one); DIAG_EMBED: (..., d) -> (..., d + |k|, d + |k|), the vector on
 * diagonal k = iattr[0] and zeros elsewhere.  Each is the other's VJP. */

/* The flat position in an (r, c) matrix of element q of diagonal k. */
static int64_t diag_pos(int64_t q, int64_t k, int64_t c) {
    return (q + (k < 0 ? -k : 0)) * c + q + (k > 0 ? k : 0);
}

int csvi_diagonal_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    const int64_t r = a->shape[a->ndim - 2], c = a->shape[a->ndim - 1],
                  d = y->shape[y->ndim - 1], k = op->iattr[0];
    if (d == 0) return CSVI_OK;
    for (int64_t s = 0; s < y->size / d; s++)
        for (int64_t q = 0; q < d; q++) y->data[s * d + q] = a->data[s * r * c + diag_pos(q, k, c)];
    return CSVI_OK;
}

int csvi_diagonal_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *a = CSVI_IN(t, op, 0), *y = CSVI_OUT(t, op);
    if (!a->grad) return CSVI_OK;
    const int64_t r = a->shape[a->ndim - 2], c = a->shape[a->ndim - 1],
                  d = y->shape[y->ndim - 1], k = op->iattr[0];
    if (d == 0) return CSVI_OK;
    for (int64_t s = 0; s < y->size / d; s++)
        for (int64_t q = 0; q < d; q++) a->grad[s * r * c + diag_pos(q, k, c)] += y->grad[s * d + q];
    return CSVI_OK;
}

int csvi_diag_embed_fwd(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *v = CSVI_IN(t, op, 0);
    csvi_slot *y = CSVI_OUT(t, op);
    const int64_t d = v->shape[v->ndim - 1], m = y->shape[y->ndim - 1], k = op->iattr[0];
    memset(y->data, 0, (size_t)y->size * sizeof(double));
    if (d == 0) return CSVI_OK;
    for (int64_t s = 0; s < v->size / d; s++)
        for (int64_t q = 0; q < d; q++) y->data[s * m * m + diag_pos(q, k, m)] = v->data[s * d + q];
    return CSVI_OK;
}

int csvi_diag_embed_vjp(csvi_tape *t, const csvi_op *op) {
    const csvi_slot *v = CSVI_IN(t, op, 0), *y = CSVI_OUT(t, op);
    if (!v->grad) return CSVI_OK;
    const int64_t d = v->shape[v->ndim - 1], m = y->shape[y->ndim - 1], k = op->iattr[0];
    if (d == 0) return CSVI_OK;
    for (int64_t s = 0; s < v->size / d; s++)
        for (int64_t q = 0; q < d; q++) v->grad[s * d + q] += y->grad[s * m * m + diag_pos(q, k, m)];
    return CSVI_OK;
}
