"""Linear: the dense layer y = x @ W.T + b, with torch's default initialisation."""
import math

import numpy as np

from csvi import _core
from csvi.nn import functional as F
from csvi.nn.module import Module, Parameter

__all__ = ["Linear"]


class Linear(Module):
    """y = x @ weight.T + bias; weight has shape (out_features, in_features).

    Weight and bias start uniform on (-1/sqrt(in_features), 1/sqrt(in_features))
    as torch.nn.Linear's, drawn from csvi's generator (weight first), so
    `csvi.set_rng_seed` reproduces them.

    `dtype=np.float32` (or `module.float()`, as in torch) multiplies in
    float32: the input and weight are rounded to float32 for sgemm (about
    2x faster than float64's dgemm here), and the products widened back.  The
    params, their gradients, the bias, the activation and the optimizer stay
    float64, so results differ from float64 by float32 rounding in the
    products only (torch's float32 layer rounds everything).  The default,
    None, is float64."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        for what, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or int(n) != n or n < 0:
                raise ValueError(f"Linear: {what} must be a nonnegative integer, got {n!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = _products_dtype(dtype, "Linear")
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
        gen = _core.get_generator()
        self.weight = Parameter(gen.uniform(-bound, bound, (self.out_features, self.in_features)))
        if bias:
            self.bias = Parameter(gen.uniform(-bound, bound, (self.out_features,)))
        else:
            self.register_parameter("bias", None)

    def _multiply_in(self, dtype):
        self.dtype = _products_dtype(dtype, self.describe())

    def forward(self, input):
        x = _core.astensor(input)
        self._check(x)
        if self.dtype == np.float64:
            return F.linear(x, self.weight, self.bias)
        return self._dense(x, None, 20.0)

    def _dense(self, x, activation, threshold):
        """One DENSE record in this layer's precision; an input of other than
        two dims goes through as a matrix of rows."""
        float32 = self.dtype == np.float32
        if x.ndim == 2:
            return _core.dense(x, self.weight, self.bias, activation, threshold, float32)
        rows = x.reshape((-1, self.in_features))
        y = _core.dense(rows, self.weight, self.bias, activation, threshold, float32)
        return y.reshape(tuple(x.shape[:-1]) + (self.out_features,))

    def forward_activated(self, input, activation):
        """`activation(self(input))` for an activation layer with a fused form
        (`activation.fused_activation`): one record for a matrix input, the
        bias and activation applied in the product's output pass."""
        x = _core.astensor(input)
        name = activation.fused_activation
        if name is None or x.ndim != 2:
            return activation(self(x))
        self._check(x)
        return self._dense(x, name, getattr(activation, "threshold", 20.0))

    def _check(self, x):
        """The input's width and the params' shapes, naming this layer."""
        weight, bias = self.weight, self.bias
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self.describe()}: input of shape {tuple(x.shape)} has "
                             f"{x.shape[-1] if x.ndim else 'no'} features in its last dim, but "
                             f"the layer takes in_features={self.in_features} "
                             f"(weight shape {tuple(weight.shape)})")
        expected = (self.out_features, self.in_features)
        if tuple(weight.shape) != expected:
            raise ValueError(f"{self.describe()}: weight has shape {tuple(weight.shape)}, "
                             f"expected {expected}")
        if bias is not None and tuple(bias.shape) != (self.out_features,):
            raise ValueError(f"{self.describe()}: bias has shape {tuple(bias.shape)}, "
                             f"expected ({self.out_features},)")

    def extra_repr(self):
        dtype = "" if self.dtype == np.float64 else f", dtype={self.dtype}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}{dtype}")


def _products_dtype(dtype, who):
    """np.float32 or np.float64 from a dtype-like (None: float64)."""
    try:
        dt = np.dtype("float64" if dtype is None else dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{who}: dtype must be float32 or float64 (the precision of its "
                        f"matrix products), got {dtype!r}")
    return dt
