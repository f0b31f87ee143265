/* Kernels split over OpenMP threads so that no result depends on the thread
 * count (seeds reproduce, and a compiled run matches an eager one bit for bit,
 * whatever OMP_NUM_THREADS is).  A kernel's work is a list of tasks fixed by
 * the sizes alone: blocks of elements, or chunks of rows whose partial sums
 * the caller combines in task order.  Threads take contiguous runs of tasks,
 * so a thread walks the same rows of a plate in every op of a step (they stay
 * in its cache).  One thread, a small n, a nested call or a forked child
 * (GNU OpenMP cannot run a team after fork) runs the same tasks in a loop. */
#ifndef CSVI_PARALLEL_H
#define CSVI_PARALLEL_H

#include <stdint.h>

/* Elements per task of csvi_parallel_range; a multiple of every SIMD width,
 * and a vector loop sees the same block boundaries for any thread count. */
#define CSVI_BLOCK 1024

/* Sizes from which a team pays for its fork/join (about 2 us on two cores):
 * a loop with a libmvec call per element, and one of a few flops per element
 * (memory-bound).  Measured with the logreg benchmark. */
#define CSVI_PAR_TRANSCENDENTAL 4096
#define CSVI_PAR_CHEAP 65536

typedef void (*csvi_task_fn)(void *ctx, int64_t task);
typedef void (*csvi_range_fn)(void *ctx, int64_t lo, int64_t hi);

/* fn(ctx, task) for task in [0, n_tasks), over threads when `parallel`. */
void csvi_parallel_tasks(int64_t n_tasks, int parallel, csvi_task_fn fn, void *ctx);

/* fn(ctx, lo, hi) over [0, n) in blocks of CSVI_BLOCK, over threads when
 * n >= min_parallel. */
void csvi_parallel_range(int64_t n, int64_t min_parallel, csvi_range_fn fn, void *ctx);

#endif
