"""Data-parallel SVI over MPI (mpi4py; `pip install "csvi[mpi]"`).

Run one process per core or node (`mpiexec -n K python fit.py`, `srun`);
every process (rank) runs the same script on its own shard of the data:

    from csvi import distributed
    distributed.set_rng_seed(0)                       # rank r: SeedSequence(0).spawn(K)[r]
    lo, hi = distributed.shard_range(N)               # this rank's rows of the N
    X, y = load_rows(lo, hi)

    def model(X, y):
        ...
        with distributed.plate("data", N, subsample_size=256) as idx:
            csvi.sample("obs", dist.Bernoulli(logits=X[idx] @ w), obs=y[idx])

    svi = distributed.DistributedSVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    for step in range(1000):
        loss = svi.step(X, y)                          # the same on every rank

What keeps the ranks one fit:
- The plate's size is the global N; each rank draws its minibatch from its
  own shard (local row indices) and scales it so that the *average* of the
  ranks' gradients is the unbiased gradient of the global ELBO: N / (K * B)
  per row with equal shards (distributed.plate).
- Rank 0's initial params are broadcast before the first gradient.
- Each step, every rank packs its gradients, its loss and a failure flag into
  one contiguous buffer and averages it with ONE `Allreduce`; every rank then
  applies the same optimizer update to the same params, so params stay
  bit-identical.  A rank whose step fails (bad data, an exception in its
  model, a non-finite loss or gradient) joins the Allreduce with its flag
  set, so every rank stops before the update and raises
  `DistributedStepError` naming the failed ranks -- nobody hangs, params and
  optimizer state are unchanged everywhere.
- Compiled runs (`svi.compile(...).run(n)`, `svi.run(..., compile=True)`,
  Jit* ELBOs) do the same inside the C loop: the program calls a gradient
  hook between each step's reverse sweep and its update
  (src_c/csvi_program.h), which takes the GIL only for the Allreduce.

Every rank must make the same calls in the same order (steps, compile, run
with the same num_steps, checkpoints): they are collective operations.
"""
import hashlib
import json

import numpy as np

from csvi import _core, archive
from csvi.infer.checkpoint import (_from_json, _to_json, bit_generator_from_state,
                                   checkpoint_contents, restore_checkpoint)
from csvi.infer.compiled import CompiledSVI
from csvi.infer.sites import param_names
from csvi.infer.svi import SVI
from csvi.handlers.runtime import get_stack
from csvi.params import get_param_store
from csvi._core import SubsampleFn as _SubsampleFn
from csvi.primitives import plate as _plate

__all__ = ["DistributedSVI", "DistributedStepError", "plate", "shard_range", "set_rng_seed",
           "save_checkpoint", "load_checkpoint", "world"]


class DistributedStepError(RuntimeError):
    """A collective step failed on some rank(s); raised on every rank.
    `failures` maps each failed rank to its error ("Type: message"); on a
    failed rank the original exception is the `__cause__`.  Params and
    optimizer state are those before the failed step, on every rank."""

    def __init__(self, what, failures):
        self.failures = failures
        listed = "; ".join(f"rank {r}: {m}" for r, m in sorted(failures.items()))
        super().__init__(f"{what} failed on rank(s) {sorted(failures)} ({listed}); params and "
                         "optimizer state are unchanged on every rank")


_MPI = None


def _mpi():
    """mpi4py's MPI module, imported on first use (importing it starts MPI)."""
    global _MPI
    if _MPI is None:
        try:
            from mpi4py import MPI
        except ImportError:
            raise ImportError("csvi.distributed needs mpi4py and an MPI library: "
                              'pip install "csvi[mpi]"') from None
        _MPI = MPI
    return _MPI


def world(comm=None):
    """`comm`, or MPI.COMM_WORLD when None (an mpi4py communicator)."""
    if comm is not None:
        return comm
    return _mpi().COMM_WORLD


def shard_range(size, comm=None):
    """(lo, hi): this rank's contiguous block of `size` rows -- ranks get
    sizes that differ by at most one, in rank order."""
    if isinstance(size, bool) or int(size) != size or size < 0:
        raise ValueError(f"shard_range: size must be a nonnegative integer, got {size!r}")
    comm = world(comm)
    size, ranks, rank = int(size), comm.Get_size(), comm.Get_rank()
    return rank * size // ranks, (rank + 1) * size // ranks


def set_rng_seed(seed, comm=None):
    """Seed every rank's csvi generator from one seed: rank r draws from
    `numpy.random.SeedSequence(seed).spawn(ranks)[r]` (independent streams;
    Python's and NumPy's global generators are seeded as csvi.set_rng_seed
    does, with the same seed on every rank)."""
    comm = world(comm)
    _core.set_rng_seed(seed)  # checks seed; seeds Python's and NumPy's too
    child = np.random.SeedSequence(int(seed)).spawn(comm.Get_size())[comm.Get_rank()]
    _core.set_generator(np.random.Generator(np.random.PCG64(child)))


class plate(_plate):
    """A plate of global size `size` over data sharded across ranks.

    Each rank holds the rows `shard_range(size)` (or `shard_size` rows of
    its own, when the shards are not that split) and draws `subsample_size`
    of them from its own generator; `idx` holds *local* row indices (index
    the rank's shard with them).  Sites are scaled by ranks * shard / B, so
    that the average of the ranks' gradients -- what DistributedSVI applies
    -- is unbiased for the global ELBO (N / (ranks * B) per row when shards
    are equal).  With `subsample_size` None each rank uses its whole shard;
    `subsample` gives the local indices explicitly."""

    def __init__(self, name, size, subsample_size=None, dim=None, subsample=None,
                 shard_size=None, comm=None):
        comm = world(comm)
        if isinstance(size, bool) or size is None or int(size) != size or size < 0:
            raise ValueError(f"plate '{name}': size must be the global number of rows, got "
                             f"{size!r}")
        if shard_size is None:
            lo, hi = shard_range(size, comm)
            shard_size = hi - lo
        if isinstance(shard_size, bool) or int(shard_size) != shard_size \
                or not 0 < shard_size <= size:
            raise ValueError(f"plate '{name}': shard_size must be an integer in [1, {size}], "
                             f"got {shard_size!r}")
        self.shard_size = int(shard_size)
        if subsample_size is not None and (isinstance(subsample_size, bool)
                                           or int(subsample_size) != subsample_size
                                           or not 0 < subsample_size <= self.shard_size):
            raise ValueError(f"plate '{name}': subsample_size must be an integer in "
                             f"[1, {self.shard_size}] (this rank's shard), got "
                             f"{subsample_size!r}")
        if subsample is not None:
            local = np.asarray(_core.value_of(subsample)).reshape(-1)
            if local.size and (local.min() < 0 or local.max() >= self.shard_size):
                raise ValueError(f"plate '{name}': subsample holds local row indices, which "
                                 f"must lie in [0, {self.shard_size}) on this rank")
        # the average over ranks of rank r's (N / B) * (ranks * shard_r / N)
        self._shard_correction = comm.Get_size() * self.shard_size / int(size)
        if subsample_size is None and subsample is None:
            subsample_size = self.shard_size
        super().__init__(name, size, subsample_size, dim, subsample)

    def _draw_indices(self, subsample_size, given):
        if given is None and subsample_size < self.shard_size:
            fn = _SubsampleFn(self.shard_size, int(subsample_size), None)
        else:
            fn = _SubsampleFn(None, None, np.arange(self.shard_size) if given is None else given)
        stack = get_stack()
        if not stack:
            return fn()
        return _core.send("subsample", self.name, fn, (), None, None, False, None, stack)

    def __iter__(self):
        raise TypeError(f"plate '{self.name}': a distributed plate is vectorized only "
                        "(use `with`)")

    def process_message(self, msg):
        super().process_message(msg)
        if msg.type == "sample" and self._frame is not None and self._shard_correction != 1.0:
            msg.scale = msg.scale * self._shard_correction

    def postprocess_message(self, msg):
        if (msg.type == "param" and self._frame is not None
                and msg.kwargs.get("event_dim") is not None):
            raise ValueError(f"param '{msg.name}': per-row params (event_dim) inside the "
                             f"distributed plate '{self.name}' are not supported; keep "
                             "local latents out of data-parallel SVI (amortize them)")
        super().postprocess_message(msg)


def _average(comm, buffer):
    """The one collective of a step: sum over ranks, divided by the ranks --
    the same operation in eager and compiled steps, so they agree bit for bit."""
    MPI = _MPI or _mpi()
    comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
    np.divide(buffer, comm.Get_size(), out=buffer)


def _describe(error):
    return f"{type(error).__name__}: {error}"


def _fail_together(comm, what, error):
    """Called by every rank once the ranks know a collective step failed:
    gathers each rank's error (None where it did not fail) and raises the
    same DistributedStepError everywhere."""
    reports = comm.allgather(None if error is None else _describe(error))
    failures = {r: m for r, m in enumerate(reports) if m is not None}
    if not failures:  # the flag was set but nobody reports: should not happen
        failures = {-1: "unknown failure"}
    raise DistributedStepError(what, failures) from error


def _agree(comm, what, value, error):
    """Every rank's `value` (or the failure raised making it) gathered; all
    ranks raise together if any failed or if the values differ from rank 0's."""
    reports = comm.allgather(("error", _describe(error)) if error is not None else ("ok", value))
    failures = {r: m for r, (kind, m) in enumerate(reports) if kind == "error"}
    if failures:
        raise DistributedStepError(what, failures) from error
    differ = {r: f"{m!r} differs from rank 0's {reports[0][1]!r}"
              for r, (_, m) in enumerate(reports) if m != reports[0][1]}
    if differ:
        raise DistributedStepError(what, differ)
    return value


class DistributedSVI(SVI):
    """SVI with the data sharded across the ranks of `comm` (default
    MPI.COMM_WORLD): each step averages the ranks' gradients (one Allreduce)
    and every rank applies the same update; `step` returns the average of
    the ranks' losses.  See the module docstring."""

    def __init__(self, model, guide, optim, loss, comm=None, **static_kwargs):
        super().__init__(model, guide, optim, loss, **static_kwargs)
        self.comm = world(comm)
        self._layout = None  # [(name, shape)] of the params the step trains
        self._buffer = None

    @property
    def num_ranks(self):
        return self.comm.Get_size()

    @property
    def rank(self):
        return self.comm.Get_rank()

    def _start(self, args, kwargs):
        """Collective, once: create the step's params on every rank (a run
        of guide and model that leaves the generator where it was), agree on
        their names and shapes, and broadcast rank 0's values."""
        generator = _core.get_generator()
        state = generator.bit_generator.state
        layout, error = None, None
        try:
            tape = _core.Tape(record_all=True)
            try:
                _, _, traces = _core.record_call(tape, self.loss.loss_tensors, self.model,
                                                 self.guide, args, kwargs)
            finally:
                tape.clear()
            store = get_param_store()
            layout = [(n, store.unconstrained(n).shape) for n in param_names(traces)]
        except Exception as e:
            error = e
        finally:
            generator.bit_generator.state = state
        self._layout = _agree(self.comm, "the first step (creating params)", layout, error)
        broadcast_params(self.comm, [name for name, _ in self._layout])
        sizes = [int(np.prod(shape)) for _, shape in self._layout]
        # gradients, one has-gradient count per param, the loss, the failure flag
        self._buffer = np.zeros(sum(sizes) + len(sizes) + 2)
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def step(self, *args, **kwargs):
        """One collective gradient step; returns the ranks' average loss
        before the step.  If any rank's step fails, every rank raises
        DistributedStepError and no param or optimizer state changes."""
        kwargs.update(self.static_kwargs)
        if getattr(self.loss, "compiled_steps", False):  # a Jit* ELBO: compiled steps
            return self._compiled_step(args, kwargs)
        args, kwargs = _core.data_args(args, kwargs)
        if self._layout is None:
            self._start(args, kwargs)
        store = get_param_store()
        buffer, offsets, layout = self._buffer, self._offsets, self._layout
        n = len(layout)
        with self._lock:
            tape = self._tape
            tape.clear()
            buffer[:] = 0.0
            error = None
            try:
                loss, traces = self._loss_and_gradients(tape, args, kwargs)
                self._pack(tape, traces, store, loss)
            except Exception as e:
                error = e
                buffer[:] = 0.0
                buffer[-1] = 1.0
            finally:
                tape.clear()
            _average(self.comm, buffer)
            if buffer[-1] != 0.0:
                _fail_together(self.comm, "a distributed SVI step", error)
            counts = buffer[offsets[-1]:offsets[-1] + n]
            updates = [(name, store.unconstrained(name),
                        buffer[offsets[k]:offsets[k + 1]].reshape(shape))
                       for k, (name, shape) in enumerate(layout) if counts[k] != 0.0]
            recorder = getattr(self, "_gradient_recorder", None)  # SVI.run(track_gradients=)
            if recorder is not None:
                for name, _, grad in updates:  # the averaged gradients, as every rank applies
                    recorder.record(name, grad)
            self.optim.step(updates)
        return float(buffer[-2])

    def run(self, num_steps, *args, stop=None, **kwargs):
        """SVI.run over the ranks (collective; steps are DistributedSVI's).
        A convergence `stop` is refused: it would judge each rank's own loss
        estimates, and ranks that stop at different steps would hang."""
        if stop is not None:
            raise ValueError("DistributedSVI.run: stop= is not supported (the ranks would "
                             "decide separately); run a fixed number of steps")
        return super().run(num_steps, *args, **kwargs)

    def _pack(self, tape, traces, store, loss):
        """This rank's gradients, has-gradient marks and loss into the buffer."""
        buffer, offsets, layout = self._buffer, self._offsets, self._layout
        names = {name: k for k, (name, _) in enumerate(layout)}
        for name in param_names(traces):
            k = names.get(name)
            if k is None:
                raise ValueError(f"param '{name}' first appeared after the first distributed "
                                 "step; every param must exist from the first step on")
            if store.unconstrained(name).shape != layout[k][1]:
                raise ValueError(f"param '{name}' changed shape since the first distributed "
                                 "step")
            grad = tape.grad_of(store.leaf(name))
            if grad is None:
                continue
            if _core.first_outside(grad, -np.inf, np.inf, True, True) >= 0:
                raise ValueError(f"the gradient of param '{name}' is not finite")
            buffer[offsets[k]:offsets[k + 1]] = np.ravel(grad)
            buffer[offsets[-1] + k] = 1.0
        buffer[-2] = loss

    def compile(self, *args, **kwargs):
        """Collective: freeze one step into a C program whose every step
        averages gradients across the ranks (see DistributedCompiledSVI)."""
        kwargs.update(self.static_kwargs)
        args, kwargs = _core.data_args(args, kwargs)
        if self._layout is None:
            self._start(args, kwargs)
        return DistributedCompiledSVI(self, args, kwargs)


class DistributedCompiledSVI(CompiledSVI):
    """A compiled step whose program averages each step's gradients and loss
    across the ranks through its gradient hook (one Allreduce of the
    program's gradient buffer, between the reverse sweep and the update)."""

    def __init__(self, svi, args, kwargs, fuse=True):
        self.comm = svi.comm
        layout, error = None, None
        try:
            super().__init__(svi, args, kwargs, fuse)
            store = get_param_store()
            layout = [(n, store.unconstrained(n).shape) for n in self._names]
        except Exception as e:
            error = e
        _agree(self.comm, "compile", layout, error)
        broadcast_params(self.comm, self._names)
        self._program.set_grad_hook(self._exchange)

    def _exchange(self, buffer):
        try:
            _average(self.comm, buffer)
        except Exception as e:  # the transport itself failed: no second collective
            e.collective_broken = True
            raise

    def run(self, num_steps):
        """Collective: `num_steps` steps (the same on every rank); returns
        the ranks' average losses.  A failed step on any rank stops every
        rank before its update and raises DistributedStepError everywhere."""
        error = None
        try:
            losses = super().run(num_steps)
        except Exception as e:
            if not _joined(e):  # failed before the loop: join the first step's exchange
                buffer = np.zeros(self._program.hook_size)
                buffer[-1] = 1.0
                _average(self.comm, buffer)
            elif getattr(e, "collective_broken", False):
                raise
            error = e
        if error is None:
            return losses
        try:
            _fail_together(self.comm, "a distributed compiled step",
                           None if getattr(error, "peer", False) else error)
        except DistributedStepError as e:
            e.losses = getattr(error, "losses", np.empty(0))
            raise

    def _raise(self, status, done):
        if status == "peer_failed":
            e = RuntimeError(f"another rank failed at compiled step {done + 1}")
            e.peer = True
        elif status == "hook_failed":
            e = RuntimeError(f"the gradient exchange failed at compiled step {done + 1}")
            e.collective_broken = True
        else:
            try:
                super()._raise(status, done)
            except Exception as local:
                local.joined = True
                raise
        e.joined = True
        raise e


def _joined(error):
    """Whether `error` comes from inside the compiled loop (after this rank
    took part in the failed step's exchange) rather than before it."""
    return getattr(error, "joined", False) or getattr(error, "collective_broken", False)


def broadcast_params(comm, names):
    """Overwrite every rank's params `names` (in place) with rank 0's, in one
    Bcast of a packed buffer."""
    store = get_param_store()
    arrays = [store.unconstrained(n) for n in names]
    buffer = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)
    comm.Bcast(buffer, root=0)
    at = 0
    for a in arrays:
        a[...] = buffer[at:at + a.size].reshape(a.shape)
        at += a.size


def save_checkpoint(path, svi, comm=None):
    """Collective: rank 0 writes a checkpoint (csvi.infer.checkpoint's
    format) of the params, `svi`'s optimizer state and every rank's
    generator; any rank can read it with `csvi.infer.load_checkpoint` (which
    restores rank 0's generator), and `load_checkpoint` here restores it on
    any number of ranks."""
    comm = world(comm if comm is not None else getattr(svi, "comm", None))
    states = comm.gather(_to_json(_core.get_generator().bit_generator.state), root=0)
    error = None
    if comm.Get_rank() == 0:
        try:
            header, arrays = checkpoint_contents(svi)
            header["rank_generators"] = states
            archive.write(path, "checkpoint", header, arrays)
        except Exception as e:
            error = e
    failed = comm.bcast(None if error is None else _describe(error), root=0)
    if failed is not None:
        raise DistributedStepError(f"save_checkpoint({str(path)!r})", {0: failed}) from error


def load_checkpoint(path, svi, comm=None):
    """Collective: rank 0 reads the checkpoint at `path` (only rank 0 needs
    the file) and every rank restores its params and optimizer state.  With
    as many ranks as when it was saved, each rank gets its own generator
    back (the run continues exactly); otherwise each rank's stream is spawned
    from a seed derived from the saved generators (reproducible)."""
    comm = world(comm if comm is not None else getattr(svi, "comm", None))
    payload = None
    if comm.Get_rank() == 0:
        try:
            contents = archive.read(path, "checkpoint")
            payload = ("ok", contents.header, contents.arrays)
        except Exception as e:
            payload = ("error", _describe(e))
    payload = comm.bcast(payload, root=0)
    if payload[0] == "error":
        raise DistributedStepError(f"load_checkpoint({str(path)!r})", {0: payload[1]})
    contents = archive.Contents(str(path), "checkpoint", payload[1], payload[2])
    error = None
    try:
        restore_checkpoint(contents, svi)
        _restore_rank_generator(contents, comm)
    except Exception as e:
        error = e
    _agree(comm, f"load_checkpoint({str(path)!r})", None, error)


def _restore_rank_generator(contents, comm):
    states = contents.header.get("rank_generators")
    ranks, rank = comm.Get_size(), comm.Get_rank()
    if isinstance(states, list) and len(states) == ranks:
        bit_generator = bit_generator_from_state(_from_json(states[rank]), contents,
                                                 f"rank {rank}'s")
    else:  # another number of ranks: fresh independent streams, reproducibly
        saved = json.dumps(contents.header.get("generator"), sort_keys=True).encode()
        entropy = int.from_bytes(hashlib.sha256(saved).digest(), "little")
        child = np.random.SeedSequence(entropy).spawn(ranks)[rank]
        bit_generator = np.random.PCG64(child)
    _core.set_generator(np.random.Generator(bit_generator))
