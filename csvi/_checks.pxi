# Argument checks for distributions and constraints, run in C.

cdef cnp.ndarray _c_doubles(x):
    """x's values as a C-contiguous float64 array (no copy when it is one)."""
    cdef cnp.ndarray arr = (<Tensor>x)._value if type(x) is Tensor else value_of(x)
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_TYPE(arr) != cnp.NPY_DOUBLE:
        arr = np.asarray(arr, dtype=np.float64, order="C")
    return arr


def first_outside(x, double lo, double hi, bint lo_open=False, bint hi_open=False,
                  bint integer=False):
    """Flat index of the first element of x that is NaN, outside [lo, hi]
    (an open end excludes its bound) or, with `integer`, not whole; -1 if none."""
    cdef cnp.ndarray arr = _c_doubles(x)
    return csvi_first_outside(<double *>cnp.PyArray_DATA(arr), cnp.PyArray_SIZE(arr),
                              lo, hi, lo_open, hi_open, integer)


# How far back from the newest op _gather_source looks for x's GATHER: a
# distribution checks its arguments as it is made, right after they are.
cdef int _GATHER_LOOKBACK = 4


cdef const csvi_slot *_gather_source(Tensor x):
    """The source slot of the GATHER that made x on its live tape, if it is
    among the newest ops and smaller than x; else NULL."""
    cdef Tape tape = x._tape
    if tape is None or not tape.owns(x):
        return NULL
    cdef csvi_tape *c = &tape.c
    cdef int32_t i
    for i in range(c.n_ops - 1, max(c.n_ops - _GATHER_LOOKBACK, 0) - 1, -1):
        if c.ops[i].out == x._slot:
            if c.ops[i].code != OP_GATHER:
                return NULL
            source = &c.slots[c.ops[i].in_[0]]
            return source if source.size < c.slots[x._slot].size else NULL
    return NULL


cdef class IntervalCheck:
    """`first_outside` with its bounds bound: one C-level call per use (it runs
    for every parameter and value a distribution validates, every step)."""
    cdef double lower, upper
    cdef bint lower_open, upper_open, integer

    def __init__(self, double lower, double upper, bint lower_open=False,
                 bint upper_open=False, bint integer=False):
        self.lower = lower
        self.upper = upper
        self.lower_open = lower_open
        self.upper_open = upper_open
        self.integer = integer

    def first_violation(self, x):
        """Flat index of the first element of x outside the interval, or -1.
        A Tensor gathered from a smaller one (`a[group]`, a Normal's loc in a
        hierarchical model) holds only that one's numbers, so when all of
        those are inside, so are its own and only the smaller one is read."""
        cdef const csvi_slot *source
        if type(x) is Tensor:
            source = _gather_source(<Tensor>x)
            if source != NULL and csvi_first_outside(
                    source.data, source.size, self.lower, self.upper, self.lower_open,
                    self.upper_open, self.integer) < 0:
                return -1
        cdef cnp.ndarray arr = _c_doubles(x)
        return csvi_first_outside(<double *>cnp.PyArray_DATA(arr), cnp.PyArray_SIZE(arr),
                                  self.lower, self.upper, self.lower_open, self.upper_open,
                                  self.integer)
