"""How many blocks csvi splits each large dense product into, each a
one-thread BLAS call on csvi's own pool (src_c/ops_nn.c's gemm).

Why: on two cores NumPyro's step uses both; OpenBLAS's own threads would spin
beside csvi's pool (csvi keeps them at one, csvi/blas_threads.py), so the
second core is csvi's pool's to give.  Why opt-in (default 1): every block
repacks one operand whole (on one thread, a few percent of the VAE step),
and on a busy machine a block waits for a descheduled worker (the step was
~1.2x slower under load, RESULTS.md session 24).  Set it on a machine known
to be quiet: `set_product_tasks(2)` or `CSVI_PRODUCT_TASKS=2`.

The products' bits depend on this setting (as on a BLAS's own thread count:
halving a product changes OpenBLAS's bits for many shapes), never on the
pool's thread count (OMP_NUM_THREADS).
"""
from csvi import _core

__all__ = ["get_product_tasks", "set_product_tasks"]


def set_product_tasks(n):
    """Split each large dense product into up to `n` blocks (1 to 8) over
    csvi's pool."""
    _core._set_product_tasks(n)


def get_product_tasks():
    """The current setting (1: products unsplit)."""
    return _core._get_product_tasks()
