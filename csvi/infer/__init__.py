"""Inference: SVI and its ELBOs, Predictive, the autoguides
(`csvi.infer.autoguide`), checkpoints of a run, and the diagnostics that say
whether a fit worked (convergence stop, PSIS, gradient noise, ArviZ export)."""
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
# knowing whether the fit worked (issue 17)
from csvi.infer.inference_data import to_inference_data
from csvi.infer.convergence import ConvergenceStop
from csvi.infer.gradient_noise import GradientNoise
from csvi.infer.importance import importance_log_weights, psis_diagnostic
from csvi.infer.psis import khat_threshold, pareto_smooth
from csvi.infer.run_result import SVIRunResult

__all__ = [
    "SVI", "ELBO", "Trace_ELBO", "TraceEnum_ELBO", "TraceGraph_ELBO", "TraceMeanField_ELBO",
    "RenyiELBO", "JitTrace_ELBO", "JitTraceEnum_ELBO", "JitTraceGraph_ELBO",
    "JitTraceMeanField_ELBO", "Predictive", "autoguide", "config_enumerate", "infer_discrete",
    "save_checkpoint", "load_checkpoint",
    "ConvergenceStop", "SVIRunResult", "GradientNoise", "psis_diagnostic",
    "importance_log_weights", "pareto_smooth", "khat_threshold", "to_inference_data",
]
