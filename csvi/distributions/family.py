"""Family: a distribution computed by two C ops, log-density and draw, over
its parameters.  Every family takes its parameters the same way
(`_set_params`): each becomes a float64 Tensor (non-numeric input is an error
naming the argument), the batch shape is their broadcast, and each is checked
against the family's declared `arg_constraints` when validating."""
from csvi import _core
from csvi.distributions.distribution import Distribution


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

    # Keep each value as a Tensor (in `_params`, and as an attribute named by
    # `names` unless `_named_params` is False), set the broadcast batch shape,
    # and check each against arg_constraints when validating: (self,
    # validate_args, names, *values).  Compiled (csvi/_dist_methods.pxi), as it
    # runs for every site of every step.
    _set_params = _core.family_set_params

    # log_prob records `_lp_op` on (value, *_params); a draw records `_rs_op`
    # on `_params` (compiled, csvi/_dist_methods.pxi)
    log_prob = _core.family_log_prob
    _draw = _core.family_draw
