"""Compiled SVI: one traced step frozen into a C program and replayed N times.

Tracing records every op of guide, model, ELBO and surrogate on a tape (op
codes and slots, no Python objects), so the program is that list: each step
runs the forward kernels (drawing fresh noise and fresh minibatch indices from
csvi's bit generator), the reverse sweep and each param's optimizer update in C
with the GIL released.  The bit generator is rewound after tracing, so a
compiled run and an eager run from the same seed give the same losses and
params.

A model whose Python depends on sampled values can't be frozen: converting a
traced value to Python while tracing raises (see Tensor._check_not_freezing),
and a second trace that records a different program raises here.
"""
import numpy as np

from csvi import _core
from csvi.params import get_param_store

__all__ = ["CompiledSVI"]


class CompiledSVI:
    """Made by `SVI.compile(*args, **kwargs)`; `run(num_steps)` and `step()`
    update the param store and the optimizer state exactly as eager steps."""

    def __init__(self, svi, args, kwargs):
        self.svi = svi
        optim = getattr(svi.optim, "optim", svi.optim)  # a scheduler wraps one
        if not hasattr(optim, "slot_of"):
            raise TypeError(f"compile: the optimizer {svi.optim!r} cannot run in a compiled "
                            "loop; use a csvi.optim optimizer")
        generator = _core.get_generator()
        start_state = generator.bit_generator.state
        traced = self._trace(args, kwargs)
        generator.bit_generator.state = start_state
        if len(traced[4]) > 1:
            # particles are repeated runs of the step within one trace
            _check_same_sites(traced[4][0], traced[4][1:])
        else:
            again = self._trace(args, kwargs)
            generator.bit_generator.state = start_state
            _check_same_sites(traced[4][0], again[4])
            if traced[0].op_names() != again[0].op_names():
                raise ValueError("compile: two runs of the step record different ops (the "
                                 "model computes something in Python that changes between "
                                 "steps); run it eagerly (svi.step)")
            traced = again
        self._tape, loss, surrogate, names, self._traces = traced
        store = get_param_store()
        self._names = names
        self._slots = [optim.slot_of(n, store.unconstrained(n)) for n in names]
        leaves = [store.leaf(n) for n in names]
        self._program = _core.Program(
            self._tape, surrogate, loss,
            [(leaf, slot.kernel, slot.state, slot.step)
             for leaf, slot in zip(leaves, self._slots)])

    def _trace(self, args, kwargs):
        from csvi.infer.svi import param_names

        tape = _core.Tape(record_all=True)
        tape.freezing = True
        try:
            with _core.recording(tape):
                loss, surrogate, traces = self.svi.loss.loss_tensors(
                    self.svi.model, self.svi.guide, args, kwargs)
        finally:
            tape.freezing = False
        store = get_param_store()
        names = [n for n in param_names(traces) if tape.owns(store.leaf(n))]
        return tape, loss, surrogate, names, traces

    @property
    def num_ops(self):
        """Ops in one step's forward program."""
        return self._tape.num_ops

    def run(self, num_steps):
        """`num_steps` steps in one C loop; returns the losses (a NumPy array)."""
        if int(num_steps) != num_steps or num_steps < 0:
            raise ValueError(f"run: num_steps must be a nonnegative integer, got {num_steps!r}")
        losses, status = self._program.run(int(num_steps))
        for slot, steps in zip(self._slots, self._program.steps()):
            slot.step = steps
        if status != "done":
            self._raise(status, len(losses))
        return losses

    def step(self):
        """One compiled step; returns its loss."""
        return float(self.run(1)[0])

    def _raise(self, status, done):
        from csvi.infer.trace_elbo import raise_non_finite

        where = f"at compiled step {done + 1}; params and optimizer state are as step {done} left them"
        if status == "loss_not_finite":
            try:
                for model_trace, guide_trace in self._traces:
                    raise_non_finite(model_trace, guide_trace)
            except ValueError as e:
                raise ValueError(f"{e} ({where})") from None
            raise ValueError(f"the loss is not finite ({where})")
        if status.startswith("grad_not_finite"):
            name = self._names[int(status.split(":")[1])]
            raise ValueError(f"the gradient of param '{name}' is not finite ({where})")
        raise RuntimeError(f"compiled step failed: {status} ({where})")


def _check_same_sites(reference, runs):
    """Every run of the step must visit the same sites with the same shapes;
    otherwise it depends on something a frozen program can't repeat."""
    model_a, guide_a = reference
    for model_b, guide_b in runs:
        for label, ta, tb in (("guide", guide_a, guide_b), ("model", model_a, model_b)):
            if list(ta.nodes) != list(tb.nodes):
                raise ValueError(f"compile: the {label}'s sites differ between two runs "
                                 f"({list(ta.nodes)} vs {list(tb.nodes)}); its Python control "
                                 "flow is not fixed, so run it eagerly (svi.step)")
            for name in ta.nodes:
                sa, sb = _shape(ta.nodes[name].value), _shape(tb.nodes[name].value)
                if sa != sb:
                    raise ValueError(f"compile: site '{name}' changes shape between steps "
                                     f"({sa} vs {sb}); run it eagerly (svi.step)")


def _shape(value):
    return tuple(np.shape(_core.value_of(value))) if value is not None else None
