"""Transforms: differentiable maps with their log|det J|, and the two
registries from unconstrained reals onto a constraint, as in Pyro:

- `biject_to(constraint)`: a bijection (stick-breaking for the simplex), for
  whatever needs a density in unconstrained space (autoguides).
- `transform_to(constraint)`: any map onto the constraint (softmax for the
  simplex), which the param store uses: a param lives unconstrained as x and
  the model sees y = transform_to(constraint)(x), so an optimizer can move x
  anywhere and y never leaves its constraint.  The same optimizer then takes
  the same path as in Pyro.

A transform reads `domain.event_dim` dims of its input as one value and
writes `codomain.event_dim` dims (CorrCholeskyTransform: a vector in, a
matrix out); `event_dim` is the common number when they agree, as in torch.
Forward maps and log|det J| are tape ops, so gradients flow through them;
`t.inv(y)` maps a constrained value back (how a param's unconstrained value
is initialized) and clamps boundary values so the result is finite, as Pyro
does.  Names and conventions follow torch.distributions.transforms.
"""
import functools
import math

import numpy as np

from csvi import _core, constraints, linalg

__all__ = [
    "Transform", "ExpTransform", "SigmoidTransform", "SoftplusTransform", "AffineTransform",
    "ComposeTransform", "StickBreakingTransform", "SoftmaxTransform", "IdentityTransform",
    "IndependentTransform", "TanhTransform", "PowerTransform", "CorrCholeskyTransform",
    "LowerCholeskyTransform", "SoftplusLowerCholeskyTransform", "UnitLowerCholeskyTransform",
    "OrderedTransform", "LowerCholeskyAffine", "CholeskyTransform",
    "CorrMatrixCholeskyTransform", "ConstraintRegistry",
    "biject_to", "transform_to",
]

_TINY = float(np.finfo(np.float64).tiny)
_EPS = float(np.finfo(np.float64).eps)
_LOG2 = math.log(2.0)


def _shape(x):
    return _core.astensor(x).shape


def _widened(constraint, event_dim):
    """`constraint` read over `event_dim` rightmost dims (at least its own)."""
    extra = event_dim - constraint.event_dim
    return constraints.independent(constraint, extra) if extra > 0 else constraint


def _sum_rightmost(x, n):
    """Sum a Tensor over its n rightmost dims."""
    x = _core.astensor(x)
    if n <= 0:
        return x
    if n > x.ndim:
        raise ValueError(f"cannot sum {n} rightmost dims of a tensor of shape {x.shape}")
    return _core.sum(x, axis=tuple(range(-n, 0)))


class Transform:
    """A bijection y = t(x).  Subclasses define `_call`, `_inverse` and
    `log_abs_det_jacobian(x, y)` (summed over the `domain.event_dim`
    rightmost dims of x); `domain` and `codomain` are constraints."""

    domain = constraints.real
    codomain = constraints.real
    bijective = True

    @property
    def event_dim(self):
        """Dims of one value, when input and output agree (torch's rule)."""
        if self.domain.event_dim == self.codomain.event_dim:
            return self.domain.event_dim
        raise ValueError(f"{self!r} maps {self.domain.event_dim}-dim values to "
                         f"{self.codomain.event_dim}-dim ones; use .domain.event_dim or "
                         ".codomain.event_dim")

    def __call__(self, x):
        return self._call(x)

    @property
    def inv(self):
        """The inverse transform; `t.inv(y)` maps y back to the domain."""
        return _InverseTransform(self)

    def _call(self, x):
        raise NotImplementedError

    def _inverse(self, y):
        raise NotImplementedError

    def log_abs_det_jacobian(self, x, y):
        raise NotImplementedError

    def forward_shape(self, shape):
        """Shape of t(x) for x of `shape`."""
        return tuple(shape)

    def inverse_shape(self, shape):
        """Shape of t.inv(y) for y of `shape`."""
        return tuple(shape)

    def __repr__(self):
        return f"{type(self).__name__}()"


class _InverseTransform(Transform):
    """t.inv: the same bijection read backwards."""

    def __init__(self, base):
        self.base = base
        self.domain = base.codomain
        self.codomain = base.domain
        self.bijective = base.bijective

    @property
    def inv(self):
        return self.base

    def _call(self, x):
        return self.base._inverse(x)

    def _inverse(self, y):
        return self.base._call(y)

    def log_abs_det_jacobian(self, x, y):
        return -self.base.log_abs_det_jacobian(y, x)

    def forward_shape(self, shape):
        return self.base.inverse_shape(shape)

    def inverse_shape(self, shape):
        return self.base.forward_shape(shape)

    def __repr__(self):
        return f"{self.base!r}.inv"


class IdentityTransform(Transform):
    """y = x (the reals need no transform)."""

    def _call(self, x):
        return _core.astensor(x)

    def _inverse(self, y):
        return _core.astensor(y)

    def log_abs_det_jacobian(self, x, y):
        return _core.astensor(np.zeros(_shape(x)))


class ExpTransform(Transform):
    """y = exp(x), onto the positive reals; the inverse clamps y to the
    smallest positive double so log(0) stays finite."""

    codomain = constraints.positive

    def _call(self, x):
        return _core.exp(x)

    def _inverse(self, y):
        return _core.log(_core.clip(y, _TINY, None))

    def log_abs_det_jacobian(self, x, y):
        return _core.astensor(x)


class SigmoidTransform(Transform):
    """y = sigmoid(x), onto (0, 1), clamped to [tiny, 1 - eps] like torch so
    that y never rounds to an endpoint and the inverse stays finite."""

    codomain = constraints.unit_interval

    def _call(self, x):
        return _core.clip(_core.sigmoid(x), _TINY, 1.0 - _EPS)

    def _inverse(self, y):
        y = _core.clip(y, _TINY, 1.0 - _EPS)
        return _core.log(y) - _core.log1p(-y)

    def log_abs_det_jacobian(self, x, y):
        # log sigmoid'(x) = log sigmoid(x) + log sigmoid(-x), each a softplus.
        return -_core.softplus(-_core.astensor(x)) - _core.softplus(x)


class SoftplusTransform(Transform):
    """y = log(1 + exp(x)), onto the positive reals (grows linearly, unlike exp)."""

    codomain = constraints.positive

    def _call(self, x):
        return _core.softplus(x)

    def _inverse(self, y):
        y = _core.clip(y, _TINY, None)
        return y + _core.log(-_core.expm1(-y))     # log(expm1(y)) without overflow

    def log_abs_det_jacobian(self, x, y):
        return -_core.softplus(-_core.astensor(x))


class AffineTransform(Transform):
    """y = loc + scale * x; loc and scale may be Tensors (gradients flow to
    them).  `event_dim` sets how many rightmost dims log|det J| sums over."""

    def __init__(self, loc, scale, event_dim=0):
        if not isinstance(scale, _core.Tensor) and np.any(np.asarray(scale) == 0):
            raise ValueError(f"AffineTransform: scale must be nonzero, got {scale!r}")
        self.loc = loc
        self.scale = scale
        if event_dim:
            self.domain = constraints.independent(constraints.real, event_dim)
            self.codomain = constraints.independent(constraints.real, event_dim)

    def _call(self, x):
        return self.loc + self.scale * _core.astensor(x)

    def _inverse(self, y):
        return (_core.astensor(y) - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        log_scale = _core.log(_core.abs_(self.scale))
        shape = _core.broadcast_shapes(_shape(x), _shape(log_scale))
        return _sum_rightmost(log_scale + np.zeros(shape), self.event_dim)

    def forward_shape(self, shape):
        """x's shape broadcast with loc's and scale's (as torch)."""
        return _core.broadcast_shapes(_core.broadcast_shapes(tuple(shape), np.shape(
            _core.value_of(self.loc))), np.shape(_core.value_of(self.scale)))

    inverse_shape = forward_shape

    def __repr__(self):
        return f"AffineTransform(loc={self.loc!r}, scale={self.scale!r})"


class ComposeTransform(Transform):
    """parts[-1](... parts[0](x)); log|det J| adds the parts' terms, each summed
    over the dims that are event dims of the whole but not of the part.  The
    whole's domain and codomain take as many event dims as any part needs,
    counted through the parts' changes of rank (torch's rule)."""

    def __init__(self, parts):
        self.parts = list(parts)
        if not self.parts:
            raise ValueError("ComposeTransform: needs at least one transform")
        for part in self.parts:
            if not isinstance(part, Transform):
                raise TypeError(f"ComposeTransform: parts must be csvi transforms, got "
                                f"{type(part).__name__} {part!r}")
        event_dim = self.parts[-1].codomain.event_dim
        for part in reversed(self.parts):
            event_dim += part.domain.event_dim - part.codomain.event_dim
            event_dim = max(event_dim, part.domain.event_dim)
        self.domain = _widened(self.parts[0].domain, event_dim)
        event_dim = self.parts[0].domain.event_dim
        for part in self.parts:
            event_dim += part.codomain.event_dim - part.domain.event_dim
            event_dim = max(event_dim, part.codomain.event_dim)
        self.codomain = _widened(self.parts[-1].codomain, event_dim)
        self.bijective = all(p.bijective for p in self.parts)

    def _call(self, x):
        for part in self.parts:
            x = part(x)
        return x

    def _inverse(self, y):
        for part in reversed(self.parts):
            y = part.inv(y)
        return y

    def log_abs_det_jacobian(self, x, y):
        xs = [x]
        for part in self.parts[:-1]:
            xs.append(part(xs[-1]))
        ys = xs[1:] + [y]
        total = None
        event_dim = self.domain.event_dim
        for part, xi, yi in zip(self.parts, xs, ys):
            term = _sum_rightmost(part.log_abs_det_jacobian(xi, yi),
                                  event_dim - part.domain.event_dim)
            event_dim += part.codomain.event_dim - part.domain.event_dim
            total = term if total is None else total + term
        return total

    def forward_shape(self, shape):
        for part in self.parts:
            shape = part.forward_shape(shape)
        return shape

    def inverse_shape(self, shape):
        for part in reversed(self.parts):
            shape = part.inverse_shape(shape)
        return shape

    def __repr__(self):
        return f"ComposeTransform({self.parts!r})"


class StickBreakingTransform(Transform):
    """R^(K-1) -> K-simplex along the last dim (torch/Pyro's convention: piece
    i takes sigmoid(x_i - log(K-1-i)) of the stick left, so x = 0 maps to the
    uniform vector).  Forward and log|det J| are C ops (src_c/ops_transforms.c)."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def _call(self, x):
        x = _core.astensor(x)
        if x.ndim < 1:
            raise ValueError("StickBreakingTransform: input must have at least 1 dim, got a scalar")
        m = x.shape[-1]
        return _core.apply(_core.OPCODES["STICK_BREAKING"], (x,), x.shape[:-1] + (m + 1,),
                           iattr=(m,))

    def _inverse(self, y):
        if isinstance(y, _core.Tensor) and y.requires_grad:
            return self._inverse_tensor(y)
        y = np.asarray(_core.value_of(y), dtype=np.float64)
        if y.ndim < 1 or y.shape[-1] < 1:
            raise ValueError(f"StickBreakingTransform.inv: expected a (..., K) simplex "
                             f"value with K >= 1, got shape {y.shape}")
        m = y.shape[-1] - 1
        # The stick left after piece i is the sum of the later pieces: exact for
        # a tiny remainder, where 1 - cumsum would cancel to 0.
        rest = np.cumsum(y[..., :0:-1], axis=-1)[..., ::-1]
        head = np.maximum(y[..., :-1], _TINY)
        rest = np.maximum(rest, _TINY)
        offset = np.log(np.arange(m, 0, -1, dtype=np.float64))
        return _core.astensor(np.log(head) - np.log(rest) + offset)

    def _inverse_tensor(self, y):
        if y.ndim < 1 or y.shape[-1] < 1:
            raise ValueError(f"StickBreakingTransform.inv: expected a (..., K) simplex "
                             f"value with K >= 1, got shape {y.shape}")
        m = y.shape[-1] - 1
        tail_sum = np.triu(np.ones((m, m))).T            # [j, i] = 1 where j >= i
        rest = _core.clip(_core.matmul(y[..., 1:], tail_sum), _TINY, None)
        head = _core.clip(y[..., :-1], _TINY, None)
        offset = np.log(np.arange(m, 0, -1, dtype=np.float64))
        return _core.log(head) - _core.log(rest) + offset

    def log_abs_det_jacobian(self, x, y):
        x = _core.astensor(x)
        m = x.shape[-1]
        return _core.apply(_core.OPCODES["STICK_BREAKING_LDJ"], (x,), x.shape[:-1], iattr=(m,))

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("StickBreakingTransform: shape must have at least 1 dim")
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        if len(shape) < 1 or shape[-1] < 1:
            raise ValueError(f"StickBreakingTransform: a simplex shape needs a last dim >= 1, "
                             f"got {tuple(shape)}")
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class SoftmaxTransform(Transform):
    """R^K -> K-simplex along the last dim: y = exp(x) / sum(exp(x)) (torch's
    SoftmaxTransform, Pyro's transform_to(simplex)).  Not a bijection (adding
    a constant to x leaves y unchanged), so it has no log|det J|; it acts
    almost coordinate-wise, which suits optimizers.  The inverse is log(y)
    (clamped at the smallest positive double), so an unnormalized positive y
    comes back normalized: softmax(log y) = y / sum(y)."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = False

    def _call(self, x):
        x = _core.astensor(x)
        if x.ndim < 1:
            raise ValueError("SoftmaxTransform: input must have at least 1 dim, got a scalar")
        return _core.exp(x - _core.logsumexp(x, -1, True))

    def _inverse(self, y):
        y = _core.astensor(y)
        if y.ndim < 1:
            raise ValueError("SoftmaxTransform.inv: expected a (..., K) simplex value, "
                             "got a scalar")
        return _core.log(_core.clip(y, _TINY, None))

    def log_abs_det_jacobian(self, x, y):
        raise NotImplementedError("SoftmaxTransform is not a bijection and has no log|det J|; "
                                  "use biject_to(constraints.simplex) (stick-breaking) for a "
                                  "density in unconstrained space")


class IndependentTransform(Transform):
    """`base` with `reinterpreted_batch_ndims` more rightmost dims treated as one
    event: log|det J| also sums over them."""

    def __init__(self, base_transform, reinterpreted_batch_ndims):
        self.base_transform = base_transform
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.bijective = base_transform.bijective
        self.domain = constraints.independent(base_transform.domain, reinterpreted_batch_ndims)
        self.codomain = constraints.independent(base_transform.codomain, reinterpreted_batch_ndims)

    def _call(self, x):
        return self.base_transform(x)

    def _inverse(self, y):
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x, y):
        return _sum_rightmost(self.base_transform.log_abs_det_jacobian(x, y),
                              self.reinterpreted_batch_ndims)

    def forward_shape(self, shape):
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape):
        return self.base_transform.inverse_shape(shape)

    def __repr__(self):
        return f"IndependentTransform({self.base_transform!r}, {self.reinterpreted_batch_ndims})"


class TanhTransform(Transform):
    """y = tanh(x), onto (-1, 1).  log|det J| = 2 (log 2 - x - softplus(-2x)),
    finite for any x; the inverse clamps |y| below 1 so atanh stays finite."""

    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x):
        return _core.tanh(x)

    def _inverse(self, y):
        y = _core.clip(y, -1.0 + _EPS, 1.0 - _EPS)
        return 0.5 * (_core.log1p(y) - _core.log1p(-y))

    def log_abs_det_jacobian(self, x, y):
        x = _core.astensor(x)
        return 2.0 * (_LOG2 - x - _core.softplus(-2.0 * x))


class PowerTransform(Transform):
    """y = x ** exponent on the positive reals; `exponent` (nonzero) may be a
    Tensor and broadcasts with x.  log|det J| = log|exponent| + (exponent - 1)
    log x, which stays accurate where exponent * y / x would overflow."""

    domain = constraints.positive
    codomain = constraints.positive

    def __init__(self, exponent):
        if not isinstance(exponent, _core.Tensor):
            exponent = np.asarray(exponent, dtype=np.float64)
            if np.any(exponent == 0) or not np.all(np.isfinite(exponent)):
                raise ValueError(f"PowerTransform: exponent must be finite and nonzero, "
                                 f"got {exponent.tolist()!r}")
            if exponent.ndim == 0:
                exponent = float(exponent)
        self.exponent = exponent

    def _call(self, x):
        return _core.power(x, self.exponent)

    def _inverse(self, y):
        return _core.power(_core.clip(y, _TINY, None), 1.0 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        return _core.log(_core.abs_(self.exponent)) + (self.exponent - 1.0) * _core.log(x)

    def forward_shape(self, shape):
        return _core.broadcast_shapes(tuple(shape), _shape(self.exponent))

    def inverse_shape(self, shape):
        return _core.broadcast_shapes(tuple(shape), _shape(self.exponent))

    def __repr__(self):
        return f"PowerTransform(exponent={self.exponent!r})"


def _tril_size(n, what):
    """D for a vector of n = D (D - 1) / 2 entries below a diagonal."""
    d = int(round((1 + math.sqrt(1 + 8 * n)) / 2))
    if d * (d - 1) // 2 != n:
        raise ValueError(f"{what}: a vector of {n} entries is not the strict lower triangle "
                         f"of a square matrix (D (D - 1) / 2 entries for some D)")
    return d


def _strict_lower(d):
    """(rows, cols) of the entries below the diagonal of a d x d matrix, row by
    row: the order of a vector of partial correlations (torch's tril_indices)."""
    return np.tril_indices(d, -1)


@functools.lru_cache(maxsize=32)
def _strict_lower_basis(d):
    """(d(d-1)/2, d*d) 0/1 matrix taking the vector to the flattened strict
    lower triangle: a product with it places or picks the entries in one BLAS
    call (exact: one nonzero term per sum), far cheaper than an index gather."""
    rows, cols = _strict_lower(d)
    basis = np.zeros((rows.size, d * d))
    basis[np.arange(rows.size), rows * d + cols] = 1.0
    basis.flags.writeable = False
    return basis


def _vec_to_strict_lower(v, d):
    """(..., d(d-1)/2) -> (..., d, d) with v below the diagonal, zeros elsewhere."""
    v = _core.astensor(v)
    return _core.reshape(_core.matmul(v, _strict_lower_basis(d)), v.shape[:-1] + (d, d))


def _strict_lower_to_vec(m):
    """(..., d, d) -> (..., d(d-1)/2): the entries below the diagonal, row by row."""
    d = m.shape[-1]
    flat = _core.reshape(m, m.shape[:-2] + (d * d,))
    return _core.matmul(flat, _strict_lower_basis(d).T)


class CorrCholeskyTransform(Transform):
    """R^(D(D-1)/2) -> Cholesky factors of D x D correlation matrices (torch's
    CorrCholeskyTransform).  The vector, row by row below the diagonal, is
    mapped by tanh to partial correlations z; row i of the factor is
    y_ij = z_ij sqrt(prod_{k<j} (1 - z_ik^2)) with y_ii what is left of the unit
    norm.  The products are sums of log(1 - z^2) = 2 (log 2 - x - softplus(-2x)),
    finite where tanh rounds to +-1, and log|det J| is a weighted sum of the
    same terms: sum_ij w_ij (i - j + 1) / 2."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky

    def _call(self, x):
        x = _core.astensor(x)
        if x.ndim < 1:
            raise ValueError("CorrCholeskyTransform: input must have at least 1 dim, got a "
                             "scalar")
        d = _tril_size(x.shape[-1], "CorrCholeskyTransform")
        z = _vec_to_strict_lower(_core.tanh(x), d)
        w = _vec_to_strict_lower(self._log1m_z2(x), d)
        # log of the part of row i's unit norm left before entry j: sum_{k<j} w_ik
        log_rest = _core.cumsum(w, -1) - w
        return (z + np.eye(d)) * _core.exp(0.5 * log_rest)

    @staticmethod
    def _log1m_z2(x):
        """log(1 - tanh(x)^2), computed from x."""
        return 2.0 * (_LOG2 - x - _core.softplus(-2.0 * x))

    def _inverse(self, y):
        y = _core.astensor(y)
        if y.ndim < 2 or y.shape[-1] != y.shape[-2]:
            raise ValueError(f"CorrCholeskyTransform.inv: expected (..., D, D) Cholesky factors, "
                             f"got shape {y.shape}")
        # what is left of row i's unit norm before entry j: 1 - sum_{k<j} y_ik^2
        y2 = y * y
        rest = _core.clip(1.0 - _core.cumsum(y2, -1) + y2, _TINY, None)
        z = _strict_lower_to_vec(y / _core.sqrt(rest))
        z = _core.clip(z, -1.0 + _EPS, 1.0 - _EPS)
        return 0.5 * (_core.log1p(z) - _core.log1p(-z))

    def log_abs_det_jacobian(self, x, y):
        x = _core.astensor(x)
        d = _tril_size(x.shape[-1], "CorrCholeskyTransform")
        rows, cols = _strict_lower(d)
        weight = (rows - cols + 1) / 2.0
        return _core.sum(self._log1m_z2(x) * weight, -1)

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("CorrCholeskyTransform: shape must have at least 1 dim")
        d = _tril_size(shape[-1], "CorrCholeskyTransform")
        return tuple(shape[:-1]) + (d, d)

    def inverse_shape(self, shape):
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ValueError(f"CorrCholeskyTransform: expected a (..., D, D) shape, got "
                             f"{tuple(shape)}")
        d = shape[-1]
        return tuple(shape[:-2]) + (d * (d - 1) // 2,)


class _DiagonalMapTransform(Transform):
    """Square matrices -> lower-triangular ones: the strict lower triangle is
    kept, the diagonal goes through an elementwise positive map, the upper
    triangle is dropped (so this is a bijection only of the lower triangle;
    log|det J| is that of the lower triangle's D (D + 1) / 2 coordinates).
    Subclasses give `_diag`, `_diag_inv` and `_diag_ldj`."""

    domain = constraints.independent(constraints.real, 2)

    def _split(self, x, what):
        x = _core.astensor(x)
        if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{type(self).__name__}{what}: expected (..., D, D) square "
                             f"matrices, got shape {x.shape}")
        d = x.shape[-1]
        eye = np.eye(d, dtype=bool)
        return x, eye, np.tri(d, d, -1, dtype=bool)

    def _call(self, x):
        x, eye, below = self._split(x, "")
        # the map sees 0 off the diagonal, so nothing there can overflow
        return _core.where(eye, self._diag(_core.where(eye, x, 0.0)), _core.where(below, x, 0.0))

    def _inverse(self, y):
        y, eye, below = self._split(y, ".inv")
        return _core.where(eye, self._diag_inv(_core.where(eye, y, 1.0)),
                           _core.where(below, y, 0.0))

    def log_abs_det_jacobian(self, x, y):
        x, eye, _ = self._split(x, "")
        return _core.sum(_core.where(eye, self._diag_ldj(_core.where(eye, x, 0.0)), 0.0),
                         (-2, -1))


class LowerCholeskyTransform(_DiagonalMapTransform):
    """Square matrices -> lower_cholesky: tril(x, -1) + diag(exp(diag(x)))
    (torch's LowerCholeskyTransform; transform_to(lower_cholesky))."""

    codomain = constraints.lower_cholesky

    def _diag(self, x):
        return _core.exp(x)

    def _diag_inv(self, y):
        return _core.log(_core.clip(y, _TINY, None))

    def _diag_ldj(self, x):
        return x


class UnitLowerCholeskyTransform(Transform):
    """Square matrices -> unit_lower_cholesky: the strict lower triangle kept,
    ones on the diagonal, the upper triangle dropped (Pyro's
    UnitLowerCholeskyTransform; log|det J| = 0 on the lower triangle)."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.unit_lower_cholesky

    def _square(self, x, what):
        x = _core.astensor(x)
        if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"UnitLowerCholeskyTransform{what}: expected (..., D, D) square "
                             f"matrices, got shape {x.shape}")
        return x

    def _call(self, x):
        x = self._square(x, "")
        return _core.apply(_core.OPCODES["UNIT_TRIL"], (x,), x.shape, iattr=(x.shape[-1],))

    def _inverse(self, y):
        y = self._square(y, ".inv")
        below = np.tri(y.shape[-1], y.shape[-1], -1, dtype=bool)
        return _core.where(below, y, 0.0)

    def log_abs_det_jacobian(self, x, y):
        x = self._square(x, "")
        return _core.astensor(np.zeros(x.shape[:-2]))


class SoftplusLowerCholeskyTransform(_DiagonalMapTransform):
    """Square matrices -> lower_cholesky with softplus on the diagonal (Pyro's
    SoftplusLowerCholeskyTransform; transform_to(softplus_lower_cholesky)):
    the gradient of a scale does not grow with it."""

    codomain = constraints.softplus_lower_cholesky

    def _diag(self, x):
        return _core.softplus(x)

    def _diag_inv(self, y):
        y = _core.clip(y, _TINY, None)
        return y + _core.log(-_core.expm1(-y))

    def _diag_ldj(self, x):
        return -_core.softplus(-x)


class OrderedTransform(Transform):
    """R^K -> strictly increasing vectors (Pyro's OrderedTransform): y_0 = x_0,
    y_i = y_(i-1) + exp(x_i); log|det J| = sum of x_1 .. x_(K-1)."""

    domain = constraints.real_vector
    codomain = constraints.ordered_vector

    def _call(self, x):
        x = _core.astensor(x)
        if x.ndim < 1:
            raise ValueError("OrderedTransform: input must have at least 1 dim, got a scalar")
        return _core.cumsum(_core.concatenate([x[..., :1], _core.exp(x[..., 1:])], -1), -1)

    def _inverse(self, y):
        y = _core.astensor(y)
        if y.ndim < 1:
            raise ValueError("OrderedTransform.inv: input must have at least 1 dim, got a scalar")
        steps = _core.clip(y[..., 1:] - y[..., :-1], _TINY, None)
        return _core.concatenate([y[..., :1], _core.log(steps)], -1)

    def log_abs_det_jacobian(self, x, y):
        return _core.sum(_core.astensor(x)[..., 1:], -1)


def _transpose_last(m):
    """m with its last two dims swapped."""
    nd = m.ndim
    return _core.transpose(m, tuple(range(nd - 2)) + (nd - 1, nd - 2))


class LowerCholeskyAffine(Transform):
    """y = loc + scale_tril @ x on vectors (Pyro's LowerCholeskyAffine):
    `scale_tril` (..., D, D) lower triangular with a positive diagonal, `loc`
    (..., D); both may be Tensors.  The inverse is a triangular solve and
    log|det J| the sum of log diag(scale_tril)."""

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, loc, scale_tril):
        loc, scale_tril = _core.astensor(loc), _core.astensor(scale_tril)
        if (scale_tril.ndim < 2 or loc.ndim < 1 or scale_tril.shape[-1] != scale_tril.shape[-2]
                or loc.shape[-1] != scale_tril.shape[-1]):
            raise ValueError(f"LowerCholeskyAffine: loc and scale_tril must have shapes (..., D) "
                             f"and (..., D, D), got {loc.shape} and {scale_tril.shape}")
        self.loc, self.scale_tril = loc, scale_tril

    def _call(self, x):
        x = _core.astensor(x)
        return linalg.matmul(self.scale_tril, _core.expand_dims(x, -1))[..., 0] + self.loc

    def _inverse(self, y):
        b = _core.expand_dims(_core.astensor(y) - self.loc, -1)
        return linalg.solve_triangular(self.scale_tril, b, upper=False)[..., 0]

    def log_abs_det_jacobian(self, x, y):
        logdet = linalg.tri_logdet(self.scale_tril)
        shape = _core.broadcast_shapes(_shape(x)[:-1], logdet.shape)
        return logdet if logdet.shape == shape else logdet + np.zeros(shape)

    def forward_shape(self, shape):
        shape = _core.broadcast_shapes(tuple(shape), self.loc.shape)
        return _core.broadcast_shapes(shape, self.scale_tril.shape[:-1])

    inverse_shape = forward_shape

    def __repr__(self):
        return f"LowerCholeskyAffine(loc={self.loc!r}, scale_tril={self.scale_tril!r})"


class CholeskyTransform(Transform):
    """Positive-definite matrices -> their lower Cholesky factors (Pyro's
    CholeskyTransform); the inverse is L L^T.  log|det J| is over the lower
    triangle of the symmetric x: -D log 2 - sum_i (D - i) log L_ii."""

    domain = constraints.positive_definite
    codomain = constraints.lower_cholesky

    def _call(self, x):
        return linalg.cholesky(x)

    def _inverse(self, y):
        y = _core.astensor(y)
        return linalg.matmul(y, _transpose_last(y))

    def log_abs_det_jacobian(self, x, y):
        d = _shape(y)[-1]
        order = np.arange(d, 0, -1, dtype=np.float64)
        return -d * _LOG2 - _core.sum(order * _core.log(linalg.diagonal(y)), -1)


class CorrMatrixCholeskyTransform(CholeskyTransform):
    """Correlation matrices -> their Cholesky factors (Pyro's
    CorrMatrixCholeskyTransform).  log|det J| is over the entries below the
    diagonal (the diagonal is fixed): -sum_i (D - 1 - i) log L_ii."""

    domain = constraints.corr_matrix
    codomain = constraints.corr_cholesky

    def log_abs_det_jacobian(self, x, y):
        d = _shape(y)[-1]
        order = np.arange(d - 1, -1, -1, dtype=np.float64)
        return -_core.sum(order * _core.log(linalg.diagonal(y)), -1)


class ConstraintRegistry:
    """constraint -> transform factory, looked up by the constraint's class
    (its MRO), so new constraint types can register without editing this file:

        @biject_to.register(MyConstraint)
        def _(constraint): return MyTransform(constraint.param)
    """

    def __init__(self, name="registry"):
        self.name = name
        self._factories = {}

    def register(self, constraint, factory=None):
        if factory is None:
            return lambda f: self.register(constraint, f)
        key = constraint if isinstance(constraint, type) else type(constraint)
        self._factories[key] = factory
        return factory

    def __call__(self, constraint):
        if not isinstance(constraint, constraints.Constraint):
            raise TypeError(f"{self.name}: expected a csvi constraint (e.g. "
                            f"constraints.positive), got {type(constraint).__name__} "
                            f"{constraint!r}")
        if getattr(constraint, "is_discrete", False):
            raise NotImplementedError(
                f"{self.name}: {constraint!r} is discrete; no map from the reals onto it")
        for cls in type(constraint).__mro__:
            factory = self._factories.get(cls)
            if factory is not None:
                return factory(constraint)
        raise NotImplementedError(
            f"{self.name}: no transform is registered for {constraint!r}; register one with "
            f"{self.name}.register(ConstraintClass) (csvi.transforms.{self.name})")


biject_to = ConstraintRegistry("biject_to")
transform_to = ConstraintRegistry("transform_to")


@biject_to.register(constraints._Interval)
@transform_to.register(constraints._Interval)
def _interval_bijection(c):
    lower, upper = c.lower, c.upper
    if lower == -np.inf and upper == np.inf:
        return IdentityTransform()
    if upper == np.inf:
        if lower == 0:
            return ExpTransform()
        t = ComposeTransform([ExpTransform(), AffineTransform(lower, 1.0)])
    elif lower == -np.inf:
        t = ComposeTransform([ExpTransform(), AffineTransform(upper, -1.0)])
    elif lower == 0 and upper == 1:
        return SigmoidTransform()
    elif upper - lower < np.inf:
        t = ComposeTransform([SigmoidTransform(), AffineTransform(lower, upper - lower)])
    else:  # the width overflows a double: scale by halves, 2 (lower/2 + (upper/2 - lower/2) s)
        t = ComposeTransform([SigmoidTransform(), AffineTransform(lower / 2, upper / 2 - lower / 2),
                              AffineTransform(0.0, 2.0)])
    t.codomain = c
    return t


@biject_to.register(constraints._SoftplusPositive)
@transform_to.register(constraints._SoftplusPositive)
def _softplus_bijection(c):
    return SoftplusTransform()


@biject_to.register(constraints._Simplex)
def _simplex_bijection(c):
    return StickBreakingTransform()


@transform_to.register(constraints._Simplex)
def _simplex_softmax(c):
    return SoftmaxTransform()


@biject_to.register(constraints.independent)
def _independent_bijection(c):
    return IndependentTransform(biject_to(c.base_constraint), c.reinterpreted_batch_ndims)


@transform_to.register(constraints.independent)
def _independent_transform(c):
    return IndependentTransform(transform_to(c.base_constraint), c.reinterpreted_batch_ndims)


@biject_to.register(constraints._CorrCholesky)
@transform_to.register(constraints._CorrCholesky)
def _corr_cholesky_bijection(c):
    return CorrCholeskyTransform()


# As in Pyro, no biject_to for lower_cholesky: the transforms drop the upper
# triangle, so a density over whole unconstrained matrices would be improper.
@transform_to.register(constraints._LowerCholesky)
def _lower_cholesky_transform(c):
    return LowerCholeskyTransform()


@transform_to.register(constraints._UnitLowerCholesky)
def _unit_lower_cholesky_transform(c):
    return UnitLowerCholeskyTransform()


@transform_to.register(constraints._SoftplusLowerCholesky)
def _softplus_lower_cholesky_transform(c):
    return SoftplusLowerCholeskyTransform()


@biject_to.register(constraints._ArrayInterval)
@transform_to.register(constraints._ArrayInterval)
def _array_interval_bijection(c):
    lower_inf = constraints._is_infinite(c.lower_bound, -1)
    upper_inf = constraints._is_infinite(c.upper_bound, 1)
    if upper_inf:
        t = ComposeTransform([ExpTransform(), AffineTransform(c.lower_bound, 1.0)])
    elif lower_inf:
        t = ComposeTransform([ExpTransform(), AffineTransform(c.upper_bound, -1.0)])
    else:
        t = ComposeTransform([SigmoidTransform(),
                              AffineTransform(c.lower_bound, c.upper_bound - c.lower_bound)])
    t.codomain = c
    return t


@biject_to.register(constraints._OrderedVector)
@transform_to.register(constraints._OrderedVector)
def _ordered_bijection(c):
    return OrderedTransform()


@biject_to.register(constraints._PositiveOrderedVector)
@transform_to.register(constraints._PositiveOrderedVector)
def _positive_ordered_bijection(c):
    t = ComposeTransform([OrderedTransform(), ExpTransform()])
    t.codomain = c
    return t


@biject_to.register(constraints._CorrMatrix)
@transform_to.register(constraints._CorrMatrix)
def _corr_matrix_bijection(c):
    return ComposeTransform([CorrCholeskyTransform(), CorrMatrixCholeskyTransform().inv])


# transform_to only, as Pyro: LowerCholeskyTransform drops the upper triangle
@transform_to.register(constraints._PositiveDefinite)
@transform_to.register(constraints._PositiveSemidefinite)
def _positive_definite_transform(c):
    t = ComposeTransform([LowerCholeskyTransform(), CholeskyTransform().inv])
    t.codomain = c
    return t
