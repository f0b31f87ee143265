"""Dropout: random zeroing in training mode, the identity in eval mode."""
from csvi.nn import functional as F
from csvi.nn.module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zero each element with probability p and scale the rest by 1 / (1 - p)
    while `training` (after `.train()`, the default); pass the input through
    after `.eval()`.  The mask is drawn from csvi's generator on the tape, so
    a compiled step draws a fresh mask every step."""

    def __init__(self, p=0.5):
        super().__init__()
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
