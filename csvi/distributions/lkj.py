"""LKJCholesky: the LKJ law on correlation matrices, over their Cholesky
factors (torch/Pyro's parameterization).  log_prob composes tape ops;
sampling is the onion method (Beta draws for the squared norm of each row's
off-diagonal part, normals for its direction), vectorized over rows as
torch and NumPyro do it, with the Beta laws of the paper (NumPyro's).
"""
import math

import numpy as np

from csvi import _core, constraints, linalg
from csvi.distributions.continuous import Beta
from csvi.distributions.draws import standard_normal
from csvi.distributions.distribution import Distribution
from csvi.distributions.transformed import TransformedDistribution
from csvi.distributions.validation import as_count, as_real, check_args, validate_default
from csvi.transforms import CorrMatrixCholeskyTransform

__all__ = ["LKJ", "LKJCholesky"]

_TINY = float(np.finfo(np.float64).tiny)


class LKJCholesky(Distribution):
    """LKJCholesky(dim, concentration=1.0): the Cholesky factor L of a dim x dim
    correlation matrix C = L L^T with density proportional to
    det(C) ** (concentration - 1) (concentration 1: uniform over correlation
    matrices; larger: closer to the identity).  The density is with respect
    to the entries of L below the diagonal.  Batch shape: concentration's."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky
    has_rsample = False

    def __init__(self, dim, concentration=1.0, validate_args=None):
        self.dim = dim = as_count(dim, "LKJCholesky", "dim", low=2)
        self.concentration = conc = as_real(concentration, "LKJCholesky", "concentration")
        self._validate = validate_default(validate_args)
        if self._validate:
            check_args(self, ("concentration",), (conc,))
        self._batch_shape = conc.shape
        self._event_shape = (dim, dim)
        # the onion method's Beta laws for the squared norm of row i's off-diagonal
        # part: Beta(i / 2, c + (d - 2) / 2 - (i - 1) / 2) (LKJ 2009, sec. 3.2; row 0
        # has none and takes row 1's law, unused).  torch writes i - 1/2 for the
        # first argument, which makes the correlations of rows >= 2 too wide.
        offset = 0.5 * np.concatenate([[0.0], np.arange(dim - 1.0)])
        marginal = conc + 0.5 * (dim - 2)
        self._beta = Beta(offset + 0.5, _core.expand_dims(marginal, -1) - offset,
                          validate_args=False)

    def _draw(self, shape, reparameterized):
        d = self.dim
        shape = tuple(shape)
        # row i of L: sqrt(y_i) times a uniform direction in its first i coordinates
        y = self._beta._draw(shape[:-1], False)
        below = np.tri(d, d, -1, dtype=bool)
        u = _core.where(below, standard_normal(shape), 0.0)
        norm = _core.sqrt(_core.sum(u * u, -1, True))
        first_row = np.arange(d).reshape(d, 1) == 0
        w = _core.sqrt(_core.expand_dims(y, -1)) * u / _core.where(first_row, 1.0, norm)
        diag = _core.sqrt(_core.clip(1.0 - _core.sum(w * w, -1, True), _TINY, None))
        return _core.where(np.eye(d, dtype=bool), diag, w)

    def log_prob(self, value):
        value = self._as_value(value)
        d = self.dim
        shape = self._value_shape(value.shape)
        conc = self.concentration
        idx = np.arange(1, d)
        log_diag = _core.log(linalg.diagonal(value)[..., 1:])              # (..., d - 1)
        # exponent of L_ii (1-based i = 2..d): 2 (concentration - 1) + d - i
        order = 2.0 * _core.expand_dims(conc - 1.0, -1) + (d - 1.0 - idx)
        unnormalized = _core.sum(order * log_diag, -1)
        lp = unnormalized - self._log_normalizer()
        return lp if lp.shape == shape[:-2] else lp + np.zeros(shape[:-2])

    def _log_normalizer(self):
        """log of the normalizing constant, a function of concentration only
        (Lewandowski, Kurowicka and Joe 2009, p. 1999, as torch writes it)."""
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        # multivariate lgamma of (alpha - 1/2) in dm1 dims, over lgamma(alpha) ** dm1
        halves = 0.5 * np.arange(dm1)
        mvlgamma = (_core.sum(_core.lgamma(_core.expand_dims(alpha - 0.5, -1) - halves), -1)
                    + 0.25 * dm1 * (dm1 - 1) * math.log(math.pi))
        return 0.5 * dm1 * math.log(math.pi) + mvlgamma - dm1 * _core.lgamma(alpha)

    def __repr__(self):
        return f"LKJCholesky(dim={self.dim}, concentration={self.concentration!r})"


class LKJ(TransformedDistribution):
    """LKJ(dim, concentration=1.0): the LKJ law over dim x dim correlation
    matrices themselves (Pyro's LKJ), density proportional to
    det(C) ** (concentration - 1) with respect to the entries below the
    diagonal: LKJCholesky pushed through L -> L L^T."""

    arg_constraints = {"concentration": constraints.positive}

    def __init__(self, dim, concentration=1.0, validate_args=None):
        base = LKJCholesky(dim, concentration, validate_args=validate_args)
        self.dim, self.concentration = base.dim, base.concentration
        super().__init__(base, CorrMatrixCholeskyTransform().inv, validate_args=validate_args)

    @property
    def mean(self):
        """The identity: each correlation's law is symmetric about 0."""
        return _core.astensor(np.broadcast_to(np.eye(self.dim), self._batch_shape
                                              + self._event_shape).copy())

    def __repr__(self):
        return f"LKJ(dim={self.dim}, concentration={self.concentration!r})"
