# Optimizer updates: a thin wrapper over src_c/optim.c.  Python (csvi.optim)
# decides which parameter gets which hyperparameters; C does the arithmetic.

cdef extern from "csvi_optim.h":
    enum:
        CSVI_OPTIM_SGD
        CSVI_OPTIM_ADAM
        CSVI_OPTIM_CLIPPED_ADAM
        CSVI_OPTIM_RMSPROP
        CSVI_OPTIM_ADAGRAD
        CSVI_OPTIM_NESTEROV
        CSVI_OPTIM_CENTERED
        CSVI_OPTIM_AMSGRAD
        CSVI_OPTIM_MAXIMIZE
        CSVI_OPTIM_MOMENTS32
        CSVI_OPTIM_OK

    ctypedef struct csvi_optim_config:
        int32_t kind
        int32_t flags
        double lr
        double weight_decay
        double eps
        double beta1
        double beta2
        double momentum
        double dampening
        double alpha
        double lr_decay
        double initial_accumulator_value
        double clip_norm
        double lrd
        double max_grad_norm
        double max_grad_value

    csvi_optim_config csvi_optim_defaults(int32_t kind)
    int csvi_optim_state_count(const csvi_optim_config *c)
    int csvi_optim_state_float32(const csvi_optim_config *c)
    void csvi_optim_init_state(const csvi_optim_config *c, void *state, int64_t n)
    int csvi_optim_step(csvi_optim_config *c, double *param, const double *grad,
                        void *state, int64_t n, int64_t step) nogil


cdef dict _OPTIM_KINDS = {
    "SGD": CSVI_OPTIM_SGD,
    "Adam": CSVI_OPTIM_ADAM,
    "ClippedAdam": CSVI_OPTIM_CLIPPED_ADAM,
    "RMSprop": CSVI_OPTIM_RMSPROP,
    "Adagrad": CSVI_OPTIM_ADAGRAD,
}

cdef dict _OPTIM_FLAGS = {
    "nesterov": CSVI_OPTIM_NESTEROV,
    "centered": CSVI_OPTIM_CENTERED,
    "amsgrad": CSVI_OPTIM_AMSGRAD,
    "maximize": CSVI_OPTIM_MAXIMIZE,
    "moments32": CSVI_OPTIM_MOMENTS32,
}


cdef cnp.ndarray _optim_buffer(object x, str what, bint writable):
    """x as a float64 C-contiguous ndarray (no copy), or a clear error."""
    if not isinstance(x, cnp.ndarray):
        raise TypeError(f"optimizer step: {what} must be a numpy.ndarray, got {type(x).__name__}")
    cdef cnp.ndarray a = <cnp.ndarray>x
    if cnp.PyArray_TYPE(a) != cnp.NPY_DOUBLE:
        raise TypeError(f"optimizer step: {what} must have dtype float64, got {a.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"optimizer step: {what} must be C-contiguous")
    if writable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"optimizer step: {what} must be writable (it is updated in place)")
    return a


cdef class OptimKernel:
    """One parameter's optimizer: a C csvi_optim_config, the state vectors it
    advances and its update count, kept together so that an update -- eager
    (`apply_updates`) or in a compiled loop -- changes all three or none.

    `size` is the parameter's number of elements.  Keyword names are the C
    config's fields (lr, weight_decay, eps, beta1, beta2, momentum, dampening,
    alpha, lr_decay, initial_accumulator_value, clip_norm, lrd, max_grad_norm,
    max_grad_value) plus the boolean flags nesterov, centered, amsgrad and
    maximize; unset ones keep torch's defaults.  Values are trusted:
    csvi.optim validates them with the user's names.  `moments32=True` (Adam
    only; csvi.optim sets it for a float32 Linear's params) keeps the state in
    float32 and runs the update's arithmetic in float32, as torch's Adam on a
    float32 param: `state` is then a float32 array.
    """
    cdef csvi_optim_config c
    cdef readonly str kind
    cdef readonly int64_t size
    cdef readonly cnp.ndarray state   # (state_count, size), float64 or float32, in place
    cdef int64_t _step

    def __cinit__(self, str kind, int64_t size, **hyper):
        if kind not in _OPTIM_KINDS:
            raise ValueError(f"OptimKernel: unknown optimizer {kind!r}; "
                             f"expected one of {sorted(_OPTIM_KINDS)}")
        if size < 0:
            raise ValueError(f"OptimKernel: size must be >= 0, got {size}")
        self.kind = kind
        self.size = size
        self._step = 0
        self.c = csvi_optim_defaults(_OPTIM_KINDS[kind])
        for key, value in hyper.items():
            if key in _OPTIM_FLAGS:
                if value:
                    self.c.flags |= <int32_t>_OPTIM_FLAGS[key]
                continue
            if key == "lr": self.c.lr = value
            elif key == "weight_decay": self.c.weight_decay = value
            elif key == "eps": self.c.eps = value
            elif key == "beta1": self.c.beta1 = value
            elif key == "beta2": self.c.beta2 = value
            elif key == "momentum": self.c.momentum = value
            elif key == "dampening": self.c.dampening = value
            elif key == "alpha": self.c.alpha = value
            elif key == "lr_decay": self.c.lr_decay = value
            elif key == "initial_accumulator_value": self.c.initial_accumulator_value = value
            elif key == "clip_norm": self.c.clip_norm = value
            elif key == "lrd": self.c.lrd = value
            elif key == "max_grad_norm": self.c.max_grad_norm = value
            elif key == "max_grad_value": self.c.max_grad_value = value
            else:
                raise ValueError(f"OptimKernel: unknown hyperparameter {key!r}")
        dtype = np.float32 if csvi_optim_state_float32(&self.c) else np.float64
        self.state = np.empty((csvi_optim_state_count(&self.c), size), dtype=dtype)
        csvi_optim_init_state(&self.c, cnp.PyArray_DATA(self.state), size)

    @property
    def lr(self):
        """The current learning rate (ClippedAdam decays it; schedulers set it)."""
        return self.c.lr

    @lr.setter
    def lr(self, double value):
        self.c.lr = value

    @property
    def step(self):
        """Updates applied so far (the next one is step + 1: bias corrections)."""
        return self._step

    @step.setter
    def step(self, int64_t value):
        if value < 0:
            raise ValueError(f"OptimKernel: step must be >= 0, got {value}")
        self._step = value

    @property
    def state_names(self):
        """Names of the state vectors in C order (torch.optim's state keys)."""
        cdef int kind = self.c.kind
        names = []
        if kind == CSVI_OPTIM_SGD:
            if self.c.momentum != 0.0:
                names.append("momentum_buffer")
        elif kind == CSVI_OPTIM_ADAM or kind == CSVI_OPTIM_CLIPPED_ADAM:
            names += ["exp_avg", "exp_avg_sq"]
            if kind == CSVI_OPTIM_ADAM and self.c.flags & CSVI_OPTIM_AMSGRAD:
                names.append("max_exp_avg_sq")
        elif kind == CSVI_OPTIM_RMSPROP:
            names.append("square_avg")
            if self.c.momentum > 0.0:
                names.append("momentum_buffer")
            if self.c.flags & CSVI_OPTIM_CENTERED:
                names.append("grad_avg")
        elif kind == CSVI_OPTIM_ADAGRAD:
            names.append("sum")
        assert len(names) == csvi_optim_state_count(&self.c)
        return names

    cpdef check(self, param, grad):
        """Raises TypeError/ValueError unless `param` (updated in place) and
        `grad` fit this kernel."""
        cdef cnp.ndarray p = _optim_buffer(param, "param", True)
        cdef cnp.ndarray g = _optim_buffer(grad, "grad", False)
        if (<object>g).shape != (<object>p).shape:
            raise ValueError(f"optimizer step: grad has shape {(<object>g).shape}, "
                             f"but the param has shape {(<object>p).shape}")
        if cnp.PyArray_SIZE(p) != self.size:
            raise ValueError(f"optimizer step: the param has {cnp.PyArray_SIZE(p)} elements, "
                             f"but its {self.kind} state was made for {self.size}")


cdef object _FLOAT64 = np.dtype(np.float64)  # native float64: a grad passed as it is


def optim_step(optim, params):
    """PyroOptim.step's body for (name, value, grad) triples (compiled: every
    eager step runs it): each param's kernel from `optim`'s slots (made on
    first use by `optim.slot_of`), then every update in one apply_updates.
    A param whose grad is None is skipped."""
    cdef dict slots = optim._slots
    cdef list kernels = [], values = [], grads = [], names = []
    for item in params:
        try:
            name, value, grad = item
        except (TypeError, ValueError):
            raise TypeError(f"{optim._name()}.step: expected (name, value, grad) "
                            f"triples, got {item!r}") from None
        if grad is None:
            continue
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{optim._name()}.step: the value of param {name!r} must be "
                            f"a numpy.ndarray, got {type(value).__name__}")
        slot = slots.get(name)
        if slot is None or slot.shape != (<object>value).shape:
            slot = optim.slot_of(name, value)  # makes it, or names the shape at fault
        # (every step: a float64 view of the tape's arena, passed as it is)
        if type(grad) is not np.ndarray or (<object>grad).dtype is not _FLOAT64 \
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>grad):
            grad = np.asarray(grad, dtype=np.float64, order="C")  # keeps 0-d 0-d
        kernels.append(slot.kernel)
        values.append(value)
        grads.append(grad)
        names.append(name)
    try:
        apply_updates(kernels, values, grads, names)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{optim._name()}: {e}") from None


def apply_updates(list kernels, list params, list grads, list names):
    """One update of params[i] from grads[i] by kernels[i], for every i, in
    place; checks them all first (errors name names[i]), so it applies every
    update or none (no Python runs in between, so neither can a Ctrl-C)."""
    cdef Py_ssize_t n = len(kernels), i
    if len(params) != n or len(grads) != n or len(names) != n:
        raise ValueError("apply_updates: kernels, params, grads and names differ in length")
    cdef OptimKernel k
    cdef int64_t total = 0
    for i in range(n):
        k = <OptimKernel?>kernels[i]
        try:
            k.check(params[i], grads[i])
        except (TypeError, ValueError) as e:
            raise type(e)(f"param {names[i]!r}: {e}") from None
        total += k.size
    cdef int rc = CSVI_OPTIM_OK
    for i in range(n):
        k = <OptimKernel>kernels[i]
        rc |= _update(k, <cnp.ndarray>params[i], <cnp.ndarray>grads[i], total >= _GIL_RELEASE_SIZE)
    if rc != CSVI_OPTIM_OK:  # unreachable for a kernel made here (kind and step are valid)
        raise ValueError(f"optimizer step: the C update failed with code {rc}")


cdef int _update(OptimKernel k, cnp.ndarray p, cnp.ndarray g, bint release_gil):
    cdef double *pp = <double *>cnp.PyArray_DATA(p)
    cdef const double *gp = <const double *>cnp.PyArray_DATA(g)
    cdef void *sp = cnp.PyArray_DATA(k.state)
    cdef int rc
    k._step += 1
    if release_gil:
        with nogil:
            rc = csvi_optim_step(&k.c, pp, gp, sp, k.size, k._step)
    else:
        rc = csvi_optim_step(&k.c, pp, gp, sp, k.size, k._step)
    return rc
