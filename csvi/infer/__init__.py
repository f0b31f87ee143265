"""Inference: SVI and its ELBOs."""
from csvi.infer.elbo import ELBO
from csvi.infer.svi import SVI
from csvi.infer.trace_elbo import Trace_ELBO

__all__ = ["SVI", "ELBO", "Trace_ELBO"]
