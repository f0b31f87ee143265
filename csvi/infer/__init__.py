"""Inference: SVI and its ELBOs, Predictive, the autoguides
(`csvi.infer.autoguide`), and checkpoints of a run."""
from csvi.infer import autoguide
from csvi.infer.checkpoint import load_checkpoint, save_checkpoint
from csvi.infer.elbo import ELBO
from csvi.infer.jit import JitTrace_ELBO, JitTraceGraph_ELBO, JitTraceMeanField_ELBO
from csvi.infer.predictive import Predictive
from csvi.infer.renyi_elbo import RenyiELBO
from csvi.infer.svi import SVI
from csvi.infer.trace_elbo import Trace_ELBO
from csvi.infer.trace_mean_field_elbo import TraceMeanField_ELBO
from csvi.infer.tracegraph_elbo import TraceGraph_ELBO

__all__ = [
    "SVI", "ELBO", "Trace_ELBO", "TraceGraph_ELBO", "TraceMeanField_ELBO", "RenyiELBO",
    "JitTrace_ELBO", "JitTraceGraph_ELBO", "JitTraceMeanField_ELBO", "Predictive", "autoguide",
    "save_checkpoint", "load_checkpoint",
]
