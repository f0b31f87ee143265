"""DiscreteHMM: log_prob and filter against brute-force sums over all K^T
state paths (observation log-densities from scipy.stats), Pyro's values,
finite-difference gradients, compiled == eager, sampling, bad input."""
import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import csvi
import csvi.distributions as dist
from csvi.distributions import DiscreteHMM
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from compiled_check import assert_compiled_matches_eager
from gradcheck import assert_grads_match


def log_normalize(x):
    return x - logsumexp(x, axis=-1, keepdims=True)


def brute_force(init, trans, obs_lp):
    """(log p(x), log posterior of the last state) by enumerating every path
    x0 (before the first transition), x1..xT; unbatched init (K,), trans
    (T or 1, K, K), obs_lp (T, K), all normalized as the HMM uses them."""
    init, trans = log_normalize(init), log_normalize(trans)
    T, K = obs_lp.shape
    ends = [[] for _ in range(K)]
    for path in itertools.product(range(K), repeat=T + 1):
        s = init[path[0]]
        for t in range(T):
            s += trans[t % trans.shape[0], path[t], path[t + 1]] + obs_lp[t, path[t + 1]]
        ends[path[-1]].append(s)
    last = np.array([logsumexp(e) for e in ends])
    total = logsumexp(last)
    return total, last - total


def normal_case(rng, K, T, batch=()):
    loc, scale = rng.standard_normal(batch + (T, K)) * 2, rng.uniform(0.5, 2.0, (K,))
    value = rng.standard_normal(batch + (T,))
    return (dist.Normal(loc, scale), value,
            stats.norm.logpdf(value[..., None], loc, scale))


def categorical_case(rng, K, T, batch=(), M=4):
    probs = rng.dirichlet(np.ones(M), size=K)
    value = rng.integers(0, M, batch + (T,)).astype(float)
    return (dist.Categorical(probs=probs), value,
            np.log(probs)[:, value.astype(int)].transpose(list(range(1, value.ndim + 1)) + [0]))


def bernoulli_tones_case(rng, K, T, batch=(), tones=6):
    """The HMM example's observations: one Bernoulli per tone, to_event(1)."""
    probs = rng.uniform(0.1, 0.9, (K, tones))
    value = (rng.random(batch + (T, tones)) < 0.5).astype(float)
    lp = stats.bernoulli.logpmf(value[..., None, :], probs).sum(-1)
    return dist.Bernoulli(probs=probs).to_event(1), value, lp


CASES = [normal_case, categorical_case, bernoulli_tones_case]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("hetero", [False, True])
def test_log_prob_and_filter_equal_brute_force(case, hetero):
    rng = np.random.default_rng(0)
    K, T = 3, 4
    init = rng.standard_normal(K)
    trans = rng.standard_normal((T, K, K) if hetero else (K, K))
    obs_dist, value, obs_lp = case(rng, K, T)
    hmm = DiscreteHMM(init, trans, obs_dist)
    total, last = brute_force(init, trans.reshape((-1, K, K)), obs_lp)
    lp = hmm.log_prob(value)
    assert lp.shape == ()
    np.testing.assert_allclose(lp.numpy(), total, rtol=1e-12)
    np.testing.assert_allclose(hmm.filter(value).logits.numpy(), last, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_batched_log_prob_equals_brute_force_per_sequence(case):
    rng = np.random.default_rng(1)
    K, T = 2, 3
    init = rng.standard_normal((5, K))          # batch (5,)
    trans = rng.standard_normal((1, T, K, K))   # broadcast over the batch
    obs_dist, value, obs_lp = case(rng, K, T, batch=(5,))
    hmm = DiscreteHMM(init, trans, obs_dist)
    assert hmm.batch_shape == (5,) and hmm.event_shape == (T,) + obs_dist.event_shape
    lp = hmm.log_prob(value).numpy()
    assert lp.shape == (5,)
    for b in range(5):
        np.testing.assert_allclose(lp[b], brute_force(init[b], trans[0], obs_lp[b])[0],
                                   rtol=1e-12)


def test_shapes_follow_pyro():
    K = 3
    obs = dist.Normal(np.zeros((7, 1, K)), 1.0)
    hmm = DiscreteHMM(np.zeros((2, 1, K)), np.zeros((K, K)), obs)
    assert hmm.batch_shape == (2, 7) and hmm.event_shape == (1,) and hmm.duration is None
    assert hmm.log_prob(np.zeros(10)).shape == (2, 7)  # homogeneous: any length
    hmm = DiscreteHMM(np.zeros(K), np.zeros((5, K, K)), dist.Normal(np.zeros(K), 1.0))
    assert hmm.event_shape == (5,) and hmm.duration == 5
    hmm = DiscreteHMM(np.zeros(K), np.zeros((K, K)), dist.Normal(np.zeros(K), 1.0), duration=9)
    assert hmm.event_shape == (9,) and hmm.duration == 9
    tones = dist.Bernoulli(probs=np.full((K, 88), 0.5)).to_event(1)
    hmm = DiscreteHMM(np.zeros(K), np.zeros((K, K)), tones)
    assert hmm.event_shape == (1, 88) and hmm.support.event_dim == 2
    expanded = DiscreteHMM(np.zeros(K), np.zeros((K, K)), dist.Normal(np.zeros(K), 1.0)
                           ).expand((4,))
    assert expanded.batch_shape == (4,) and expanded.log_prob(np.zeros(6)).shape == (4,)


def test_matches_pyro_discrete_hmm():
    torch = pytest.importorskip("torch")
    pdist = pytest.importorskip("pyro.distributions")
    rng = np.random.default_rng(2)
    K, T = 4, 20
    init, trans = rng.standard_normal((3, K)), rng.standard_normal((T, K, K))
    trans[:, 0, 1] = -np.inf  # a forbidden transition
    loc, value = rng.standard_normal((T, K)), rng.standard_normal((3, T))
    hmm = DiscreteHMM(init, trans, dist.Normal(loc, 1.0))
    theirs = pdist.DiscreteHMM(torch.tensor(init), torch.tensor(trans),
                               pdist.Normal(torch.tensor(loc), 1.0))
    np.testing.assert_allclose(hmm.log_prob(value).numpy(),
                               theirs.log_prob(torch.tensor(value)).numpy(), rtol=1e-10)
    np.testing.assert_allclose(hmm.filter(value).probs.numpy(),
                               theirs.filter(torch.tensor(value)).probs.numpy(), rtol=1e-9)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    K, T = 3, 5
    value = rng.standard_normal(T)

    def log_prob(init, trans, loc):
        return DiscreteHMM(init, trans, dist.Normal(loc, 0.7)).log_prob(value)

    assert_grads_match(log_prob, [rng.standard_normal(K), rng.standard_normal((T, K, K)),
                                  rng.standard_normal((T, K))], rtol=1e-6, atol=1e-8)
    assert_grads_match(log_prob, [rng.standard_normal(K), rng.standard_normal((K, K)),
                                  rng.standard_normal(K)], rtol=1e-6, atol=1e-8)

    def filtered(init, trans, loc):
        return DiscreteHMM(init, trans, dist.Normal(loc, 0.7)).filter(value).logits

    assert_grads_match(filtered, [rng.standard_normal(K), rng.standard_normal((K, K)),
                                  rng.standard_normal(K)], rtol=1e-6, atol=1e-8)


def test_gradient_reaches_a_continuous_value():
    rng = np.random.default_rng(4)
    K = 3
    init, trans, loc = rng.standard_normal(K), rng.standard_normal((K, K)), rng.standard_normal(K)
    assert_grads_match(lambda v: DiscreteHMM(init, trans, dist.Normal(loc, 1.0)).log_prob(v),
                       [rng.standard_normal(6)], rtol=1e-6, atol=1e-8)


def hmm_model(data):
    K = 3
    init = csvi.param("init", np.zeros(K))
    trans = csvi.param("trans", np.eye(K) * 2.0)
    loc = csvi.param("loc", np.array([-1.0, 0.0, 1.0]))
    scale = csvi.param("scale", np.ones(1), constraint=dist.constraints.positive)
    with csvi.plate("sequences", data.shape[0]):
        csvi.sample("obs", DiscreteHMM(init, trans, dist.Normal(loc, scale)), obs=data)


def test_compiled_svi_with_hmm_likelihood_equals_eager():
    data = np.random.default_rng(5).standard_normal((4, 30)) + np.array([[-1.0], [0.0], [1.0],
                                                                         [0.5]])
    losses, params = assert_compiled_matches_eager(
        hmm_model, lambda: (lambda data: None), lambda: Adam({"lr": 0.05}), Trace_ELBO,
        args=(data,), steps=15)
    assert losses[-1] < losses[0]


def test_sample_follows_the_chain():
    """With observations that reveal the state (one-hot Categorical), the
    sampled (x1, x2) pairs follow init @ trans and trans (chi-squared)."""
    rng = np.random.default_rng(6)
    K, n = 3, 6000
    init = np.log(rng.dirichlet(np.ones(K) * 3))
    trans = np.log(rng.dirichlet(np.ones(K) * 3, size=K))
    reveal = dist.Categorical(probs=np.eye(K))
    csvi.set_rng_seed(0)
    hmm = DiscreteHMM(init, trans, reveal, duration=2)
    x = hmm.sample((n,)).numpy().astype(int)
    assert x.shape == (n, 2)
    p1 = np.exp(init) @ np.exp(trans)
    joint = p1[:, None] * np.exp(trans)
    counts = np.bincount(x[:, 0] * K + x[:, 1], minlength=K * K)
    assert stats.chisquare(counts, joint.reshape(-1) * n).pvalue > 1e-3


def test_sample_needs_a_duration():
    hmm = DiscreteHMM(np.zeros(2), np.zeros((2, 2)), dist.Normal(np.zeros(2), 1.0))
    with pytest.raises(ValueError, match="duration="):
        hmm.sample()


def test_sample_shape_with_batch_and_event():
    K = 3
    tones = dist.Bernoulli(probs=np.full((K, 5), 0.5)).to_event(1)
    hmm = DiscreteHMM(np.zeros((2, K)), np.zeros((4, K, K)), tones)
    draw = hmm.sample((6,))
    assert draw.shape == (6, 2, 4, 5)
    assert np.all(np.isfinite(hmm.log_prob(draw).numpy()))


@pytest.mark.parametrize("args,kwargs,error,match", [
    ((np.zeros(()), np.zeros((2, 2)), dist.Normal(np.zeros(2), 1.0)), {}, ValueError,
     r"initial_logits must have at least one dim"),
    ((np.zeros(2), np.zeros((2, 3)), dist.Normal(np.zeros(2), 1.0)), {}, ValueError,
     r"transition_logits must have shape \(\.\.\., K, K\)"),
    ((np.zeros(2), np.zeros((2, 2)), dist.Normal(0.0, 1.0)), {}, ValueError,
     r"observation_dist must have at least one batch dim"),
    ((np.zeros(2), np.zeros((3, 3)), dist.Normal(np.zeros(3), 1.0)), {}, ValueError,
     r"number of states disagrees: initial_logits \(2,\) has 2"),
    ((np.zeros(2), np.zeros((2, 2)), "normal"), {}, TypeError, r"observation_dist must be"),
    ((np.zeros(2), np.zeros((4, 2, 2)), dist.Normal(np.zeros((3, 2)), 1.0)), {}, ValueError,
     r"cannot be broadcast together"),
    ((np.zeros(2), np.zeros((4, 2, 2)), dist.Normal(np.zeros(2), 1.0)), {"duration": 5},
     ValueError, r"duration 5 disagrees with the 4 time steps"),
    ((np.array([0.0, np.nan]), np.zeros((2, 2)), dist.Normal(np.zeros(2), 1.0)), {}, ValueError,
     r"initial_logits must be real numbers"),
])
def test_bad_arguments_name_the_argument(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        DiscreteHMM(*args, **kwargs)


def test_bad_values_name_the_method_and_shape():
    hmm = DiscreteHMM(np.zeros(2), np.zeros((4, 2, 2)), dist.Categorical(probs=np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"DiscreteHMM.log_prob: value must be in the support"):
        hmm.log_prob(np.array([0.0, 1.0, 7.0, 1.0]))
    with pytest.raises(ValueError, match=r"DiscreteHMM.log_prob: .*shape \(5,\)"):
        hmm.log_prob(np.zeros(5))
    tones = DiscreteHMM(np.zeros(2), np.zeros((2, 2)),
                        dist.Bernoulli(probs=np.full((2, 3), 0.5)).to_event(1))
    with pytest.raises(ValueError, match=r"DiscreteHMM.filter: value must have at least 2 dims"):
        tones.filter(np.zeros(3))
    with pytest.raises(ValueError, match=r"DiscreteHMM.expand: batch_shape \(3,\) cannot be "
                                         r"expanded to \(2,\)"):
        hmm.expand((3,)).expand((2,))


def test_observations_shared_by_every_state():
    """An observation_dist whose state dim is 1 broadcasts over the K states:
    the observations then carry no information and log_prob is theirs alone."""
    rng = np.random.default_rng(7)
    K, T = 3, 6
    value = rng.standard_normal(T)
    hmm = DiscreteHMM(rng.standard_normal(K), rng.standard_normal((K, K)),
                      dist.Normal(np.zeros(1), 1.0))
    np.testing.assert_allclose(hmm.log_prob(value).numpy(), stats.norm.logpdf(value).sum(),
                               rtol=1e-12)


def test_transition_logits_attribute_is_normalized_as_pyro():
    """log_prob normalizes inside its op; the attribute is still Pyro's
    normalized logits."""
    rng = np.random.default_rng(8)
    trans = 4.0 * rng.standard_normal((5, 3, 3)) + 2.0
    hmm = DiscreteHMM(rng.standard_normal(3), trans, dist.Normal(np.zeros(3), 1.0))
    np.testing.assert_allclose(hmm.transition_logits.numpy(), log_normalize(trans), rtol=1e-13)


def test_batch_sharing_per_step_transitions_gradients_match_finite_differences():
    """A batch of sequences sharing (T, K, K) logits (one group of chains in
    the op) and one sequence per logits."""
    rng = np.random.default_rng(9)
    K, T = 3, 4

    def log_prob(init, trans, loc, value):
        return DiscreteHMM(init, trans, dist.Normal(loc, 0.9)).log_prob(value)

    for trans_shape, value_shape in (((T, K, K), (2, T)), ((2, T, K, K), (2, T))):
        value = rng.standard_normal(value_shape)
        assert_grads_match(lambda i, t, l: log_prob(i, t, l, value),
                           [rng.standard_normal(K), rng.standard_normal(trans_shape),
                            rng.standard_normal((T, K))], rtol=1e-6, atol=1e-8)


def test_a_rarely_entered_state_equals_brute_force():
    """Every state enters state 0 with probability ~e^-800 and observations
    favour it by as much: its paths still count (the op's column-shifted
    factor), as the brute-force sum says."""
    rng = np.random.default_rng(10)
    K, T = 3, 4
    trans = rng.standard_normal((T, K, K))
    trans[:, :, 0] -= 800.0
    loc = np.zeros((T, K))
    loc[:, 0] = 40.0
    value = np.full(T, 40.0)
    obs_lp = stats.norm.logpdf(value[:, None], loc, 1.0)
    init = rng.standard_normal(K)
    total, last = brute_force(init, trans, obs_lp)
    hmm = DiscreteHMM(init, trans, dist.Normal(loc, 1.0))
    np.testing.assert_allclose(hmm.log_prob(value).numpy(), total, rtol=1e-12)
    np.testing.assert_allclose(hmm.filter(value).logits.numpy(), last, rtol=1e-9, atol=1e-9)
