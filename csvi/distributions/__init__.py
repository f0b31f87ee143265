"""Probability distributions with Pyro's names and semantics.

The first families (Normal, Gamma, Beta, Bernoulli, ...) are fused C kernels
(src_c/dist_*.c); the others compose their log-densities from tape ops and
draw from `csvi.distributions.draws` (docs/architecture.md, "Adding
things"), so every family differentiates and compiles alike."""
from csvi.distributions import constraints, transforms
from csvi.distributions.continuous import (
    Beta, Exponential, Gamma, HalfCauchy, HalfNormal, LogNormal, Normal, Uniform,
)
from csvi.distributions.counts import (
    BetaBinomial, Binomial, GammaPoisson, Geometric, NegativeBinomial,
)
from csvi.distributions.delta import Delta
from csvi.distributions.dirichlet import Dirichlet
from csvi.distributions.directional import VonMises
from csvi.distributions.discrete import Bernoulli, Categorical, Poisson
from csvi.distributions.distribution import (
    Distribution, ExpandedDistribution, Independent, MaskedDistribution,
)
from csvi.distributions.empirical import Empirical
from csvi.distributions.hmm import DiscreteHMM
from csvi.distributions.kl import kl_divergence, register_kl
from csvi.distributions import kl_rules  # noqa: F401  (registers the KL rules)
from csvi.distributions.lkj import LKJ, LKJCholesky
from csvi.distributions.location_scale import Cauchy, Gumbel, Laplace, Logistic, StudentT
from csvi.distributions.mixture import MixtureSameFamily
from csvi.distributions.multinomial import Multinomial, OneHotCategorical
from csvi.distributions.multivariate import LowRankMultivariateNormal, MultivariateNormal
from csvi.distributions.positive import Chi2, InverseGamma, Pareto, Weibull
from csvi.distributions.transformed import TransformedDistribution
from csvi.distributions.transforms import biject_to, transform_to
from csvi.distributions.unit import Unit
from csvi.distributions.validation import (
    enable_validation, is_validation_enabled, validation_enabled,
)

__all__ = [
    # families
    "Bernoulli", "Beta", "BetaBinomial", "Binomial", "Categorical", "Cauchy", "Chi2", "Delta",
    "Dirichlet", "DiscreteHMM", "Empirical", "Exponential", "Gamma", "GammaPoisson", "Geometric", "Gumbel",
    "HalfCauchy", "HalfNormal", "InverseGamma", "LKJ", "LKJCholesky", "Laplace", "LogNormal",
    "Logistic", "LowRankMultivariateNormal", "MixtureSameFamily", "Multinomial",
    "MultivariateNormal", "NegativeBinomial", "Normal",
    "OneHotCategorical", "Pareto", "Poisson", "StudentT", "Uniform", "Unit", "VonMises",
    "Weibull",
    # wrappers and bases
    "Distribution", "ExpandedDistribution", "Independent", "MaskedDistribution",
    "TransformedDistribution",
    # constraints, transforms, KL, validation
    "biject_to", "constraints", "enable_validation", "is_validation_enabled", "kl_divergence",
    "register_kl", "transform_to", "transforms", "validation_enabled",
]
