"""Inference: SVI and its ELBOs, Predictive, the autoguides
(`csvi.infer.autoguide`), and checkpoints of a run."""
from csvi.infer import autoguide
from csvi.infer.checkpoint import load_checkpoint, save_checkpoint
from csvi.infer.discrete import infer_discrete
from csvi.infer.elbo import ELBO
from csvi.infer.enum import config_enumerate
from csvi.infer.jit import (
    JitTrace_ELBO, JitTraceEnum_ELBO, JitTraceGraph_ELBO, JitTraceMeanField_ELBO,
)
from csvi.infer.predictive import Predictive
from csvi.infer.renyi_elbo import RenyiELBO
from csvi.infer.svi import SVI
from csvi.infer.trace_elbo import Trace_ELBO
from csvi.infer.trace_mean_field_elbo import TraceMeanField_ELBO
from csvi.infer.traceenum_elbo import TraceEnum_ELBO
from csvi.infer.tracegraph_elbo import TraceGraph_ELBO

__all__ = [
    "SVI", "ELBO", "Trace_ELBO", "TraceEnum_ELBO", "TraceGraph_ELBO", "TraceMeanField_ELBO",
    "RenyiELBO", "JitTrace_ELBO", "JitTraceEnum_ELBO", "JitTraceGraph_ELBO",
    "JitTraceMeanField_ELBO", "Predictive", "autoguide", "config_enumerate", "infer_discrete",
    "save_checkpoint", "load_checkpoint",
]
