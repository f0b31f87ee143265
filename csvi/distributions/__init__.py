"""Probability distributions with Pyro's names and semantics; log-densities,
their gradients and samplers run as C kernels (src_c/dist_*.c)."""
from csvi.distributions import constraints
from csvi.distributions.continuous import (
    Beta, Exponential, Gamma, HalfCauchy, HalfNormal, LogNormal, Normal, Uniform,
)
from csvi.distributions.delta import Delta
from csvi.distributions.discrete import Bernoulli, Categorical, Poisson
from csvi.distributions.empirical import Empirical
from csvi.distributions.distribution import (
    Distribution, ExpandedDistribution, Independent, MaskedDistribution,
)
from csvi.distributions.kl import kl_divergence, register_kl
from csvi.distributions.unit import Unit
# discrete families and mixtures (issue 13)
from csvi.distributions.counts import (
    BetaBinomial, Binomial, GammaPoisson, Geometric, NegativeBinomial,
)
from csvi.distributions.mixture import MixtureSameFamily
from csvi.distributions.multinomial import Multinomial, OneHotCategorical
from csvi.distributions.validation import (
    enable_validation, is_validation_enabled, validation_enabled,
)

__all__ = [
    "Bernoulli", "Beta", "Categorical", "Delta", "Distribution", "Empirical", "ExpandedDistribution",
    "Exponential", "Gamma", "HalfCauchy", "HalfNormal", "Independent", "LogNormal",
    "MaskedDistribution", "Normal", "Poisson", "Uniform", "Unit", "constraints",
    "enable_validation", "is_validation_enabled", "kl_divergence", "register_kl",
    "validation_enabled",
    # discrete families and mixtures (issue 13)
    "BetaBinomial", "Binomial", "GammaPoisson", "Geometric", "MixtureSameFamily", "Multinomial",
    "NegativeBinomial", "OneHotCategorical",
]
