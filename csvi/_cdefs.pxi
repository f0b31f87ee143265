# C declarations of src_c/ used by the glue.
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "numpy/random/bitgen.h":
    ctypedef struct bitgen_t:
        pass

cdef extern from "csvi_tape.h":
    enum:
        CSVI_MAX_DIMS
        CSVI_MAX_INPUTS
        CSVI_N_IATTR
        CSVI_N_DATTR
        CSVI_OK
        CSVI_ERR_NOMEM
        CSVI_ERR_INDEX
        CSVI_ERR_VALUE
        CSVI_ERR_SHAPE

    ctypedef struct csvi_slot:
        double *data
        double *grad
        int64_t size
        int32_t ndim
        int32_t needs_grad
        int32_t copies
        int64_t shape[8]

    ctypedef struct csvi_op:
        int32_t code
        int32_t n_in
        int32_t in_ "in"[8]
        int32_t out
        int32_t aux
        int64_t iattr[8]
        double dattr[4]

    ctypedef struct csvi_tape:
        csvi_slot *slots
        int32_t n_slots
        csvi_op *ops
        int32_t n_ops
        bitgen_t *rng
        int32_t failed_op

    void csvi_tape_init(csvi_tape *t)
    void csvi_tape_free(csvi_tape *t)
    void csvi_tape_clear(csvi_tape *t)
    int32_t csvi_tape_add_slot(csvi_tape *t, double *data, int32_t ndim,
                               const int64_t *shape, int32_t needs_grad) nogil
    int32_t csvi_tape_add_op(csvi_tape *t, const csvi_op *op) nogil
    int csvi_tape_forward_op(csvi_tape *t, int32_t i) nogil
    int csvi_tape_backward(csvi_tape *t, int32_t root) nogil
    int csvi_op_draws(int32_t code)

cdef extern from "csvi_opcodes.h":
    ctypedef int (*csvi_kernel_fn)(csvi_tape *t, const csvi_op *op)
    ctypedef struct csvi_kernel:
        csvi_kernel_fn fwd
        csvi_kernel_fn vjp
        const char *name
    enum:
        CSVI_OP_COUNT
    const csvi_kernel csvi_kernels[]
    int csvi_vjp_none(csvi_tape *t, const csvi_op *op)

cdef extern from "csvi_checks.h":
    int64_t csvi_first_outside(const double *x, int64_t n, double lo, double hi,
                               int lo_open, int hi_open, int integer) nogil
