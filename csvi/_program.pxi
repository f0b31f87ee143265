# A frozen SVI step (src_c/program.c): the tape's records replayed N times in
# one C loop with the GIL released.
from libc.stdlib cimport calloc, free

cdef extern from "csvi_program.h":
    enum:
        CSVI_PROGRAM_DONE
        CSVI_PROGRAM_KERNEL_ERROR
        CSVI_PROGRAM_LOSS_NOT_FINITE
        CSVI_PROGRAM_GRAD_NOT_FINITE

    ctypedef struct csvi_program_param:
        int32_t leaf
        csvi_optim_config *config
        double *state
        int64_t step

    ctypedef struct csvi_program:
        csvi_tape *tape
        int32_t root
        int32_t loss
        int32_t n_params
        csvi_program_param *params
        int32_t status
        int32_t kernel_rc
        int32_t failed_param

    int csvi_program_init(csvi_program *p, int32_t particles, int fuse)
    void csvi_program_free(csvi_program *p)
    int64_t csvi_program_run(csvi_program *p, int64_t n_steps, double *losses) nogil


cdef class Program:
    """Replays `tape` (one traced SVI step) with forward, backward and the
    optimizer update of every param, N times, in C.

    `params` is a list of (leaf Tensor, OptimKernel, state ndarray, steps done);
    the leaves' buffers are the param store's arrays, updated in place.  With
    `particles` > 1 the tape is one particle's step, its loss scaled by
    1/particles, run with a particle dimension (src_c/csvi_program.h).  With
    `fuse` the tape's op chains are rewritten into fused kernels
    (src_c/csvi_fuse.h); the tape then belongs to the program."""
    cdef csvi_program p
    cdef Tape tape
    cdef list keep

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
        cdef cnp.ndarray state
        for k, (leaf, kernel, state, step) in enumerate(params):
            if not tape.owns(leaf):
                raise ValueError("Program: a param leaf is not on this tape")
            if state.dtype != np.float64 or not state.flags.c_contiguous:
                raise TypeError("Program: optimizer state must be C-contiguous float64")
            self.p.params[k].leaf = leaf._slot
            self.p.params[k].config = &kernel.c
            self.p.params[k].state = <double *>cnp.PyArray_DATA(state)
            self.p.params[k].step = step
            self.keep.append((leaf, kernel, state))
        if csvi_program_init(&self.p, particles, fuse) != CSVI_OK:
            raise MemoryError()

    def __dealloc__(self):
        if self.p.tape != NULL:
            csvi_program_free(&self.p)
        free(self.p.params)

    def run(self, int64_t num_steps):
        """Runs up to num_steps steps; returns (losses, status) where losses
        holds the completed steps and status is "done", "kernel_error",
        "loss_not_finite" or "grad_not_finite:<param index>"."""
        cdef cnp.ndarray losses = np.empty(num_steps)
        cdef int64_t done
        self.tape.c.rng = _bitgen
        with nogil:
            done = csvi_program_run(&self.p, num_steps, <double *>cnp.PyArray_DATA(losses))
        status = {CSVI_PROGRAM_DONE: "done", CSVI_PROGRAM_KERNEL_ERROR: "kernel_error",
                  CSVI_PROGRAM_LOSS_NOT_FINITE: "loss_not_finite",
                  CSVI_PROGRAM_GRAD_NOT_FINITE: "grad_not_finite"}[self.p.status]
        if self.p.status == CSVI_PROGRAM_KERNEL_ERROR:
            try:
                _check_rc(self.tape, self.p.kernel_rc)
            except Exception as e:
                status = f"kernel_error: {e}"
        elif self.p.status == CSVI_PROGRAM_GRAD_NOT_FINITE:
            status = f"grad_not_finite:{self.p.failed_param}"
        return losses[:done], status

    def steps(self):
        """Updates done so far for each param, in the order given."""
        return [self.p.params[k].step for k in range(self.p.n_params)]
