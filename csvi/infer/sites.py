"""What a traced step touched: shared by eager SVI and the compiled program."""
from csvi import _core

__all__ = ["param_names"]

# names of the param sites the traced runs touched, in order (compiled:
# csvi/_messages.pxi; every eager step asks it)
param_names = _core.param_names
