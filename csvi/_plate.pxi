# csvi.plate's per-step work, compiled: a model or guide makes its plates
# afresh in every run, enters each once and sends every site inside through
# it, so plate's construction, entry and hooks are module-level functions
# here that the Python class (csvi/primitives.py, which users may subclass)
# takes as its methods or calls.


def plate_setup(self, name, size, subsample_size, dim, subsample):
    """plate.__init__ after Messenger's: check the arguments and draw (or
    replay) the indices."""
    if dim is not None and (isinstance(dim, bool) or int(dim) != dim or dim >= 0):
        raise ValueError(f"plate '{name}': dim must be a negative integer, got {dim!r}")
    if subsample is not None:
        given = np.asarray(value_of(subsample), dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(given) & (given == np.round(given)) & (given >= 0)):
            raise ValueError(f"plate '{name}': subsample must hold nonnegative integer "
                             f"indices, got {given[:8].tolist()}")
        subsample = given.astype(np.int64)
        size = len(subsample) if size is None else size
        if subsample.size and subsample.max() >= size:
            raise ValueError(f"plate '{name}': subsample index {int(subsample.max())} is "
                             f"out of range for size {size}")
    self.name = name
    self.dim = None if dim is None else int(dim)
    self._frame = None
    if size is None:
        if subsample_size is not None:
            raise ValueError(f"plate '{name}': subsample_size needs a size")
        self.size = None
        self.subsample_size = None
        self._indices = None
        return
    if isinstance(size, bool) or int(size) != size or size < 0:
        raise ValueError(f"plate '{name}': size must be a nonnegative integer, got {size!r}")
    self.size = int(size)
    if subsample_size is not None and (isinstance(subsample_size, bool)
                                       or int(subsample_size) != subsample_size
                                       or not 0 <= subsample_size <= self.size):
        raise ValueError(f"plate '{name}': subsample_size must be an integer in "
                         f"[0, {self.size}], got {subsample_size!r}")
    indices = self._draw_indices(subsample_size, subsample)
    self._indices = indices
    drawn = len(indices)
    if subsample_size is not None and int(subsample_size) != drawn:
        raise ValueError(f"plate '{name}': subsample_size is {subsample_size} but the "
                         f"indices replayed for it have length {drawn}; the model and "
                         "guide use different subsample sizes for this plate")
    self.subsample_size = drawn


def plate_draw_indices(self, subsample_size, given):
    """plate._draw_indices: the indices for this run, through the handlers
    (replay supplies the guide's)."""
    if given is None and (subsample_size is None or subsample_size == self.size):
        fn = _full_indices(self.size)
    elif given is not None:
        fn = SubsampleFn(None, None, given)
    else:
        fn = SubsampleFn(self.size, int(subsample_size), None)
    cdef list stack = _thread_state().handlers
    if not stack:
        return fn()
    return apply_stack(_fill(Message.__new__(Message), "subsample", self.name, fn, (), None,
                             None, False, None), stack).value


cdef class SubsampleFn:
    """Produces a plate's indices when called (not when a handler such as
    replay supplies them): a fresh draw, the user's, or None for all."""

    cdef public object size, subsample_size, given

    def __init__(self, size, subsample_size, given):
        self.size = size
        self.subsample_size = subsample_size
        self.given = given

    def __call__(self):
        if self.size is None:
            return self.given
        return draw_subsample(self.size, self.subsample_size)


cdef dict _FULL_INDICES = {}


cdef SubsampleFn _full_indices(size):
    """The SubsampleFn giving np.arange(size) (read-only), made once per
    size: a plate that is not subsampled is made every step, and its indices
    never change."""
    fn = _FULL_INDICES.get(size)
    if fn is None:
        if len(_FULL_INDICES) >= 64:
            _FULL_INDICES.clear()
        idx = np.arange(size)
        idx.flags.writeable = False
        fn = _FULL_INDICES[size] = SubsampleFn(None, None, idx)
    return <SubsampleFn>fn


cdef object _plate_type = None  # csvi.primitives.plate and CondIndepStackFrame,
cdef object _frame_type = None  # imported on first use (they import _core)


cdef _load_plate_types():
    global _plate_type, _frame_type
    if _plate_type is None:
        from csvi.primitives import plate
        from csvi.handlers.runtime import CondIndepStackFrame
        _plate_type, _frame_type = plate, CondIndepStackFrame


def plate_frame(self):
    """plate.__enter__'s checks and its new CondIndepStackFrame (its dim
    from `_allocate_dim`, given the dims of the active plates)."""
    _load_plate_types()
    if self._frame is not None:
        raise ValueError(f"plate '{self.name}' is already active (nested in itself)")
    cdef list taken = []
    for h in _thread_state().handlers:
        if isinstance(h, _plate_type) and h._frame is not None:
            if h.name == self.name:
                raise ValueError(f"plate '{self.name}' is already active (two nested "
                                 "plates share its name)")
            taken.append(h._frame.dim)
    return _frame_type(self.name, self._allocate_dim(taken), self.size, self.subsample_size)


def plate_enter(self):
    """plate.__enter__ (compiled: every plate is entered every run): its new
    frame, then the push Messenger.__enter__ makes; returns the indices."""
    frame = plate_frame(self)
    _thread_state().handlers.append(self)
    self._frame = frame
    return self._indices


def plate_exit(self, exc_type, exc, tb):
    """plate.__exit__: drop the frame, pop as Messenger.__exit__ does."""
    self._frame = None
    return messenger_exit(self, exc_type, exc, tb)


def plate_allocate_dim(self, taken):
    """plate._allocate_dim: this plate's dim, its own or the rightmost one
    the active plates (`taken`: their dims) leave free."""
    if self.dim is not None:
        if self.dim in taken:
            _load_plate_types()
            other = next(h.name for h in _thread_state().handlers
                         if isinstance(h, _plate_type) and h._frame is not None
                         and h._frame.dim == self.dim)
            raise ValueError(f"plate '{self.name}': dim {self.dim} is already used by "
                             f"the enclosing plate '{other}'")
        return self.dim
    dim = -1
    while dim in taken:
        dim -= 1
    return dim


def plate_process_message(self, Message msg):
    """plate.process_message (compiled: every sample site inside a plate
    passes it in every step): put the plate's frame on the site's
    cond_indep_stack, scale a subsampled site by size / subsample_size, and
    expand the site's distribution to the plate's (subsample) size at the
    plate's dim."""
    if msg.type != "sample":
        return
    frame = self._frame
    if frame is None:
        return
    msg.cond_indep_stack = (frame,) + msg.cond_indep_stack
    size = self.size
    if size is None:
        return
    subsample_size = self.subsample_size
    if size != subsample_size:
        msg.scale = msg.scale * (size / subsample_size)
    fn = msg.fn
    cdef tuple batch = tuple(fn.batch_shape)
    cdef Py_ssize_t dim = frame.dim
    cdef Py_ssize_t need = -dim, pos
    if len(batch) < need:
        batch = (1,) * (need - len(batch)) + batch
    pos = len(batch) + dim
    if batch[pos] == 1:
        msg.fn = fn.expand(batch[:pos] + (subsample_size,) + batch[pos + 1:])
    elif batch[pos] != subsample_size:
        raise ValueError(
            f"site '{msg.name}': its batch shape {tuple(fn.batch_shape)} has size "
            f"{batch[pos]} at dim {dim}, but it is inside plate "
            f"'{self.name}' of size {subsample_size}")


def plate_postprocess_message(self, Message msg):
    """plate.postprocess_message (compiled: every site inside a plate passes
    it in every step): a param declared with `event_dim` inside a subsampled
    plate is indexed by the plate's subsample (`plate._subsample_param`);
    nothing else is touched."""
    if msg.type != "param" or self._frame is None or self.size == self.subsample_size:
        return
    if msg.kwargs.get("event_dim") is None:
        return
    self._subsample_param(msg)
