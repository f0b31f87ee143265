"""Compiled == eager, shared by csvi's test files.

    from compiled_check import assert_compiled_matches_eager

runs the same SVI from the same seed eagerly and compiled and compares the
losses and every param (unconstrained) of the store.
"""
import numpy as np

import csvi
from csvi.infer import SVI


def assert_compiled_matches_eager(model, guide, optim, elbo, args=(), steps=20, seed=5,
                                  rtol=1e-12, atol=0.0):
    """`guide`, `optim` and `elbo` are factories (called once per run, so each
    run starts afresh); returns the eager run's (losses, {param: value})."""
    runs = []
    for compile in (False, True):
        csvi.clear_param_store()
        csvi.set_rng_seed(seed)
        svi = SVI(model, guide(), optim(), elbo())
        losses = svi.run(steps, *args, compile=compile, progress_bar=False).losses
        store = csvi.get_param_store()
        runs.append((np.asarray(losses), {n: store.unconstrained(n).copy()
                                          for n in store.names()}))
    (eager_losses, eager), (losses, params) = runs
    np.testing.assert_allclose(losses, eager_losses, rtol=rtol, atol=atol)
    assert sorted(params) == sorted(eager)
    for name in eager:
        np.testing.assert_allclose(params[name], eager[name], rtol=rtol, atol=atol,
                                   err_msg=f"param {name!r}")
    return runs[0]
