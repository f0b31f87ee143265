# The per-site methods of csvi.distributions' Family and Distribution
# (_set_params, log_prob, _draw, rsample, _as_value) and Delta's (__init__,
# log_prob), compiled: every site of
# every eager step runs them, some twice.  The Python classes take them as
# methods (family.py, distribution.py); each does what the Python it
# replaced did, with the same errors.

cdef object _validation_mod = None  # csvi.distributions.validation, imported on first use
cdef object _as_real = None, _bad_arg = None, _bad_value = None, _as_shape = None
cdef object _broadcast_args = None


cdef int _load_family_helpers() except -1:
    global _validation_mod, _as_real, _bad_arg, _bad_value, _as_shape, _broadcast_args
    from csvi.distributions import validation
    from csvi.distributions.util import broadcast_args
    _as_real, _bad_arg, _bad_value = validation.as_real, validation.bad_arg, validation.bad_value
    _as_shape, _broadcast_args = validation.as_shape, broadcast_args
    _validation_mod = validation
    return 0


cdef inline object _param_tensor(object self, object v, object name):
    """A parameter value as a Tensor (non-numeric input: an error naming it)."""
    if type(v) is Tensor:
        return v
    if type(v) is float:
        return as_tensor(v)
    return _as_real(v, type(self).__name__, name)


def family_set_params(self, validate_args, names, *values):
    """Family._set_params: keep each value as a Tensor (in `_params`, and as
    an attribute named by `names` unless `_named_params` is False), set the
    broadcast batch shape, and check each against arg_constraints when
    validating."""
    if _validation_mod is None:
        _load_family_helpers()
    cdef bint validate = _validation_mod._validation if validate_args is None \
        else bool(validate_args)
    self._validate = validate
    cdef Py_ssize_t n = len(values), k
    cdef tuple shape
    if n == 1:
        v = _param_tensor(self, values[0], names[0])
        self._params = (v,)
        self._batch_shape = (<Tensor>v)._value.shape
        if self._named_params:
            setattr(self, names[0], v)
        if validate and self.arg_constraints[names[0]].first_violation(v) >= 0:
            raise _bad_arg(type(self).__name__, names[0], v, self.arg_constraints[names[0]])
        return
    if n == 2:  # most families (Normal, Gamma, Beta, ...)
        a = _param_tensor(self, values[0], names[0])
        b = _param_tensor(self, values[1], names[1])
        shape = (<Tensor>a)._value.shape
        if (<Tensor>b)._value.shape != shape:
            shape = _broadcast_args(type(self).__name__, names,
                                    [shape, (<Tensor>b)._value.shape])
        self._params = (a, b)
        self._batch_shape = shape
        if self._named_params:
            setattr(self, names[0], a)
            setattr(self, names[1], b)
        if validate:
            declared = self.arg_constraints
            if declared[names[0]].first_violation(a) >= 0:
                raise _bad_arg(type(self).__name__, names[0], a, declared[names[0]])
            if declared[names[1]].first_violation(b) >= 0:
                raise _bad_arg(type(self).__name__, names[1], b, declared[names[1]])
        return
    cdef list params = []
    shape = None
    for arg, v in zip(names, values):
        v = _param_tensor(self, v, arg)
        params.append(v)
        if shape is None:
            shape = (<Tensor>v)._value.shape
        elif (<Tensor>v)._value.shape != shape:
            shape = _broadcast_args(type(self).__name__, names,
                                    [(<Tensor>p)._value.shape for p in params])
    self._params = ps = tuple(params)
    self._batch_shape = shape
    declared = self.arg_constraints
    named = self._named_params
    for arg, t in zip(names, ps):
        if named:
            setattr(self, arg, t)
        if validate and declared[arg].first_violation(t) >= 0:
            raise _bad_arg(type(self).__name__, arg, t, declared[arg])


def distribution_as_value(self, value, method="log_prob"):
    """Distribution._as_value: a log_prob (or cdf) value as a Tensor, checked
    against the support when validating (errors name the distribution and
    the bad element)."""
    if _validation_mod is None:
        _load_family_helpers()
    if type(value) is not Tensor:
        value = _as_real(value, f"{type(self).__name__}.{method}", "value")
    if self._validate and self.support.first_violation(value) >= 0:
        raise _bad_value(self, value, method)
    return value


def family_log_prob(self, value):
    """Family.log_prob: `_lp_op` on (value, *_params)."""
    value = self._as_value(value)
    shape = value.shape
    if shape != self._batch_shape:
        shape = self._value_shape(shape)
    return apply(self._lp_op, (value,) + self._params, shape, True, self._iattr)


def family_draw(self, shape, reparameterized):
    """Family._draw: `_rs_op` on `_params`."""
    return apply(self._rs_op, self._params, shape, reparameterized, self._iattr)


cdef inline bint _plain_shape(object shape):
    """as_shape's every-step case: a tuple of ints >= 0, taken as it stands."""
    if type(shape) is not tuple:
        return False
    for d in <tuple>shape:
        if type(d) is not int or d < 0:
            return False
    return True


cdef inline tuple _sample_shape(object sample_shape, object self):
    """as_shape's every-step case in line, else as_shape."""
    if _plain_shape(sample_shape):
        return <tuple>sample_shape
    if _validation_mod is None:
        _load_family_helpers()
    return _as_shape(sample_shape, type(self).__name__)


cdef object _ExpandedDistribution = None, _check_expandable = None  # imported on first use


def distribution_expand(self, batch_shape):
    """Distribution.expand: this distribution with a larger batch_shape
    (parameters broadcast); itself when the shape is its own (a plate
    expands every site inside it, every step)."""
    global _ExpandedDistribution
    if not _plain_shape(batch_shape):
        if _validation_mod is None:
            _load_family_helpers()
        batch_shape = _as_shape(batch_shape, f"{type(self).__name__}.expand", "batch_shape")
    if batch_shape == self._batch_shape:
        return self
    if _ExpandedDistribution is None:
        from csvi.distributions.distribution import ExpandedDistribution
        _ExpandedDistribution = ExpandedDistribution
    return _ExpandedDistribution(self, batch_shape)


def expanded_batch_shape(base_dist, batch_shape):
    """ExpandedDistribution's batch_shape, checked: as_shape's error for a
    bad shape, check_expandable's for one `base_dist` does not broadcast to
    exactly."""
    global _check_expandable
    if not _plain_shape(batch_shape):
        if _validation_mod is None:
            _load_family_helpers()
        batch_shape = _as_shape(batch_shape, f"{type(base_dist).__name__}.expand",
                                "batch_shape")
    base = base_dist.batch_shape
    try:
        ok = broadcast_shapes(base, batch_shape) == batch_shape
    except ValueError:
        ok = False
    if not ok:
        if _check_expandable is None:
            from csvi.distributions.util import check_expandable
            _check_expandable = check_expandable
        _check_expandable(type(base_dist).__name__, base, batch_shape)  # raises
    return batch_shape


def distribution_rsample(self, sample_shape=()):
    """Distribution.rsample: a reparameterized draw (gradients flow to the
    parameters)."""
    if not self.has_rsample:
        raise NotImplementedError(
            f"{type(self).__name__} has no reparameterized sampler (rsample); "
            "use sample(), or a score-function estimator in the ELBO")
    return self._draw(_sample_shape(sample_shape, self) + self._batch_shape
                      + self._event_shape, True)


cdef object _as_count = None


cdef int _load_delta_helpers() except -1:
    global _as_count
    if _validation_mod is None:
        _load_family_helpers()
    _as_count = _validation_mod.as_count
    return 0


def delta_init(self, v, log_density=0.0, event_dim=0, validate_args=None):
    """Delta.__init__ (an autoguide makes one per latent site per step)."""
    if _as_count is None:
        _load_delta_helpers()
    if type(v) is not Tensor:
        v = _as_real(v, "Delta", "v")
    self.v = v
    if type(event_dim) is not int or event_dim < 0:  # (an autoguide's int: every step)
        event_dim = _as_count(event_dim, "Delta", "event_dim")
    cdef tuple vshape = (<Tensor?>v)._value.shape
    cdef Py_ssize_t nd = len(vshape)
    if event_dim > nd:
        raise ValueError(f"Delta: event_dim must be between 0 and v.ndim = {nd}, "
                         f"got {event_dim}")
    cdef Py_ssize_t split = nd - <Py_ssize_t>event_dim
    cdef tuple batch = vshape[:split]
    self._batch_shape = batch
    self._event_shape = vshape[split:]
    if type(log_density) is Tensor:
        ld = log_density
    elif type(log_density) is float:  # as_real's case for a float, in line
        ld = as_tensor(log_density)
    else:
        ld = _as_real(log_density, "Delta", "log_density")
    self.log_density = ld
    cdef tuple ldshape = (<Tensor?>ld)._value.shape
    if ldshape != () and ldshape != batch:
        shape = _broadcast_args("Delta", ("batch_shape of v", "log_density"),
                                (batch, ldshape))
        if shape != batch:
            raise ValueError(f"Delta: log_density of shape {ldshape} must broadcast to "
                             f"the batch_shape {batch} of v")
    cdef bint validate = _validation_mod._validation if validate_args is None \
        else bool(validate_args)
    self._validate = validate
    if validate:  # check_args on the one argument, in line
        declared = self.arg_constraints["log_density"]
        if declared.first_violation(ld) >= 0:
            raise _bad_arg(type(self).__name__, "log_density", ld, declared)


def delta_log_prob(self, value):
    """Delta.log_prob: log_density where value == v, else -inf, summed over
    the event dims."""
    value = self._as_value(value)
    shape = value.shape
    v = self.v
    if shape != v.shape:
        shape = self._value_shape(shape)
    cdef Py_ssize_t n = len(self._event_shape)
    ld = self.log_density
    if n == 0:
        shape = broadcast_shapes(shape, ld.shape)
        return apply(OP_DELTA_LP, (value, v, ld), shape)
    # the indicator over the event dims, then log_density once per event
    hit = apply(OP_DELTA_LP, (value, v, 0.0), shape, False)
    return binary(OP_ADD, sum(hit, tuple(range(-n, 0))), ld)
