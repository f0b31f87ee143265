"""`csvi.distributions.transforms`: Pyro's module path
(`from pyro.distributions import transforms`) for csvi.transforms; the same
transform classes and registries under both names."""
from csvi.transforms import *  # noqa: F401,F403
from csvi.transforms import __all__  # noqa: F401
