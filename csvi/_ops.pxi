# Op emission: turn a call into one tape record, run its C forward, wrap the
# result.  Every differentiable computation in csvi goes through `_emit`.
from cpython.tuple cimport PyTuple_GET_SIZE

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


# Constant Tensors of nonzero Python floats, shared (a constant is never
# written to), so `x * 2.0` or `obs=1.0` allocate nothing after the first time.
cdef dict _float_constants = {}


cdef Tensor _constant(object x):
    """A Tensor holding NumPy data, not on any tape until an op uses it."""
    cdef Tensor t
    if type(x) is float and x != 0.0:
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
    return t


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
    cdef cnp.npy_intp dims[8]
    cdef int d
    if nd > CSVI_MAX_DIMS:
        raise ValueError(f"csvi tensors have at most {CSVI_MAX_DIMS} dims, got shape {shape}")
    for d in range(nd):
        dims[d] = <cnp.npy_intp>shape[d]
        if dims[d] < 0:
            raise ValueError(f"csvi: negative dimension in shape {shape}")
    return cnp.PyArray_EMPTY(nd, dims, cnp.NPY_DOUBLE, 0)


cdef Tensor _emit(int code, tuple ins, tuple shape, bint differentiable,
                  tuple iattr, tuple dattr, tuple aux_shape):
    """Record op `code` on inputs `ins` with an output of `shape`, run it, wrap it."""
    cdef Tape tape = current_tape()
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
        tape = _scratch_tape
    cdef csvi_op op
    op.code = code
    op.n_in = n
    op.aux = -1
    cdef bint need = False
    for k in range(n):
        if tape is _scratch_tape:
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
    cdef int32_t index = csvi_tape_add_op(&tape.c, &op)
    if index < 0:
        raise MemoryError("csvi: cannot grow the tape")
    tape.c.rng = _bitgen
    cdef int rc
    if cnp.PyArray_SIZE(out) >= _GIL_RELEASE_SIZE:
        with nogil:
            rc = csvi_tape_forward_op(&tape.c, index)
    else:
        rc = csvi_tape_forward_op(&tape.c, index)
    if rc != CSVI_OK:
        try:
            _check_rc(tape, rc)
        finally:
            tape.c.n_ops -= 1
    if tape is _scratch_tape:
        _scratch_tape.clear()
        return _wrap(out, None, -1, False)
    return _wrap(out, tape, op.out, need)


def apply(int code, tuple inputs, tuple shape, bint differentiable=True,
          tuple iattr=None, tuple dattr=None, tuple aux_shape=None):
    """Record one op (by code from OPCODES) on `inputs` (Tensors, arrays or
    numbers) with an output of `shape`; returns the output Tensor.

    Used by distributions and transforms; it trusts the caller for shapes, so
    check them before calling.
    """
    cdef int n = PyTuple_GET_SIZE(inputs)
    cdef int k
    for k in range(n):
        if type(inputs[k]) is not Tensor:
            inputs = tuple([as_tensor(x) for x in inputs])
            break
    return _emit(code, inputs, shape, differentiable, iattr, dattr, aux_shape)


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

cdef int OP_ADD = OPCODES["ADD"], OP_SUB = OPCODES["SUB"], OP_MUL = OPCODES["MUL"]
cdef int OP_DIV = OPCODES["DIV"], OP_POW = OPCODES["POW"], OP_NEG = OPCODES["NEG"]
cdef int OP_POW_SCALAR = OPCODES["POW_SCALAR"], OP_WHERE = OPCODES["WHERE"]
cdef int OP_CLIP = OPCODES["CLIP"], OP_COPY = OPCODES["COPY"], OP_DETACH = OPCODES["DETACH"]
cdef int OP_SUM = OPCODES["SUM"], OP_LOGSUMEXP = OPCODES["LOGSUMEXP"]
cdef int OP_TRANSPOSE = OPCODES["TRANSPOSE"], OP_GATHER = OPCODES["GATHER"]
cdef int OP_TAKE = OPCODES["TAKE"], OP_CONCAT = OPCODES["CONCAT"], OP_MATMUL = OPCODES["MATMUL"]


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


cdef dict _UNARY = {name.lower(): OPCODES[name] for name in (
    "NEG", "EXP", "LOG", "LOG1P", "EXPM1", "SQRT", "ABS", "SIGMOID",
    "SOFTPLUS", "TANH", "RELU")}


def exp(x):
    """e**x, recorded on the tape."""
    return unary(OPCODES["EXP"], x)


def log(x):
    return unary(OPCODES["LOG"], x)


def log1p(x):
    return unary(OPCODES["LOG1P"], x)


def expm1(x):
    return unary(OPCODES["EXPM1"], x)


def sqrt(x):
    return unary(OPCODES["SQRT"], x)


def abs_(x):
    return unary(OPCODES["ABS"], x)


def sigmoid(x):
    return unary(OPCODES["SIGMOID"], x)


def softplus(x):
    """log(1 + e**x), stable at both ends."""
    return unary(OPCODES["SOFTPLUS"], x)


def tanh(x):
    return unary(OPCODES["TANH"], x)


def relu(x):
    return unary(OPCODES["RELU"], x)


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


cdef int OP_SUM_N = OPCODES["SUM_N"]


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
    return _emit(OP_LOGSUMEXP, (t,), shape, True, (_mask(axes),), None, shape)


# ---- shape and indexing ----------------------------------------------------

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
    return _emit(OP_COPY, (t,), _resolve_shape(t._value.shape, shape), True, None, None, None)


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
    return _emit(OP_TRANSPOSE, (t,), shape, True, perm, None, None)


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
    gather; a Tensor index picks rows along axis 0 at run time."""
    cdef Tensor t = as_tensor(x)
    if isinstance(key, Tensor) and (<Tensor>key)._mask:
        # t[t > 0]: a boolean mask, as in NumPy (eager only: the result's
        # shape depends on the data, so numpy() refuses while compiling)
        key = key.numpy() != 0.0
    if isinstance(key, Tensor):
        idx = <Tensor>key
        if t._value.ndim == 0:
            raise IndexError("cannot index a 0-d tensor with a tensor")
        if not idx._integer:  # a plate's indices are whole and in range by construction
            n = t._value.shape[0]
            bad = first_outside(idx, -n, n - 1, False, False, True)
            if bad >= 0:
                raise IndexError(f"csvi: bad index in op TAKE: a tensor index must hold "
                                 f"whole numbers in [-{n}, {n - 1}] (axis 0 has size {n}), got "
                                 f"{float(idx._value.reshape(-1)[bad])!r} at flat position {bad}")
        shape = idx._value.shape + t._value.shape[1:]
        return _emit(OP_TAKE, (t, idx.detach()), shape, True, None, None, None)
    if isinstance(key, tuple) and any(isinstance(k, Tensor) for k in key):
        raise TypeError("csvi: a tensor index must be the only index (it picks rows "
                        "along axis 0); index the other dims separately")
    positions = np.asarray(_flat_positions(t._value.shape)[key], order="C")
    return _emit(OP_GATHER, (t, _constant(positions)), positions.shape, True, None, None, None)


cdef int OP_SUBSAMPLE = OPCODES["SUBSAMPLE"]


def draw_subsample(int64_t size, int64_t subsample_size):
    """`subsample_size` distinct indices of range(size) drawn in O(subsample_size)
    by a recorded op (a compiled loop draws fresh ones each step).  The Tensor
    indexes csvi tensors directly and NumPy arrays as int64."""
    if not 0 <= subsample_size <= size:
        raise ValueError(f"subsample_size must be in [0, {size}], got {subsample_size}")
    table = 1
    while table < 2 * subsample_size:
        table *= 2
    cdef Tensor t = _emit(OP_SUBSAMPLE, (), (subsample_size,), False, (size,), None, (table,))
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
