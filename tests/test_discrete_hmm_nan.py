"""DiscreteHMM's validation of transition_logits: the NaN check runs in the
chain op's pass over the logits, so it is an error from log_prob and filter
(and from sample and the transition_logits attribute, which check them
themselves), naming the argument, the flat index and the shape as the
constructor's check of initial_logits does; in an SVI step it names the
site and leaves the params and optimizer state as they were."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi.distributions import DiscreteHMM
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam

K, T = 3, 5


def bad_logits(shape, index):
    logits = np.random.default_rng(0).standard_normal(shape)
    logits[index] = np.nan
    return logits


def message(index, shape):
    flat = np.ravel_multi_index(index, shape)
    return (rf"DiscreteHMM: transition_logits must be real numbers \(-inf allowed, for zero "
            rf"probabilities\), got NaN at flat index {flat} of shape "
            rf"\({', '.join(map(str, shape))},?\)")


@pytest.mark.parametrize("shape,index", [((K, K), (2, 1)), ((T, K, K), (3, 0, 2)),
                                         ((2, T, K, K), (1, 4, 2, 0))])
def test_every_path_that_reads_the_logits_names_the_nan(shape, index):
    trans = bad_logits(shape, index)
    hmm = DiscreteHMM(np.zeros(K), trans, dist.Normal(np.arange(K, dtype=float), 1.0),
                      duration=T)
    value = np.zeros(T)
    with pytest.raises(ValueError, match=message(index, shape)):
        hmm.log_prob(value)
    with pytest.raises(ValueError, match=message(index, shape)):
        hmm.filter(value)
    with pytest.raises(ValueError, match=message(index, shape)):
        hmm.sample()
    with pytest.raises(ValueError, match=message(index, shape)):
        hmm.transition_logits
    with pytest.raises(ValueError, match=message(index, shape)):
        hmm.expand((4,) + hmm.batch_shape).log_prob(value)


def test_an_empty_sequence_still_checks_the_logits():
    hmm = DiscreteHMM(np.zeros(K), bad_logits((K, K), (0, 0)), dist.Normal(np.zeros(K), 1.0))
    with pytest.raises(ValueError, match=message((0, 0), (K, K))):
        hmm.log_prob(np.zeros(0))


def test_without_validation_the_nan_is_not_an_error():
    hmm = DiscreteHMM(np.zeros(K), bad_logits((T, K, K), (1, 1, 1)),
                      dist.Normal(np.zeros(K), 1.0), validate_args=False)
    assert not np.isfinite(hmm.log_prob(np.zeros(T)).numpy())


def test_neg_inf_logits_are_allowed():
    trans = np.random.default_rng(1).standard_normal((T, K, K))
    trans[:, 0, 1] = -np.inf
    hmm = DiscreteHMM(np.zeros(K), trans, dist.Normal(np.zeros(K), 1.0))
    assert np.isfinite(hmm.log_prob(np.zeros(T)).numpy())


def model(trans):
    loc = csvi.param("loc", np.array([-1.0, 0.0, 1.0]))
    csvi.sample("obs", DiscreteHMM(np.zeros(K), trans, dist.Normal(loc, 1.0)),
                obs=np.linspace(-1.0, 1.0, T))


def two_good_steps(bad=None):
    """(loss, loc) after a step on good logits, a failing step on `bad` (if
    given) and another good step, from a fresh param store."""
    csvi.clear_param_store()
    good = np.random.default_rng(2).standard_normal((T, K, K))
    svi = SVI(model, lambda trans: None, Adam({"lr": 0.1}), Trace_ELBO())
    svi.step(good)
    if bad is not None:
        before = csvi.get_param_store()["loc"].numpy().copy()
        with pytest.raises(ValueError, match=r"site 'obs': " + message((2, 1, 0), (T, K, K))):
            svi.step(bad)
        np.testing.assert_array_equal(csvi.get_param_store()["loc"].numpy(), before)
    loss = svi.step(good)
    return loss, csvi.get_param_store()["loc"].numpy().copy()


def test_svi_step_names_the_site_and_keeps_what_was_learned():
    """The failed step changes no param and no optimizer state: the next
    step is the one a run without it takes."""
    loss, loc = two_good_steps(bad=bad_logits((T, K, K), (2, 1, 0)))
    expected_loss, expected_loc = two_good_steps()
    assert loss == expected_loss
    np.testing.assert_array_equal(loc, expected_loc)
