"""DiscreteHMM(initial_logits, transition_logits, observation_dist): a hidden
Markov model with K discrete states and any observation distribution, the
states summed out exactly.

log_prob and filter are one MARKOV_FORWARD op (csvi.ops.contract, the
forward algorithm in C, O(T K^2), whose VJP is the backward pass) on the
observation log-densities, normalizing the transition logits inside the op:
no (T, K, K) tensor of normalized or combined factors and no O(K^T) one is
ever built; validation's NaN check of the transition logits runs in that
op's pass over them (an error from log_prob, not from the constructor).
Pyro's conventions: initial_logits is the state
*before* the first transition, so a length-T sequence takes T transitions;
both logits are normalized over the last dim; time is the leftmost event
dim.
"""
import numpy as np

from csvi import _core, constraints
from csvi.distributions.discrete import Categorical
from csvi.distributions.distribution import Distribution
from csvi.distributions.util import broadcast_shapes, check_expandable, expand_to
from csvi.distributions.validation import as_real, as_shape, bad_value, validate_default
from csvi.ops.contract import markov_chain_logsumexp, markov_forward


def _checked_logits(value, arg, validate):
    logits = as_real(value, "DiscreteHMM", arg)
    if validate:
        bad = constraints.real.first_violation(logits)
        if bad >= 0:
            raise ValueError(f"DiscreteHMM: {arg} must be real numbers (-inf allowed, for zero "
                             f"probabilities), got NaN at flat index {bad} of shape "
                             f"{logits.shape}")
    return logits


def _normalized(logits):
    return logits - _core.logsumexp(logits, -1, keepdims=True)


class DiscreteHMM(Distribution):
    """DiscreteHMM(initial_logits, transition_logits, observation_dist,
    validate_args=None, duration=None), as Pyro's:

    - initial_logits (..., K): the state before the first transition;
    - transition_logits (..., T or 1, K, K) or (K, K): (old state, new
      state), broadcast over time;
    - observation_dist: batch_shape (..., T or 1, K) (or K there of 1), any
      event_shape, the distribution of an observation given the new state;
    - duration: the number of steps, needed to sample a homogeneous HMM
      whose parameters have no time dim.

    batch_shape is the broadcast of initial_logits.shape[:-1],
    transition_logits.shape[:-3] and observation_dist.batch_shape[:-2];
    event_shape is (T,) + observation_dist.event_shape, where T is 1 when
    neither transitions nor observations vary over time (then log_prob takes
    a sequence of any length).
    """

    arg_constraints = {"initial_logits": constraints.real,
                       "transition_logits": constraints.real}
    has_rsample = False

    def __init__(self, initial_logits, transition_logits, observation_dist, validate_args=None,
                 duration=None):
        validate = validate_default(validate_args)
        init = _checked_logits(initial_logits, "initial_logits", validate)
        trans = as_real(transition_logits, "DiscreteHMM", "transition_logits")
        if init.ndim < 1:
            raise ValueError("DiscreteHMM: initial_logits must have at least one dim (..., K), "
                             f"got shape {init.shape}")
        if trans.ndim < 2 or trans.shape[-1] != trans.shape[-2]:
            raise ValueError("DiscreteHMM: transition_logits must have shape (..., K, K) (old "
                             f"state, new state), got {trans.shape}")
        if not isinstance(observation_dist, Distribution):
            raise TypeError("DiscreteHMM: observation_dist must be a csvi Distribution, got "
                            f"{type(observation_dist).__name__}")
        obs_batch = observation_dist.batch_shape
        if len(obs_batch) < 1:
            raise ValueError("DiscreteHMM: observation_dist must have at least one batch dim "
                             "(its rightmost, the state), got batch_shape ()")
        K = init.shape[-1]
        if trans.shape[-1] != K or obs_batch[-1] not in (1, K):
            raise ValueError(f"DiscreteHMM: the number of states disagrees: initial_logits "
                             f"{init.shape} has {K}, transition_logits {trans.shape} has "
                             f"{trans.shape[-1]}, observation_dist.batch_shape {obs_batch} has "
                             f"{obs_batch[-1]}")
        try:
            shape = broadcast_shapes(init.shape[:-1] + (1,), trans.shape[:-2])
            shape = broadcast_shapes(shape, obs_batch[:-1])
        except ValueError:
            raise ValueError(f"DiscreteHMM: the batch and time dims of initial_logits "
                             f"{init.shape} (batch (..., K)), transition_logits {trans.shape} "
                             f"(..., T, K, K) and observation_dist.batch_shape {obs_batch} "
                             f"(..., T, K) cannot be broadcast together") from None
        batch_shape, time_shape = shape[:-1], shape[-1:]
        event_shape = time_shape + observation_dist.event_shape
        if duration is not None:
            duration = int(as_shape((duration,), "DiscreteHMM", "duration")[0])
            if duration != event_shape[0]:
                if event_shape[0] != 1:
                    raise ValueError(f"DiscreteHMM: duration {duration} disagrees with the "
                                     f"{event_shape[0]} time steps of the parameters "
                                     f"(event_shape {event_shape})")
                event_shape = (duration,) + event_shape[1:]
        elif event_shape[0] != 1:
            duration = event_shape[0]
        self.initial_logits = _normalized(init)
        self._raw_transition_logits = trans  # normalized by the op (or on demand)
        self.observation_dist = observation_dist
        self._duration = duration
        self._batch_shape = batch_shape
        self._event_shape = event_shape
        self._validate = validate

    @property
    def transition_logits(self):
        """The transition logits normalized over the new state (Pyro's
        attribute); log_prob and filter normalize inside their op instead."""
        return _normalized(self._checked_transitions())

    @property
    def duration(self):
        """The number of time steps, or None when any length is accepted."""
        return self._duration

    @property
    def support(self):
        return constraints.independent(self.observation_dist.support, 1)

    def _check_value(self, value, method):
        """value as a Tensor with its time dim where the event shape says."""
        owner = f"DiscreteHMM.{method}"
        if type(value) is not _core.Tensor:
            value = as_real(value, owner, "value")
        event = self._event_shape
        if value.ndim < len(event):
            raise ValueError(f"{owner}: value must have at least {len(event)} dims (time, then "
                             f"the observations' event_shape {event[1:]}), got shape "
                             f"{value.shape}")
        if self._duration is None:  # any length: take the value's
            event = value.shape[value.ndim - len(event):][:1] + event[1:]
        try:
            broadcast_shapes(value.shape, self._batch_shape + event)
        except ValueError:
            raise ValueError(f"{owner}: a value of shape {value.shape} cannot be broadcast with "
                             f"batch_shape {self._batch_shape} and event_shape {event}") from None
        if value.shape[value.ndim - len(event):] != event:
            raise ValueError(f"{owner}: value's event dims {value.shape[value.ndim - len(event):]}"
                             f" must be the event_shape {event} (time, then the observations')")
        if self._validate and self.support.first_violation(value) >= 0:
            raise bad_value(self, value, method)
        return value

    def _checked_transitions(self):
        """The raw transition logits, NaN-checked when validating (paths that
        do not run the chain op, which checks them itself)."""
        return _checked_logits(self._raw_transition_logits, "transition_logits",
                               self._validate)

    def _chain(self, chain_op, value, method):
        """chain_op (markov_forward or markov_chain_logsumexp) on the
        factors, checking the transition logits in its pass over them."""
        factors = self._factors(value, method)
        try:
            return chain_op(*factors, normalize=True, check_nan=self._validate)
        except ValueError:
            self._checked_transitions()  # a NaN: the error that names the argument
            raise

    def _factors(self, value, method):
        """(initial, unnormalized transition (..., T or 1, K, K), observation
        (..., T, K)) log factors for markov_forward(normalize=True)."""
        value = self._check_value(value, method)
        obs = self.observation_dist
        lp = obs.log_prob(_core.expand_dims(value, -1 - obs.event_dim))
        K = self.initial_logits.shape[-1]
        if lp.shape[-1] != K:
            lp = expand_to(lp, lp.shape[:-1] + (K,))
        trans = self._raw_transition_logits
        if trans.ndim == 2:
            trans = _core.expand_dims(trans, 0)
        return self.initial_logits, trans, lp

    def log_prob(self, value):
        """log p(value), every state path summed out: shape the broadcast of
        value's batch dims and batch_shape."""
        return self._chain(markov_chain_logsumexp, value, "log_prob")

    def filter(self, value):
        """The posterior over the state at the last time step given the
        observations `value`, a Categorical (its logits can serve as the
        initial_logits of a model that continues the sequence)."""
        alpha = self._chain(markov_forward, value, "filter")
        if alpha.shape[-2] == 0:
            raise ValueError("DiscreteHMM.filter: value has no time steps")
        return Categorical(logits=alpha[..., -1, :], validate_args=self._validate)

    def expand(self, batch_shape):
        """This HMM with a larger batch_shape; only initial_logits is expanded
        (the others broadcast in the op), as Pyro."""
        batch_shape = as_shape(batch_shape, "DiscreteHMM.expand", "batch_shape")
        if batch_shape == self._batch_shape:
            return self
        check_expandable("DiscreteHMM", self._batch_shape, batch_shape)
        new = DiscreteHMM.__new__(DiscreteHMM)
        new.__dict__.update(self.__dict__)
        K = self.initial_logits.shape[-1]
        new.initial_logits = expand_to(self.initial_logits, batch_shape + (K,))
        new._batch_shape = batch_shape
        return new

    def _draw(self, shape, reparameterized):
        """States by ancestral sampling (one Categorical draw per step), then
        every state's observation drawn and the visited one kept."""
        if self._duration is None:
            raise ValueError("DiscreteHMM.sample: the number of time steps is unknown; pass "
                             "duration= to DiscreteHMM (the parameters have no time dim)")
        T, K = self._duration, self.initial_logits.shape[-1]
        obs = self.observation_dist
        sample_shape = shape[:len(shape) - len(self._batch_shape) - len(self._event_shape)]
        lead = sample_shape + self._batch_shape
        init = np.broadcast_to(_core.value_of(self.initial_logits), lead + (K,))
        trans = _core.value_of(self._checked_transitions())  # Categorical normalizes
        trans = trans.reshape((1,) * (3 - trans.ndim) + trans.shape)
        trans = np.broadcast_to(trans, lead + (T, K, K))
        states = np.empty(lead + (T,), dtype=np.intp)
        x = _core.value_of(Categorical(logits=init).sample()).astype(np.intp)
        for t in range(T):
            rows = np.take_along_axis(trans[..., t, :, :], x[..., None, None], axis=-2)[..., 0, :]
            x = _core.value_of(Categorical(logits=rows).sample()).astype(np.intp)
            states[..., t] = x
        draws = _core.value_of(obs.expand(self._batch_shape + (T, K)).sample(sample_shape))
        e = obs.event_dim
        index = states.reshape(states.shape + (1,) * (e + 1))
        picked = np.take_along_axis(draws, index, axis=-1 - e)
        return _core.astensor(np.ascontiguousarray(np.squeeze(picked, axis=-1 - e)))

    def __repr__(self):
        return (f"DiscreteHMM(initial_logits: {self.initial_logits.shape}, transition_logits: "
                f"{self._raw_transition_logits.shape}, observation_dist: {self.observation_dist!r})")
