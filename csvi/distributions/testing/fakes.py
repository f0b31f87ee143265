"""Families with their reparameterized sampler hidden (`has_rsample =
False`), as pyro.distributions.testing.fakes: Trace_ELBO then uses the
score-function estimator for them (Pyro's SVI Part III tutorial)."""
from csvi.distributions.continuous import Beta, Gamma, Normal
from csvi.distributions.dirichlet import Dirichlet

__all__ = ["NonreparameterizedBeta", "NonreparameterizedDirichlet", "NonreparameterizedGamma",
           "NonreparameterizedNormal"]


class NonreparameterizedBeta(Beta):
    has_rsample = False


class NonreparameterizedDirichlet(Dirichlet):
    has_rsample = False


class NonreparameterizedGamma(Gamma):
    has_rsample = False


class NonreparameterizedNormal(Normal):
    has_rsample = False
