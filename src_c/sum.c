/* Long sums in one fixed order (csvi_sum.h). */
#include <stddef.h>
#include "csvi_parallel.h"
#include "csvi_sum.h"
#include "csvi_v4.h"
#include "csvi_vmath.h"

#define SUM_CHUNKS 16
#define SUM_MIN_CHUNK 2048

typedef struct {
    v4 a0, a1, a2, a3;
} lanes;

/* Through locals: x might alias *l, which would keep the lanes in memory. */
static inline void lanes_add(lanes *l, const double *x, int64_t n16) {
    v4 a0 = l->a0, a1 = l->a1, a2 = l->a2, a3 = l->a3;
    for (int64_t i = 0; i < n16; i += 16) {
        a0 += load4(x + i);
        a1 += load4(x + i + 4);
        a2 += load4(x + i + 8);
        a3 += load4(x + i + 12);
    }
    *l = (lanes){a0, a1, a2, a3};
}

/* The lanes' total, then the last n % 16 terms one by one. */
static double lanes_total(const lanes *l, const double *tail, int64_t n_tail) {
    const v4 a = (l->a0 + l->a1) + (l->a2 + l->a3);
    double s = (a[0] + a[1]) + (a[2] + a[3]);
    for (int64_t i = 0; i < n_tail; i++) s += tail[i];
    return s;
}

CSVI_HOT double csvi_sum_run(const double *x, int64_t n) {
    lanes l = {{0.0}, {0.0}, {0.0}, {0.0}};
    const int64_t n16 = n & ~(int64_t)15;
    lanes_add(&l, x, n16);
    return lanes_total(&l, x + n16, n - n16);
}

static int64_t n_chunks(int64_t n) {
    const int64_t c = n / SUM_MIN_CHUNK;
    return c < 1 ? 1 : c > SUM_CHUNKS ? SUM_CHUNKS : c;
}

/* Chunk starts are multiples of 16, so a chunk's lanes see the same terms
 * whichever way it is cut into blocks. */
static int64_t chunk_start(int64_t n, int64_t chunks, int64_t c) {
    return c == chunks ? n : (c * n / chunks) & ~(int64_t)15;
}

typedef struct {
    int64_t n, chunks;
    const double *x;       /* the terms, or NULL: fn writes them */
    csvi_terms_fn fn;
    void *ctx;
    double partial[SUM_CHUNKS];
} sum_job;

static CSVI_HOT void sum_chunk(void *ctx, int64_t c) {
    sum_job *j = ctx;
    const int64_t lo = chunk_start(j->n, j->chunks, c), hi = chunk_start(j->n, j->chunks, c + 1);
    if (j->x) {
        j->partial[c] = csvi_sum_run(j->x + lo, hi - lo);
        return;
    }
    double terms[CSVI_SUM_BLOCK] __attribute__((aligned(64)));
    lanes l = {{0.0}, {0.0}, {0.0}, {0.0}};
    for (int64_t b = lo; b < hi; b += CSVI_SUM_BLOCK) {
        const int64_t e = hi - b < CSVI_SUM_BLOCK ? hi : b + CSVI_SUM_BLOCK;
        j->fn(j->ctx, b, e, terms);
        if (e < hi) {
            lanes_add(&l, terms, e - b);
        } else {
            const int64_t m16 = (e - b) & ~(int64_t)15;
            lanes_add(&l, terms, m16);
            j->partial[c] = lanes_total(&l, terms + m16, e - b - m16);
        }
    }
    if (hi == lo) j->partial[c] = 0.0;
}

static double sum_chunks(sum_job *j, int64_t min_parallel) {
    j->chunks = n_chunks(j->n);
    csvi_parallel_tasks(j->chunks, CSVI_OVER(j->n, min_parallel), 0, sum_chunk, j);
    double s = j->partial[0];
    for (int64_t c = 1; c < j->chunks; c++) s += j->partial[c];
    return s;
}

double csvi_sum_terms(int64_t n, int64_t min_parallel, csvi_terms_fn fn, void *ctx) {
    sum_job j = {n, 0, NULL, fn, ctx, {0.0}};
    return sum_chunks(&j, min_parallel);
}

double csvi_sum_array(const double *x, int64_t n) {
    if (n < 2 * SUM_MIN_CHUNK) return csvi_sum_run(x, n);
    sum_job j = {n, 0, x, NULL, NULL, {0.0}};
    return sum_chunks(&j, CSVI_PAR_CHEAP);
}
