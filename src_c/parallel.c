/* Task splitting over a small pool of worker threads (see csvi_parallel.h).
 *
 * Why not an OpenMP team: its barrier waits for every thread, so while
 * another process holds one of the cores, each parallel region waits for the
 * descheduled thread's next time slice (logreg on two cores next to one busy
 * process: 4x slower than one thread).  Here the calling thread works too and
 * waits for no thread that has not started: the tasks are split into one
 * contiguous range per thread, each thread takes tasks from its own range
 * first (so it walks the same rows in every op of a step) and then what is
 * left of the others'.  A worker that is not running leaves its range to the
 * threads that are.
 *
 * Protocol.  A job is published by making `gen` even and new; while the
 * caller sets a job up, `gen` is odd, and it first waits until no worker is
 * `inside` the previous one.  A worker counts itself inside, checks that
 * `gen` has not moved, then claims tasks with an atomic add on a range's
 * `next`, and adds the number it ran to `done`, which the caller waits on.
 * Idle workers spin for a while (the ops of a step come microseconds apart),
 * then sleep on a condition variable, and only a big job wakes them
 * (CSVI_WAKE_OVER).  The pool starts at the first job that asks for
 * threads, with OMP_NUM_THREADS read then (and the CPU limit a container's
 * quota sets: csvi/cpu_quota.py). */
#define _GNU_SOURCE /* CPU_COUNT */
#include "csvi_parallel.h"

static void run_serial(int64_t n_tasks, int descending, csvi_task_fn fn, void *ctx) {
    for (int64_t k = 0; k < n_tasks; k++) fn(ctx, descending ? n_tasks - 1 - k : k);
}

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define MAX_THREADS 64
/* Idle workers spin this long (pausing, then yielding the core), then sleep. */
#define SPIN_NS 100000
#define YIELD_AFTER_NS 10000

typedef struct {
    _Alignas(64) _Atomic int64_t next;   /* a cache line per range */
    int64_t start, end;
} task_range;

static struct {
    _Atomic uint64_t gen;
    _Atomic int inside, sleepers, busy;
    _Atomic int64_t done;
    csvi_task_fn fn;
    void *ctx;
    int n_parts;                          /* ranges of the current job */
    int descending;
    int n_threads;                        /* the caller and the workers */
    task_range range[MAX_THREADS];
    pthread_mutex_t lock;
    pthread_cond_t wake;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits for a thread of the pool; yields the core now and then, in case the
 * awaited thread was descheduled on this one. */
#define SPIN_UNTIL(cond)                                  \
    for (int spin_ = 1; !(cond); spin_++) {               \
        cpu_relax();                                      \
        if (spin_ % 1024 == 0) sched_yield();             \
    }

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims the next tasks of a range: a quarter of what is left (at least
 * one), so a range of t tasks takes about 4 log(t) claims rather than t, and
 * the last claims stay single tasks for balance.  Why not one per claim:
 * a locked add waits for the task's stores to drain (x86), and with tasks
 * of CSVI_BLOCK elements that wait was ~6% of the VAE step's CPU.  Returns
 * the first task, with *count of them (0 when the range is done). */
static int64_t claim(task_range *r, int64_t end, int64_t *count) {
    int64_t k = atomic_load_explicit(&r->next, memory_order_relaxed);
    for (;;) {
        if (k >= end) {
            *count = 0;
            return k;
        }
        const int64_t c = (end - k) / 4 > 1 ? (end - k) / 4 : 1;
        if (atomic_compare_exchange_weak(&r->next, &k, k + c)) {
            *count = c;
            return k;
        }
    }
}

/* Runs tasks, own range first, then the others' leftovers, and counts them
 * done at the end (one atomic add instead of one per task).  A range's
 * claims count up from its start; descending, the k-th claim is the k-th
 * task from its end. */
static void run_tasks(int part) {
    const int n = pool.n_parts;
    int64_t ran = 0;
    for (int i = 0; i < n; i++) {
        task_range *r = &pool.range[(part + i) % n];
        const int64_t start = r->start, end = r->end;
        int64_t k, c;
        while ((k = claim(r, end, &c)), c > 0) {
            for (int64_t j = k; j < k + c; j++)
                pool.fn(pool.ctx, pool.descending ? start + end - 1 - j : j);
            ran += c;
        }
    }
    if (ran) atomic_fetch_add(&pool.done, ran);
}

/* The next open job after `seen`. */
static uint64_t wait_for_job(uint64_t seen) {
    const int64_t start = now_ns();
    for (int i = 1;; i++) {
        const uint64_t g = atomic_load(&pool.gen);
        if (g != seen && !(g & 1)) return g;
        cpu_relax();
        if (i % 64) continue;
        const int64_t waited = now_ns() - start;
        if (waited > SPIN_NS) break;
        if (waited > YIELD_AFTER_NS) sched_yield();
    }
    uint64_t g;
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.sleepers, 1);
    while ((g = atomic_load(&pool.gen)) == seen || (g & 1)) pthread_cond_wait(&pool.wake, &pool.lock);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.lock);
    return g;
}

static void *worker(void *arg) {
    const int part = (int)(intptr_t)arg;
    uint64_t seen = 0;
    for (;;) {
        const uint64_t g = wait_for_job(seen);
        seen = g;
        atomic_fetch_add(&pool.inside, 1);
        if (atomic_load(&pool.gen) == g && part < pool.n_parts) run_tasks(part);
        atomic_fetch_sub(&pool.inside, 1);
    }
    return NULL;
}

/* A child of fork() has none of the workers: it runs tasks in a loop. */
static void on_fork_child(void) { pool.n_threads = 1; }

/* The CPUs a container's quota gives the process (csvi_parallel_set_cpu_limit),
 * 0 for none. */
static _Atomic int cpu_limit;

void csvi_parallel_set_cpu_limit(int n) { atomic_store(&cpu_limit, n > 0 ? n : 0); }

/* OMP_NUM_THREADS (its first number) if set, else the CPUs this process may
 * run on, at most its quota's. */
static int wanted_threads(void) {
    const char *env = getenv("OMP_NUM_THREADS");
    long n = env ? strtol(env, NULL, 10) : 0;
    if (n <= 0) {
#ifdef CPU_COUNT
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
#endif
        const int limit = atomic_load(&cpu_limit);
        if (limit > 0 && limit < n) n = limit;
    }
    return n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : (int)n);
}

static void start_pool(void) {
    const int want = wanted_threads();
    pool.n_threads = 1;
    if (want < 2) return;
    pthread_atfork(NULL, NULL, on_fork_child);
    /* workers block every signal: Python handles them in its main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int part = 1; part < want; part++) {
        pthread_t tid;
        if (pthread_create(&tid, &attr, worker, (void *)(intptr_t)part) != 0) break;
        pool.n_threads = part + 1;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int csvi_parallel_threads(void) {
    pthread_once(&pool_once, start_pool);
    return pool.n_threads;
}

void csvi_parallel_tasks(int64_t n_tasks, int64_t over, int descending, csvi_task_fn fn,
                         void *ctx) {
    if (over >= 1 && n_tasks > 1) pthread_once(&pool_once, start_pool);
    const int wake = over >= CSVI_WAKE_OVER;
    /* one job at a time: a second caller (another Python thread, or a task
     * that is itself parallel) runs its tasks in a loop; so does a small job
     * while every worker sleeps */
    if (over < 1 || n_tasks < 2 || pool.n_threads < 2
        || (!wake && atomic_load(&pool.sleepers) == pool.n_threads - 1)
        || atomic_exchange(&pool.busy, 1)) {
        run_serial(n_tasks, descending, fn, ctx);
        return;
    }
    const uint64_t g = atomic_load(&pool.gen) + 1;
    atomic_store(&pool.gen, g);                        /* odd: setting up */
    SPIN_UNTIL(atomic_load(&pool.inside) == 0);
    const int parts = n_tasks < pool.n_threads ? (int)n_tasks : pool.n_threads;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_parts = parts;
    pool.descending = descending;
    for (int p = 0; p < parts; p++) {
        pool.range[p].start = n_tasks * p / parts;
        pool.range[p].end = n_tasks * (p + 1) / parts;
        atomic_store_explicit(&pool.range[p].next, pool.range[p].start, memory_order_relaxed);
    }
    atomic_store(&pool.done, 0);
    atomic_store(&pool.gen, g + 1);                    /* even: open */
    if (wake && atomic_load(&pool.sleepers)) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_tasks(0);
    SPIN_UNTIL(atomic_load(&pool.done) == n_tasks);
    atomic_store(&pool.busy, 0);
}

#else

void csvi_parallel_set_cpu_limit(int n) { (void)n; }

int csvi_parallel_threads(void) { return 1; }

void csvi_parallel_tasks(int64_t n_tasks, int64_t over, int descending, csvi_task_fn fn,
                         void *ctx) {
    (void)over;
    run_serial(n_tasks, descending, fn, ctx);
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
    csvi_parallel_tasks((n + CSVI_BLOCK - 1) / CSVI_BLOCK, CSVI_OVER(n, min_parallel), 0,
                        range_task, &job);
}
