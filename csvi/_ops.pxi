# Op emission: turn a call into one tape record, run its C forward, wrap the
# result.  Every differentiable computation in csvi goes through `_emit`.
from cpython.tuple cimport PyTuple_GET_SIZE
from libc.math cimport INFINITY, floor, signbit

cdef int64_t _GIL_RELEASE_SIZE = 65536


cdef Tensor _wrap(cnp.ndarray arr, Tape tape, int32_t slot, bint requires_grad):
    cdef Tensor t = Tensor.__new__(Tensor)
    t._value = arr
    t._tape = tape
    t._slot = slot
    t._generation = tape.generation if tape is not None else 0
    t.requires_grad = requires_grad
    t._leaf = False
    return t


# Constant Tensors of Python floats other than -0.0 (a dict would take it for
# 0.0), shared (a constant is never written to), so `x * 2.0`, `obs=1.0` or a
# Delta's log_density=0.0 allocate nothing after the first time.
cdef dict _float_constants = {}


cdef Tensor _constant(object x):
    """A Tensor holding NumPy data, not on any tape until an op uses it."""
    cdef Tensor t
    if type(x) is float and (x != 0.0 or not signbit(<double>x)):
        t = _float_constants.get(x)
        if t is not None:
            return t
        if len(_float_constants) > 4096:
            _float_constants.clear()
        t = _constant_array(x)
        _float_constants[x] = t
        return t
    return _constant_array(x)


cdef Tensor _constant_array(object x):
    cdef Tensor t = Tensor.__new__(Tensor)
    try:
        arr = np.asarray(x, dtype=np.float64, order="C")
    except (TypeError, ValueError) as e:
        raise TypeError(f"csvi: cannot use {type(x).__name__} value {x!r} as a tensor: {e}") from None
    t._value = arr
    t._tape = None
    t._slot = -1
    t._leaf = True
    t.requires_grad = False
    if isinstance(x, DataArray):
        if _refusing_computed_data() and _computed_from_data(x):
            raise ValueError(
                f"csvi: an array of shape {np.shape(x)} that NumPy computed from the step's "
                "data (`x - x.mean()`, `np.log(x)`, `x.astype(...)`) is used by the model "
                "while a Jit* ELBO's step is compiled; the compiled step would use these "
                "values whatever data later steps bring.  Compute it before calling svi.step "
                "and pass the result, or compute it with csvi's ops on csvi.as_tensor(x)")
        # (the same first byte: a view, no conversion; asked before NumPy's test)
        if (cnp.PyArray_DATA(<cnp.ndarray>arr) != cnp.PyArray_DATA(<cnp.ndarray>x)
                and not np.may_share_memory(arr, x)):
            _note_conversion(x, arr)
    return t


cdef _note_conversion(object data, cnp.ndarray copy):
    """A step being compiled converted `data` (integer, or not C-contiguous)
    to a float64 copy that the program will read: the copy is refreshed from
    the data before every run (CompiledSVI.run), as an eager step converts
    it each time."""
    cdef _ThreadState st = _thread_state()
    if st.tapes and (<Tape>st.tapes[-1]).freezing:
        (<Tape>st.tapes[-1]).conversions.append((data, copy))


cdef inline Tensor as_tensor(object x):
    if type(x) is Tensor:
        return <Tensor>x
    if isinstance(x, Tensor):
        return <Tensor>x
    return _constant(x)


def astensor(x):
    """x itself if it is a Tensor, else a constant Tensor over x's data (no copy
    when x is already a C-contiguous float64 array)."""
    return as_tensor(x)


cdef cnp.ndarray _empty(tuple shape):
    cdef int nd = PyTuple_GET_SIZE(shape)
    cdef cnp.npy_intp dims[16]
    cdef int d
    if nd > CSVI_MAX_DIMS:
        raise ValueError(f"csvi tensors have at most {CSVI_MAX_DIMS} dims, got shape {shape}")
    for d in range(nd):
        dims[d] = <cnp.npy_intp>shape[d]
        if dims[d] < 0:
            raise ValueError(f"csvi: negative dimension in shape {shape}")
    return cnp.PyArray_EMPTY(nd, dims, cnp.NPY_DOUBLE, 0)


cdef tuple _aux_shape(int code, tuple ins, tuple shape, tuple iattr):
    """The shape of op `code`'s aux slot by its registry rule (csvi_aux_rule,
    src_c/csvi_tape.h), or None for no aux slot."""
    cdef int rule = csvi_kernels[code].aux
    cdef int64_t size = 1, table = 1
    if rule == CSVI_AUX_NONE:
        return None
    if rule == CSVI_AUX_OUT:
        return shape
    if rule == CSVI_AUX_PAIR:
        return (2,) + shape
    if rule == CSVI_AUX_BERNOULLI:
        if iattr is not None and iattr[0]:
            return shape
        param = (<Tensor>ins[1])._value
        for n in shape:
            size *= n
        return (4,) + param.shape if 2 * param.size <= size else None
    if rule == CSVI_AUX_IN0:
        return (<Tensor>ins[0])._value.shape
    if rule == CSVI_AUX_IN0_OUT or rule == CSVI_AUX_JOINT_OUT:
        for n in shape:
            size *= n
        if rule == CSVI_AUX_IN0_OUT:
            return ((<Tensor>ins[0])._value.size + size,)
        joint = ()
        for x in ins:
            joint = broadcast_shapes(joint, (<Tensor>x)._value.shape)
        for n in joint:
            table *= n
        return (table + size,)
    for n in shape:
        size *= n
    while table < 2 * size:
        table *= 2
    return (table,)


def op_registry():
    """{name: (code, flags, aux rule)} of every op as C's kernel table holds
    the src_c/*.def columns, flags and rule by their C names."""
    rules = {CSVI_AUX_NONE: "CSVI_AUX_NONE", CSVI_AUX_OUT: "CSVI_AUX_OUT",
             CSVI_AUX_PAIR: "CSVI_AUX_PAIR", CSVI_AUX_BERNOULLI: "CSVI_AUX_BERNOULLI",
             CSVI_AUX_IN0: "CSVI_AUX_IN0", CSVI_AUX_SET: "CSVI_AUX_SET",
             CSVI_AUX_IN0_OUT: "CSVI_AUX_IN0_OUT", CSVI_AUX_JOINT_OUT: "CSVI_AUX_JOINT_OUT"}
    return {csvi_kernels[i].name.decode(): (
                i, "CSVI_DRAWS" if csvi_kernels[i].flags & CSVI_DRAWS else "0",
                rules[csvi_kernels[i].aux])
            for i in range(CSVI_OP_COUNT)}


cdef Tensor _emit(int code, tuple ins, tuple shape, bint differentiable,
                  tuple iattr, tuple dattr, tuple aux_shape):
    """Record op `code` on inputs `ins` with an output of `shape`, run it, wrap it."""
    cdef _ThreadState st = _thread_state()
    cdef Tape tape = st.tapes[-1] if st.tapes else st.default
    cdef int n = PyTuple_GET_SIZE(ins)
    cdef int k
    cdef Tensor t
    cdef bint maybe_grad = False
    if n > CSVI_MAX_INPUTS:
        raise ValueError(f"csvi: an op takes at most {CSVI_MAX_INPUTS} inputs, got {n}")
    _require_ext(code, iattr)
    if differentiable:
        for k in range(n):
            if (<Tensor>ins[k]).requires_grad:
                maybe_grad = True
                break
    if not tape.record_all and not maybe_grad:
        tape = st.scratch
    cdef csvi_op op
    op.code = code
    op.n_in = n
    op.aux = -1
    cdef bint need = False
    for k in range(n):
        if tape is st.scratch:
            # Borrow the buffer only: slot_of would move the Tensor's slot off
            # its live tape, cutting its gradient (y - y.detach(), y > 0).
            op.in_[k] = tape.add_array((<Tensor>ins[k])._value, False)
            continue
        t = <Tensor>ins[k]
        if t._leaf and t.requires_grad and tape.owns(t) and not tape.c.slots[t._slot].needs_grad:
            t._tape = None  # requires_grad was set after t was recorded as a constant
        op.in_[k] = tape.slot_of(t)
        if differentiable and tape.c.slots[op.in_[k]].needs_grad:
            need = True
    for k in range(CSVI_N_IATTR):
        op.iattr[k] = 0
    for k in range(CSVI_N_DATTR):
        op.dattr[k] = 0.0
    if iattr is not None:
        if PyTuple_GET_SIZE(iattr) > CSVI_N_IATTR:
            raise ValueError(f"csvi: an op takes at most {CSVI_N_IATTR} int attributes")
        for k in range(PyTuple_GET_SIZE(iattr)):
            op.iattr[k] = iattr[k]
    if dattr is not None:
        if PyTuple_GET_SIZE(dattr) > CSVI_N_DATTR:
            raise ValueError(f"csvi: an op takes at most {CSVI_N_DATTR} float attributes")
        for k in range(PyTuple_GET_SIZE(dattr)):
            op.dattr[k] = dattr[k]
    cdef cnp.ndarray out = _empty(shape)
    op.out = tape.add_array(out, need)
    if aux_shape is not None:
        op.aux = tape.add_array(_empty(aux_shape), False)
    cdef int32_t index
    cdef int rc
    cdef uint64_t generation = tape.generation
    cdef bint draws = (<const char *>_OP_DRAWS)[code] != 0
    if draws:  # NumPy's own methods draw under this lock, maybe in another thread
        st.acquire()
    try:
        _check_idle(tape)
        if tape.generation != generation:  # cleared by another thread while we waited
            raise RuntimeError("csvi: a tape was cleared by another thread while an op "
                               "was recorded on it; give each thread its own")
        index = csvi_tape_add_op(&tape.c, &op)
        if index < 0:
            raise MemoryError("csvi: cannot grow the tape")
        tape.c.rng = st.bitgen
        if cnp.PyArray_SIZE(out) >= _GIL_RELEASE_SIZE:
            tape.busy = True
            with nogil:
                rc = csvi_tape_forward_op(&tape.c, index)
            tape.busy = False
        else:
            rc = csvi_tape_forward_op(&tape.c, index)
    finally:
        if draws:
            st.release()
    if rc != CSVI_OK:
        try:
            _check_rc(tape, rc)
        finally:
            tape.c.n_ops -= 1
    if tape is st.scratch:
        tape.clear()
        return _wrap(out, None, -1, False)
    return _wrap(out, tape, op.out, need)


def apply(int code, tuple inputs, tuple shape, bint differentiable=True,
          tuple iattr=None, tuple dattr=None):
    """Record one op (by code from OPCODES) on `inputs` (Tensors, arrays or
    numbers) with an output of `shape`, and an aux slot as its registry line
    says; returns the output Tensor.

    Used by distributions and transforms; it trusts the caller for shapes, so
    check them before calling.
    """
    cdef int n = PyTuple_GET_SIZE(inputs)
    cdef int k
    for k in range(n):
        if type(inputs[k]) is not Tensor:
            inputs = tuple([as_tensor(x) for x in inputs])
            break
    return _emit(code, inputs, shape, differentiable, iattr, dattr,
                 _aux_shape(code, inputs, shape, iattr))


cpdef tuple broadcast_shapes(tuple a, tuple b):
    """NumPy's broadcast of two shapes, with an error that names both."""
    cdef int na = PyTuple_GET_SIZE(a), nb = PyTuple_GET_SIZE(b)
    if na == nb and a == b:
        return a
    cdef int n = na if na > nb else nb
    cdef list out = [1] * n
    cdef int d
    cdef Py_ssize_t x, y
    for d in range(n):
        x = a[na - n + d] if d >= n - na else 1
        y = b[nb - n + d] if d >= n - nb else 1
        if x == y or y == 1:
            out[d] = x
        elif x == 1:
            out[d] = y
        else:
            raise ValueError(f"shapes {a} and {b} cannot be broadcast together")
    return tuple(out)


# ---- elementwise ----------------------------------------------------------

cpdef Tensor binary(int code, a, b):
    cdef Tensor x = as_tensor(a), y = as_tensor(b)
    cdef tuple shape = broadcast_shapes(x._value.shape, y._value.shape)
    return _emit(code, (x, y), shape, True, None, None, None)


cpdef Tensor compare(int code, a, b):
    """A comparison (GT, GE, LT, LE): a 0/1 Tensor with no gradient."""
    cdef Tensor x = as_tensor(a), y = as_tensor(b)
    cdef tuple shape = broadcast_shapes(x._value.shape, y._value.shape)
    cdef Tensor out = _emit(code, (x, y), shape, False, None, None, None)
    out._mask = True
    return out


cpdef Tensor unary(int code, a, double p=0.0, double q=0.0):
    cdef Tensor x = as_tensor(a)
    return _emit(code, (x,), x._value.shape, True, None, (p, q), None)


def exp(x):
    """e**x, recorded on the tape."""
    return unary(OP_EXP, x)


def log(x):
    return unary(OP_LOG, x)


def log1p(x):
    return unary(OP_LOG1P, x)


def expm1(x):
    return unary(OP_EXPM1, x)


def sqrt(x):
    return unary(OP_SQRT, x)


def abs_(x):
    return unary(OP_ABS, x)


def sigmoid(x):
    return unary(OP_SIGMOID, x)


def softplus(x):
    """log(1 + e**x), stable at both ends."""
    return unary(OP_SOFTPLUS, x)


def tanh(x):
    return unary(OP_TANH, x)


def relu(x):
    return unary(OP_RELU, x)


def clip(x, a_min=None, a_max=None):
    """Clip to [a_min, a_max]; the gradient passes where the value was kept."""
    lo = -np.inf if a_min is None else float(a_min)
    hi = np.inf if a_max is None else float(a_max)
    if lo > hi:
        raise ValueError(f"clip: a_min={lo} is greater than a_max={hi}")
    return unary(OP_CLIP, x, lo, hi)


def where(condition, x, y):
    """Elementwise `x if condition else y`; the condition gets no gradient."""
    cdef Tensor c = as_tensor(condition).detach()
    cdef Tensor a = as_tensor(x), b = as_tensor(y)
    shape = broadcast_shapes(broadcast_shapes(c._value.shape, a._value.shape), b._value.shape)
    return _emit(OP_WHERE, (c, a, b), shape, True, None, None, None)


def power(x, y):
    if not isinstance(y, Tensor) and np.ndim(y) == 0:
        return unary(OP_POW_SCALAR, x, float(y))
    return binary(OP_POW, x, y)


# ---- reductions -----------------------------------------------------------

cdef tuple _normalize_axes(object axis, int ndim, str what):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{what}: axis must be an int or a tuple of ints, got {axis!r}")
        b = int(a) + ndim if a < 0 else int(a)
        if b < 0 or b >= ndim:
            raise ValueError(f"{what}: axis {a} is out of range for a tensor with {ndim} dims")
        if b in out:
            raise ValueError(f"{what}: repeated axis {a} in {axis!r}")
        out.append(b)
    return tuple(sorted(out))


cdef tuple _reduced_shape(tuple shape, tuple axes, bint keepdims):
    if keepdims:
        return tuple(1 if d in axes else shape[d] for d in range(len(shape)))
    return tuple(shape[d] for d in range(len(shape)) if d not in axes)


cdef int64_t _mask(tuple axes):
    cdef int64_t m = 0
    for a in axes:
        m |= (<int64_t>1) << <int>a
    return m


def sum(x, axis=None, keepdims=False):
    """Sum over `axis` (None: all), like numpy.sum."""
    cdef Tensor t = as_tensor(x)
    axes = _normalize_axes(axis, t._value.ndim, "sum")
    shape = _reduced_shape(t._value.shape, axes, keepdims)
    return _emit(OP_SUM, (t,), shape, True, (_mask(axes),), (1.0,), None)


def sum_all(tensors):
    """The total of every element of every tensor in `tensors`, as one scalar
    (one op per eight inputs)."""
    cdef list ts = [as_tensor(x) for x in tensors]
    if not ts:
        return _constant(0.0)
    while len(ts) > 1 or (<Tensor>ts[0])._value.ndim != 0:
        group, ts = ts[:CSVI_MAX_INPUTS], ts[CSVI_MAX_INPUTS:]
        ts = [_emit(OP_SUM_N, tuple(group), (), True, None, None, None)] + ts
    return ts[0]


def mean(x, axis=None, keepdims=False):
    """Mean over `axis` (None: all), like numpy.mean."""
    cdef Tensor t = as_tensor(x)
    axes = _normalize_axes(axis, t._value.ndim, "mean")
    shape = _reduced_shape(t._value.shape, axes, keepdims)
    count = 1
    for a in axes:
        count *= t._value.shape[a]
    if count == 0:
        raise ValueError(f"mean: cannot average over an empty axis of shape {t._value.shape}")
    return _emit(OP_SUM, (t,), shape, True, (_mask(axes),), (1.0 / count,), None)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over `axis`, stable (as scipy.special.logsumexp)."""
    cdef Tensor t = as_tensor(x)
    axes = _normalize_axes(axis, t._value.ndim, "logsumexp")
    shape = _reduced_shape(t._value.shape, axes, keepdims)
    return _emit(OP_LOGSUMEXP, (t,), shape, True, (_mask(axes),), None,
                 _aux_shape(OP_LOGSUMEXP, (t,), shape, None))


def logsumexp_of_sum(tensors, axis):
    """logsumexp over `axis` of the broadcast sum of 2 or 3 `tensors`, as one
    op: a variable summed out of the product of the factors that hold it
    (plated_elimination), the joint never a tape value nor a gradient to
    clear.  Sums left to right, as `(a + b) + c`."""
    cdef tuple ts = tuple(as_tensor(x) for x in tensors)
    if not 2 <= len(ts) <= 3:  # the joint and 3 inputs: the C iterator's 4 operands
        raise ValueError(f"logsumexp_of_sum: takes 2 or 3 tensors, got {len(ts)}")
    joint = ()
    for x in ts:
        try:
            joint = broadcast_shapes(joint, (<Tensor>x)._value.shape)
        except ValueError:
            raise ValueError("logsumexp_of_sum: shapes "
                             f"{[tuple((<Tensor>y)._value.shape) for y in ts]} cannot be "
                             "broadcast together") from None
    axes = _normalize_axes(axis, len(joint), "logsumexp_of_sum")
    shape = _reduced_shape(joint, axes, False)
    return _emit(OP_SUM_LOGSUMEXP, ts, shape, True, (_mask(axes),), None,
                 _aux_shape(OP_SUM_LOGSUMEXP, ts, shape, None))


# ---- shape and indexing ----------------------------------------------------

cdef inline Tensor _same_kind(Tensor src, Tensor out):
    """out, an integer Tensor when src is one: moving values between dims
    (reshape, squeeze, transpose, expand) keeps them indices, as in torch."""
    out._integer = src._integer
    return out


cdef tuple _resolve_shape(tuple old, object shape):
    """`shape` with a -1 filled in, checked against the size of `old`."""
    size = 1
    for d in old:
        size *= d
    new = [int(d) for d in shape]
    unknown = [k for k, d in enumerate(new) if d == -1]
    known = 1
    for d in new:
        if d != -1:
            known *= d
    if len(unknown) > 1 or any(d < -1 for d in new):
        raise ValueError(f"reshape: invalid target shape {tuple(shape)}")
    if unknown and known != 0 and size % known == 0:
        new[unknown[0]] = size // known
    if known * (new[unknown[0]] if unknown else 1) != size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {old} into shape {tuple(shape)}")
    return tuple(new)


def reshape(x, *shape):
    """Same data in a new shape (one dim may be -1), like numpy.reshape."""
    cdef Tensor t = as_tensor(x)
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    return _same_kind(t, _emit(OP_COPY, (t,), _resolve_shape(t._value.shape, shape), True,
                                None, None, None))


def transpose(x, axes=None):
    """Permute dims like numpy.transpose (default: reverse them)."""
    cdef Tensor t = as_tensor(x)
    nd = t._value.ndim
    if axes is None:
        perm = tuple(range(nd - 1, -1, -1))
    else:
        perm = tuple(int(a) + nd if a < 0 else int(a) for a in axes)
        if sorted(perm) != list(range(nd)):
            raise ValueError(f"transpose: axes {axes!r} are not a permutation of {nd} dims")
    shape = tuple(t._value.shape[p] for p in perm)
    return _same_kind(t, _emit(OP_TRANSPOSE, (t,), shape, True, perm, None, None))


cdef dict _flat_index_cache = {}


cdef object _flat_positions(tuple shape):
    grid = _flat_index_cache.get(shape)
    if grid is None:
        if len(_flat_index_cache) > 256:
            _flat_index_cache.clear()
        grid = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.float64).reshape(shape)
        grid.flags.writeable = False
        _flat_index_cache[shape] = grid
    return grid


def getitem(x, key):
    """NumPy indexing (ints, slices, None, Ellipsis, int/bool arrays) as one
    gather; Tensors in the key pick at run time (`_take_in_key`)."""
    cdef Tensor t = as_tensor(x)
    if isinstance(key, Tensor) and (<Tensor>key)._mask:
        # t[t > 0]: a boolean mask, as in NumPy (eager only: the result's
        # shape depends on the data, so numpy() refuses while compiling)
        key = key.numpy() != 0.0
    if isinstance(key, Tensor):
        return _take_in_key(t, (key,))
    if isinstance(key, tuple) and _has_tensor(key):
        return _take_in_key(t, key)
    if t._value.ndim == 1 and type(key) is not tuple and isinstance(key, np.ndarray) \
            and (key.dtype.kind == "i" or (key.dtype.kind == "u" and key.dtype.itemsize < 8)):
        positions = _vector_positions(key, t._value.shape[0])
    else:
        positions = np.asarray(_flat_positions(t._value.shape)[key], order="C")
    return _emit(OP_GATHER, (t, _constant(positions)), positions.shape, True, None, None, None)


cdef cnp.ndarray _vector_positions(key, Py_ssize_t size):
    """The gather positions of a vector indexed by an integer array (x[group]
    in a hierarchical model, every step): the indices as float64, negative
    ones counted from the end, with NumPy's bounds check and error."""
    cdef cnp.ndarray idx = <cnp.ndarray>key
    if cnp.PyArray_TYPE(idx) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(idx):
        idx = np.ascontiguousarray(key, dtype=np.int64)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(idx), cnp.PyArray_DIMS(idx),
                                             cnp.NPY_DOUBLE, 0)
    cdef const int64_t *src = <const int64_t *>cnp.PyArray_DATA(idx)
    cdef double *dst = <double *>cnp.PyArray_DATA(out)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(idx), bad
    with nogil:
        bad = csvi_index_positions(src, n, size, dst)
    if bad >= 0:
        raise IndexError(f"index {src[bad]} is out of bounds for axis 0 with size {size}")
    return out


def draw_subsample(int64_t size, int64_t subsample_size):
    """`subsample_size` distinct indices of range(size) drawn in O(subsample_size)
    by a recorded op (a compiled loop draws fresh ones each step).  The Tensor
    indexes csvi tensors directly and NumPy arrays as int64."""
    if not 0 <= subsample_size <= size:
        raise ValueError(f"subsample_size must be in [0, {size}], got {subsample_size}")
    cdef tuple shape = (subsample_size,)
    cdef Tensor t = _emit(OP_SUBSAMPLE, (), shape, False, (size,), None,
                          _aux_shape(OP_SUBSAMPLE, (), shape, None))
    t._integer = True
    return t


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis (numpy.concatenate)."""
    ts = [as_tensor(x) for x in tensors]
    if not ts:
        raise ValueError("concatenate: need at least one tensor")
    if axis is None:  # as numpy: flatten each input first
        ts = [reshape(t, -1) for t in ts]
        axis = 0
    nd = (<Tensor>ts[0])._value.ndim
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated")
    ax = int(axis) + nd if axis < 0 else int(axis)
    if not 0 <= ax < nd:
        raise ValueError(f"concatenate: axis {axis} is out of range for {nd} dims")
    base = (<Tensor>ts[0])._value.shape
    single = len(ts) == 1
    for k, t in enumerate(ts):
        s = (<Tensor>t)._value.shape
        if len(s) != nd or s[:ax] + s[ax + 1:] != base[:ax] + base[ax + 1:]:
            raise ValueError(f"concatenate: tensor {k} has shape {s}, which does not "
                             f"match shape {base} outside axis {ax}")
    while len(ts) > 1:
        group, ts = ts[:CSVI_MAX_INPUTS], ts[CSVI_MAX_INPUTS:]
        length = 0
        for t in group:
            length += (<Tensor>t)._value.shape[ax]
        shape = base[:ax] + (length,) + base[ax + 1:]
        joined = _emit(OP_CONCAT, tuple(group), shape, True, (ax,), None, None)
        ts = [joined] + ts
    if single:
        return _emit(OP_COPY, (ts[0],), base, True, None, None, None)
    return ts[0]


def stack(tensors, axis=0):
    """Join tensors along a new axis (numpy.stack)."""
    ts = [as_tensor(x) for x in tensors]
    if not ts:
        raise ValueError("stack: need at least one tensor")
    shape = (<Tensor>ts[0])._value.shape
    for k, t in enumerate(ts):
        if (<Tensor>t)._value.shape != shape:
            raise ValueError(f"stack: tensor {k} has shape {(<Tensor>t)._value.shape}, "
                             f"expected {shape} like tensor 0")
    nd = len(shape) + 1
    ax = int(axis) + nd if axis < 0 else int(axis)
    if not 0 <= ax < nd:
        raise ValueError(f"stack: axis {axis} is out of range for {nd} dims")
    expanded = shape[:ax] + (1,) + shape[ax:]
    return concatenate([reshape(t, expanded) for t in ts], axis=ax)


# ---- linear algebra --------------------------------------------------------

def matmul(a, b):
    """Matrix product with numpy.matmul's rules (1-D promotion, batch broadcast)."""
    cdef Tensor x = as_tensor(a), y = as_tensor(b)
    sa, sb = x._value.shape, y._value.shape
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError(f"matmul: operands must have at least 1 dim, got shapes {sa} and {sb}")
    a_vec, b_vec = len(sa) == 1, len(sb) == 1
    n = 1 if a_vec else sa[-2]
    k = sa[-1]
    kb = sb[0] if b_vec else sb[-2]
    m = 1 if b_vec else sb[-1]
    if k != kb:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not align ({k} != {kb})")
    try:
        batch = broadcast_shapes(() if a_vec else sa[:-2], () if b_vec else sb[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch dims of shapes {sa} and {sb} cannot be "
                         "broadcast together") from None
    shape = batch + (() if a_vec else (n,)) + (() if b_vec else (m,))
    iattr = (n, k, m, 1 if a_vec else 2, 1 if b_vec else 2, len(batch))
    return _emit(OP_MATMUL, (x, y), shape, True, iattr, None, None)


def matmul_nt(a, b):
    """a @ b.T for matrices a (n, k) and b (m, k) -- a dense layer's x @ W.T
    with W in torch's (out, in) layout -- with no transposed copy of b: for
    n, m > 1 one dgemm; for one row of a, the mat-vec b @ a[0]; for one row
    of b, matmul(a, transpose(b)) (b^T is then a column: no reordering)."""
    cdef Tensor x = as_tensor(a), y = as_tensor(b)
    sa, sb = x._value.shape, y._value.shape
    if len(sa) != 2 or len(sb) != 2 or sa[1] != sb[1]:
        raise ValueError(f"matmul_nt: needs matrices (n, k) and (m, k), got shapes {sa} and {sb}")
    if sa[0] == 1 and sb[0] > 1:
        return reshape(matmul(y, reshape(x, (sa[1],))), (1, sb[0]))
    if sa[0] <= 1 or sb[0] <= 1:
        return matmul(x, transpose(y))
    return _emit(OP_MATMUL_NT, (x, y), (sa[0], sb[0]), True, None, None, None)


# ---- torch- and NumPy-style functions (Tensor methods, numpy.* on Tensors) --



cdef int _one_axis(object axis, int ndim, str what) except -1:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{what}: axis must be an int, got {axis!r}")
    cdef int a = int(axis) + ndim if axis < 0 else int(axis)
    if not 0 <= a < ndim:
        raise ValueError(f"{what}: axis {axis} is out of range for a tensor with {ndim} dims")
    return a


cdef Tensor _reshaped(Tensor t, tuple shape):
    """t in `shape` (one COPY op), or t itself when the shape is already that."""
    if t._value.shape == shape:
        return t
    return _same_kind(t, _emit(OP_COPY, (t,), shape, True, None, None, None))


cdef Tensor _permuted(Tensor t, list perm):
    """transpose(t, perm), or t itself for the identity."""
    if perm == list(range(len(perm))):
        return t
    return transpose(t, perm)


def squeeze(x, axis=None):
    """numpy.squeeze: drop size-1 dims (all, or those in `axis`, which must have size 1)."""
    cdef Tensor t = as_tensor(x)
    shape = t._value.shape
    if axis is None:
        axes = tuple(d for d in range(len(shape)) if shape[d] == 1)
    else:
        axes = _normalize_axes(axis, len(shape), "squeeze")
        for a in axes:
            if shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {shape} has size {shape[a]}, "
                                 "not 1")
    return _reshaped(t, tuple(shape[d] for d in range(len(shape)) if d not in axes))


def expand_dims(x, axis):
    """numpy.expand_dims (torch's unsqueeze): new size-1 dims at `axis` (an int
    or a tuple), counted in the result's dims."""
    cdef Tensor t = as_tensor(x)
    shape = t._value.shape
    n = len(shape) + (1 if isinstance(axis, (int, np.integer)) else len(tuple(axis)))
    axes = _normalize_axes(axis, n, "expand_dims")
    rest = iter(shape)
    return _reshaped(t, tuple(1 if d in axes else next(rest) for d in range(n)))


def expand(x, *sizes):
    """torch's Tensor.expand: broadcast to `sizes`, where -1 keeps a dim and
    extra sizes add dims on the left; the gradient sums back."""
    cdef Tensor t = as_tensor(x)
    if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)):
        sizes = tuple(sizes[0])
    shape = t._value.shape
    lead = len(sizes) - len(shape)
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes {tuple(sizes)} for a tensor of shape "
                         f"{shape} (give a size per dim, -1 to keep one)")
    new = []
    for d, s in enumerate(sizes):
        s = int(s)
        old = shape[d - lead] if d >= lead else None
        if old is not None and s == -1:
            new.append(old)
        elif s >= 0 and (old is None or old == s or old == 1):
            new.append(s)
        else:
            what = (f"dim {d} of size {old}" if old is not None else f"new leading dim {d}")
            raise ValueError(f"expand: cannot expand {what} of shape {shape} to size {s} "
                             f"(sizes {tuple(sizes)}; only size-1 dims expand, -1 keeps a dim)")
    new = tuple(new)
    if new == shape:
        return t
    return _same_kind(t, _emit(OP_DIST_EXPAND, (t,), new, True, None, None, None))


def broadcast_to(x, shape):
    """numpy.broadcast_to, as a copy whose gradient sums back."""
    cdef Tensor t = as_tensor(x)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    try:
        ok = len(shape) >= t._value.ndim and broadcast_shapes(t._value.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"broadcast_to: a tensor of shape {t._value.shape} cannot be "
                         f"broadcast to shape {shape}")
    return expand(t, *shape)


def _extreme(int code, str what, x, axis, keepdims):
    cdef Tensor t = as_tensor(x)
    axes = _normalize_axes(axis, t._value.ndim, what)
    for a in axes:
        if t._value.shape[a] == 0:
            raise ValueError(f"{what}: cannot reduce over axis {a} of size 0 (shape "
                             f"{t._value.shape}): the {what} of nothing is undefined")
    shape = _reduced_shape(t._value.shape, axes, keepdims)
    return _emit(code, (t,), shape, True, (_mask(axes),), None,
                 _aux_shape(code, (t,), shape, None))


def amax(x, axis=None, keepdims=False):
    """numpy.max over `axis`; NaN propagates.  The gradient goes to the
    maximum, split evenly among ties (torch.amax's subgradient)."""
    return _extreme(OP_MAX, "max", x, axis, keepdims)


def amin(x, axis=None, keepdims=False):
    """numpy.min over `axis`; NaN propagates.  The gradient goes to the
    minimum, split evenly among ties (torch.amin's subgradient)."""
    return _extreme(OP_MIN, "min", x, axis, keepdims)


def _scan(int code, str what, x, axis):
    cdef Tensor t = as_tensor(x)
    if axis is None:
        t = _reshaped(t, (t._value.size,))
        ax = 0
    else:
        ax = _one_axis(axis, t._value.ndim, what)
    return _emit(code, (t,), t._value.shape, True, (ax,), None, None)


def cumsum(x, axis=None):
    """numpy.cumsum: running sum along `axis` (None: of the flattened tensor)."""
    return _scan(OP_CUMSUM, "cumsum", x, axis)


def cumprod(x, axis=None):
    """numpy.cumprod: running product along `axis` (None: flattened).  Its
    gradient is exact with zeros and negative values (no division)."""
    return _scan(OP_CUMPROD, "cumprod", x, axis)


def var(x, axis=None, ddof=0, keepdims=False):
    """numpy.var: the mean squared deviation from the mean over `axis`, divided
    by count - ddof."""
    cdef Tensor t = as_tensor(x)
    axes = _normalize_axes(axis, t._value.ndim, "var")
    count = 1
    for a in axes:
        count *= t._value.shape[a]
    if count - ddof <= 0:
        raise ValueError(f"var: {count} elements over axis {axis!r} of shape "
                         f"{t._value.shape} leave no degrees of freedom with ddof={ddof}")
    d = t - mean(t, axes, True)
    shape = _reduced_shape(t._value.shape, axes, keepdims)
    return _emit(OP_SUM, (binary(OP_MUL, d, d),), shape, True, (_mask(axes),),
                 (1.0 / (count - ddof),), None)


def std(x, axis=None, ddof=0, keepdims=False):
    """numpy.std: sqrt(var(x, axis, ddof))."""
    return sqrt(var(x, axis, ddof, keepdims))


def pad(x, pad_width, mode="constant", constant_values=0):
    """numpy.pad for the modes that copy values: 'constant' (with number
    constant_values), 'edge', 'reflect', 'symmetric', 'wrap'.  One gather
    (plus a where for the constant); the gradient flows to the copied values."""
    cdef Tensor t = as_tensor(x)
    if isinstance(constant_values, Tensor):
        raise TypeError("pad: constant_values must be numbers, not a tensor")
    shape = t._value.shape
    if mode in ("edge", "reflect", "symmetric", "wrap"):
        if t._value.size == 0:
            raise ValueError(f"pad: mode {mode!r} needs a nonempty tensor, got shape {shape}")
        positions = np.pad(_flat_positions(shape), pad_width, mode=mode)
        return _emit(OP_GATHER, (t, _constant(positions)), positions.shape, True, None, None,
                     None)
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported on tensors; use 'constant', "
                         "'edge', 'reflect', 'symmetric' or 'wrap'")
    inside = np.pad(np.ones(shape), pad_width, mode="constant", constant_values=0.0)
    filler = np.pad(np.zeros(shape), pad_width, mode="constant",
                    constant_values=constant_values)
    if t._value.size == 0:
        return _constant(filler)
    positions = np.pad(_flat_positions(shape), pad_width, mode="constant", constant_values=0.0)
    picked = _emit(OP_GATHER, (t, _constant(positions)), positions.shape, True, None, None, None)
    return where(inside, picked, filler)


def dot(a, b):
    """numpy.dot for operands of at most 2 dims (a product when one is 0-d)."""
    cdef Tensor x = as_tensor(a), y = as_tensor(b)
    if x._value.ndim == 0 or y._value.ndim == 0:
        return binary(OP_MUL, x, y)
    if x._value.ndim > 2 or y._value.ndim > 2:
        raise ValueError(f"dot: shapes {x._value.shape} and {y._value.shape}: operands of "
                         "more than 2 dims are not supported; use matmul or einsum")
    return matmul(x, y)


cpdef Tensor equal(a, b):
    """a == b elementwise as a 0/1 mask (no gradient): (a >= b) * (a <= b)."""
    cdef Tensor out = binary(OP_MUL, compare(OP_GE, a, b), compare(OP_LE, a, b))
    out._mask = True
    return out


cpdef Tensor not_equal(a, b):
    """a != b elementwise as a 0/1 mask (true where either is NaN)."""
    cdef Tensor out = binary(OP_SUB, 1.0, equal(a, b))
    out._mask = True
    return out


# ---- einsum -----------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def einsum(subscripts, *operands):
    """numpy.einsum in its explicit form ('ij,jk->ik', '...' allowed) for one
    to three operands.  A letter repeated in one operand takes a diagonal;
    letters no one else needs are summed at once; then operands are contracted
    left to right, by one matmul when letters are summed between them and by a
    broadcast product otherwise.  Sizes of 1 broadcast, as in NumPy."""
    if not isinstance(subscripts, str):
        raise TypeError("einsum: only the subscripts-string form is supported, e.g. "
                        "einsum('ij,jk->ik', a, b)")
    spec = subscripts.replace(" ", "")
    if spec.count("->") != 1:
        raise ValueError(f"einsum: only the explicit form with one '->' is supported (e.g. "
                         f"'ij,jk->ik'), got {subscripts!r}")
    lhs, rhs = spec.split("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {subscripts!r} names {len(terms)} operands, got "
                         f"{len(operands)}")
    if not 1 <= len(terms) <= 3:
        raise ValueError(f"einsum: 1 to 3 operands are supported, got {len(terms)}")
    ts = [as_tensor(o) for o in operands]
    # '...' becomes letters for the leading dims, right-aligned across operands
    spare = [c for c in _LETTERS if c not in spec]
    n_ell = []
    for k, term in enumerate(terms):
        shape = (<Tensor>ts[k])._value.shape
        explicit = term.replace("...", "", 1)
        if not all(c in _LETTERS for c in explicit):
            raise ValueError(f"einsum: operand {k}'s subscripts {term!r} must be ASCII "
                             "letters and at most one '...'")
        extra = len(shape) - len(explicit)
        if extra < 0 or (extra > 0 and "..." not in term):
            raise ValueError(f"einsum: operand {k} has shape {shape}, which does not match "
                             f"its subscripts {term!r}")
        n_ell.append(extra)
    ne = max(n_ell)
    ell = "".join(spare[:ne])
    terms = [term.replace("...", ell[ne - e:]) for term, e in zip(terms, n_ell)]
    if rhs.count("...") > 1 or (ne and "..." not in rhs):
        raise ValueError(f"einsum: {subscripts!r}: the output must have one '...' when the "
                         "inputs use it")
    rhs = rhs.replace("...", ell)
    sizes = {}
    for k, term in enumerate(terms):
        for c, n in zip(term, (<Tensor>ts[k])._value.shape):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {n} "
                                 f"in {subscripts!r}")
            if sizes.get(c, 1) == 1:
                sizes[c] = n
    if len(set(rhs)) != len(rhs) or any(c not in sizes for c in rhs):
        raise ValueError(f"einsum: the output subscripts {rhs!r} must be distinct letters "
                         "that appear in the inputs")
    for k in range(len(ts)):
        needed = set(rhs).union(*[terms[j] for j in range(len(ts)) if j != k])
        ts[k], terms[k] = _einsum_prepare(ts[k], terms[k], needed)
    acc, acc_term = ts[0], terms[0]
    for k in range(1, len(ts)):
        needed = set(rhs).union(*terms[k + 1:])
        acc, acc_term = _einsum_pair(acc, acc_term, ts[k], terms[k], needed)
    acc, acc_term = _einsum_prepare(acc, acc_term, set(rhs))
    return _permuted(acc, [acc_term.index(c) for c in rhs])


cdef tuple _einsum_prepare(Tensor t, str term, set needed):
    """(t, term) with repeated letters reduced to their diagonal and letters
    outside `needed` summed out."""
    if len(set(term)) < len(term):
        unique = "".join(dict.fromkeys(term))
        for c in unique:
            if len({n for d, n in zip(term, t._value.shape) if d == c}) > 1:
                raise ValueError(f"einsum: the repeated subscript {c!r} of {term!r} has "
                                 f"different sizes in shape {t._value.shape}")
        positions = np.ascontiguousarray(np.einsum(f"{term}->{unique}",
                                                   _flat_positions(t._value.shape)))
        t = _emit(OP_GATHER, (t, _constant(positions)), positions.shape, True, None, None, None)
        term = unique
    drop = tuple(d for d, c in enumerate(term) if c not in needed)
    if drop:
        t = sum(t, drop)
        term = "".join(c for c in term if c in needed)
    return t, term


cdef tuple _einsum_pair(Tensor a, str ta, Tensor b, str tb, set needed):
    """a and b contracted over the letters they share that `needed` lacks."""
    cdef Tensor out
    a, ta = _einsum_prepare(a, ta, needed | set(tb))
    b, tb = _einsum_prepare(b, tb, needed | set(ta))
    sa = dict(zip(ta, a._value.shape))
    sb = dict(zip(tb, b._value.shape))
    # a summed letter of size 1 on one side: sum each side alone (a broadcast)
    for c in [c for c in ta if c in tb and c not in needed and sa[c] != sb[c]]:
        a, ta = _einsum_prepare(a, ta, set(ta) - {c})
        b, tb = _einsum_prepare(b, tb, set(tb) - {c})
    sa = dict(zip(ta, a._value.shape))
    sb = dict(zip(tb, b._value.shape))
    batch = [c for c in ta if c in tb and c in needed]
    summed = [c for c in ta if c in tb and c not in needed]
    a_only = [c for c in ta if c not in tb]
    b_only = [c for c in tb if c not in ta]
    if not summed:
        order = batch + a_only + b_only
        return binary(OP_MUL, _einsum_arrange(a, ta, order), _einsum_arrange(b, tb, order)), \
            "".join(order)
    m = n = kk = 1
    for c in a_only:
        m *= sa[c]
    for c in b_only:
        n *= sb[c]
    for c in summed:
        kk *= sa[c]
    a2 = _reshaped(_permuted(a, [ta.index(c) for c in batch + a_only + summed]),
                   tuple(sa[c] for c in batch) + (m, kk))
    b2 = _reshaped(_permuted(b, [tb.index(c) for c in batch + summed + b_only]),
                   tuple(sb[c] for c in batch) + (kk, n))
    out = matmul(a2, b2)
    shape = out._value.shape[:-2] + tuple(sa[c] for c in a_only) + tuple(sb[c] for c in b_only)
    return _reshaped(out, shape), "".join(batch + a_only + b_only)


cdef Tensor _einsum_arrange(Tensor t, str term, list order):
    """t with its letters in `order`, size-1 dims for the letters it lacks."""
    present = [c for c in order if c in term]
    t = _permuted(t, [term.index(c) for c in present])
    shape = t._value.shape
    return _reshaped(t, tuple(shape[present.index(c)] if c in term else 1 for c in order))


# ---- indexing with tensors among the indices --------------------------------
# A key holding csvi Tensors (enumerated values, a plate's subsample) is
# resolved at run time: one TAKE record whose index inputs a compiled loop
# reads afresh each step.  Basic indices (slices, None) are applied first by a
# GATHER, the dims the index arrays pick are moved to the front, and TAKE
# picks along them with the arrays broadcast together; NumPy's rule then puts
# the broadcast dims in place of the indexed ones when those were adjacent in
# the key, else first.

cdef int _MAX_INDEX_ARRAYS = CSVI_MAX_INPUTS - 1


cdef bint _has_tensor(tuple key):
    for k in key:
        if isinstance(k, Tensor):
            return True
    return False


def index(x, key):
    """x[key] with NumPy's rules.  Tensors in the key pick entries at run time
    (one TAKE, replayed with fresh indices by a compiled loop) and may stand
    with other integer arrays, ints, slices, None and Ellipsis, broadcasting
    together.  Indexing an integer Tensor gives an integer Tensor."""
    cdef Tensor t = as_tensor(x)
    cdef Tensor out
    if isinstance(key, Tensor) and not (<Tensor>key)._mask:
        key = (key,)
    if type(key) is tuple and _has_tensor(key):
        out = _take_in_key(t, key)
    else:
        out = getitem(t, key)
    if t._integer:
        out._integer = True
    return out


cdef tuple _expand_key(tuple key, tuple shape):
    """key with its Ellipsis (or the unindexed trailing dims) spelled out as
    slices and each boolean array replaced by its nonzero() index arrays, so
    every entry but None indexes exactly one dim."""
    consumed = 0
    ellipses = 0
    for e in key:
        if e is Ellipsis:
            ellipses += 1
        elif e is not None:
            consumed += e.ndim if _is_bool_array(e) else 1
    if ellipses > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > len(shape):
        raise IndexError(f"too many indices for a tensor of shape {shape}: the key "
                         f"indexes {consumed} dims")
    fill = (slice(None),) * (len(shape) - consumed)
    out = []
    for e in key:
        if e is Ellipsis:
            out.extend(fill)
        elif _is_bool_array(e):
            out.extend(np.nonzero(e))
        else:
            out.append(e)
    if not ellipses:
        out.extend(fill)
    return tuple(out)


cdef bint _is_bool_array(object e):
    return isinstance(e, np.ndarray) and (<cnp.ndarray>e).dtype.kind == "b"


cdef Tensor _index_input(object e, int dim, int64_t size):
    """One advanced index of the key as a TAKE input: a Tensor as it is (its
    values are checked by the kernel, each time it runs), an int or an integer
    array as a constant checked here.  `dim` and `size` are the indexed
    tensor's, for the errors."""
    cdef Tensor idx
    if isinstance(e, Tensor):
        idx = <Tensor>e
        if idx._mask:
            raise TypeError(f"csvi: a boolean mask tensor must be the only index (it "
                             f"stands for dim {dim} here); index with (mask).nonzero() "
                             f"positions, or mask the other dims separately")
        # An integer Tensor (a plate's subsample, a draw, .long()) is left to
        # the kernel, which checks every index each time it runs; others are
        # checked here, before anything is recorded.
        bad = -1 if idx._integer else first_outside(idx, -size, size - 1, False, False, True)
        if bad >= 0:
            raise IndexError(_bad_index(float(idx._value.reshape(-1)[bad]), f"dim {dim}",
                                        size, idx._value.shape, bad))
        return idx.detach() if idx.requires_grad else idx
    if isinstance(e, (bool, np.bool_)):
        raise TypeError(f"csvi: a bool ({e!r}) cannot index dim {dim} next to a tensor "
                         f"index; use an integer or a boolean array")
    if isinstance(e, (int, np.integer)):
        if not -size <= e < size:
            raise IndexError(f"index {e} is out of bounds for dim {dim} with size {size}")
        return _constant(float(e))
    if isinstance(e, (np.ndarray, list, tuple)):
        arr = np.asarray(e)
        if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
            raise IndexError(f"arrays used as indices must be of integer (or boolean) type: "
                             f"the index of dim {dim} is a {arr.dtype} array of shape "
                             f"{arr.shape}")
        if arr.size and (arr.min() < -size or arr.max() >= size):
            bad = arr[(arr < -size) | (arr >= size)].reshape(-1)[0]
            raise IndexError(f"index {bad} is out of bounds for dim {dim} with size {size} "
                             f"(an index array of shape {arr.shape})")
        return _constant_array(arr)
    raise IndexError(f"csvi: only integers, slices (`:`), ellipsis (`...`), None and "
                     f"integer or boolean arrays/tensors are valid indices, got "
                     f"{type(e).__name__} {e!r} for dim {dim}")


cdef Tensor _take_in_key(Tensor t, tuple key):
    """t[key] for a key holding at least one Tensor (see the section's comment)."""
    cdef tuple shape = t._value.shape
    key = _expand_key(key, shape)
    cdef list rest = [], positions = [], indices = [], dims = []
    cdef int dim = 0, pos = 0
    cdef bint trivial = True
    for e in key:
        if e is None:
            rest.append(None)
            trivial = False
        elif isinstance(e, slice):
            rest.append(e)
            trivial = trivial and e == slice(None)
            dim += 1
        else:
            indices.append(_index_input(e, dim, shape[dim]))
            positions.append(pos)
            dims.append(dim)
            rest.append(slice(None))
            dim += 1
        pos += 1
    cdef int m = len(indices)
    if m > _MAX_INDEX_ARRAYS:
        raise IndexError(f"csvi: a key with a tensor may hold at most {_MAX_INDEX_ARRAYS} "
                         f"integer indices and arrays, got {m}; index in two steps")
    batch = ()
    try:
        for idx in indices:
            batch = broadcast_shapes(batch, (<Tensor>idx)._value.shape)
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together "
                         "with shapes " + " ".join(
                             f"{(<Tensor>i)._value.shape} (dim {d})" for i, d in zip(indices, dims))
                         ) from None
    cdef Tensor base = t if trivial else getitem(t, tuple(rest))
    cdef int nb = base._value.ndim
    cdef Tensor moved = _permuted(base, positions + [d for d in range(nb) if d not in positions])
    cdef Tensor out = _emit(OP_TAKE, (moved,) + tuple(indices),
                            batch + moved._value.shape[m:], True,
                            tuple([d + 1 for d in dims]), None, None)
    cdef int first = positions[0], k = len(batch)
    if first == 0 or positions[m - 1] - first != m - 1:
        return out
    return _permuted(out, list(range(k, k + first)) + list(range(k))
                     + list(range(k + first, out._value.ndim)))


cdef str _index_error(Tape tape, int32_t i):
    """The message for an index out of bounds in the tape's op i: for TAKE,
    the first bad value with the dim it indexes (the record's iattr[k] - 1,
    0 when unknown) and its size, read from the slots as the kernel saw them."""
    cdef csvi_op *op = &tape.c.ops[i]
    cdef csvi_slot *x
    cdef csvi_slot *ix
    cdef int64_t j
    cdef double v, n
    if op.code != OP_TAKE:
        return f"csvi: an index is out of bounds in op {csvi_kernels[op.code].name.decode()}"
    x = &tape.c.slots[op.in_[0]]
    for k in range(op.n_in - 1):
        ix = &tape.c.slots[op.in_[k + 1]]
        n = <double>x.shape[k]
        for j in range(ix.size):
            v = ix.data[j]
            if (v >= -n and v < n) and v == floor(v):
                continue
            where = f"dim {op.iattr[k] - 1}" if op.iattr[k] > 0 else "the indexed dim"
            return _bad_index(v, where, x.shape[k], tuple([ix.shape[d] for d in range(ix.ndim)]), j)
    return "csvi: an index is out of bounds in op TAKE"


cdef str _bad_index(double v, str where, int64_t size, tuple shape, int64_t j):
    """Says why index value v, at flat position j of an index of `shape`, is bad."""
    what = (f"index {int(v) if abs(v) < 1e300 else v} is out of bounds for {where} with "
            f"size {size}" if v == floor(v) else
            f"index {v!r} for {where} (size {size}) is not a whole number")
    return f"{what} (op TAKE: an index array of shape {shape}, flat position {j})"
