"""Automatic guides with Pyro's names and signatures
(`pyro.infer.autoguide`): each traces the model once and places every latent
site on the reals through `biject_to(site.support)`.

    guide = AutoNormal(model)          # a mean-field Normal guide
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
"""
from csvi.infer.autoguide.continuous import AutoContinuous, AutoDiagonalNormal
from csvi.infer.autoguide.delta import AutoDelta
from csvi.infer.autoguide.guide import AutoGuide
from csvi.infer.autoguide.guide_list import AutoCallable, AutoGuideList
from csvi.infer.autoguide.initialization import (
    InitMessenger, init_to_feasible, init_to_mean, init_to_median, init_to_sample,
    init_to_uniform, init_to_value,
)
from csvi.infer.autoguide.multivariate import (
    AutoLaplaceApproximation, AutoLowRankMultivariateNormal, AutoMultivariateNormal,
)
from csvi.infer.autoguide.normal import AutoNormal

__all__ = [
    "AutoCallable", "AutoContinuous", "AutoDelta", "AutoDiagonalNormal", "AutoGuide",
    "AutoGuideList", "AutoLaplaceApproximation", "AutoLowRankMultivariateNormal",
    "AutoMultivariateNormal", "AutoNormal", "InitMessenger", "init_to_feasible", "init_to_mean",
    "init_to_median", "init_to_sample", "init_to_uniform", "init_to_value",
]
