"""handlers.queue enumerates a model's discrete executions (the effect-handler
tutorial's sequential_discrete_marginal), and dist.Empirical weighs them:
checked against brute-force sums."""
import itertools
import queue as pyqueue

import numpy as np
import pytest
from scipy import stats

import csvi
import csvi.distributions as dist
from csvi import handlers


def two_coins():
    a = csvi.sample("a", dist.Bernoulli(0.3))
    b = csvi.sample("b", dist.Categorical(np.array([0.2, 0.5, 0.3])))
    csvi.sample("obs", dist.Normal(a + b, 1.0), obs=1.4)
    return float(a) + 10 * float(b)


def sequential_discrete_marginal(model, data, site_name="_RETURN"):
    """The tutorial's function, with csvi's names."""
    q = pyqueue.Queue()
    q.put(handlers.Trace())
    enum_model = handlers.queue(handlers.condition(model, data=data), queue=q)
    samples, log_weights = [], []
    while not q.empty():
        trace = handlers.trace(enum_model).get_trace()
        samples.append(trace.nodes[site_name]["value"])
        log_weights.append(float(trace.log_prob_sum()))
    log_weights = np.array(log_weights)
    log_weights = log_weights - np.logaddexp.reduce(log_weights)
    return dist.Empirical(np.array(samples), log_weights)


def test_queue_enumerates_every_execution_once():
    marginal = sequential_discrete_marginal(two_coins, {})
    support = np.asarray(marginal.enumerate_support())
    assert sorted(support.tolist()) == sorted(a + 10 * b for a in (0, 1) for b in (0, 1, 2))
    # brute force posterior of (a, b) given obs
    expected = {}
    for a, b in itertools.product((0, 1), (0, 1, 2)):
        expected[a + 10 * b] = (stats.bernoulli(0.3).pmf(a) * [0.2, 0.5, 0.3][b]
                                * stats.norm(a + b, 1.0).pdf(1.4))
    total = sum(expected.values())
    for value, weight in expected.items():
        assert float(np.exp(marginal.log_prob(float(value)))) == pytest.approx(weight / total)
    mean = sum(v * w for v, w in expected.items()) / total
    assert float(marginal.mean) == pytest.approx(mean)
    var = sum((v - mean) ** 2 * w for v, w in expected.items()) / total
    assert float(marginal.variance) == pytest.approx(var)


def test_queue_respects_conditioned_sites():
    marginal = sequential_discrete_marginal(two_coins, {"a": 1.0})
    assert sorted(np.asarray(marginal.enumerate_support()).tolist()) == [1.0, 11.0, 21.0]


def test_queue_max_tries_and_empty_queue():
    q = pyqueue.Queue()
    q.put(handlers.Trace())
    with pytest.raises(ValueError, match="max_tries"):
        handlers.queue(two_coins, queue=q, max_tries=1)()
    empty = pyqueue.Queue()
    with pytest.raises(ValueError, match="queue is empty"):
        handlers.queue(two_coins, queue=empty)()


def test_empirical_sampling_frequencies_and_shapes():
    csvi.set_rng_seed(0)
    d = dist.Empirical(np.array([0.0, 1.0, 2.0]), np.log([0.2, 0.3, 0.5]))
    draws = np.asarray(d.sample((20000,)))
    assert draws.shape == (20000,)
    freq = np.bincount(draws.astype(int), minlength=3) / len(draws)
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.015)
    batched = dist.Empirical(np.arange(24.0).reshape(2, 3, 4), np.zeros((2, 3)))
    assert batched.batch_shape == (2,) and batched.event_shape == (4,)
    one = np.asarray(batched.sample())
    assert one.shape == (2, 4)
    assert np.asarray(batched.sample((5,))).shape == (5, 2, 4)
    # each batch row's draw is one of that row's samples
    for i in range(2):
        assert any(np.array_equal(one[i], row) for row in np.arange(24.0).reshape(2, 3, 4)[i])
    assert np.asarray(batched.log_prob(one)).shape == (2,)
    np.testing.assert_allclose(np.exp(np.asarray(batched.log_prob(one))), 1 / 3)
    with pytest.raises(ValueError, match="shape must be"):
        batched.log_prob(np.zeros(4))
    with pytest.raises(ValueError, match="leftmost part"):
        dist.Empirical(np.zeros((3, 2)), np.zeros(2))
