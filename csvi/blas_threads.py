"""How many threads the BLAS that csvi calls (SciPy's OpenBLAS) may use.

Why: csvi splits its kernels over its own worker pool, and OpenBLAS keeps a
pool of its own whose threads spin for a while after every product.  With
both pools on the same few cores each spins on the cores the other needs (on
two cores the VAE's compiled step ran several times slower with OpenBLAS's
default threads than with one).  So, unless told otherwise, csvi sets SciPy's
OpenBLAS to one thread when it first loads it: products run on the calling
thread, between csvi's parallel passes, and the cores stay with one pool.

Override, in order of precedence:
- `set_blas_threads(n)` at any time;
- the environment variable `CSVI_BLAS_THREADS=n` (read when BLAS loads);
- an explicit `OPENBLAS_NUM_THREADS`, which csvi then leaves as it is.

Only SciPy's bundled OpenBLAS is controlled (NumPy's own BLAS and other
libraries are not touched); found by its exported `*openblas_set_num_threads`
on Linux, else through threadpoolctl when it is installed.  Where neither
works the BLAS keeps its own setting and `get_blas_threads()` returns None.
"""
import ctypes
import os

__all__ = ["get_blas_threads", "set_blas_threads"]

_SYMBOLS = ("scipy_openblas_set_num_threads", "openblas_set_num_threads")
_GET_SYMBOLS = ("scipy_openblas_get_num_threads", "openblas_get_num_threads")
_controls = None  # (get, set) once found; False when there is none


def _scipy_openblas_paths():
    """Files of the OpenBLAS libraries loaded from SciPy's package (Linux)."""
    import scipy
    root = os.path.dirname(os.path.abspath(scipy.__file__))
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[-1].strip() for line in f if "openblas" in line}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith(root + ".libs" + os.sep)
                  or p.startswith(root + os.sep))


def _find_controls():
    """(get, set) callables for SciPy's OpenBLAS threads, or None."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
    for path in _scipy_openblas_paths():
        lib = ctypes.CDLL(path)
        setter = next((getattr(lib, s) for s in _SYMBOLS if hasattr(lib, s)), None)
        getter = next((getattr(lib, s) for s in _GET_SYMBOLS if hasattr(lib, s)), None)
        if setter is not None and getter is not None:
            setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
            return getter, setter
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    import scipy
    root = os.path.dirname(os.path.abspath(scipy.__file__))
    for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        if os.path.abspath(lib.filepath).startswith(root):
            return lib.get_num_threads, lib.set_num_threads
    return None


def _get_controls():
    global _controls
    if _controls is None:
        _controls = _find_controls() or False
    return _controls or None


def _env_threads():
    value = os.environ.get("CSVI_BLAS_THREADS")
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"CSVI_BLAS_THREADS must be a positive integer, got {value!r}")
    return n


def apply_default():
    """csvi's policy, applied once when csvi first loads SciPy's BLAS:
    CSVI_BLAS_THREADS if set, else one thread unless OPENBLAS_NUM_THREADS
    says otherwise."""
    n = _env_threads()
    if n is None and "OPENBLAS_NUM_THREADS" in os.environ:
        return
    controls = _get_controls()
    if controls is not None:
        controls[1](1 if n is None else n)


def set_blas_threads(n):
    """Let SciPy's OpenBLAS (csvi's matrix products) use `n` threads."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_blas_threads: n must be a positive integer, got {n!r}")
    controls = _get_controls()
    if controls is None:
        raise RuntimeError("set_blas_threads: cannot find SciPy's OpenBLAS (install "
                           "threadpoolctl, or set OPENBLAS_NUM_THREADS before starting)")
    controls[1](n)


def get_blas_threads():
    """The threads SciPy's OpenBLAS may use, or None when csvi cannot tell."""
    controls = _get_controls()
    return None if controls is None else int(controls[0]())
