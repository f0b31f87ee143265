# Argument checks for distributions and constraints, run in C.

def first_outside(x, double lo, double hi, bint lo_open=False, bint hi_open=False,
                  bint integer=False):
    """Flat index of the first element of x that is NaN, outside [lo, hi]
    (an open end excludes its bound) or, with `integer`, not whole; -1 if none."""
    cdef cnp.ndarray arr
    if type(x) is Tensor:
        arr = (<Tensor>x)._value
    else:
        arr = value_of(x)
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or arr.dtype != np.float64:
        arr = np.asarray(arr, dtype=np.float64, order="C")
    return csvi_first_outside(<double *>cnp.PyArray_DATA(arr), cnp.PyArray_SIZE(arr),
                              lo, hi, lo_open, hi_open, integer)
