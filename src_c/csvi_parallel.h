/* Kernels split over threads so that no result depends on the thread count
 * (seeds reproduce, and a compiled run matches an eager one bit for bit,
 * whatever OMP_NUM_THREADS is).  A kernel's work is a list of tasks fixed by
 * the sizes alone: blocks of elements, or chunks of rows whose partial sums
 * the caller combines in task order.  Each thread starts on its own
 * contiguous run of tasks, so it walks the same rows of a plate in every op
 * of a step.  The threads are a pool of OMP_NUM_THREADS (default: the CPUs
 * the process may use, at most its container's quota) including the caller,
 * see parallel.c.  One thread, a small job, a concurrent or nested call, or
 * a forked child runs the same tasks in a loop. */
#ifndef CSVI_PARALLEL_H
#define CSVI_PARALLEL_H

#include <stdint.h>

/* Elements per task of csvi_parallel_range; a multiple of every SIMD width,
 * and a vector loop sees the same block boundaries for any thread count. */
#define CSVI_BLOCK 1024

/* Sizes from which threads pay for starting and joining (about 1 us on two
 * cores), by the cost of a loop's element: a libmvec call (about 1 ns), a
 * division (0.4 ns), a few adds and multiplies (0.2 ns, bound by memory). */
#define CSVI_PAR_TRANSCENDENTAL 2048
#define CSVI_PAR_DIVIDE 4096
#define CSVI_PAR_CHEAP 8192

typedef void (*csvi_task_fn)(void *ctx, int64_t task);
typedef void (*csvi_range_fn)(void *ctx, int64_t lo, int64_t hi);

/* A job's size as a multiple of the size from which threads pay for it:
 * what csvi_parallel_tasks takes as `over`. */
#define CSVI_OVER(work, threshold) ((int64_t)(work) / (int64_t)(threshold))

/* Waking a sleeping worker costs the caller about 10 us (a futex wake, and
 * on a virtual machine an interrupt to a halted CPU), against about 1 us to
 * start one that is spinning.  So a job smaller than this many times its
 * threshold runs on the caller alone when the workers sleep: that is the
 * eager step, whose ops come tens of microseconds apart while Python runs
 * the model, and where a 10,000-element sum had cost 13 us instead of 2. */
#define CSVI_WAKE_OVER 16

/* fn(ctx, task) for task in [0, n_tasks), over threads when `over` >= 1
 * (the job is that many times the size from which threads pay; see
 * CSVI_WAKE_OVER for when sleeping workers are woken).  With `descending`,
 * each thread walks its run of tasks from the end: a sweep over data that an
 * ascending sweep has just read then starts on the part still in cache (one
 * too big for the cache, like a plate's data matrix, otherwise misses on
 * every line). */
void csvi_parallel_tasks(int64_t n_tasks, int64_t over, int descending, csvi_task_fn fn,
                         void *ctx);

/* Caps the pool's default size (the CPUs the process may run on) at n, the
 * CPUs a container's quota gives it (0: no cap); OMP_NUM_THREADS still
 * decides when set.  Only before the pool starts (the first parallel job). */
void csvi_parallel_set_cpu_limit(int n);

/* The pool's threads, the caller included (starting the pool). */
int csvi_parallel_threads(void);

/* fn(ctx, lo, hi) over [0, n) in blocks of CSVI_BLOCK, over threads when
 * n >= min_parallel (over = n / min_parallel). */
void csvi_parallel_range(int64_t n, int64_t min_parallel, csvi_range_fn fn, void *ctx);

#endif
