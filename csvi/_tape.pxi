# The tape: a C csvi_tape plus the Python objects that keep its buffers alive.

cdef class Tensor

cdef uint64_t _next_generation = 1


cdef class Tape:
    """Records ops as (code, slots) in C; `backward` sweeps them in reverse in C.

    `record_all` tapes (SVI steps, compiling) keep every op, even ones on
    constants, so the record is a complete program of the step.  The default
    tape keeps only ops that a gradient can flow through.  `freezing` makes any
    conversion of a traced value to Python an error, since a frozen program
    could not repeat it.
    """
    cdef csvi_tape c
    cdef list keep          # ndarrays whose buffers the slots point into
    cdef list leaves        # Tensors registered here as leaves needing grad
    cdef uint64_t generation
    cdef public bint record_all
    cdef public bint freezing

    def __cinit__(self, bint record_all=False):
        global _next_generation
        csvi_tape_init(&self.c)
        self.keep = []
        self.leaves = []
        self.generation = _next_generation
        _next_generation += 1
        self.record_all = record_all
        self.freezing = False

    def __dealloc__(self):
        csvi_tape_free(&self.c)

    cpdef clear(self):
        """Forget every slot and op (keeping capacity); Tensors on it go stale."""
        global _next_generation
        csvi_tape_clear(&self.c)
        self.keep = []
        self.leaves = []
        self.generation = _next_generation
        _next_generation += 1

    @property
    def num_ops(self):
        return self.c.n_ops

    @property
    def num_slots(self):
        return self.c.n_slots

    def op_names(self):
        """Names of the recorded ops, in order (for debugging and tests)."""
        return [csvi_kernels[self.c.ops[i].code].name.decode() for i in range(self.c.n_ops)]

    cdef int32_t add_array(self, cnp.ndarray arr, bint needs_grad) except -1:
        cdef int64_t shape[8]
        cdef int nd = cnp.PyArray_NDIM(arr)
        cdef int d
        if nd > CSVI_MAX_DIMS:
            raise ValueError(f"csvi tensors have at most {CSVI_MAX_DIMS} dims, got shape {(<object>arr).shape}")
        for d in range(nd):
            shape[d] = cnp.PyArray_DIMS(arr)[d]
        cdef int32_t s = csvi_tape_add_slot(&self.c, <double *>cnp.PyArray_DATA(arr), nd,
                                            shape, needs_grad)
        if s < 0:
            raise MemoryError("csvi: cannot grow the tape")
        self.keep.append(arr)
        return s

    cdef int32_t slot_of(self, Tensor t) except -1:
        """t's slot on this tape, registering t here (as a leaf or a constant) if needed."""
        if t._tape is self and t._generation == self.generation:
            return t._slot
        if not t._leaf and t.requires_grad:
            raise RuntimeError(
                "csvi: a tensor computed on a graph that has been freed (by backward(), or "
                "by the end of an SVI step) or on another tape is used again, so its "
                "gradient cannot flow; recompute it, or use .detach() to use it as a constant")
        cdef bint leaf_grad = t._leaf and t.requires_grad
        t._slot = self.add_array(t._value, leaf_grad)
        t._tape = self
        t._generation = self.generation
        if leaf_grad:
            self.leaves.append(t)
        return t._slot

    cpdef bint owns(self, Tensor t):
        """t is live on this tape (recorded here since the last clear)."""
        return t._tape is self and t._generation == self.generation

    cdef object grad_view(self, int32_t slot):
        """A NumPy view of a slot's gradient in the arena (valid until next backward)."""
        cdef csvi_slot *s = &self.c.slots[slot]
        if s.grad == NULL:
            return None
        cdef cnp.npy_intp dims[8]
        cdef int d
        for d in range(s.ndim):
            dims[d] = s.shape[d]
        arr = cnp.PyArray_SimpleNewFromData(s.ndim, dims, cnp.NPY_DOUBLE, <void *>s.grad)
        cnp.set_array_base(arr, self)
        return arr

    def backward(self, Tensor root, bint set_leaf_grads=True):
        """Reverse sweep from a scalar `root`; adds into `.grad` of leaf Tensors
        (or, with set_leaf_grads=False, leaves the gradients for `grad_of`)."""
        if not self.owns(root):
            raise RuntimeError("backward: this tensor's graph has already been freed "
                               "(backward was called on it, or its tape was cleared)")
        if root._value.size != 1:
            raise ValueError(f"backward: the output must be a scalar, got shape {root.shape}")
        cdef int rc
        with nogil:
            rc = csvi_tape_backward(&self.c, root._slot)
        _check_rc(self, rc)
        if not set_leaf_grads:
            return
        cdef Tensor leaf
        for leaf in self.leaves:
            g = self.grad_view(leaf._slot)
            if g is None:
                continue
            leaf.grad = g.copy() if leaf.grad is None else leaf.grad + g

    def grad_of(self, Tensor t):
        """Gradient of the last backward sweep w.r.t. t (a view), or None."""
        if not self.owns(t):
            return None
        return self.grad_view(t._slot)


cdef int _check_rc(Tape tape, int rc) except -1:
    if rc == CSVI_OK:
        return 0
    cdef str name = "?"
    if tape.c.failed_op >= 0:
        name = csvi_kernels[tape.c.ops[tape.c.failed_op].code].name.decode()
    if rc == CSVI_ERR_NOMEM:
        raise MemoryError(f"csvi: out of memory in op {name}")
    if rc == CSVI_ERR_INDEX:
        raise IndexError(f"csvi: an index is out of bounds in op {name}")
    if rc == CSVI_ERR_SHAPE:
        raise ValueError(f"csvi: shapes do not fit in op {name}")
    raise ValueError(f"csvi: a value is outside the domain of op {name}")


# The default tape records only what a gradient can flow through; a scratch
# tape evaluates constant-only ops and is cleared right after.
cdef Tape _default_tape = Tape()
cdef Tape _scratch_tape = Tape()
cdef list _tape_stack = []


cpdef Tape current_tape():
    return _tape_stack[-1] if _tape_stack else _default_tape


class recording:
    """Context manager that makes `tape` current: every op is recorded on it."""

    def __init__(self, Tape tape):
        self.tape = tape

    def __enter__(self):
        _tape_stack.append(self.tape)
        return self.tape

    def __exit__(self, *exc):
        _tape_stack.pop()
        return False


def unwind_recording(Tape tape):
    """Make `tape` and any tape made current after it stop recording: a
    Ctrl-C landing exactly where a `with recording(tape)` block calls its
    __exit__ skips that call, and the step's `finally` repairs it."""
    for k in range(len(_tape_stack) - 1, -1, -1):
        if _tape_stack[k] is tape:
            del _tape_stack[k:]
            return


class off_tape:
    """Context manager: ops inside run as outside any SVI step (on the default
    tape), e.g. a param's one-time initialization while a step is traced."""

    def __enter__(self):
        _tape_stack.append(_default_tape)
        return _default_tape

    def __exit__(self, *exc):
        _tape_stack.pop()
        return False


OPCODES = {csvi_kernels[i].name.decode(): i for i in range(CSVI_OP_COUNT)}
