"""Probability distributions with Pyro's names and semantics; log-densities,
their gradients and samplers run as C kernels (src_c/dist_*.c)."""
from csvi.distributions import constraints
from csvi.distributions import transforms
from csvi.distributions.transforms import biject_to, transform_to
from csvi.distributions.continuous import (
    Beta, Exponential, Gamma, HalfCauchy, HalfNormal, LogNormal, Normal, Uniform,
)
from csvi.distributions.delta import Delta
from csvi.distributions.dirichlet import Dirichlet
from csvi.distributions.directional import VonMises
from csvi.distributions.location_scale import Cauchy, Gumbel, Laplace, Logistic, StudentT
from csvi.distributions.positive import Chi2, InverseGamma, Pareto, Weibull
from csvi.distributions.discrete import Bernoulli, Categorical, Poisson
from csvi.distributions.empirical import Empirical
from csvi.distributions.distribution import (
    Distribution, ExpandedDistribution, Independent, MaskedDistribution,
)
from csvi.distributions.kl import kl_divergence, register_kl
from csvi.distributions import kl_rules  # noqa: F401  (registers the KL rules)
from csvi.distributions.unit import Unit
from csvi.distributions.transformed import TransformedDistribution
from csvi.distributions.lkj import LKJCholesky
from csvi.distributions.validation import (
    enable_validation, is_validation_enabled, validation_enabled,
)

__all__ = [
    "Bernoulli", "Beta", "Categorical", "Delta", "Distribution", "Empirical", "ExpandedDistribution",
    "Exponential", "Gamma", "HalfCauchy", "HalfNormal", "Independent", "LogNormal",
    "MaskedDistribution", "Normal", "Poisson", "Uniform", "Unit", "constraints",
    "enable_validation", "is_validation_enabled", "kl_divergence", "register_kl",
    "validation_enabled",
    "Cauchy", "Chi2", "Dirichlet", "Gumbel", "InverseGamma", "Laplace", "Logistic", "Pareto",
    "StudentT", "VonMises", "Weibull",
]
__all__ += ["LKJCholesky", "TransformedDistribution", "biject_to", "transform_to", "transforms"]
