"""How many blocks csvi splits each large dense product into, each a
one-thread BLAS call on csvi's own pool (src_c/ops_nn.c's gemm).

Why: on two cores NumPyro's step uses both; OpenBLAS's own threads would spin
beside csvi's pool (csvi keeps them at one, csvi/blas_threads.py), so the
second core is csvi's pool's to give.  The default is 2: on a quiet 2-core
machine the VAE step ran 1.38x faster split in two (17.2 vs 23.8 ms,
RESULTS.md session 24), as torch and XLA use the cores by default.  Its
costs: every block repacks one operand whole (on one thread, a few percent
of the step), and on a busy machine a block waits for a descheduled worker
(the step was 1.15-1.4x slower under load).  A backward pass's two
products (the input's and the weight's gradients) share the setting in one
parallel region: with 2, each is one call on its own thread (src_c/ops_nn.c,
vjp_products).  `set_product_tasks(1)` or `CSVI_PRODUCT_TASKS=1` keeps each
product one call.

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
    """The current setting (1: products unsplit; the default is 2)."""
    return _core._get_product_tasks()
