# The tape: a C csvi_tape plus the Python objects that keep its buffers alive.
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, WAIT_LOCK,
                               PyThread_get_thread_ident)

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
    cdef public list conversions  # (data, its float64 copy) made while freezing
    cdef bint busy          # a kernel runs on it with the GIL released
    cdef readonly bint default   # a thread's default tape: backward() frees the graph

    def __cinit__(self, bint record_all=False):
        global _next_generation
        csvi_tape_init(&self.c)
        self.keep = []
        self.leaves = []
        self.generation = _next_generation
        _next_generation += 1
        self.record_all = record_all
        self.freezing = False
        self.conversions = []
        self.busy = False
        self.default = False

    def __dealloc__(self):
        csvi_tape_free(&self.c)

    cpdef clear(self):
        """Forget every slot and op (keeping capacity); Tensors on it go stale."""
        global _next_generation
        _check_idle(self)
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

    def op_table(self):
        """(name, input shapes, output shape) of each recorded op, in order:
        where a program's elements go (for profiling and tests)."""
        table = []
        cdef const csvi_op *op
        cdef int32_t i, k
        for i in range(self.c.n_ops):
            op = &self.c.ops[i]
            ins = tuple(self._slot_shape(op.in_[k]) for k in range(op.n_in))
            table.append((csvi_kernels[op.code].name.decode(), ins, self._slot_shape(op.out)))
        return table

    cdef tuple _slot_shape(self, int32_t slot):
        cdef csvi_slot *s = &self.c.slots[slot]
        return tuple(s.shape[d] for d in range(s.ndim))

    cdef int32_t add_array(self, cnp.ndarray arr, bint needs_grad) except -1:
        cdef int64_t shape[16]
        cdef int nd = cnp.PyArray_NDIM(arr)
        cdef int d
        _check_idle(self)
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
        cdef cnp.npy_intp dims[16]
        cdef int d
        for d in range(s.ndim):
            dims[d] = s.shape[d]
        arr = cnp.PyArray_SimpleNewFromData(s.ndim, dims, cnp.NPY_DOUBLE, <void *>s.grad)
        cnp.set_array_base(arr, self)
        return arr

    def backward(self, Tensor root, bint set_leaf_grads=True, bint intermediate_grads=True):
        """Reverse sweep from a scalar `root`; adds into `.grad` of leaf Tensors
        (or, with set_leaf_grads=False, leaves the gradients for `grad_of`).
        intermediate_grads=False: only the leaves' gradients will be read (an
        SVI step), so an observed `Normal(a[group], s)` sweeps as one fused
        VJP (src_c/csvi_fuse.h) and `grad_of` its gathered locs or
        log-densities gives None; the leaves' gradients are the same bits."""
        if not self.owns(root):
            raise RuntimeError("backward: this tensor's graph has already been freed "
                               "(backward was called on it, or its tape was cleared)")
        if root._value.size != 1:
            raise ValueError(f"backward: the output must be a scalar, got shape {root.shape}")
        cdef int rc
        _check_idle(self)
        self.busy = True
        with nogil:
            rc = csvi_tape_backward(&self.c, root._slot, not intermediate_grads)
        self.busy = False
        _check_rc(self, rc)
        if not set_leaf_grads:
            return
        cdef Tensor leaf
        for leaf in self.leaves:
            g = self.grad_view(leaf._slot)
            if g is None:
                continue
            leaf.grad = g.copy() if leaf.grad is None else leaf.grad + g

    @property
    def fused_in_last_sweep(self):
        """How many chains the last backward ran fused (intermediate_grads=False)."""
        return self.c.sweep_fused

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
        raise IndexError(_index_error(tape, tape.c.failed_op) if tape.c.failed_op >= 0
                         else "csvi: an index is out of bounds")
    if rc == CSVI_ERR_SHAPE:
        raise ValueError(f"csvi: shapes do not fit in op {name}")
    raise ValueError(f"csvi: a value is outside the domain of op {name}")


cdef inline int _check_idle(Tape tape) except -1:
    """Refuses to touch a tape while another thread runs a kernel on it (a
    Tensor, tape or SVI object shared by two threads at once)."""
    if tape.busy:
        raise RuntimeError("csvi: this tape is in use by another thread (a tensor, SVI or "
                           "compiled object is used from two threads at once); give each "
                           "thread its own")
    return 0


# Per-thread state.  Each Python thread has its own tape stack, default tape
# (what ops outside an SVI step record on), scratch tape (constant-only ops,
# cleared right after) and generator, so threads never share a buffer a
# kernel writes with the GIL released, nor a bit generator.  The state of the
# thread that last asked is cached with the thread state's unique id (never
# reused, unlike pthread ids), so the common case is one comparison.
from cpython.pystate cimport PyThreadState, PyThreadState_Get
import threading as _threading
import weakref as _weakref

cdef extern from "Python.h":
    uint64_t PyThreadState_GetID(PyThreadState *tstate)


cdef class _ThreadState:
    cdef list handlers          # effect handlers (csvi.handlers), outermost first
    cdef list tapes             # `recording` stack, innermost last
    cdef Tape default
    cdef Tape scratch
    cdef object generator       # numpy.random.Generator
    cdef object acquire         # its bit generator's lock (NumPy's own methods take
    cdef object release         # it), as bound methods: the cheapest call
    cdef bitgen_t *bitgen
    cdef bint new_data_each_step  # compiling a Jit* ELBO's step (see NewDataEachStep)
    cdef object __weakref__

    def __cinit__(self):
        self.handlers = []
        self.tapes = []
        self.default = Tape()
        self.default.default = True
        self.scratch = Tape()
        _use_generator(self, np.random.default_rng())


cdef object _local = _threading.local()
cdef object _all_states = _weakref.WeakSet()   # live threads' states (set_generator)
cdef _ThreadState _cached_state = None
cdef uint64_t _cached_id = 0                     # thread ids start at 1


cdef inline _ThreadState _thread_state():
    """The calling thread's state (the GIL must be held)."""
    if PyThreadState_GetID(PyThreadState_Get()) == _cached_id:
        return _cached_state
    return _thread_state_slow()


cdef _ThreadState _thread_state_slow():
    global _cached_state, _cached_id
    st = getattr(_local, "state", None)
    if st is None:
        st = _ThreadState()
        _local.state = st
        _all_states.add(st)
    old = _cached_state  # released only after the new pair is in place
    _cached_id = 0
    _cached_state = st
    _cached_id = PyThreadState_GetID(PyThreadState_Get())
    return st


cpdef list handler_stack():
    """The calling thread's effect-handler stack (outermost handler first)."""
    return _thread_state().handlers


cpdef Tape current_tape():
    """The tape ops of the calling thread record on."""
    cdef _ThreadState st = _thread_state()
    return st.tapes[-1] if st.tapes else st.default


class recording:
    """Context manager that makes `tape` current in this thread: every op is
    recorded on it."""

    def __init__(self, Tape tape):
        self.tape = tape

    def __enter__(self):
        _thread_state().tapes.append(self.tape)
        return self.tape

    def __exit__(self, *exc):
        _thread_state().tapes.pop()
        return False


cdef class StepLock:
    """The lock an SVI or compiled object holds for one step or run, so two
    threads sharing it take turns.  A Ctrl-C can land where a `with` block
    calls __exit__ and skip the release; the thread that held the lock then
    passes straight through its next acquire (it still owns it) instead of
    deadlocking.  Owner and lock change together in C, where no signal
    handler runs in between."""

    cdef PyThread_type_lock lock
    cdef unsigned long owner

    def __cinit__(self):
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError()
        self.owner = 0

    def __dealloc__(self):
        if self.lock != NULL:
            PyThread_free_lock(self.lock)

    def __enter__(self):
        cdef unsigned long me = PyThread_get_thread_ident()
        if self.owner == me:
            return self
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        self.owner = me
        return self

    def __exit__(self, *exc):
        if self.owner == PyThread_get_thread_ident():
            self.owner = 0
            PyThread_release_lock(self.lock)
        return False


def record_call(Tape tape, fn, *args, **kwargs):
    """fn(*args, **kwargs) with every op recorded on `tape`.  Push, call and
    pop happen in this one compiled frame, so no Python line runs between the
    call's end and the pop: even a Ctrl-C cannot leave `tape` recording (as
    it can a `with recording(tape)` block, on the line where Python calls
    __exit__)."""
    cdef list tapes = _thread_state().tapes
    cdef Py_ssize_t depth = len(tapes)
    tapes.append(tape)
    try:
        return fn(*args, **kwargs)
    finally:
        del tapes[depth:]


def provenance(list sources, list targets):
    """For each Tensor of `targets`, the frozenset of indices into `sources`
    whose values it was computed from, read off the tape both were recorded
    on (what Pyro's provenance tracking gives TraceGraph_ELBO).  A Tensor not
    live on the current tape depends on nothing.  One forward pass over the
    ops per 64 sources, OR-ing bit masks from inputs into outputs."""
    cdef Tape tape = current_tape()
    cdef int32_t n_slots = tape.c.n_slots
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] mask
    cdef uint64_t m
    cdef int32_t i, k
    cdef csvi_op *op
    cdef Tensor t
    result = [set() for _ in targets]
    for start in range(0, len(sources), 64):
        mask = np.zeros(n_slots, dtype=np.uint64)
        for k, t in enumerate(sources[start:start + 64]):
            if tape.owns(t):
                mask[t._slot] |= (<uint64_t>1) << k
        for i in range(tape.c.n_ops):
            op = &tape.c.ops[i]
            m = 0
            for k in range(op.n_in):
                m |= mask[op.in_[k]]
            if m:
                mask[op.out] |= m
                if op.aux >= 0:
                    mask[op.aux] |= m
        for j, t in enumerate(targets):
            if tape.owns(t):
                m = mask[t._slot]
                for k in range(64):
                    if m >> k & 1:
                        result[j].add(start + k)
    return [frozenset(r) for r in result]


def unwind_recording(Tape tape):
    """Make `tape` and any tape made current after it stop recording: for a
    `with recording(tape)` block whose __exit__ a Ctrl-C skipped (see
    record_call, which cannot be skipped)."""
    cdef list tapes = _thread_state().tapes
    for k in range(len(tapes) - 1, -1, -1):
        if tapes[k] is tape:
            del tapes[k:]
            return


class off_tape:
    """Context manager: ops inside run as outside any SVI step (on this
    thread's default tape), e.g. a param's one-time initialization while a
    step is traced."""

    def __enter__(self):
        cdef _ThreadState st = _thread_state()
        st.tapes.append(st.default)
        return st.default

    def __exit__(self, *exc):
        _thread_state().tapes.pop()
        return False


_thread_state()  # the importing thread's

OPCODES = {csvi_kernels[i].name.decode(): i for i in range(CSVI_OP_COUNT)}
