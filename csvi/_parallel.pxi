# csvi's worker pool (src_c/parallel.c): its size, and the cap a container's
# CPU quota sets on its default (csvi/cpu_quota.py).

cdef extern from "csvi_parallel.h":
    void csvi_parallel_set_cpu_limit(int n) nogil
    int csvi_parallel_threads() nogil


def _set_cpu_limit(int n):
    """Caps the pool's default size at n CPUs (0: no cap); no effect once
    the pool has started."""
    csvi_parallel_set_cpu_limit(n)


def _pool_threads():
    """The pool's threads, the caller included (starts the pool)."""
    return csvi_parallel_threads()
