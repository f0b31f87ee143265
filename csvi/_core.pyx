# cython: language_level=3, boundscheck=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""csvi's only extension module: Cython glue over the C kernels in src_c/.

Split by concept into include files: the C declarations, the tape, the Tensor
type and its ops, the random-number handle, and the optimizer updates.  One
module keeps the cdef classes visible to each other without .pxd plumbing.
"""
cimport numpy as cnp
import collections

import numpy as np

cnp.import_array()

include "_cdefs.pxi"
include "_ext.pxi"
include "_parallel.pxi"
include "_random.pxi"
include "_tape.pxi"
include "_tensor.pxi"
include "_ops.pxi"
include "_special.pxi"
include "_linalg.pxi"
include "_contract.pxi"
include "_nn.pxi"
include "_families.pxi"
include "_numpy_protocol.pxi"
include "_checks.pxi"
include "_optim.pxi"
include "_program.pxi"
include "_messages.pxi"
include "_plate.pxi"
include "_dist_methods.pxi"
