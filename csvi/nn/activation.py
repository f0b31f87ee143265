"""Activation layers: parameter-free Modules around csvi.nn.functional, so
they can sit in a Sequential and print in a network's repr.

`fused_activation` names the activation a fused dense record can apply in
its output pass (csvi._core.DENSE_ACTIVATIONS), or is None: Sequential then
runs a Linear and the activation after it as one record."""
from csvi.nn import functional as F
from csvi.nn.module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "Softplus", "ELU", "LeakyReLU"]


class ReLU(Module):
    """max(x, 0)."""

    fused_activation = "relu"

    def forward(self, input):
        return F.relu(input)


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    fused_activation = "sigmoid"

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    fused_activation = "tanh"

    def forward(self, input):
        return F.tanh(input)


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold (torch's)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        if not float(beta) > 0.0:
            raise ValueError(f"Softplus: beta must be positive, got {beta!r}")
        self.beta, self.threshold = float(beta), float(threshold)

    @property
    def fused_activation(self):
        return "softplus" if self.beta == 1.0 else None  # the fused form has beta 1

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class ELU(Module):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    fused_activation = None

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, input):
        return F.elu(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise."""

    fused_activation = None

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"
