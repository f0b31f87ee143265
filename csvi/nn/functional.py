"""Functional forms of the layers (torch.nn.functional's names): each is a
few recorded tape ops, so a network is differentiated and compiled like any
other model code."""
import math

from csvi import _core

__all__ = ["linear", "relu", "sigmoid", "tanh", "softplus", "elu", "leaky_relu", "dropout"]

_OP_BERNOULLI_RS = _core.OPCODES["BERNOULLI_RS"]
_PROBS = (0,)  # iattr of BERNOULLI_RS: its input is a probability


def linear(input, weight, bias=None):
    """input @ weight.T + bias, with weight of shape (out_features, in_features)."""
    x, w = _core.astensor(input), _core.astensor(weight)
    if w.ndim != 2:
        raise ValueError(f"linear: weight must have 2 dims (out_features, in_features), "
                         f"got shape {tuple(w.shape)}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(x.shape)} does not match weight of "
                         f"shape {tuple(w.shape)}: the input's last dim must be "
                         f"in_features={w.shape[1]}")
    b = None if bias is None else _core.astensor(bias)
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"linear: bias of shape {tuple(b.shape)} does not match weight of "
                         f"shape {tuple(w.shape)}: it must have shape ({w.shape[0]},)")
    if x.ndim == 2:  # one DENSE record: dgemm, the bias added in its output pass
        return _core.dense(x, w, b)
    y = _core.matmul(x, _core.transpose(w))
    return y if b is None else y + b


def relu(input):
    """max(x, 0)."""
    return _core.relu(input)


def sigmoid(input):
    return _core.sigmoid(input)


def tanh(input):
    return _core.tanh(input)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold
    (torch's definition; pass threshold=math.inf for the smooth form throughout)."""
    beta, threshold = float(beta), float(threshold)
    if not beta > 0.0:
        raise ValueError(f"softplus: beta must be positive, got {beta}")
    x = _core.astensor(input)
    bx = x if beta == 1.0 else x * beta
    y = _core.softplus(bx)
    if beta != 1.0:
        y = y * (1.0 / beta)
    if math.isinf(threshold) and threshold > 0:
        return y
    return _core.where(bx > threshold, x, y)


def elu(input, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    x = _core.astensor(input)
    neg = _core.expm1(_core.clip(x, None, 0.0))
    return _core.relu(x) + (neg if float(alpha) == 1.0 else neg * float(alpha))


def leaky_relu(input, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise."""
    x = _core.astensor(input)
    return _core.where(x > 0.0, x, x * float(negative_slope))


def dropout(input, p=0.5, training=True):
    """In training, zero each element with probability p and scale the rest
    by 1 / (1 - p); otherwise the input itself.  The mask is a recorded draw
    from csvi's generator, so a compiled step draws a fresh one each step."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    x = _core.astensor(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = 1.0 - p
    mask = _core.apply(_OP_BERNOULLI_RS, (keep,), tuple(x.shape), False, _PROBS)
    return x * (mask * (1.0 / keep))
