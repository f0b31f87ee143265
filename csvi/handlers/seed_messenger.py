"""seed: run with a seeded generator (Pyro's `poutine.seed`)."""
import numpy as np

from csvi import _core
from csvi.handlers.messenger import Messenger

__all__ = ["SeedMessenger"]


class SeedMessenger(Messenger):
    """Runs with csvi's generator seeded by `rng_seed`, restoring the previous
    generator afterwards, so the wrapped draws are reproducible.

        >>> import csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> draw = lambda: float(csvi.sample("z", dist.Normal(0.0, 1.0)))
        >>> handlers.seed(draw, rng_seed=3)() == handlers.seed(draw, rng_seed=3)()
        True
    """

    def __init__(self, fn=None, rng_seed=None):
        super().__init__(fn)
        if rng_seed is None or isinstance(rng_seed, bool) or int(rng_seed) != rng_seed \
                or rng_seed < 0:
            raise ValueError(f"seed: rng_seed must be a nonnegative integer, got {rng_seed!r}")
        self.rng_seed = int(rng_seed)
        self._saved = []

    def __enter__(self):
        self._saved.append(_core.get_generator())
        _core.set_generator(np.random.Generator(np.random.PCG64(self.rng_seed)))
        return super().__enter__()

    def __exit__(self, *exc):
        _core.set_generator(self._saved.pop())
        return super().__exit__(*exc)
