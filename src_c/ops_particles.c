/* Particle fast paths (csvi_particles.h).  MATMUL of a data matrix by a
 * per-particle vector -- the linear predictor X @ w of a regression -- is P
 * mat-vecs over the same X.  Here each block of X's rows is read once, and
 * particles pass over it four at a time: every load of X feeds four FMAs.
 * Each dot product is added up in the same order as the one-particle mat-vec
 * (ops_linalg.c). */
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

/* y_q[r] = x[r] . w_q for the M particles from q0, over the 4-row groups of
 * [r0, r1); returns where the groups end.  M is a constant at every call:
 * 4 x M accumulators stay in registers. */
static inline __attribute__((always_inline)) int64_t rows_dot(const particle_job *j, int64_t q0,
                                                              const int M, int64_t r0, int64_t r1) {
    const int64_t k = j->k, kv = k & ~(int64_t)3;
    const double *w = j->w + q0 * k;
    double *y = j->y + q0 * j->n;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const double *x[4] = {j->x + r * k, j->x + (r + 1) * k, j->x + (r + 2) * k,
                              j->x + (r + 3) * k};
        v4 a[4][4];
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++)
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) a[m][i] = (v4){0};
        for (int64_t c = 0; c < kv; c += 4) {
            const v4 z[4] = {load4(x[0] + c), load4(x[1] + c), load4(x[2] + c), load4(x[3] + c)};
#pragma GCC unroll 4
            for (int m = 0; m < M; m++) {
                const v4 u = load4(w + m * k + c);
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) a[m][i] += z[i] * u;
            }
        }
#pragma GCC unroll 4
        for (int m = 0; m < M; m++) {
            v4 s = hsum4(a[m][0], a[m][1], a[m][2], a[m][3]);
            for (int64_t c = kv; c < k; c++)
                for (int i = 0; i < 4; i++) s[i] += x[i][c] * w[m * k + c];
            for (int i = 0; i < 4; i++) y[m * j->n + r + i] = s[i];
        }
    }
    return r;
}

/* Y[q] for the rows of one task: four, then two particles at a time. */
static CSVI_HOT void forward_task(void *ctx, int64_t task) {
    const particle_job *j = ctx;
    const int64_t r0 = task * BLOCK_ROWS, r1 = block_end(r0, j->n), k = j->k, n = j->n;
    int64_t q = 0, rest = r0;
    for (; q + 4 <= j->p; q += 4) rest = rows_dot(j, q, 4, r0, r1);
    for (; q + 2 <= j->p; q += 2) rest = rows_dot(j, q, 2, r0, r1);
    for (int64_t m = 0; m < q; m++)  /* rows after the last group of four */
        csvi_matvec_block(j->x, j->w + m * k, j->y + m * n, k, rest, r1, 0);
    if (q < j->p) csvi_matvec_block(j->x, j->w + q * k, j->y + q * n, k, r0, r1, 0);
}

int csvi_particles_fwd(csvi_tape *t, const csvi_op *op, const unsigned char *batched,
                       int64_t particles) {
    int64_t n, k;
    if (!matrix_times_particle_vectors(t, op, batched, &n, &k)) return CSVI_DECLINED;
    particle_job j = {CSVI_IN(t, op, 0)->data, CSVI_IN(t, op, 1)->data, NULL,
                      CSVI_OUT(t, op)->data, NULL, n, k, particles, 0};
    csvi_parallel_tasks((n + BLOCK_ROWS - 1) / BLOCK_ROWS,
                        CSVI_OVER(n * k * particles, PARALLEL_WORK), 0, forward_task, &j);
    return CSVI_OK;
}

/* acc_q[c] += sum of x[r, c] g_q[r] for the M particles from q0 (acc_q at
 * acc + q k, g_q at j->g + q n), over the 4-row groups of [r0, r1) from r1
 * down; returns where the groups end. */
static inline __attribute__((always_inline)) int64_t rows_scale(const particle_job *j, int64_t q0,
                                                                const int M, double *acc,
                                                                int64_t r0, int64_t r1) {
    const int64_t k = j->k, kv = k & ~(int64_t)3, n = j->n;
    const double *g = j->g + q0 * n;
    int64_t r = r1;
    for (; r - 4 >= r0; r -= 4) {
        const double *x0 = j->x + (r - 4) * k, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
        for (int64_t c = 0; c < kv; c += 4) {
            const v4 z0 = load4(x0 + c), z1 = load4(x1 + c), z2 = load4(x2 + c), z3 = load4(x3 + c);
#pragma GCC unroll 4
            for (int m = 0; m < M; m++) {
                const double *gm = g + m * n + r - 4;
                *(v4 *)(acc + m * k + c) += (z0 * gm[0] + z1 * gm[1]) + (z2 * gm[2] + z3 * gm[3]);
            }
        }
        for (int64_t c = kv; c < k; c++)
#pragma GCC unroll 4
            for (int m = 0; m < M; m++) {
                const double *gm = g + m * n + r - 4;
                acc[m * k + c] += (x0[c] * gm[0] + x1[c] * gm[1]) + (x2[c] * gm[2] + x3[c] * gm[3]);
            }
    }
    return r;
}

/* dW's partial sums of one chunk of rows: four, then two particles at a time. */
static CSVI_HOT void dw_task(void *ctx, int64_t chunk) {
    const particle_job *j = ctx;
    const int64_t r0 = chunk * j->n / j->n_chunks, r1 = (chunk + 1) * j->n / j->n_chunks;
    const int64_t k = j->k, n = j->n;
    double *partial = j->partial + chunk * j->p * k;
    for (int64_t i = 0; i < j->p * k; i++) partial[i] = 0.0;
    int64_t q = 0, rest = r1;
    for (; q + 4 <= j->p; q += 4) rest = rows_scale(j, q, 4, partial + q * k, r0, r1);
    for (; q + 2 <= j->p; q += 2) rest = rows_scale(j, q, 2, partial + q * k, r0, r1);
    for (int64_t r = rest - 1; r >= r0; r--)  /* rows before the last group of four */
        for (int64_t m = 0; m < q; m++)
            for (int64_t c = 0; c < k; c++) partial[m * k + c] += j->x[r * k + c] * j->g[m * n + r];
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
    const int64_t over = CSVI_OVER(n * k * particles, PARALLEL_WORK);
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
        csvi_parallel_tasks(chunks, over, 1, dw_task, &j);
        for (int64_t c = 0; c < chunks; c++)
            for (int64_t i = 0; i < particles * k; i++) w->grad[i] += partial[c * particles * k + i];
    }
    if (x->grad)
        csvi_parallel_tasks((n + BLOCK_ROWS - 1) / BLOCK_ROWS, over, 1, dx_task, &j);
    return CSVI_OK;
}
