"""Pyro's Jit* ELBO names: with one of these, `svi.step()` runs a compiled
step (csvi.infer.compiled) instead of an eager one, so tutorial loops that
call step() get the compiled speed without `svi.run(..., compile=True)`.

The step is traced on the first call and again whenever the arguments'
signature changes (an array's shape or dtype, another number or object);
an array of the same shape is read in place (or copied into the program's
buffer when its layout differs: csvi/infer/data_binding.py), so a new
minibatch each step reuses the program and a dataset the model subsamples is
never copied.  Draws and params equal the eager
ELBO's from the same seed, as every compiled run's do.

What the program reads of the data: the arrays themselves, their views,
rows and entries picked by indices (a plate's, or any integer array:
gathered on the tape each step) and their conversions to float64 (refreshed
before each step; `x.float()` of integer data is one).  An array NumPy
computes from the data inside the model (`x - x.mean()`) would keep the
traced step's values, so compiling refuses it: compute it before
`svi.step`, or with csvi's functions on `csvi.as_tensor(x)`.  Python values
computed from the data (`int(lengths.max())`, a NumPy scalar) are evaluated
once, when the step is traced.
"""
from collections import OrderedDict

import numpy as np

from csvi import _core
from csvi.infer.trace_elbo import Trace_ELBO
from csvi.infer.trace_mean_field_elbo import TraceMeanField_ELBO
from csvi.infer.traceenum_elbo import TraceEnum_ELBO
from csvi.infer.tracegraph_elbo import TraceGraph_ELBO

__all__ = ["JitTrace_ELBO", "JitTraceEnum_ELBO", "JitTraceGraph_ELBO", "JitTraceMeanField_ELBO",
           "CompiledSteps"]


class JitTrace_ELBO(Trace_ELBO):
    """Trace_ELBO whose SVI steps run compiled."""

    compiled_steps = True


class JitTraceGraph_ELBO(TraceGraph_ELBO):
    """TraceGraph_ELBO whose SVI steps run compiled (baselines other than the
    decaying average, which updates in Python, compile too)."""

    compiled_steps = True


class JitTraceEnum_ELBO(TraceEnum_ELBO):
    """TraceEnum_ELBO whose SVI steps run compiled (the elimination order is
    chosen once, when the step is traced)."""

    compiled_steps = True


class JitTraceMeanField_ELBO(TraceMeanField_ELBO):
    """TraceMeanField_ELBO whose SVI steps run compiled."""

    compiled_steps = True


class CompiledSteps:
    """An SVI's compiled steps, one program per argument signature (the most
    recent `capacity` kept)."""

    def __init__(self, svi, capacity=8):
        self.svi = svi
        self.capacity = capacity
        self._programs = OrderedDict()

    def step(self, args, kwargs):
        key = _signature(args, kwargs)
        entry = self._programs.get(key)
        if entry is None:
            buffers = [np.array(a, order="C") if isinstance(a, np.ndarray) else a for a in args]
            kw_buffers = {k: np.array(v, order="C") if isinstance(v, np.ndarray) else v
                          for k, v in kwargs.items()}
            with _core.NewDataEachStep():
                entry = self.svi.compile(*buffers, **kw_buffers), buffers, kw_buffers
            self._programs[key] = entry
            while len(self._programs) > self.capacity:
                self._programs.popitem(last=False)
        else:
            self._programs.move_to_end(key)
        compiled, buffers, kw_buffers = entry
        for buffer, new in zip(buffers, args):
            if isinstance(new, np.ndarray):
                compiled.read(buffer, new)
        for k, new in kwargs.items():
            if isinstance(new, np.ndarray):
                compiled.read(kw_buffers[k], new)
        return compiled.step()


def _signature(args, kwargs):
    """What must not change for a compiled step to be reused: arrays' shapes
    and dtypes, numbers' values, other objects' identities."""
    def one(a):
        if isinstance(a, np.ndarray):
            return ("array", a.shape, a.dtype.str)
        if isinstance(a, (bool, int, float, complex, str, type(None))):
            return ("value", type(a), a)
        return ("object", id(a))
    return (tuple(one(a) for a in args),
            tuple(sorted((k, one(v)) for k, v in kwargs.items())))
