# The random-number handle: each thread's NumPy Generator, whose bit generator
# the C kernels draw from, so a single seed makes every draw of that thread
# reproducible whatever other threads do.  A new thread starts with a fresh
# generator seeded from the OS (as numpy.random.default_rng()).
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
import random as _py_random

cdef class _ThreadState

# Per op code: whether its kernel draws (those run under the generator's lock).
cdef bytes _OP_DRAWS = bytes([(csvi_kernels[i].flags & CSVI_DRAWS) != 0
                              for i in range(CSVI_OP_COUNT)])


cdef _use_generator(_ThreadState st, gen):
    capsule = gen.bit_generator.capsule
    if not PyCapsule_IsValid(capsule, "BitGenerator"):
        raise RuntimeError("NumPy's bit generator capsule is not available")
    st.bitgen = <bitgen_t *>PyCapsule_GetPointer(capsule, "BitGenerator")
    st.acquire = gen.bit_generator.lock.acquire
    st.release = gen.bit_generator.lock.release
    st.generator = gen


def set_rng_seed(seed):
    """Seed this thread's csvi generator (and Python's and NumPy's global
    ones, as Pyro does; those are shared by all threads)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_rng_seed: seed must be a non-negative integer, got {seed!r}")
    _use_generator(_thread_state(), np.random.Generator(np.random.PCG64(int(seed))))
    _py_random.seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))


def get_generator():
    """The numpy.random.Generator behind this thread's csvi draws (e.g. for
    subsampling)."""
    return _thread_state().generator


def set_generator(gen):
    """Make `gen` (a numpy.random.Generator) the source of this thread's csvi
    draws.  A generator current in another thread is refused: two threads
    drawing from one stream would make neither reproducible."""
    if not isinstance(gen, np.random.Generator):
        raise TypeError(f"set_generator needs a numpy.random.Generator, got {type(gen).__name__}")
    cdef _ThreadState st = _thread_state()
    cdef _ThreadState other
    for other in list(_all_states):
        if other is not st and other.generator is not None \
                and other.generator.bit_generator is gen.bit_generator:
            raise ValueError("set_generator: this generator is csvi's generator in another "
                             "thread; give each thread its own (e.g. from "
                             "numpy.random.SeedSequence(seed).spawn(n))")
    _use_generator(st, gen)
