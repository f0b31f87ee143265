# The Tensor type: a float64 NumPy buffer plus its slot on a tape.

cdef class Tensor:
    """A float64 array whose ops are recorded on a tape and differentiated in C.

    Arithmetic, `@`, comparisons, NumPy ufuncs (`np.exp(t)`) and the NumPy
    functions csvi can differentiate (`np.sum`, `np.einsum`, `np.cumsum`, ...,
    see _numpy_protocol.pxi) on Tensors give Tensors, and so do the torch-style
    methods tutorials call (`.sum(d)`, `.unsqueeze(d)`, `.expand`, `.long()`,
    ...), with torch's semantics.  `.numpy()` returns a copy of the value.

    An integer Tensor (`.long()`, a plate's subsample, a Categorical draw)
    holds whole numbers in float64 like any other; NumPy sees it as int64, so
    it indexes NumPy arrays, and `.item()` gives an int.
    """
    cdef object _value
    cdef Tape _tape
    cdef int32_t _slot
    cdef uint64_t _generation
    cdef bint _leaf
    cdef bint _mask         # made by a comparison: indexing with it masks, as in NumPy
    cdef bint _integer      # holds indices (a plate's subsample): NumPy sees int64
    cdef Tensor _param_leaf # a param's value: the unconstrained leaf it came from
    cdef public bint requires_grad
    cdef public object grad

    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False):
        self._value = np.array(data, dtype=np.float64, order="C", copy=True)
        self._tape = None
        self._slot = -1
        self._leaf = True
        self.requires_grad = bool(requires_grad)
        self.grad = None

    # ---- inspection ---------------------------------------------------------
    @property
    def shape(self):
        return self._value.shape

    @property
    def ndim(self):
        return self._value.ndim

    @property
    def size(self):
        return self._value.size

    @property
    def dtype(self):
        return _INT64 if self._integer else self._value.dtype

    @property
    def is_leaf(self):
        return self._leaf

    @property
    def T(self):
        return transpose(self)

    def __len__(self):
        if self._value.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._value.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    cdef _check_not_freezing(self, str what):
        if self._tape is not None and self._tape.freezing and self._tape.owns(self):
            raise RuntimeError(
                f"csvi: {what} converts a traced value to Python while a step is being "
                "compiled; a compiled program cannot repeat Python-side decisions. "
                "Use csvi.where/np.where for data-dependent choices, or run eager.")

    def numpy(self):
        """A copy of the value as a NumPy array (off the tape); int64 for an
        integer Tensor."""
        self._check_not_freezing("Tensor.numpy()")
        return self._value.astype(np.int64) if self._integer else self._value.copy()

    def __array__(self, dtype=None, copy=None):
        self._check_not_freezing("np.asarray(tensor) (e.g. indexing a NumPy array with a "
                                 "plate's indices: index csvi.as_tensor(data) instead)")
        if dtype is None and self._integer:
            return self._value.astype(np.int64)
        return self._value.astype(dtype) if dtype is not None else self._value.copy()

    def item(self):
        """The value of a one-element tensor as a Python float (int for an
        integer Tensor)."""
        self._check_not_freezing("Tensor.item()")
        return self._scalar("item()")

    cdef object _scalar(self, str what):
        if self._value.size != 1:
            raise ValueError(f"{what}: the tensor has {self._value.size} elements, not 1")
        v = float(self._value.reshape(-1)[0])
        return int(v) if self._integer else v

    def tolist(self):
        self._check_not_freezing("Tensor.tolist()")
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        self._check_not_freezing("using a tensor as an index of a Python sequence or a "
                                 "NumPy array (index csvi.as_tensor(data) instead)")
        v = float(self._scalar("__index__"))
        if v != int(v):
            raise TypeError(f"a tensor with value {v} cannot be used as an index")
        return int(v)

    def __bool__(self):
        self._check_not_freezing("bool(tensor) (an `if` on a traced value)")
        if self._value.size != 1:
            raise ValueError(f"the truth value of a tensor with {self._value.size} "
                             "elements is ambiguous")
        return bool(self._value.reshape(-1)[0])

    def __repr__(self):
        value = self._value.astype(np.int64) if self._integer else self._value
        body = np.array2string(value, separator=", ", prefix="tensor(")
        return f"tensor({body}{', requires_grad=True' if self.requires_grad else ''})"

    def __format__(self, spec):
        """As torch: a 0-d tensor formats as its number (`f"{loss:.3f}"`).
        Formatting makes a string, not a decision, so it is allowed while a
        step is compiled (it shows the traced step's value)."""
        if self._value.ndim == 0:
            return format(self._scalar("format"), spec)
        if not spec:
            return repr(self)
        raise TypeError(f"format spec {spec!r} needs a 0-d tensor, got shape "
                        f"{self._value.shape}; format its elements (t.tolist()) instead")

    def __reduce__(self):
        return (Tensor, (self._value.copy(), self.requires_grad))

    # ---- autodiff -----------------------------------------------------------
    def backward(self):
        """Gradient of this scalar w.r.t. every leaf with requires_grad (into `.grad`).

        On the default tape the graph is freed afterwards, as in PyTorch."""
        if self._leaf and self.requires_grad and (self._tape is None or not self._tape.owns(self)):
            if self._value.size != 1:
                raise ValueError(f"backward: the output must be a scalar, got shape {self.shape}")
            one = np.ones_like(self._value)  # d self / d self
            self.grad = one if self.grad is None else self.grad + one
            return
        if self._tape is None or not self._tape.owns(self):
            if not self.requires_grad:
                raise RuntimeError("backward: this tensor does not require grad")
            raise RuntimeError("backward: this tensor's graph has already been freed")
        tape = self._tape
        tape.backward(self)
        if tape.default:
            tape.clear()

    def detach(self):
        """The same value with no gradient flowing back (recorded, so replayable)."""
        if not self.requires_grad and (self._tape is None or not self._tape.record_all):
            return self
        return _emit(OP_DETACH, (self,), self._value.shape, False, None, None, None)

    def unconstrained(self):
        """A param's unconstrained leaf Tensor (what optimizers update and
        gradients land on), as Pyro's `pyro.param(name).unconstrained()`."""
        if self._param_leaf is None:
            raise TypeError("unconstrained(): this tensor is not a param's value (only "
                            "values returned by csvi.param have an unconstrained leaf)")
        return self._param_leaf

    def requires_grad_(self, requires_grad=True):
        if not self._leaf:
            raise RuntimeError("requires_grad_ can only be set on leaf tensors")
        self.requires_grad = bool(requires_grad)
        return self

    # ---- arithmetic ---------------------------------------------------------
    def __add__(self, other):
        return binary(OP_ADD, self, other)

    def __radd__(self, other):
        return binary(OP_ADD, other, self)

    def __sub__(self, other):
        return binary(OP_SUB, self, other)

    def __rsub__(self, other):
        return binary(OP_SUB, other, self)

    def __mul__(self, other):
        return binary(OP_MUL, self, other)

    def __rmul__(self, other):
        return binary(OP_MUL, other, self)

    def __truediv__(self, other):
        return binary(OP_DIV, self, other)

    def __rtruediv__(self, other):
        return binary(OP_DIV, other, self)

    def __pow__(self, other, modulo):
        if modulo is not None:
            raise TypeError("pow() with a modulus is not supported for tensors")
        return power(self, other)

    def __rpow__(self, other, modulo):
        return binary(OP_POW, other, self)

    def __neg__(self):
        return unary(OP_NEG, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return unary(OP_ABS, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __gt__(self, other):
        return compare(OP_GT, self, other)

    def __ge__(self, other):
        return compare(OP_GE, self, other)

    def __lt__(self, other):
        return compare(OP_LT, self, other)

    def __le__(self, other):
        return compare(OP_LE, self, other)

    def __eq__(self, other):
        if not _comparable(other):
            return NotImplemented
        return equal(self, other)

    def __ne__(self, other):
        if not _comparable(other):
            return NotImplemented
        return not_equal(self, other)

    def __hash__(self):
        # by identity, as torch: == is elementwise, so Tensors key dicts as objects
        return object.__hash__(self)

    def __getitem__(self, key):
        return index(self, key)

    # ---- methods in the style of torch / numpy ------------------------------
    def exp(self):
        return unary(OP_EXP, self)

    def log(self):
        return unary(OP_LOG, self)

    def log1p(self):
        return unary(OP_LOG1P, self)

    def expm1(self):
        return unary(OP_EXPM1, self)

    def sqrt(self):
        return unary(OP_SQRT, self)

    def abs(self):
        return unary(OP_ABS, self)

    def sigmoid(self):
        return unary(OP_SIGMOID, self)

    def tanh(self):
        return unary(OP_TANH, self)

    def relu(self):
        return unary(OP_RELU, self)

    def softplus(self):
        return unary(OP_SOFTPLUS, self)

    # torch's special-function methods (_special.pxi)
    def lgamma(self):
        return unary(OP_LGAMMA, self)

    def digamma(self):
        return unary(OP_DIGAMMA, self)

    def polygamma(self, n):
        return polygamma(n, self)

    def erf(self):
        return unary(OP_ERF, self)

    def erfc(self):
        return unary(OP_ERFC, self)

    def logit(self):
        return unary(OP_LOGIT, self)

    def xlogy(self, other):
        return binary(OP_XLOGY, self, other)

    def sum(self, axis=None, keepdims=False, dtype=None, out=None, *, dim=None, keepdim=None):
        """Sum over `axis` (or torch's `dim`), like numpy.sum and torch.sum."""
        if out is not None or dtype is not None:
            raise TypeError("Tensor.sum: only axis/dim and keepdims/keepdim are supported")
        return sum(self, _dim(axis, dim, "sum"), _keep(keepdims, keepdim, "sum"))

    def mean(self, axis=None, keepdims=False, dtype=None, out=None, *, dim=None, keepdim=None):
        """Mean over `axis` (or torch's `dim`), like numpy.mean and torch.mean."""
        if out is not None or dtype is not None:
            raise TypeError("Tensor.mean: only axis/dim and keepdims/keepdim are supported")
        return mean(self, _dim(axis, dim, "mean"), _keep(keepdims, keepdim, "mean"))

    def cumsum(self, axis=None, *, dim=None):
        """Running sum along `axis` (torch's `dim`); None flattens, as numpy."""
        return cumsum(self, _dim(axis, dim, "cumsum"))

    def cumprod(self, axis=None, *, dim=None):
        """Running product along `axis` (torch's `dim`); None flattens, as numpy."""
        return cumprod(self, _dim(axis, dim, "cumprod"))

    def pow(self, exponent):
        return power(self, exponent)

    def squeeze(self, dim=None):
        """torch's squeeze: drop size-1 dims, all or those among `dim` (an int
        or a tuple); a named dim whose size is not 1 is kept (numpy.squeeze
        raises instead)."""
        if dim is None:
            return squeeze(self)
        if self._value.ndim == 0 and dim in (0, -1):  # torch allows these on a scalar
            return self
        dims = _normalize_axes(dim, self._value.ndim, "squeeze")
        return squeeze(self, tuple(d for d in dims if self._value.shape[d] == 1))

    def unsqueeze(self, dim):
        """A new size-1 dim at `dim` (in [-ndim - 1, ndim]), as torch."""
        return expand_dims(self, dim)

    def view(self, *shape):
        """torch's view: reshape (the data is copied; gradients flow back)."""
        return reshape(self, *shape)

    def expand(self, *sizes):
        """torch's expand: broadcast to `sizes`, -1 keeping a dim; new dims on the left."""
        return expand(self, *sizes)

    def t(self):
        """torch's t(): a matrix transposed; 0-d and 1-d tensors as they are."""
        if self._value.ndim > 2:
            raise ValueError(f"t(): expects a tensor with at most 2 dims, got shape "
                             f"{self._value.shape}; use .transpose(...) or .T")
        return self if self._value.ndim < 2 else transpose(self)

    def clone(self):
        """A copy, recorded (gradients flow back through it)."""
        cdef Tensor out = _emit(OP_COPY, (self,), self._value.shape, True, None, None, None)
        out._integer = self._integer
        out._mask = self._mask
        return out

    def long(self):
        """Values rounded toward zero, as an integer Tensor (no gradient)."""
        if self._integer:
            return self
        cdef Tensor out = _emit(OP_TRUNC, (self,), self._value.shape, False, None, None, None)
        out._integer = True
        return out

    def float(self):
        """The same values as a float Tensor (a no-op unless integer)."""
        if not self._integer:
            return self
        return _emit(OP_DETACH, (self,), self._value.shape, False, None, None, None)

    def new_zeros(self, *size):
        """A constant Tensor of zeros of `size` (ints or one tuple)."""
        return Tensor(np.zeros(_size_arg(size, "new_zeros")))

    def new_ones(self, *size):
        """A constant Tensor of ones of `size` (ints or one tuple)."""
        return Tensor(np.ones(_size_arg(size, "new_ones")))

    def logsumexp(self, axis=None, keepdims=False):
        return logsumexp(self, axis, keepdims)

    def max(self, dim=None, keepdim=False):
        """torch's Tensor.max: the largest entry, or along `dim` the pair
        (values, indices)."""
        return _torch_extreme(self, amax, np.argmax, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        """torch's Tensor.min: the smallest entry, or along `dim` the pair
        (values, indices)."""
        return _torch_extreme(self, amin, np.argmin, dim, keepdim)

    def reshape(self, *shape):
        return reshape(self, *shape)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return transpose(self, axes if axes else None)

    def clip(self, min=None, max=None):
        return clip(self, min, max)

    clamp = clip

    # torch's matrix methods (csvi/_linalg.pxi)
    @property
    def mT(self):
        """The matrices of the last two dims transposed (torch's .mT)."""
        nd = self._value.ndim
        if nd < 2:
            raise ValueError(f"mT: needs at least 2 dims, got shape {self._value.shape}")
        return transpose(self, tuple(range(nd - 2)) + (nd - 1, nd - 2))

    def tril(self, diagonal=0):
        return tril(self, diagonal)

    def triu(self, diagonal=0):
        return triu(self, diagonal)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """torch's Tensor.diagonal (default dims 0 and 1, as torch)."""
        return diagonal(self, offset, dim1, dim2)

    def diag_embed(self, offset=0):
        return diag_embed(self, offset)

    # ---- NumPy protocols ----------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs:
            raise TypeError(f"csvi: numpy.{ufunc.__name__}.{method} with {sorted(kwargs)} "
                            "is not supported on tensors")
        fn = _UFUNCS.get(ufunc.__name__)
        if fn is None:
            raise TypeError(f"csvi: the ufunc numpy.{ufunc.__name__} is not supported on "
                            "tensors (no gradient is defined for it)")
        return fn(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        fn = _ARRAY_FUNCTIONS.get(func)
        if fn is None:
            raise TypeError(
                f"csvi: {getattr(func, '__module__', 'numpy')}.{func.__name__} is not "
                "supported on csvi Tensors (csvi implements the NumPy functions it can "
                "differentiate); for a plain array without gradient, call it on t.numpy()")
        return fn(*args, **kwargs)


cdef object _INT64 = np.dtype(np.int64)


cdef object _dim(object axis, object dim, str what):
    """`axis` (NumPy) or `dim` (torch), not both."""
    if dim is None:
        return axis
    if axis is not None:
        raise TypeError(f"Tensor.{what}: pass axis or dim, not both")
    return dim


cdef bint _keep(object keepdims, object keepdim, str what) except -1:
    if keepdim is None:
        return bool(keepdims)
    if keepdims:
        raise TypeError(f"Tensor.{what}: pass keepdims or keepdim, not both")
    return bool(keepdim)


cdef tuple _size_arg(tuple size, str what):
    """torch's size arguments: ints, or one tuple/list of ints."""
    if len(size) == 1 and not isinstance(size[0], (int, np.integer)):
        size = tuple(size[0])
    for d in size:
        if not isinstance(d, (int, np.integer)) or d < 0:
            raise ValueError(f"Tensor.{what}: sizes must be nonnegative ints, got {size!r}")
    return tuple(int(d) for d in size)


cdef bint _comparable(object other):
    """`t == other` is elementwise for numbers, arrays and Tensors; anything
    else (None, a string) falls back to identity, as in torch."""
    return isinstance(other, (Tensor, int, float, np.ndarray, np.generic, list, tuple))


ValuesIndices = collections.namedtuple("ValuesIndices", ["values", "indices"])


cdef _torch_extreme(Tensor t, reduce, arg, dim, bint keepdim):
    cdef Tensor out = reduce(t, dim, keepdim)
    if t._integer:
        out._integer = True
    if dim is None:
        return out
    where = arg(t._value, axis=dim)
    if keepdim:
        where = np.expand_dims(where, dim)
    return ValuesIndices(out, mark_integer(Tensor(where.astype(np.float64))))


def mark_integer(Tensor t):
    """Flags `t`, which holds whole numbers (a Categorical draw), as an integer
    Tensor: NumPy sees int64 (so it indexes NumPy arrays) and `.item()` gives
    an int.  Returns t."""
    t._integer = True
    return t


def tensor(data, requires_grad=False):
    """A new leaf Tensor holding a float64 copy of `data`."""
    if isinstance(data, Tensor):
        data = (<Tensor>data)._value
    return Tensor(data, requires_grad=requires_grad)


def is_tensor(x):
    return isinstance(x, Tensor)


def value_of(x):
    """The NumPy value of a Tensor (no copy, read-only use) or x as an array."""
    if isinstance(x, Tensor):
        return (<Tensor>x)._value
    return np.asarray(x, dtype=np.float64)


def as_param_value(Tensor value, Tensor leaf):
    """Mark `value` as the constrained value of the param whose leaf is
    `leaf` (for Tensor.unconstrained); returns value."""
    value._param_leaf = leaf
    return value


def leaf_over(arr, requires_grad=True):
    """A leaf Tensor over `arr`'s own buffer (no copy), so in-place updates of
    `arr` (an optimizer step on a param) are what the next tape reads."""
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 \
            or not arr.flags.c_contiguous or not arr.flags.writeable:
        raise TypeError("leaf_over needs a writeable C-contiguous float64 ndarray")
    cdef Tensor t = Tensor.__new__(Tensor)
    t._value = arr
    t._tape = None
    t._slot = -1
    t._leaf = True
    t.requires_grad = bool(requires_grad)
    t.grad = None
    return t
