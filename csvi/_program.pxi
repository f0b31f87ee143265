# A frozen SVI step (src_c/program.c): the tape's records replayed N times in
# C loops with the GIL released, a few hundredths of a second at a time so
# that Ctrl-C is seen between steps.
from libc.stdlib cimport calloc, free
from cpython.exc cimport PyErr_CheckSignals
from time import perf_counter as _perf_counter

# Seconds of steps between two looks at pending signals (Ctrl-C).
cdef double _SIGNAL_CHECK_SECONDS = 0.02

cdef extern from "csvi_program.h":
    enum:
        CSVI_PROGRAM_DONE
        CSVI_PROGRAM_KERNEL_ERROR
        CSVI_PROGRAM_LOSS_NOT_FINITE
        CSVI_PROGRAM_GRAD_NOT_FINITE
        CSVI_PROGRAM_HOOK_FAILED
        CSVI_PROGRAM_PEER_FAILED

    ctypedef int (*csvi_program_grad_hook)(void *ctx, double *buffer, int64_t n) noexcept
    ctypedef struct csvi_program_param:
        int32_t leaf
        csvi_optim_config *config
        void *state
        int64_t *step

    ctypedef struct csvi_program:
        csvi_tape *tape
        int32_t root
        int32_t loss
        int32_t n_params
        csvi_program_param *params
        int32_t status
        int32_t kernel_rc
        int32_t failed_param
        csvi_program_grad_hook grad_hook
        void *hook_ctx
        double *hook_buffer
        int32_t params_changed
        unsigned char *uncleared
        int32_t *grad32
        int64_t *tril
        unsigned char *runs

    int64_t csvi_program_hook_size(const csvi_program *p)
    void csvi_program_bind(csvi_program *p, const int32_t *slots, const int64_t *offsets,
                           int32_t n, double *base)
    int csvi_program_init(csvi_program *p, int32_t particles, int fuse)
    void csvi_program_free(csvi_program *p)
    int64_t csvi_program_run(csvi_program *p, int64_t n_steps, double *losses) nogil
    void csvi_program_sync(csvi_program *p) nogil


cdef class Program:
    """Replays `tape` (one traced SVI step) with forward, backward and the
    optimizer update of every param, N times, in C.

    `params` is a list of (leaf Tensor, OptimKernel); the leaves' buffers are
    the param store's arrays and the kernels' state and step counts, all
    updated in place step by step, so they agree whenever the loop stops.
    With `particles` > 1 the tape is one particle's step, its loss scaled by
    1/particles, run with a particle dimension (src_c/csvi_program.h).  With
    `fuse` the tape's op chains are rewritten into fused kernels
    (src_c/csvi_fuse.h); the tape then belongs to the program."""
    cdef csvi_program p
    cdef Tape tape
    cdef list keep
    cdef object grad_hook         # Python callable(buffer) or None (see set_grad_hook)
    cdef cnp.ndarray hook_buffer  # the buffer the C loop packs, viewed by the hook
    cdef object hook_error        # what the hook raised, re-raised by run()

    def __cinit__(self, Tape tape, Tensor root, Tensor loss, list params, int32_t particles=1,
                  bint fuse=True):
        if not tape.owns(root) or not tape.owns(loss):
            raise ValueError("Program: the loss tensors are not on this tape")
        if particles < 1:
            raise ValueError(f"Program: particles must be positive, got {particles}")
        if loss._value.size != 1:
            raise ValueError(f"Program: the loss must be a scalar, got shape {loss._value.shape}")
        self.tape = tape
        self.keep = []
        self.p.tape = &tape.c
        self.p.root = root._slot
        self.p.loss = loss._slot
        self.p.n_params = len(params)
        self.p.params = <csvi_program_param *>calloc(max(len(params), 1),
                                                    sizeof(csvi_program_param))
        if self.p.params == NULL:
            raise MemoryError()
        cdef int k
        cdef Tensor leaf
        cdef OptimKernel kernel
        for k, (leaf, kernel) in enumerate(params):
            if not tape.owns(leaf):
                raise ValueError("Program: a param leaf is not on this tape")
            if kernel.size != leaf._value.size:
                raise ValueError(f"Program: param {k} has {leaf._value.size} elements, but "
                                 f"its optimizer was made for {kernel.size}")
            self.p.params[k].leaf = leaf._slot
            self.p.params[k].config = &kernel.c
            self.p.params[k].state = cnp.PyArray_DATA(kernel.state)
            self.p.params[k].step = &kernel._step
            self.keep.append((leaf, kernel))
        if csvi_program_init(&self.p, particles, fuse) != CSVI_OK:
            raise MemoryError()

    def set_grad_hook(self, hook):
        """Call `hook(buffer)` once per step between the reverse sweep and
        the updates (None removes it).  `buffer` is one float64 array, the
        same each step: every param's gradient in param order, then the loss,
        then a failure flag (src_c/csvi_program.h); the hook overwrites it in
        place with what the updates should use (data-parallel SVI averages it
        over processes).  An exception in the hook stops the run before that
        step's update and is re-raised by `run`."""
        if hook is not None and not callable(hook):
            raise TypeError(f"set_grad_hook: hook must be callable or None, got {hook!r}")
        _check_idle(self.tape)
        if hook is None:
            self.p.grad_hook = NULL
            self.p.hook_ctx = NULL
            self.p.hook_buffer = NULL
            self.grad_hook = self.hook_buffer = None
            return
        self.hook_buffer = np.zeros(csvi_program_hook_size(&self.p))
        self.grad_hook = hook
        self.p.hook_buffer = <double *>cnp.PyArray_DATA(self.hook_buffer)
        self.p.hook_ctx = <void *>self
        self.p.grad_hook = _call_grad_hook

    def gradient_buffers(self):
        """How a step keeps its gradients (src_c/program.c): a dict with
        "uncleared", the indices of the params whose float64 buffers are not
        cleared (their first write stores); "others", how many other slots'
        buffers are left so; and "float32", the params whose gradient the
        optimizer reads as their dense record's float32 product."""
        if self.p.uncleared == NULL:
            return {"uncleared": [], "others": 0, "float32": []}
        leaves = {self.p.params[k].leaf: k for k in range(self.p.n_params)}
        cdef int32_t s
        params, others = [], 0
        for s in range(self.tape.c.n_slots):
            if self.p.uncleared[s]:
                if s in leaves:
                    params.append(leaves[s])
                else:
                    others += 1
        return {"uncleared": sorted(params), "others": others,
                "float32": [k for k in range(self.p.n_params) if self.p.grad32[k]]}

    def ops_run(self):
        """Whether a step runs each op, by op index: False for an op whose
        value nothing the step needs reads any more (fusion pointed its
        readers elsewhere: a repeated TAKE's at the first one's rows); such
        ops run only to diagnose a non-finite loss."""
        cdef int32_t i
        return [bool(self.p.runs[i]) for i in range(self.tape.c.n_ops)]

    def tril_updates(self):
        """{param index: d} for the params the last run updated below the
        diagonal only: d x d matrices read only by UNIT_TRIL, whose gradient
        is zero on and above the diagonal (src_c/program.c, mark_tril)."""
        cdef int32_t n = self.p.n_params, k
        return {k: self.p.tril[n + k] for k in range(n) if self.p.tril[n + k]}

    def dense_input_copies(self):
        """How the float32 dense records share their inputs' float32 copies
        and gradients (src_c/program.c, mark_x32 and mark_dx32), by op
        index: {"shared": {record: the earlier record whose x copy it
        reads}, "written": {record: the record into whose aux it writes its
        output's copy}, "gradients": {record: the records whose float32 x
        gradients it reads, in the order it adds them}, "probs": {record:
        the flat Bernoulli row sum whose probs' gradient it forms itself
        (mark_probs_into_dense)}}."""
        shared, written, gradients, probs = {}, {}, {}, {}
        cdef int32_t i
        cdef int64_t f
        for i in range(self.tape.c.n_ops):
            if self.tape.c.ops[i].code != OP_DENSE and self.tape.c.ops[i].code != OP_DENSE_ACT:
                continue
            f = self.tape.c.ops[i].iattr[CSVI_DENSE_IATTR_X32_FROM]
            if f > 0 and f - 1 != i:
                shared[i] = f - 1
            f = self.tape.c.ops[i].iattr[CSVI_DENSE_IATTR_X32_TO]
            if f > 0:
                written[i] = f - 1
            readers = [self.tape.c.ops[i].iattr[CSVI_DENSE_IATTR_DX32_FROM + q] - 1
                       for q in range(CSVI_DENSE_DX32_READERS)
                       if self.tape.c.ops[i].iattr[CSVI_DENSE_IATTR_DX32_FROM + q] > 0]
            if readers:
                gradients[i] = readers
            f = self.tape.c.ops[i].iattr[CSVI_DENSE_IATTR_PROBS_OF]
            if f > 0:
                probs[i] = f - 1
        return {"shared": shared, "written": written, "gradients": gradients, "probs": probs}

    def slots_in(self, cnp.ndarray buffer):
        """(slots, offsets): the slots whose values the program reads from
        `buffer`'s memory (an array it was compiled on, or a view of one) and
        where each starts, in doubles (see bind)."""
        cdef uintptr_t lo = <uintptr_t>cnp.PyArray_DATA(buffer)
        cdef uintptr_t hi = lo + <uintptr_t>buffer.nbytes
        cdef uintptr_t d
        cdef int32_t s
        slots, offsets = [], []
        for s in range(self.tape.c.n_slots):
            d = <uintptr_t>self.tape.c.slots[s].data
            if (self.tape.c.slots[s].size > 0 and lo <= d and (d - lo) % sizeof(double) == 0
                    and d + <uintptr_t>self.tape.c.slots[s].size * sizeof(double) <= hi):
                slots.append(s)
                offsets.append((d - lo) // sizeof(double))
        return np.array(slots, dtype=np.int32), np.array(offsets, dtype=np.int64)

    def bind(self, cnp.ndarray slots, cnp.ndarray offsets, cnp.ndarray array):
        """Points `slots` (from slots_in) at `array` + offsets: the next steps
        read `array`, which must have the layout of the buffer slots_in was
        given (float64, C-contiguous, aligned, at least as large) and which
        the caller keeps alive while the program may run."""
        if slots.dtype != np.int32 or offsets.dtype != np.int64 or slots.size != offsets.size:
            raise TypeError("Program.bind: slots and offsets must come from slots_in")
        if array.dtype != np.float64 or not array.flags.c_contiguous or not array.flags.aligned:
            raise ValueError("Program.bind: the array must be C-contiguous, aligned float64")
        cdef cnp.ndarray s = np.ascontiguousarray(slots), o = np.ascontiguousarray(offsets)
        cdef int32_t *sp = <int32_t *>cnp.PyArray_DATA(s)
        cdef int64_t *op = <int64_t *>cnp.PyArray_DATA(o)
        cdef int32_t k
        for k in range(s.size):
            if sp[k] < 0 or sp[k] >= self.tape.c.n_slots:
                raise ValueError(f"Program.bind: slot {sp[k]} is not on the tape")
            if op[k] < 0 or op[k] + self.tape.c.slots[sp[k]].size > array.size:
                raise ValueError(f"Program.bind: slot {sp[k]} reaches past the array's "
                                 f"{array.size} elements")
        _check_idle(self.tape)
        csvi_program_bind(&self.p, sp, op, <int32_t>s.size, <double *>cnp.PyArray_DATA(array))

    @property
    def hook_size(self):
        """Doubles in the gradient hook's buffer."""
        return csvi_program_hook_size(&self.p)

    def __dealloc__(self):
        if self.p.tape != NULL:
            csvi_program_free(&self.p)
        free(self.p.params)

    def run(self, int64_t num_steps):
        """Runs up to num_steps steps; returns (losses, status) where losses
        holds the completed steps and status is "done", "kernel_error",
        "loss_not_finite", "grad_not_finite:<param index>" or, with a gradient
        hook, "peer_failed" (another process's step failed; see
        set_grad_hook).

        The loop runs in chunks of about 0.02 s, with pending signals handled
        in between; an exception they raise (KeyboardInterrupt) leaves every
        param after a whole step and carries the completed steps' losses as
        its `losses` attribute."""
        cdef cnp.ndarray losses = np.empty(num_steps)
        cdef double *out = <double *>cnp.PyArray_DATA(losses)
        cdef _ThreadState st = _thread_state()
        cdef int64_t done = 0, got, chunk = 1, want
        cdef double seconds
        _check_idle(self.tape)
        self.hook_error = None
        self.p.status = CSVI_PROGRAM_DONE
        self.p.params_changed = 1  # the user, an eager step or a load may have written them
        try:
            while done < num_steps:
                want = min(chunk, num_steps - done)
                start = _perf_counter()
                st.acquire()  # the thread's generator: NumPy's methods take this lock
                self.tape.c.rng = st.bitgen
                self.tape.busy = True
                with nogil:
                    got = csvi_program_run(&self.p, want, out + done)
                self.tape.busy = False
                st.release()
                done += got
                if self.p.status != CSVI_PROGRAM_DONE:
                    break
                seconds = _perf_counter() - start
                # next chunk: about _SIGNAL_CHECK_SECONDS long, growing at most 4x
                chunk = max(1, min(4 * want, <int64_t>(want * _SIGNAL_CHECK_SECONDS
                                                       / max(seconds, 1e-9))))
                PyErr_CheckSignals()
            if self.p.status == CSVI_PROGRAM_HOOK_FAILED and self.hook_error is not None:
                error, self.hook_error = self.hook_error, None
                raise error
        except BaseException as e:
            e.losses = losses[:done].copy()
            raise
        finally:  # float32 weights' values kept in their float32 copies, into the params
            self.tape.busy = True
            with nogil:
                csvi_program_sync(&self.p)
            self.tape.busy = False
        status = {CSVI_PROGRAM_DONE: "done", CSVI_PROGRAM_KERNEL_ERROR: "kernel_error",
                  CSVI_PROGRAM_LOSS_NOT_FINITE: "loss_not_finite",
                  CSVI_PROGRAM_GRAD_NOT_FINITE: "grad_not_finite",
                  CSVI_PROGRAM_HOOK_FAILED: "hook_failed",
                  CSVI_PROGRAM_PEER_FAILED: "peer_failed"}[self.p.status]
        if self.p.status == CSVI_PROGRAM_KERNEL_ERROR:
            try:
                _check_rc(self.tape, self.p.kernel_rc)
            except Exception as e:
                status = f"kernel_error: {e}"
        elif self.p.status == CSVI_PROGRAM_GRAD_NOT_FINITE:
            status = f"grad_not_finite:{self.p.failed_param}"
        return losses[:done], status


cdef int _call_grad_hook(void *ctx, double *buffer, int64_t n) noexcept with gil:
    """The C loop's gradient hook: calls the Program's Python hook on its
    buffer (taking the GIL for that call only); an exception is kept for
    Program.run to raise."""
    cdef Program program = <Program>ctx
    try:
        program.grad_hook(program.hook_buffer)
    except BaseException as e:
        program.hook_error = e
        return -1
    return 0
