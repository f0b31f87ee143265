/* Task splitting over OpenMP threads (see csvi_parallel.h). */
#include "csvi_parallel.h"

#ifdef _OPENMP
#include <omp.h>
#include <pthread.h>

/* Set in a child of fork(): the parent's thread team does not exist there. */
static volatile int forked_child;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) { forked_child = 1; }
static void register_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

static int use_team(void) {
    pthread_once(&atfork_once, register_atfork);
    return !forked_child && !omp_in_parallel() && omp_get_max_threads() > 1;
}

void csvi_parallel_tasks(int64_t n_tasks, int parallel, csvi_task_fn fn, void *ctx) {
    if (parallel && n_tasks > 1 && use_team()) {
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < n_tasks; k++) fn(ctx, k);
        return;
    }
    for (int64_t k = 0; k < n_tasks; k++) fn(ctx, k);
}

#else

void csvi_parallel_tasks(int64_t n_tasks, int parallel, csvi_task_fn fn, void *ctx) {
    (void)parallel;
    for (int64_t k = 0; k < n_tasks; k++) fn(ctx, k);
}

#endif

typedef struct {
    csvi_range_fn fn;
    void *ctx;
    int64_t n;
} range_job;

static void range_task(void *ctx, int64_t task) {
    const range_job *job = ctx;
    const int64_t lo = task * CSVI_BLOCK;
    const int64_t hi = job->n - lo < CSVI_BLOCK ? job->n : lo + CSVI_BLOCK;
    job->fn(job->ctx, lo, hi);
}

void csvi_parallel_range(int64_t n, int64_t min_parallel, csvi_range_fn fn, void *ctx) {
    if (n <= 0) return;
    range_job job = {fn, ctx, n};
    csvi_parallel_tasks((n + CSVI_BLOCK - 1) / CSVI_BLOCK, n >= min_parallel, range_task, &job);
}
