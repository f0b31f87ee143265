# The random-number handle: one NumPy Generator whose bit generator the C
# kernels draw from, so a single seed makes every draw reproducible.
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
import random as _py_random

cdef object _generator = None
cdef bitgen_t *_bitgen = NULL


cdef _use_generator(gen):
    global _generator, _bitgen
    capsule = gen.bit_generator.capsule
    if not PyCapsule_IsValid(capsule, "BitGenerator"):
        raise RuntimeError("NumPy's bit generator capsule is not available")
    _bitgen = <bitgen_t *>PyCapsule_GetPointer(capsule, "BitGenerator")
    _generator = gen


def set_rng_seed(seed):
    """Seed csvi's generator (and Python's and NumPy's global ones, as Pyro does)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_rng_seed: seed must be a non-negative integer, got {seed!r}")
    _use_generator(np.random.Generator(np.random.PCG64(int(seed))))
    _py_random.seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))


def get_generator():
    """The numpy.random.Generator behind every csvi draw (e.g. for subsampling)."""
    return _generator


def set_generator(gen):
    """Make `gen` (a numpy.random.Generator) the source of every csvi draw."""
    if not isinstance(gen, np.random.Generator):
        raise TypeError(f"set_generator needs a numpy.random.Generator, got {type(gen).__name__}")
    _use_generator(gen)


_use_generator(np.random.default_rng())
