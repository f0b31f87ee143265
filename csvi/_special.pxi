# Special-function ops (src_c/special.def, kernels in src_c/ops_special.c):
# the functions families compose their log-densities from, each
# differentiable.  NumPy calls the matching scipy.special ufuncs on a Tensor
# through __array_ufunc__ (see _numpy_protocol.pxi), so
# scipy.special.gammaln(t) records LGAMMA.


def lgamma(x):
    """log|Gamma(x)| (scipy.special.gammaln, torch.lgamma)."""
    return unary(OP_LGAMMA, x)


def digamma(x):
    """d/dx log Gamma(x) (scipy.special.psi, torch.digamma)."""
    return unary(OP_DIGAMMA, x)


def polygamma(n, x):
    """The n-th derivative of digamma, for n = 0 (digamma) or 1 (trigamma);
    torch.polygamma(n, x)."""
    if n == 0:
        return unary(OP_DIGAMMA, x)
    if n == 1:
        return unary(OP_TRIGAMMA, x)
    raise ValueError(f"csvi.polygamma: n must be 0 or 1, got {n!r}")


def log_sigmoid(x):
    """log(1 / (1 + e**-x)), stable at both ends (scipy.special.log_expit)."""
    return unary(OP_LOG_SIGMOID, x)


def logit(x):
    """log(x / (1 - x)), the inverse of sigmoid (scipy.special.logit)."""
    return unary(OP_LOGIT, x)


def erf(x):
    return unary(OP_ERF, x)


def erfc(x):
    """1 - erf(x), without cancellation for large x."""
    return unary(OP_ERFC, x)


def ndtr(x):
    """The standard normal CDF (scipy.special.ndtr)."""
    return unary(OP_NDTR, x)


def log_ndtr(x):
    """log of the standard normal CDF, accurate in both tails."""
    return unary(OP_LOG_NDTR, x)


def i0e(x):
    """e**-|x| I0(x), the exponentially scaled modified Bessel function of order 0."""
    return unary(OP_I0E, x)


def i1e(x):
    """e**-|x| I1(x), the exponentially scaled modified Bessel function of order 1."""
    return unary(OP_I1E, x)


def xlogy(x, y):
    """x * log(y), 0 where x is 0 (scipy.special.xlogy, torch.xlogy)."""
    return binary(OP_XLOGY, x, y)


def xlog1py(x, y):
    """x * log1p(y), 0 where x is 0 (scipy.special.xlog1py)."""
    return binary(OP_XLOG1PY, x, y)


def betaln(a, b):
    """log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b), without the
    cancellation of that difference when a >> b (scipy.special.betaln)."""
    return binary(OP_BETALN, a, b)
