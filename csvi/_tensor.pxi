# The Tensor type: a float64 NumPy buffer plus its slot on a tape.

cdef class Tensor:
    """A float64 array whose ops are recorded on a tape and differentiated in C.

    Arithmetic, `@`, NumPy ufuncs (`np.exp(t)`) and a few NumPy functions
    (`np.sum`, `np.stack`, ...) on Tensors give Tensors.  Data stays NumPy:
    `.numpy()` returns a copy of the value.
    """
    cdef object _value
    cdef Tape _tape
    cdef int32_t _slot
    cdef uint64_t _generation
    cdef bint _leaf
    cdef bint _mask         # made by a comparison: indexing with it masks, as in NumPy
    cdef bint _integer      # holds indices (a plate's subsample): NumPy sees int64
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
        return self._value.dtype

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
        """A copy of the value as a NumPy array (off the tape)."""
        self._check_not_freezing("Tensor.numpy()")
        return self._value.copy()

    def __array__(self, dtype=None, copy=None):
        self._check_not_freezing("np.asarray(tensor) (e.g. indexing a NumPy array with a "
                                 "plate's indices: index csvi.as_tensor(data) instead)")
        if dtype is None and self._integer:
            return self._value.astype(np.int64)
        return self._value.astype(dtype) if dtype is not None else self._value.copy()

    def item(self):
        self._check_not_freezing("Tensor.item()")
        if self._value.size != 1:
            raise ValueError(f"item(): the tensor has {self._value.size} elements, not 1")
        return float(self._value.reshape(-1)[0])

    def tolist(self):
        self._check_not_freezing("Tensor.tolist()")
        return self._value.tolist()

    def __float__(self):
        return self.item()

    def __int__(self):
        return int(self.item())

    def __index__(self):
        v = self.item()
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
        body = np.array2string(self._value, separator=", ", prefix="tensor(")
        return f"tensor({body}{', requires_grad=True' if self.requires_grad else ''})"

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
        return unary(OPCODES["ABS"], self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __gt__(self, other):
        return compare(OPCODES["GT"], self, other)

    def __ge__(self, other):
        return compare(OPCODES["GE"], self, other)

    def __lt__(self, other):
        return compare(OPCODES["LT"], self, other)

    def __le__(self, other):
        return compare(OPCODES["LE"], self, other)

    __hash__ = object.__hash__

    def __getitem__(self, key):
        return getitem(self, key)

    # ---- methods in the style of torch / numpy ------------------------------
    def exp(self):
        return unary(OPCODES["EXP"], self)

    def log(self):
        return unary(OPCODES["LOG"], self)

    def log1p(self):
        return unary(OPCODES["LOG1P"], self)

    def expm1(self):
        return unary(OPCODES["EXPM1"], self)

    def sqrt(self):
        return unary(OPCODES["SQRT"], self)

    def abs(self):
        return unary(OPCODES["ABS"], self)

    def sigmoid(self):
        return unary(OPCODES["SIGMOID"], self)

    def tanh(self):
        return unary(OPCODES["TANH"], self)

    def relu(self):
        return unary(OPCODES["RELU"], self)

    def softplus(self):
        return unary(OPCODES["SOFTPLUS"], self)

    def sum(self, axis=None, keepdims=False, dtype=None, out=None, **kwargs):
        if out is not None or dtype is not None or kwargs:
            raise TypeError("Tensor.sum: only axis and keepdims are supported")
        return sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False, dtype=None, out=None, **kwargs):
        if out is not None or dtype is not None or kwargs:
            raise TypeError("Tensor.mean: only axis and keepdims are supported")
        return mean(self, axis, keepdims)

    def logsumexp(self, axis=None, keepdims=False):
        return logsumexp(self, axis, keepdims)

    def reshape(self, *shape):
        return reshape(self, *shape)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return transpose(self, axes if axes else None)

    def clip(self, min=None, max=None):
        return clip(self, min, max)

    clamp = clip

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
            return NotImplemented
        return fn(*args, **kwargs)


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
