/* Particle fast paths (csvi_particles.h).  MATMUL of a data matrix by a
 * per-particle vector -- the linear predictor X @ w of a regression -- is P
 * mat-vecs over the same X.  Here each block of X's rows is read once, and
 * particles pass over it two at a time: every load of X feeds two FMAs.
 * Each dot product and each chunk's sum is added up in the same order as the
 * one-particle kernels (ops_linalg.c). */
#include "csvi_linalg.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_particles.h"
#include "csvi_v4.h"
#include "csvi_vmath.h"

/* Rows per task of the forward product and of dX. */
#define BLOCK_ROWS 256
/* dW sums rows in at most this many fixed chunks (at least this many rows
 * each), whose partial sums -- chunks x P x K doubles, at most
 * MAX_PARTIAL -- live on the caller's stack. */
#define DW_CHUNKS 16
#define DW_MIN_CHUNK_ROWS 64
#define MAX_PARTIAL 8192
/* A product this size (rows * cols * particles) or larger runs over threads. */
#define PARALLEL_WORK 8192

typedef struct {
    const double *x, *w, *g;   /* X (n, k); W (P, k); G (P, n), the output's gradient */
    double *y;                 /* forward: Y (P, n); VJP: dX (n, k) */
    double *partial;           /* dW: n_chunks x P x k */
    int64_t n, k, p, n_chunks;
} particle_job;

/* (n, k) @ (k,) with only the vector per particle: true and sets n, k. */
static int matrix_times_particle_vectors(const csvi_tape *t, const csvi_op *op,
                                         const unsigned char *batched, int64_t *n, int64_t *k) {
    const csvi_slot *a = CSVI_IN(t, op, 0);
    if (op->code != CSVI_OP_MATMUL || batched[op->in[0]] || !batched[op->in[1]]) return 0;
    if (op->iattr[3] != 2 || op->iattr[4] != 1 || op->iattr[5] != 0 || a->ndim != 2) return 0;
    *n = op->iattr[0];
    *k = op->iattr[1];
    return *n > 0 && *k > 0;
}

static int64_t block_end(int64_t r0, int64_t n) { return n - r0 < BLOCK_ROWS ? n : r0 + BLOCK_ROWS; }

/* y0[r] = x[r] . w0 and y1[r] = x[r] . w1 for the 4-row groups of [r0, r1);
 * returns where the groups end. */
static CSVI_HOT int64_t rows_dot_two(const particle_job *j, const double *w0, const double *w1,
                                     double *y0, double *y1, int64_t r0, int64_t r1) {
    const int64_t k = j->k, kv = k & ~(int64_t)3;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const double *x0 = j->x + r * k, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
        v4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
        for (int64_t c = 0; c < kv; c += 4) {
            const v4 u = load4(w0 + c), v = load4(w1 + c);
            const v4 z0 = load4(x0 + c), z1 = load4(x1 + c), z2 = load4(x2 + c), z3 = load4(x3 + c);
            a0 += z0 * u, a1 += z1 * u, a2 += z2 * u, a3 += z3 * u;
            b0 += z0 * v, b1 += z1 * v, b2 += z2 * v, b3 += z3 * v;
        }
        v4 s = hsum4(a0, a1, a2, a3), t = hsum4(b0, b1, b2, b3);
        for (int64_t c = kv; c < k; c++) {
            s[0] += x0[c] * w0[c], s[1] += x1[c] * w0[c], s[2] += x2[c] * w0[c], s[3] += x3[c] * w0[c];
            t[0] += x0[c] * w1[c], t[1] += x1[c] * w1[c], t[2] += x2[c] * w1[c], t[3] += x3[c] * w1[c];
        }
        for (int q = 0; q < 4; q++) y0[r + q] = s[q], y1[r + q] = t[q];
    }
    return r;
}

static void forward_task(void *ctx, int64_t task) {
    const particle_job *j = ctx;
    const int64_t r0 = task * BLOCK_ROWS, r1 = block_end(r0, j->n), k = j->k, n = j->n;
    int64_t q = 0;
    for (; q + 2 <= j->p; q += 2) {
        const double *w0 = j->w + q * k, *w1 = w0 + k;
        double *y0 = j->y + q * n, *y1 = y0 + n;
        const int64_t rest = rows_dot_two(j, w0, w1, y0, y1, r0, r1);
        csvi_matvec_block(j->x, w0, y0, k, rest, r1, 0);
        csvi_matvec_block(j->x, w1, y1, k, rest, r1, 0);
    }
    if (q < j->p) csvi_matvec_block(j->x, j->w + q * k, j->y + q * n, k, r0, r1, 0);
}

int csvi_particles_fwd(csvi_tape *t, const csvi_op *op, const unsigned char *batched,
                       int64_t particles) {
    int64_t n, k;
    if (!matrix_times_particle_vectors(t, op, batched, &n, &k)) return CSVI_DECLINED;
    particle_job j = {CSVI_IN(t, op, 0)->data, CSVI_IN(t, op, 1)->data, NULL,
                      CSVI_OUT(t, op)->data, NULL, n, k, particles, 0};
    csvi_parallel_tasks((n + BLOCK_ROWS - 1) / BLOCK_ROWS, n * k * particles >= PARALLEL_WORK, 0,
                        forward_task, &j);
    return CSVI_OK;
}

/* acc0[c] += sum of x[r, c] g0[r] and acc1 likewise, over the 4-row groups
 * of [r0, r1) from r1 down; returns where the groups end. */
static CSVI_HOT int64_t rows_scale_two(const particle_job *j, const double *g0,
                                       const double *g1, double *restrict acc0,
                                       double *restrict acc1, int64_t r0, int64_t r1) {
    const int64_t k = j->k, kv = k & ~(int64_t)3;
    int64_t r = r1;
    for (; r - 4 >= r0; r -= 4) {
        const double *x0 = j->x + (r - 4) * k, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
        const double a0 = g0[r - 4], a1 = g0[r - 3], a2 = g0[r - 2], a3 = g0[r - 1];
        const double b0 = g1[r - 4], b1 = g1[r - 3], b2 = g1[r - 2], b3 = g1[r - 1];
        for (int64_t c = 0; c < kv; c += 4) {
            const v4 z0 = load4(x0 + c), z1 = load4(x1 + c), z2 = load4(x2 + c), z3 = load4(x3 + c);
            *(v4 *)(acc0 + c) += (z0 * a0 + z1 * a1) + (z2 * a2 + z3 * a3);
            *(v4 *)(acc1 + c) += (z0 * b0 + z1 * b1) + (z2 * b2 + z3 * b3);
        }
        for (int64_t c = kv; c < k; c++) {
            acc0[c] += (x0[c] * a0 + x1[c] * a1) + (x2[c] * a2 + x3[c] * a3);
            acc1[c] += (x0[c] * b0 + x1[c] * b1) + (x2[c] * b2 + x3[c] * b3);
        }
    }
    return r;
}

/* dW's partial sums of one chunk of rows, particles two at a time. */
static void dw_task(void *ctx, int64_t chunk) {
    const particle_job *j = ctx;
    const int64_t r0 = chunk * j->n / j->n_chunks, r1 = (chunk + 1) * j->n / j->n_chunks;
    const int64_t k = j->k, n = j->n;
    double *partial = j->partial + chunk * j->p * k;
    int64_t q = 0;
    for (; q + 2 <= j->p; q += 2) {
        double *acc0 = partial + q * k, *acc1 = acc0 + k;
        for (int64_t c = 0; c < 2 * k; c++) acc0[c] = 0.0;
        const double *g0 = j->g + q * n, *g1 = g0 + n;
        const int64_t rest = rows_scale_two(j, g0, g1, acc0, acc1, r0, r1);
        for (int64_t r = rest - 1; r >= r0; r--)
            for (int64_t c = 0; c < k; c++) {
                acc0[c] += j->x[r * k + c] * g0[r];
                acc1[c] += j->x[r * k + c] * g1[r];
            }
    }
    if (q < j->p) csvi_mtv_block(j->x, j->g + q * n, partial + q * k, k, r0, r1);
}

/* dX[r, :] += sum over particles q of G[q, r] W[q, :]. */
static CSVI_HOT void dx_task(void *ctx, int64_t task) {
    const particle_job *j = ctx;
    const int64_t r0 = task * BLOCK_ROWS, r1 = block_end(r0, j->n), k = j->k;
    for (int64_t r = r0; r < r1; r++) {
        double *restrict dx = j->y + r * k;
        for (int64_t q = 0; q < j->p; q++) {
            const double g = j->g[q * j->n + r];
            const double *restrict w = j->w + q * k;
            for (int64_t c = 0; c < k; c++) dx[c] += g * w[c];
        }
    }
}

int csvi_particles_vjp(csvi_tape *t, const csvi_op *op, const unsigned char *batched,
                       int64_t particles) {
    int64_t n, k;
    if (!matrix_times_particle_vectors(t, op, batched, &n, &k)) return CSVI_DECLINED;
    if (particles * k > MAX_PARTIAL) return CSVI_DECLINED;
    const csvi_slot *x = CSVI_IN(t, op, 0), *w = CSVI_IN(t, op, 1);
    const int parallel = n * k * particles >= PARALLEL_WORK;
    particle_job j = {x->data, w->data, CSVI_OUT(t, op)->grad, x->grad, NULL, n, k, particles, 0};
    if (w->grad) {
        /* chunks fixed by the sizes alone, summed in chunk order: the same
         * result for any number of threads */
        double partial[MAX_PARTIAL];
        int64_t chunks = n / DW_MIN_CHUNK_ROWS;
        chunks = chunks < 1 ? 1 : chunks > DW_CHUNKS ? DW_CHUNKS : chunks;
        while (chunks > 1 && chunks * particles * k > MAX_PARTIAL) chunks--;
        j.partial = partial;
        j.n_chunks = chunks;
        csvi_parallel_tasks(chunks, parallel, 1, dw_task, &j);
        for (int64_t c = 0; c < chunks; c++)
            for (int64_t i = 0; i < particles * k; i++) w->grad[i] += partial[c * particles * k + i];
    }
    if (x->grad)
        csvi_parallel_tasks((n + BLOCK_ROWS - 1) / BLOCK_ROWS, parallel, 1, dx_task, &j);
    return CSVI_OK;
}
