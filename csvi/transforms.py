"""Transforms: differentiable maps with their log|det J|, and the two
registries from unconstrained reals onto a constraint, as in Pyro:

- `biject_to(constraint)`: a bijection (stick-breaking for the simplex), for
  whatever needs a density in unconstrained space (autoguides).
- `transform_to(constraint)`: any map onto the constraint (softmax for the
  simplex), which the param store uses: a param lives unconstrained as x and
  the model sees y = transform_to(constraint)(x), so an optimizer can move x
  anywhere and y never leaves its constraint.  The same optimizer then takes
  the same path as in Pyro.

Forward maps and log|det J| are tape ops, so gradients flow through them;
`t.inv(y)` maps a constrained value back (how a param's unconstrained value
is initialized) and clamps boundary values so the result is finite, as Pyro
does.  Names and conventions follow torch.distributions.transforms.
"""
import numpy as np

from csvi import _core, constraints

__all__ = [
    "Transform", "ExpTransform", "SigmoidTransform", "SoftplusTransform", "AffineTransform",
    "ComposeTransform", "StickBreakingTransform", "SoftmaxTransform", "IdentityTransform",
    "IndependentTransform", "ConstraintRegistry", "biject_to", "transform_to",
]

_TINY = float(np.finfo(np.float64).tiny)
_EPS = float(np.finfo(np.float64).eps)


def _shape(x):
    return _core.astensor(x).shape


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
    `log_abs_det_jacobian(x, y)` (summed over `event_dim` rightmost dims);
    `domain` and `codomain` are constraints."""

    domain = constraints.real
    codomain = constraints.real
    event_dim = 0
    bijective = True

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
        self.event_dim = base.event_dim

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
        self.event_dim = event_dim
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

    def __repr__(self):
        return f"AffineTransform(loc={self.loc!r}, scale={self.scale!r})"


class ComposeTransform(Transform):
    """parts[-1](... parts[0](x)); log|det J| adds the parts' terms, each summed
    over the dims that are event dims of the whole but not of the part."""

    def __init__(self, parts):
        self.parts = list(parts)
        if not self.parts:
            raise ValueError("ComposeTransform: needs at least one transform")
        self.domain = self.parts[0].domain
        self.codomain = self.parts[-1].codomain
        self.event_dim = max(p.event_dim for p in self.parts)

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
        for part, xi, yi in zip(self.parts, xs, ys):
            term = _sum_rightmost(part.log_abs_det_jacobian(xi, yi), self.event_dim - part.event_dim)
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
    event_dim = 1

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
    event_dim = 1
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
        self.event_dim = base_transform.event_dim + reinterpreted_batch_ndims
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
