"""Inference: SVI and its ELBOs, Predictive, and the autoguides
(`csvi.infer.autoguide`)."""
from csvi.infer.elbo import ELBO
from csvi.infer.svi import SVI
from csvi.infer.trace_elbo import Trace_ELBO
from csvi.infer.predictive import Predictive
from csvi.infer import autoguide

__all__ = ["SVI", "ELBO", "Trace_ELBO", "Predictive", "autoguide"]
