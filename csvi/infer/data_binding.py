"""Where a compiled step reads an argument's data.

A Jit* ELBO's program is traced on a private copy of each array argument
(`traced`), and each step may bring another array of the same shape.  One
with `traced`'s layout (dtype, C order, aligned) is read where it lies: the
slots the program reads from `traced` are pointed at it, so a step never
copies a dataset the model subsamples (the HMM example's 7 MB of sequences).
Any other array is copied into `traced` and the slots pointed back there.
The float64 copies the trace made of the argument (integer data,
non-contiguous views: the tape's conversions, refreshed before each run) are
re-viewed on the array read.
"""
import numpy as np

__all__ = ["ArgumentBinding"]


class ArgumentBinding:
    """One array argument of a compiled program: `read(array)` makes the
    next steps read `array` (the caller holds the program's step lock)."""

    def __init__(self, program, traced, conversions):
        self.program = program
        self.traced = traced
        self.slots, self.offsets = program.slots_in(traced)
        self.conversions = conversions
        base = traced.__array_interface__["data"][0]
        self.views = [(i, data.__array_interface__["data"][0] - base, data.shape, data.strides,
                       data.dtype)
                      for i, (data, _) in enumerate(conversions)
                      if np.may_share_memory(data, traced)]
        self.bound = traced

    def read(self, array):
        if not self._same_layout(array):
            np.copyto(self.traced, array)
            array = self.traced
        if array is self.bound:
            return
        if self.slots.size:
            self.program.bind(self.slots, self.offsets, array)
        for i, offset, shape, strides, dtype in self.views:
            self.conversions[i] = (np.ndarray(shape, dtype, buffer=array, offset=offset,
                                              strides=strides), self.conversions[i][1])
        self.bound = array

    def _same_layout(self, array):
        return (array.dtype == self.traced.dtype and array.shape == self.traced.shape
                and array.flags.c_contiguous and array.flags.aligned)
