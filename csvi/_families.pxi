# Ops behind the existing families' cdf/icdf (src_c/families.def, kernels in
# src_c/ops_families.c), each differentiable.


def ndtri(x):
    """The standard normal quantile, the inverse of ndtr (scipy.special.ndtri)."""
    return unary(OP_NDTRI, x)


def arctan(x):
    """numpy.arctan (torch.atan)."""
    return unary(OP_ARCTAN, x)


def tan(x):
    """numpy.tan (torch.tan)."""
    return unary(OP_TAN, x)
