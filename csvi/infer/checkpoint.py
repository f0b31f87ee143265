"""Checkpoints: everything an SVI run depends on, in one file, so that a run
saved at step k and restored -- in this process or a fresh one -- continues
exactly as the uninterrupted run would, bit for bit, eager or compiled.

A checkpoint holds the param store (unconstrained values and constraints),
the optimizer's state (per param: moments, step count, learning rate and a
scheduler's epoch and numbers) and the state of the calling thread's csvi
generator (the draws and the minibatch indices of the following steps).
The model, guide, optimizer and loss are code: make them as before, then
load.

    save_checkpoint("fit.ckpt.npz", svi)
    ...
    svi = SVI(model, guide, Adam({"lr": 0.01}), loss=Trace_ELBO())
    load_checkpoint("fit.ckpt.npz", svi)
"""
import numpy as np

from csvi import _core, archive
from csvi.optim.optim import state_from_archive, state_to_archive
from csvi.params import get_param_store

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_contents", "restore_checkpoint"]

# The bit generators a checkpoint may name (all of NumPy's).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def save_checkpoint(path, svi):
    """Write the param store, `svi`'s optimizer state and this thread's
    generator state to `path` (a .npz file, see csvi.archive)."""
    archive.write(path, "checkpoint", *checkpoint_contents(svi))


def checkpoint_contents(svi):
    """(header, arrays) of a checkpoint of `svi` (csvi.distributed adds its
    ranks' generators before writing)."""
    header, arrays = get_param_store().to_archive()
    optim_header, optim_arrays = state_to_archive(svi.optim.get_state())
    header.update(optim_header)
    arrays.update(optim_arrays)
    header["generator"] = _to_json(_core.get_generator().bit_generator.state)
    return header, arrays


def load_checkpoint(path, svi):
    """Restore what `save_checkpoint` wrote: params (replacing or overwriting
    those of the same names), `svi`'s optimizer state and this thread's
    generator.  The file is checked in full first; a bad file raises a
    ValueError naming it and what is wrong, and changes nothing."""
    restore_checkpoint(archive.read(path, "checkpoint"), svi)


def restore_checkpoint(contents, svi):
    """`load_checkpoint` on a checkpoint already read (an archive.Contents)."""
    store = get_param_store()
    params = store.from_archive(contents)
    state = state_from_archive(contents)
    bit_generator = _bit_generator(contents)
    shapes = {name: arr.shape for name, arr, _ in params}
    for name in state:
        if name not in shapes:
            raise contents.error(f"corrupt checkpoint: optimizer state for param {name!r}, "
                                 "which it does not hold")
    try:
        svi.optim.set_state(state)  # checks every entry before changing any
    except (TypeError, ValueError) as e:
        raise contents.error(str(e)) from None
    store.install(params)
    current = _core.get_generator()
    if type(current.bit_generator) is type(bit_generator):
        current.bit_generator.state = bit_generator.state
    else:
        _core.set_generator(np.random.Generator(bit_generator))


def _bit_generator(contents):
    """A new bit generator in the saved state (loading it checks the state)."""
    try:
        state = _from_json(contents.field("generator", dict))
    except (TypeError, ValueError):
        raise contents.error("corrupt checkpoint: the generator state is invalid") from None
    return bit_generator_from_state(state, contents, "the")


def bit_generator_from_state(state, contents, whose):
    """A new bit generator in `state` (a saved `bit_generator.state`); one
    NumPy does not make or refuses is a corrupt checkpoint, the error naming
    `whose` generator ("the", "rank 3's")."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise contents.error(f"corrupt checkpoint: {whose} generator is an unknown bit "
                             f"generator {name!r}")
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError):
        raise contents.error(f"corrupt checkpoint: {whose} {name} generator state is "
                             "invalid") from None
    return bit_generator


def _to_json(value):
    """A bit generator's state as JSON (MT19937's key is an array)."""
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(value):
    if isinstance(value, dict):
        if "__array__" in value:
            return np.array(value["__array__"], dtype=value.get("dtype"))
        return {k: _from_json(v) for k, v in value.items()}
    return value
