"""`csvi.distributions.constraints`: Pyro's module path
(`from pyro.distributions import constraints`) for csvi.constraints; the
same constraint objects under both names."""
from csvi.constraints import *  # noqa: F401,F403
from csvi.constraints import __all__  # noqa: F401
