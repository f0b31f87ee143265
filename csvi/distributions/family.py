"""Family: a distribution computed by two C ops, log-density and draw, over
its parameters.  Every family takes its parameters the same way
(`_set_params`): each becomes a float64 Tensor (non-numeric input is an error
naming the argument), the batch shape is their broadcast, and each is checked
against the family's declared `arg_constraints` when validating."""
from csvi import _core
from csvi.distributions.distribution import Distribution
from csvi.distributions import validation as _validation
from csvi.distributions.util import apply, astensor, broadcast_args
from csvi.distributions.validation import as_real, bad_arg

Tensor = _core.Tensor


class Family(Distribution):
    """log_prob records `_lp_op` on (value, *_params), a draw records `_rs_op`
    on `_params`.  `_iattr` selects a parameterization (probs/logits);
    `_lp_aux` gives log_prob's op an aux slot of the value's shape (a partial
    result its VJP reuses); `_rs_aux` gives the draw op an aux slot of the
    draw's shape (the standard noise its VJP reads).  `_named_params` False
    keeps the parameters only in `_params` (Bernoulli and Categorical expose
    probs and logits as properties of the one they were given)."""

    _lp_op = _rs_op = -1
    _params = ()
    _iattr = None
    _named_params = True

    def _set_params(self, validate_args, names, *values):
        """Keep each value as a Tensor (in `_params`, and as an attribute named
        by `names` unless `_named_params` is False), set the broadcast batch
        shape, and check each against arg_constraints when validating.  This
        runs for every site of every step, hence straight-line code for the
        one- and two-parameter families and plain loops for the others."""
        validate = _validation._validation if validate_args is None else bool(validate_args)
        self._validate = validate
        if len(values) == 1:
            v = values[0]
            if type(v) is not Tensor:
                v = astensor(v) if type(v) is float else as_real(v, type(self).__name__, names[0])
            self._params = (v,)
            self._batch_shape = v.shape
            if self._named_params:
                setattr(self, names[0], v)
            if validate and self.arg_constraints[names[0]].first_violation(v) >= 0:
                raise bad_arg(type(self).__name__, names[0], v, self.arg_constraints[names[0]])
            return
        if len(values) == 2:  # most families (Normal, Gamma, Beta, ...): straight-line
            a, b = values
            if type(a) is not Tensor:
                a = astensor(a) if type(a) is float else as_real(a, type(self).__name__,
                                                                 names[0])
            if type(b) is not Tensor:
                b = astensor(b) if type(b) is float else as_real(b, type(self).__name__,
                                                                 names[1])
            shape = a.shape
            if b.shape != shape:
                shape = broadcast_args(type(self).__name__, names, [shape, b.shape])
            self._params = (a, b)
            self._batch_shape = shape
            if self._named_params:
                setattr(self, names[0], a)
                setattr(self, names[1], b)
            if validate:
                declared = self.arg_constraints
                if declared[names[0]].first_violation(a) >= 0:
                    raise bad_arg(type(self).__name__, names[0], a, declared[names[0]])
                if declared[names[1]].first_violation(b) >= 0:
                    raise bad_arg(type(self).__name__, names[1], b, declared[names[1]])
            return
        params = []
        shape = None
        for arg, v in zip(names, values):
            if type(v) is not Tensor:
                v = astensor(v) if type(v) is float else as_real(v, type(self).__name__, arg)
            params.append(v)
            if shape is None:
                shape = v.shape
            elif v.shape != shape:
                shape = broadcast_args(type(self).__name__, names, [p.shape for p in params])
        self._params = params = tuple(params)
        self._batch_shape = shape
        declared = self.arg_constraints
        for arg, t in zip(names, params):
            if self._named_params:
                setattr(self, arg, t)
            if validate and declared[arg].first_violation(t) >= 0:
                raise bad_arg(type(self).__name__, arg, t, declared[arg])

    def log_prob(self, value):
        value = self._as_value(value)
        shape = value.shape
        if shape != self._batch_shape:
            shape = self._value_shape(shape)
        return apply(self._lp_op, (value,) + self._params, shape, True, self._iattr)

    def _draw(self, shape, reparameterized):
        return apply(self._rs_op, self._params, shape, reparameterized, self._iattr)
