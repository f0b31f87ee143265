"""Gaussians over vectors: MultivariateNormal (full covariance, through its
Cholesky factor) and LowRankMultivariateNormal (covariance W W^T + diag(d),
through the Woodbury identity and the R x R capacitance matrix), with
torch's parameterizations, and the KL rules among them.

Both compose the dense ops of csvi.linalg (Cholesky, triangular solves, the
triangular log-determinant), so log_prob and rsample differentiate and
replay in compiled programs with no kernel of their own.  Parameters are kept
as given (not broadcast to the batch shape): a batch of points against one
scale_tril is one triangular solve with many right-hand sides.
"""
import copy
import math

import numpy as np

from csvi import _core, constraints, linalg
from csvi.distributions.distribution import Distribution
from csvi.distributions.draws import standard_normal
from csvi.distributions.kl import register_kl
from csvi.distributions.util import broadcast_shapes, check_expandable, expand_to
from csvi.distributions.validation import as_real, as_shape, bad_arg, validate_default

__all__ = ["LowRankMultivariateNormal", "MultivariateNormal"]

_LOG_2PI = math.log(2.0 * math.pi)


def _batch_of(name, args):
    """Broadcast of the batch parts of (arg, tensor, event dims) triples, or
    a ValueError naming every argument's full shape."""
    shape = ()
    try:
        for _, t, k in args:
            shape = broadcast_shapes(shape, t.shape[:t.ndim - k])
    except ValueError:
        given = ", ".join(f"{arg} {t.shape}" for arg, t, _ in args)
        raise ValueError(f"{name}: the batch dims of {given} cannot be broadcast "
                         "together") from None
    return shape


def _mT(x):
    """The matrices of x's last two dims transposed."""
    return x.mT


def _rows(x, D):
    """x (..., D) as a matrix (N, D) of its rows."""
    return _core.reshape(x, (-1, D))


def _mahalanobis(L, x):
    """x^T (L L^T)^-1 x for lower-triangular L (..., D, D) and vectors x
    (..., D), batch dims broadcast.  With one L (the common case) every vector
    is a row of one right-hand solve x L^-T."""
    D = L.shape[-1]
    if L.ndim == 2:
        y = linalg.solve_triangular(L, _rows(x, D), upper=False, left=False, transpose=True)
        return _core.reshape(_core.sum(y * y, -1), x.shape[:-1])
    y = linalg.solve_triangular(L, _core.expand_dims(x, -1), upper=False)
    return _core.sum(y * y, (-2, -1))


def _trace_xxt(x):
    """tr(X X^T) of the matrices X (..., m, n): the sum of squares."""
    return _core.sum(x * x, (-2, -1))


def _positive_definite(name, arg, m):
    """The Cholesky factor of m, or a ValueError naming the family and arg."""
    try:
        return linalg.cholesky(m)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"{name}: {arg} must be positive definite; {e}") from None


class _Gaussian(Distribution):
    """What both Gaussians share: shapes, support, expand, mean and mode, and
    the pieces of the KL rule (`_half_logdet`, `_mahalanobis`, `_trace_inv`,
    `_cov_factor`)."""

    support = constraints.real_vector
    has_rsample = True

    def _set_loc(self, name, loc, batch):
        self._batch_shape = batch
        self._event_shape = loc.shape[-1:]
        self._loc = loc
        self.loc = expand_to(loc, batch + self._event_shape)
        if self._validate and constraints.real_vector.first_violation(loc) >= 0:
            raise bad_arg(name, "loc", loc, constraints.real_vector)

    def expand(self, batch_shape):
        """This distribution over a larger batch_shape: the parameters are
        broadcast where they are used, so nothing is recomputed or copied."""
        name = type(self).__name__
        batch_shape = as_shape(batch_shape, f"{name}.expand", "batch_shape")
        if batch_shape == self._batch_shape:
            return self
        check_expandable(name, self._batch_shape, batch_shape)
        new = copy.copy(self)
        new._batch_shape = batch_shape
        new.loc = expand_to(self._loc, batch_shape + self._event_shape)
        return new

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    def log_prob(self, value):
        value = self._as_value(value)
        D = self._event_shape[0]
        if value.ndim == 0 or value.shape[-1] != D:
            raise ValueError(f"{type(self).__name__}.log_prob: a value must be a vector of "
                             f"size {D} (event_shape {self._event_shape}), got shape "
                             f"{value.shape}")
        shape = self._value_shape(value.shape)[:-1]
        maha = self._mahalanobis(value - self._loc)
        return expand_to((maha + D * _LOG_2PI) * -0.5 - self._half_logdet(), shape)

    def entropy(self):
        D = self._event_shape[0]
        return expand_to(self._half_logdet() + 0.5 * D * (1.0 + _LOG_2PI), self._batch_shape)


class MultivariateNormal(_Gaussian):
    """MultivariateNormal(loc, covariance_matrix=None, precision_matrix=None,
    scale_tril=None): the Gaussian with mean loc (..., D) and covariance
    given by exactly one of covariance_matrix, precision_matrix (both
    symmetric positive definite) or scale_tril (its lower Cholesky factor,
    with a positive diagonal), each (..., D, D).  Batch dims of loc and the
    matrix broadcast."""

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        name = "MultivariateNormal"
        self._validate = validate_default(validate_args)
        loc = as_real(loc, name, "loc")
        if loc.ndim < 1:
            raise ValueError(f"{name}: loc must be at least one-dimensional (..., D), got "
                             f"shape {loc.shape}")
        given = [(arg, m) for arg, m in (("covariance_matrix", covariance_matrix),
                                         ("precision_matrix", precision_matrix),
                                         ("scale_tril", scale_tril)) if m is not None]
        if len(given) != 1:
            got = " and ".join(arg for arg, _ in given) or "none"
            raise ValueError(f"{name}: exactly one of covariance_matrix, precision_matrix or "
                             f"scale_tril must be given, got {got}")
        arg, m = given[0]
        m = as_real(m, name, arg)
        D = loc.shape[-1]
        if m.ndim < 2 or m.shape[-1] != m.shape[-2] or m.shape[-1] != D:
            raise ValueError(f"{name}: {arg} must be a square matrix (..., D, D) with D = {D} "
                             f"from loc of shape {loc.shape}, got shape {m.shape}")
        self._set_loc(name, loc, _batch_of(name, [("loc", loc, 1), (arg, m, 2)]))
        self._given = arg
        setattr(self, "_" + arg, m)
        if self._validate and self.arg_constraints[arg].first_violation(m) >= 0:
            raise bad_arg(name, arg, m, self.arg_constraints[arg])
        if arg == "scale_tril":
            self._scale_tril = m
        else:
            L = _positive_definite(name, arg, m)
            if arg == "precision_matrix":  # the covariance's factor, from P^-1
                L = linalg.cholesky(linalg.cholesky_solve(np.eye(D), L))
            self._scale_tril = L

    @property
    def scale_tril(self):
        return expand_to(self._scale_tril, self._batch_shape + self._event_shape * 2)

    @property
    def covariance_matrix(self):
        if self._given == "covariance_matrix":
            cov = self._covariance_matrix
        else:
            cov = self._scale_tril @ _mT(self._scale_tril)
        return expand_to(cov, self._batch_shape + self._event_shape * 2)

    @property
    def precision_matrix(self):
        if self._given == "precision_matrix":
            prec = self._precision_matrix
        else:
            prec = linalg.cholesky_solve(np.eye(self._event_shape[0]), self._scale_tril)
        return expand_to(prec, self._batch_shape + self._event_shape * 2)

    @property
    def variance(self):
        L = self._scale_tril
        return expand_to(_core.sum(L * L, -1), self._batch_shape + self._event_shape)

    def _half_logdet(self):
        return linalg.tri_logdet(self._scale_tril)

    def _mahalanobis(self, diff):
        return _mahalanobis(self._scale_tril, diff)

    def _trace_inv(self, F):
        """tr(F^T Sigma^-1 F) for matrices F (..., D, m)."""
        return _trace_xxt(linalg.solve_triangular(self._scale_tril, F, upper=False))

    def _cov_factor(self):
        return self._scale_tril

    def _draw(self, shape, reparameterized):
        L, D = self._scale_tril, self._event_shape[0]
        eps = standard_normal(shape)
        if L.ndim == 2:  # every draw a row of one product eps L^T
            x = _core.reshape(_core.matmul_nt(_rows(eps, D), L), shape)
        else:
            x = _core.matmul(L, _core.expand_dims(eps, -1))[..., 0]
        x = x + self._loc
        return x if reparameterized else x.detach()


class LowRankMultivariateNormal(_Gaussian):
    """LowRankMultivariateNormal(loc, cov_factor, cov_diag): the Gaussian
    with mean loc (..., D) and covariance W W^T + diag(cov_diag) for
    W = cov_factor (..., D, R) and a positive cov_diag (..., D).  log_prob and
    entropy cost O(D R^2), through the capacitance matrix I + W^T diag^-1 W."""

    arg_constraints = {"loc": constraints.real_vector,
                       "cov_diag": constraints.independent(constraints.positive, 1)}

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        name = "LowRankMultivariateNormal"
        self._validate = validate_default(validate_args)
        loc = as_real(loc, name, "loc")
        W = as_real(cov_factor, name, "cov_factor")
        d = as_real(cov_diag, name, "cov_diag")
        if loc.ndim < 1:
            raise ValueError(f"{name}: loc must be at least one-dimensional (..., D), got "
                             f"shape {loc.shape}")
        D = loc.shape[-1]
        if W.ndim < 2 or W.shape[-2] != D:
            raise ValueError(f"{name}: cov_factor must be a matrix (..., D, R) with D = {D} "
                             f"from loc of shape {loc.shape}, got shape {W.shape}")
        if d.ndim < 1 or d.shape[-1] != D:
            raise ValueError(f"{name}: cov_diag must be a vector (..., D) with D = {D} from "
                             f"loc of shape {loc.shape}, got shape {d.shape}")
        self._set_loc(name, loc, _batch_of(name, [("loc", loc, 1), ("cov_factor", W, 2),
                                                  ("cov_diag", d, 1)]))
        if self._validate and self.arg_constraints["cov_diag"].first_violation(d) >= 0:
            raise bad_arg(name, "cov_diag", d, self.arg_constraints["cov_diag"])
        self.cov_factor = expand_to(W, self._batch_shape + W.shape[-2:])
        self.cov_diag = expand_to(d, self._batch_shape + self._event_shape)
        self._W, self._d = W, d
        # capacitance I + W^T diag^-1 W (..., R, R): symmetric by construction
        self._Wt_dinv = _mT(W) / _core.expand_dims(d, -2)
        R = W.shape[-1]
        self._capacitance_tril = linalg.cholesky(self._Wt_dinv @ W + np.eye(R))

    @property
    def covariance_matrix(self):
        cov = self._W @ _mT(self._W) + linalg.diag_embed(self._d)
        return expand_to(cov, self._batch_shape + self._event_shape * 2)

    @property
    def precision_matrix(self):
        """Woodbury: diag^-1 - A^T A with A = C^-1 W^T diag^-1, C C^T the capacitance."""
        A = linalg.solve_triangular(self._capacitance_tril, self._Wt_dinv, upper=False)
        prec = linalg.diag_embed(1.0 / self._d) - _mT(A) @ A
        return expand_to(prec, self._batch_shape + self._event_shape * 2)

    @property
    def scale_tril(self):
        return linalg.cholesky(self.covariance_matrix)

    @property
    def variance(self):
        W = self._W
        return expand_to(_core.sum(W * W, -1) + self._d, self._batch_shape + self._event_shape)

    def _half_logdet(self):
        """log det(W W^T + diag) / 2 = log det C + sum(log diag) / 2."""
        return linalg.tri_logdet(self._capacitance_tril) + 0.5 * _core.sum(_core.log(self._d), -1)

    def _project(self, x):
        """W^T x for vectors x (..., D): (..., R)."""
        W = self._W
        if W.ndim == 2:
            return _core.reshape(_core.matmul(_rows(x, W.shape[0]), W),
                                 x.shape[:-1] + W.shape[-1:])
        return _core.matmul(_core.expand_dims(x, -2), W)[..., 0, :]

    def _mahalanobis(self, diff):
        """Woodbury: x^T diag^-1 x - |C^-1 W^T diag^-1 x|^2."""
        dinv_x = diff / self._d
        return (_core.sum(diff * dinv_x, -1)
                - _mahalanobis(self._capacitance_tril, self._project(dinv_x)))

    def _trace_inv(self, F):
        """tr(F^T Sigma^-1 F) = |diag^-1/2 F|^2 - |C^-1 W^T diag^-1 F|^2."""
        scaled = F / _core.expand_dims(_core.sqrt(self._d), -1)
        A = linalg.solve_triangular(self._capacitance_tril, self._Wt_dinv @ F, upper=False)
        return _trace_xxt(scaled) - _trace_xxt(A)

    def _cov_factor(self):
        """F with F F^T = W W^T + diag: [W, diag^1/2] (..., D, R + D)."""
        W = self._W
        root = linalg.diag_embed(_core.sqrt(self._d))
        shape = broadcast_shapes(W.shape[:-2], root.shape[:-2])
        return _core.concatenate([expand_to(W, shape + W.shape[-2:]),
                                  expand_to(root, shape + root.shape[-2:])], axis=-1)

    def _draw(self, shape, reparameterized):
        W = self._W
        eps_w = standard_normal(shape[:-1] + W.shape[-1:])
        eps_d = standard_normal(shape)
        x = self._project_back(eps_w) + _core.sqrt(self._d) * eps_d + self._loc
        return x if reparameterized else x.detach()

    def _project_back(self, e):
        """W e for vectors e (..., R): (..., D)."""
        W = self._W
        if W.ndim == 2:
            return _core.reshape(_core.matmul_nt(_rows(e, W.shape[1]), W),
                                 e.shape[:-1] + W.shape[:1])
        return _core.matmul(W, _core.expand_dims(e, -1))[..., 0]


def _kl_gaussians(p, q):
    """KL(p || q) = log|Sq|/2 - log|Sp|/2 + (tr(Sq^-1 Sp) + m^T Sq^-1 m - D) / 2,
    m = loc_q - loc_p, with Sp = F F^T for p's covariance factor F."""
    if p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence: {type(p).__name__} and {type(q).__name__} have "
                         f"different event shapes {p.event_shape} and {q.event_shape}")
    D = p.event_shape[0]
    kl = (q._half_logdet() - p._half_logdet()
          + 0.5 * (q._trace_inv(p._cov_factor()) + q._mahalanobis(q._loc - p._loc) - D))
    return expand_to(kl, broadcast_shapes(p.batch_shape, q.batch_shape))


for _p in (MultivariateNormal, LowRankMultivariateNormal):
    for _q in (MultivariateNormal, LowRankMultivariateNormal):
        register_kl(_p, _q)(_kl_gaussians)
