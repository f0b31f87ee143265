/* Particle fast paths (csvi_particles.h).  MATMUL of a data matrix by a
 * per-particle vector -- the linear predictor X @ w of a regression -- is P
 * mat-vecs over the same X.  Here each block of X's rows is read once and
 * every particle's vector passes over it while it is in cache. */
#include "csvi_linalg.h"
#include "csvi_opcodes.h"
#include "csvi_parallel.h"
#include "csvi_particles.h"
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

static void forward_task(void *ctx, int64_t task) {
    const particle_job *j = ctx;
    const int64_t r0 = task * BLOCK_ROWS, r1 = block_end(r0, j->n);
    for (int64_t q = 0; q < j->p; q++)
        csvi_matvec_block(j->x, j->w + q * j->k, j->y + q * j->n, j->k, r0, r1, 0);
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

static void dw_task(void *ctx, int64_t chunk) {
    const particle_job *j = ctx;
    const int64_t r0 = chunk * j->n / j->n_chunks, r1 = (chunk + 1) * j->n / j->n_chunks;
    for (int64_t q = 0; q < j->p; q++)
        csvi_mtv_block(j->x, j->g + q * j->n, j->partial + (chunk * j->p + q) * j->k, j->k, r0, r1);
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
