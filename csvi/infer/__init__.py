"""Inference: SVI and its ELBOs, and checkpoints of a run."""
from csvi.infer.checkpoint import load_checkpoint, save_checkpoint
from csvi.infer.elbo import ELBO
from csvi.infer.svi import SVI
from csvi.infer.trace_elbo import Trace_ELBO

__all__ = ["SVI", "ELBO", "Trace_ELBO", "save_checkpoint", "load_checkpoint"]
