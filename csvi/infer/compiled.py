"""Compiled SVI: one traced step frozen into a C program and replayed N times.

Tracing records every op of guide, model, ELBO and surrogate on a tape (op
codes and slots, no Python objects), so the program is that list: each step
runs the forward kernels (drawing fresh noise and fresh minibatch indices from
csvi's bit generator), the reverse sweep and each param's optimizer update in C
with the GIL released.  The bit generator is rewound after tracing, so a
compiled run and an eager run from the same seed give the same losses and
params.

With several particles the trace is one particle's step and the program
gives every draw-dependent value a particle dimension (src_c/csvi_program.h):
one trace whatever the number of particles, and ops such as the data's
mat-vec run once for all particles.  Draws keep the eager order; only the
order in which particles' gradients are summed differs, so losses and params
match an eager run to rounding (not bit for bit as with one particle).

Before it runs, the program fuses op chains whose intermediates nobody else
reads -- a regression's `Bernoulli(logits=X @ w + b)` likelihood and its sum
become one pass (src_c/csvi_fuse.h) -- computing and adding in the eager
order, so results do not change.

A model whose Python depends on sampled values can't be frozen: converting a
traced value to Python while tracing raises (see Tensor._check_not_freezing),
and a second trace that records a different program raises here.
"""

import numpy as np

from csvi import _core
from csvi.infer.data_binding import ArgumentBinding
from csvi.infer.sites import param_names
from csvi.infer.elbo import raise_non_finite
from csvi.params import get_param_store

__all__ = ["CompiledSVI"]


class CompiledSVI:
    """Made by `SVI.compile(*args, **kwargs)`; `run(num_steps)` and `step()`
    update the param store and the optimizer state exactly as eager steps.
    `fuse=False` keeps every traced op (fusion changes speed, not results)."""

    def __init__(self, svi, args, kwargs, fuse=True):
        self.svi = svi
        if not hasattr(svi.optim, "kernels_for"):
            raise TypeError(f"compile: the optimizer {svi.optim!r} cannot run in a compiled "
                            "loop; use a csvi.optim optimizer")
        if not hasattr(svi.loss, "particle_tensors"):
            raise TypeError(f"compile: the loss {svi.loss!r} cannot run in a compiled loop; "
                            "use a csvi ELBO such as Trace_ELBO")
        generator = _core.get_generator()
        start_state = generator.bit_generator.state
        first = self._trace(args, kwargs)
        generator.bit_generator.state = start_state
        again = self._trace(args, kwargs)
        generator.bit_generator.state = start_state
        for pair_a, pair_b in zip(first[3], again[3]):
            _check_same_sites(pair_a, pair_b)
        if first[0].op_names() != again[0].op_names():
            raise ValueError("compile: two runs of the step record different ops (the "
                             "model computes something in Python that changes between "
                             "steps); run it eagerly (svi.step)")
        self._tape, loss, surrogate, self._trace_pairs, names = again
        self._conversions = list(self._tape.conversions)
        self._arguments = {}  # id(traced array) -> its ArgumentBinding
        store = get_param_store()
        self._names = names
        self._leaves = leaves = [store.leaf(n) for n in names]
        kernels = svi.optim.kernels_for([(n, store.unconstrained(n)) for n in names])
        particles = (svi.loss.num_particles // svi.loss.particles_per_run
                     if svi.loss.independent_particles else 1)
        self._program = _core.Program(self._tape, surrogate, loss, list(zip(leaves, kernels)),
                                      particles, fuse)
        self._lock = _core.StepLock()  # one run at a time, whatever the threads

    def _trace(self, args, kwargs):
        """(tape, loss, surrogate, [(model_trace, guide_trace)], param names)
        of one particle's step -- or of all particles' when the ELBO couples
        them (`independent_particles` False, e.g. RenyiELBO) -- recorded on a
        freezing tape."""
        elbo = self.svi.loss
        tape = _core.Tape(record_all=True)
        tape.freezing = True
        try:
            if elbo.independent_particles:
                loss, surrogate, traces = _core.record_call(
                    tape, elbo.particle_tensors, self.svi.model, self.svi.guide, args, kwargs)
            else:
                loss, surrogate, traces = _core.record_call(
                    tape, elbo.loss_tensors, self.svi.model, self.svi.guide, args, kwargs)
        finally:
            tape.freezing = False
        store = get_param_store()
        names = [n for n in param_names(traces) if tape.owns(store.leaf(n))]
        return tape, loss, surrogate, traces, names

    @property
    def num_ops(self):
        """Ops in one step's forward program."""
        return self._tape.num_ops

    def op_names(self):
        """The names of one step's ops, after fusion (for inspection and tests)."""
        return self._tape.op_names()

    def op_table(self):
        """(name, input shapes, output shape) of one step's ops, after fusion."""
        return self._tape.op_table()

    def run(self, num_steps):
        """`num_steps` steps in one C loop; returns the losses (a NumPy array).

        Ctrl-C stops it within a few hundredths of a second, after a whole
        step: params, optimizer state and step counts are those of the steps
        done, and the KeyboardInterrupt carries their losses as `.losses`
        (as does the error raised when a step's loss is not finite)."""
        if int(num_steps) != num_steps or num_steps < 0:
            raise ValueError(f"run: num_steps must be a nonnegative integer, got {num_steps!r}")
        with self._lock:
            self._check_params_still_in_store()
            for data, copy in self._conversions:  # integer data, as of now
                np.copyto(copy, data, casting="unsafe")
            losses, status = self._program.run(int(num_steps))
        if status != "done":
            try:
                self._raise(status, len(losses))
            except Exception as e:
                e.losses = losses
                raise
        return losses

    def read(self, traced, array):
        """The next steps read `array` wherever they read `traced`, an array
        argument the program was compiled on (same shape and dtype): in
        place when the layouts match, else copied into `traced`
        (csvi/infer/data_binding.py)."""
        with self._lock:
            binding = self._arguments.get(id(traced))
            if binding is None or binding.traced is not traced:
                binding = ArgumentBinding(self._program, traced, self._conversions)
                self._arguments[id(traced)] = binding
            binding.read(array)

    def _check_params_still_in_store(self):
        """The program updates the buffers it was built on; a param removed or
        replaced since (clear_param_store, a load with a new shape) would
        silently stop training."""
        store = get_param_store()
        for name, leaf in zip(self._names, self._leaves):
            if name not in store or store.leaf(name) is not leaf:
                raise ValueError(f"compiled run: param '{name}' was removed or replaced in the "
                                 "param store since compile; call svi.compile(...) again")

    def step(self):
        """One compiled step; returns its loss."""
        return float(self.run(1)[0])

    def _raise(self, status, done):
        where = f"at compiled step {done + 1}; params and optimizer state are as step {done} left them"
        if status == "loss_not_finite":
            try:
                for pair in self._trace_pairs:
                    raise_non_finite(*pair)
            except ValueError as e:
                raise ValueError(f"{e} ({where})") from None
            raise ValueError(f"the loss is not finite ({where})")
        if status.startswith("grad_not_finite"):
            name = self._names[int(status.split(":")[1])]
            raise ValueError(f"the gradient of param '{name}' is not finite ({where})")
        raise RuntimeError(f"compiled step failed: {status} ({where})")


def _check_same_sites(first, again):
    """Two runs of the step must visit the same sites with the same shapes;
    otherwise it depends on something a frozen program can't repeat."""
    for label, ta, tb in (("guide", first[1], again[1]), ("model", first[0], again[0])):
        if list(ta.nodes) != list(tb.nodes):
            raise ValueError(f"compile: the {label}'s sites differ between two runs "
                             f"({list(ta.nodes)} vs {list(tb.nodes)}); its Python control "
                             "flow is not fixed, so run it eagerly (svi.step)")
        for name in ta.nodes:
            if ta.nodes[name].type == "return":
                continue
            sa, sb = _shape(ta.nodes[name].value), _shape(tb.nodes[name].value)
            if sa != sb:
                raise ValueError(f"compile: site '{name}' changes shape between steps "
                                 f"({sa} vs {sb}); run it eagerly (svi.step)")


def _shape(value):
    return tuple(np.shape(_core.value_of(value))) if value is not None else None
