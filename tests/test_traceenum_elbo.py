"""TraceEnum_ELBO: enumerated sums equal brute-force sums over every
assignment (chains, trees, plates inside and outside the enumeration, the
guide's enumeration), gradients equal finite differences, compiled equals
eager, and bad models get errors that name the site."""
import itertools
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import csvi
import csvi.distributions as dist
from csvi import _core, handlers
from csvi.distributions import constraints
from csvi.infer import SVI, JitTraceEnum_ELBO, TraceEnum_ELBO, Trace_ELBO, config_enumerate
from csvi.optim import Adam

from compiled_check import assert_compiled_matches_eager
from gradcheck import numerical_grad

RNG = np.random.default_rng(7)
K = 3
INIT = RNG.dirichlet(np.ones(K))
TRANS = RNG.dirichlet(np.ones(K), size=K)
MU = np.array([-1.5, 0.2, 1.7])
DATA = RNG.normal(size=5)


def empty_guide(*args, **kwargs):
    pass


def loss_of(model, guide=empty_guide, args=(), max_plate_nesting=1, **kw):
    return TraceEnum_ELBO(max_plate_nesting=max_plate_nesting, **kw).loss(model, guide, *args)


def loss_grads(model, guide, args, max_plate_nesting):
    """(loss, {param: d loss / d unconstrained}) from one recorded step."""
    elbo = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting)
    tape = _core.Tape(record_all=True)
    loss, surrogate, _ = _core.record_call(tape, elbo.loss_tensors, model, guide, args, {})
    tape.backward(surrogate, False)
    store = csvi.get_param_store()
    grads = {n: np.array(_core.value_of(tape.grad_of(store.leaf(n)))) for n in store.names()}
    return float(_core.value_of(loss)), grads


def assert_grads_match_fd(model, guide, args, max_plate_nesting, rtol=1e-6):
    _, grads = loss_grads(model, guide, args, max_plate_nesting)
    store = csvi.get_param_store()
    for name, grad in grads.items():
        buf = store.unconstrained(name)

        def f(x, buf=buf):
            saved = buf.copy()
            buf[...] = x
            try:
                return loss_of(model, guide, args, max_plate_nesting)
            finally:
                buf[...] = saved

        fd = numerical_grad(f, buf.copy())
        np.testing.assert_allclose(grad, fd, rtol=rtol, atol=1e-7, err_msg=name)


# ---- a mixture in a plate ----------------------------------------------------

def mixture(data):
    w = csvi.param("w", np.array([0.2, 0.5, 0.3]), constraint=constraints.simplex)
    locs = csvi.param("locs", MU.copy())
    with csvi.plate("data", len(data)):
        z = csvi.sample("z", dist.Categorical(w), infer={"enumerate": "parallel"})
        csvi.sample("x", dist.Normal(locs[z], 1.0), obs=data)


def test_mixture_equals_brute_force(fresh_store):
    exact = logsumexp(np.log([0.2, 0.5, 0.3])[:, None]
                      + stats.norm.logpdf(DATA[None], MU[:, None]), axis=0).sum()
    assert loss_of(mixture, args=(DATA,)) == pytest.approx(-exact, rel=1e-12)


def test_mixture_gradients_match_finite_differences(fresh_store):
    assert_grads_match_fd(mixture, empty_guide, (DATA,), 1)


def test_config_enumerate_marks_the_discrete_sites(fresh_store):
    def model(data):
        w = csvi.param("w", np.array([0.2, 0.5, 0.3]), constraint=constraints.simplex)
        with csvi.plate("data", len(data)):
            z = csvi.sample("z", dist.Categorical(w))
            csvi.sample("x", dist.Normal(csvi.as_tensor(MU)[z], 1.0), obs=data)

    assert loss_of(config_enumerate(model), args=(DATA,)) == pytest.approx(
        loss_of(mixture, args=(DATA,)), rel=1e-12)
    tr = handlers.trace(config_enumerate(model)).get_trace(DATA)
    assert tr.nodes["z"]["infer"]["enumerate"] == "parallel"
    assert "enumerate" not in tr.nodes["x"]["infer"]  # observed


# ---- a chain under markov ------------------------------------------------------

def hmm(ys):
    x = 0
    for t in csvi.markov(range(len(ys))):
        probs = INIT if t == 0 else csvi.as_tensor(TRANS)[x]
        x = csvi.sample(f"x_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
        csvi.sample(f"y_{t}", dist.Normal(csvi.as_tensor(MU)[x], 1.0), obs=ys[t])


def hmm_brute_force(ys):
    terms = []
    for path in itertools.product(range(K), repeat=len(ys)):
        lp = np.log(INIT[path[0]]) + np.log(TRANS[path[:-1], path[1:]]).sum()
        terms.append(lp + stats.norm.logpdf(ys, MU[list(path)]).sum())
    return logsumexp(terms)


def test_markov_chain_equals_brute_force_over_all_paths(fresh_store):
    ys = RNG.normal(size=6)
    assert loss_of(hmm, args=(ys,), max_plate_nesting=0) == pytest.approx(
        -hmm_brute_force(ys), rel=1e-12)


def test_markov_recycles_two_dims_along_the_chain(fresh_store):
    tr = handlers.trace(handlers.enum(hmm, first_available_dim=-1)).get_trace(DATA)
    dims = [tr.nodes[f"x_{t}"]["infer"]["_enumerate_dim"] for t in range(len(DATA))]
    assert dims == [-1, -2, -1, -2, -1]


def test_without_markov_every_step_gets_its_own_dim(fresh_store):
    def chain(ys):
        x = 0
        for t in range(len(ys)):
            probs = INIT if t == 0 else csvi.as_tensor(TRANS)[x]
            x = csvi.sample(f"x_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
            csvi.sample(f"y_{t}", dist.Normal(csvi.as_tensor(MU)[x], 1.0), obs=ys[t])

    ys = DATA[:4]
    tr = handlers.trace(handlers.enum(chain, first_available_dim=-1)).get_trace(ys)
    assert [tr.nodes[f"x_{t}"]["infer"]["_enumerate_dim"] for t in range(4)] == [-1, -2, -3, -4]
    assert loss_of(chain, args=(ys,), max_plate_nesting=0) == pytest.approx(
        -hmm_brute_force(ys), rel=1e-12)


def test_markov_history_too_short_names_the_site(fresh_store):
    def second_order(ys):
        xs = [0, 0]
        for t in csvi.markov(range(len(ys))):  # history=1, but x_t reads x_{t-2}
            probs = csvi.as_tensor(np.ones((K * K, K)) / K)[xs[-2] * K + xs[-1]]
            xs.append(csvi.sample(f"x_{t}", dist.Categorical(probs),
                                  infer={"enumerate": "parallel"}))
            csvi.sample(f"y_{t}", dist.Normal(csvi.as_tensor(MU)[xs[-1]], 1.0), obs=ys[t])

    with pytest.raises(ValueError, match=r"site 'x_2'.*history"):
        loss_of(second_order, args=(DATA,), max_plate_nesting=0)


def test_second_order_chain_with_history_two_equals_brute_force(fresh_store):
    table = RNG.dirichlet(np.ones(K), size=(K, K))

    def second_order(ys):
        xs = [0, 0]
        for t in csvi.markov(range(len(ys)), history=2):
            probs = csvi.as_tensor(table.reshape(K * K, K))[xs[-2] * K + xs[-1]]
            xs.append(csvi.sample(f"x_{t}", dist.Categorical(probs),
                                  infer={"enumerate": "parallel"}))
            csvi.sample(f"y_{t}", dist.Normal(csvi.as_tensor(MU)[xs[-1]], 1.0), obs=ys[t])

    ys = DATA[:4]
    terms = []
    for path in itertools.product(range(K), repeat=len(ys)):
        full = (0, 0) + path
        lp = sum(np.log(table[full[t], full[t + 1], full[t + 2]]) for t in range(len(ys)))
        terms.append(lp + stats.norm.logpdf(ys, MU[list(path)]).sum())
    assert loss_of(second_order, args=(ys,), max_plate_nesting=0) == pytest.approx(
        -logsumexp(terms), rel=1e-12)


# ---- plates outside and inside the enumeration ------------------------------

def test_global_discrete_site_over_a_plate(fresh_store):
    prior = np.array([0.25, 0.4, 0.35])

    def model(data):
        z = csvi.sample("z", dist.Categorical(prior), infer={"enumerate": "parallel"})
        with csvi.plate("data", len(data)):
            csvi.sample("x", dist.Normal(csvi.as_tensor(MU)[z], 1.0), obs=data)

    exact = logsumexp(np.log(prior) + stats.norm.logpdf(DATA[None], MU[:, None]).sum(1))
    assert loss_of(model, args=(DATA,)) == pytest.approx(-exact, rel=1e-12)


def test_tree_global_then_local_discrete_sites(fresh_store):
    prior = np.array([0.6, 0.4])
    table = RNG.dirichlet(np.ones(K), size=2)

    def model(data):
        a = csvi.sample("a", dist.Categorical(prior), infer={"enumerate": "parallel"})
        with csvi.plate("data", len(data)):
            b = csvi.sample("b", dist.Categorical(csvi.as_tensor(table)[a]),
                            infer={"enumerate": "parallel"})
            csvi.sample("x", dist.Normal(csvi.as_tensor(MU)[b], 1.0), obs=data)

    lik = stats.norm.logpdf(DATA[None], MU[:, None])  # (K, N)
    per_a = [logsumexp(np.log(table[a])[:, None] + lik, axis=0).sum() for a in range(2)]
    exact = logsumexp(np.log(prior) + np.array(per_a))
    assert loss_of(model, args=(DATA,)) == pytest.approx(-exact, rel=1e-12)


def test_enumeration_inside_nested_plates(fresh_store):
    data = RNG.normal(size=(4, 3))
    w = np.array([0.3, 0.7])
    locs = np.array([-1.0, 1.0])

    def model(data):
        with csvi.plate("rows", data.shape[0], dim=-2), csvi.plate("cols", data.shape[1],
                                                                    dim=-1):
            z = csvi.sample("z", dist.Bernoulli(w[1]), infer={"enumerate": "parallel"})
            csvi.sample("x", dist.Normal(csvi.as_tensor(locs)[z], 1.0), obs=data)

    exact = logsumexp(np.log(w)[:, None, None] + stats.norm.logpdf(data[None],
                                                                   locs[:, None, None]), 0)
    assert loss_of(model, args=(data,), max_plate_nesting=2) == pytest.approx(
        -exact.sum(), rel=1e-12)


def test_chain_inside_a_plate_of_sequences(fresh_store):
    seqs = RNG.normal(size=(3, 4))

    def model(seqs):
        with csvi.plate("sequences", seqs.shape[0], dim=-1):
            x = 0
            for t in csvi.markov(range(seqs.shape[1])):
                probs = INIT if t == 0 else csvi.as_tensor(TRANS)[x]
                x = csvi.sample(f"x_{t}", dist.Categorical(probs),
                                infer={"enumerate": "parallel"})
                csvi.sample(f"y_{t}", dist.Normal(csvi.as_tensor(MU)[x], 1.0),
                            obs=seqs[:, t])

    exact = sum(hmm_brute_force(s) for s in seqs)
    assert loss_of(model, args=(seqs,)) == pytest.approx(-exact, rel=1e-12)


def test_subsampled_plate_scales_the_log_sum(fresh_store):
    idx = np.array([0, 3])

    def model(data):
        with csvi.plate("data", len(data), subsample=idx):
            z = csvi.sample("z", dist.Categorical(np.array([0.2, 0.5, 0.3])),
                            infer={"enumerate": "parallel"})
            csvi.sample("x", dist.Normal(csvi.as_tensor(MU)[z], 1.0), obs=data[idx])

    per_point = logsumexp(np.log([0.2, 0.5, 0.3])[:, None]
                          + stats.norm.logpdf(DATA[idx][None], MU[:, None]), axis=0)
    assert loss_of(model, args=(DATA,)) == pytest.approx(
        -per_point.sum() * len(DATA) / len(idx), rel=1e-12)


def test_masked_steps_drop_out_of_the_sum(fresh_store):
    ys = DATA[:4]

    def model(ys, length):
        x = 0
        for t in csvi.markov(range(len(ys))):
            with handlers.mask(mask=np.array(t < length)):
                probs = INIT if t == 0 else csvi.as_tensor(TRANS)[x]
                x = csvi.sample(f"x_{t}", dist.Categorical(probs),
                                infer={"enumerate": "parallel"})
                csvi.sample(f"y_{t}", dist.Normal(csvi.as_tensor(MU)[x], 1.0), obs=ys[t])

    # a masked step's factors are 1 for every value, so each adds log K (as Pyro's)
    expected = -hmm_brute_force(ys[:2]) - 2 * np.log(K)
    assert loss_of(model, args=(ys, 2), max_plate_nesting=0) == pytest.approx(
        expected, rel=1e-12)


# ---- emissions over a data plate, masked per sequence (Pyro's HMM example) ------

SEQS = (RNG.random((3, 4, 5)) < 0.4).astype(float)  # 3 sequences, 4 steps, 5 tones
LENGTHS = np.array([4, 2, 3])
PROBS_Y = RNG.uniform(0.1, 0.9, size=(2, 5))
TRANS2 = RNG.dirichlet(np.ones(2), size=2)


def tones_hmm(seqs, lengths, tone_mask=None):
    """Pyro's examples/hmm.py model_1 in small: a chain per sequence and a
    Bernoulli per tone; `tone_mask` (steps, sequences, tones) masks single
    tones too, so the emission mask then varies along the tones plate."""
    probs_x = csvi.param("probs_x", TRANS2, constraint=constraints.simplex)
    probs_y = csvi.param("probs_y", PROBS_Y, constraint=constraints.unit_interval)
    tones = csvi.plate("tones", seqs.shape[2], dim=-1)
    with csvi.plate("sequences", seqs.shape[0], dim=-2):
        x = 0
        for t in csvi.markov(range(seqs.shape[1])):
            step = (t < lengths)[:, None]
            with handlers.mask(mask=step):
                x = csvi.sample(f"x_{t}", dist.Categorical(probs_x[x]),
                                infer={"enumerate": "parallel"})
            emit = step if tone_mask is None else step & tone_mask[t]
            with handlers.mask(mask=emit), tones:
                csvi.sample(f"y_{t}", dist.Bernoulli(probs_y[x.squeeze(-1)]), obs=seqs[:, t])


def tones_brute_force(tone_mask=None):
    total = 0.0
    for n, seq in enumerate(SEQS):
        terms = []
        for path in itertools.product(range(2), repeat=seq.shape[0]):
            lp, prev = 0.0, 0
            for t, x in enumerate(path):
                if t < LENGTHS[n]:
                    lp += np.log(TRANS2[prev, x])
                    keep = np.ones(5, bool) if tone_mask is None else tone_mask[t, n]
                    lp += stats.bernoulli.logpmf(seq[t], PROBS_Y[x])[keep].sum()
                prev = x
            terms.append(lp)
        total += logsumexp(terms)
    return total


TONE_MASK = RNG.random((4, 3, 5)) < 0.7


@pytest.mark.parametrize("tone_mask", [None, TONE_MASK], ids=["per_sequence", "per_tone"])
def test_masked_emissions_over_a_data_plate_equal_brute_force(fresh_store, tone_mask):
    # the brute force walks every path, masked steps too (factor 1 each)
    assert loss_of(tones_hmm, args=(SEQS, LENGTHS, tone_mask), max_plate_nesting=2) == \
        pytest.approx(-tones_brute_force(tone_mask), rel=1e-12)
    assert_grads_match_fd(tones_hmm, empty_guide, (SEQS, LENGTHS, tone_mask), 2)


@pytest.mark.parametrize("tone_mask", [None, TONE_MASK], ids=["per_sequence", "per_tone"])
def test_masked_emissions_compiled_match_eager(fresh_store, tone_mask):
    assert_compiled_matches_eager(tones_hmm, lambda: empty_guide, lambda: Adam({"lr": 0.05}),
                                  lambda: TraceEnum_ELBO(max_plate_nesting=2),
                                  args=(SEQS, LENGTHS, tone_mask), steps=10)


def test_compiled_emissions_are_summed_over_their_data_plate_in_one_op(fresh_store):
    svi = SVI(tones_hmm, empty_guide, Adam({"lr": 0.05}), TraceEnum_ELBO(max_plate_nesting=2))
    names = svi.compile(SEQS, LENGTHS).op_names()
    # one per step, in place of the step's SUM over tones (its LP stays, unread and skipped)
    assert names.count("BERNOULLI_PROBS_ROWSUM") == SEQS.shape[1]
    assert names.count("SUM") == 1


# ---- the guide's enumeration and its continuous sites -------------------------

def two_state_model(x):
    p = csvi.param("p", 0.3, constraint=constraints.unit_interval)
    z = csvi.sample("z", dist.Bernoulli(p))
    csvi.sample("x", dist.Normal(csvi.as_tensor(np.array([-1.0, 2.0]))[z], 1.0), obs=x)


def two_state_guide(x):
    q = csvi.param("q", 0.6, constraint=constraints.unit_interval)
    csvi.sample("z", dist.Bernoulli(q), infer={"enumerate": "parallel"})


def test_guide_enumeration_gives_the_exact_elbo(fresh_store):
    x = 0.4
    p, q = 0.3, 0.6
    qz = np.array([1 - q, q])
    log_joint = np.log([1 - p, p]) + stats.norm.logpdf(x, [-1.0, 2.0])
    exact = (qz * (log_joint - np.log(qz))).sum()
    assert loss_of(two_state_model, two_state_guide, (x,), 0) == pytest.approx(-exact,
                                                                               rel=1e-12)
    assert_grads_match_fd(two_state_model, two_state_guide, (x,), 0)


@pytest.mark.parametrize("strategy", ["parallel", "sequential"])
def test_guide_enumeration_strategies_agree_with_two_guide_sites(fresh_store, strategy):
    """Two discrete guide sites, the second depending on the first."""
    x = -0.3
    p_a, p_b = 0.35, np.array([0.8, 0.25])
    q_a, q_b = 0.55, np.array([0.3, 0.6])

    def model(x):
        a = csvi.sample("a", dist.Bernoulli(p_a))
        b = csvi.sample("b", dist.Bernoulli(csvi.as_tensor(p_b)[a]))
        csvi.sample("x", dist.Normal(a - 2.0 * b, 1.0), obs=x)

    def guide(x):
        qa = csvi.param("qa", q_a, constraint=constraints.unit_interval)
        qb = csvi.param("qb", q_b, constraint=constraints.unit_interval)
        a = csvi.sample("a", dist.Bernoulli(qa), infer={"enumerate": strategy})
        csvi.sample("b", dist.Bernoulli(qb[a]), infer={"enumerate": strategy})

    exact = 0.0
    for a, b in itertools.product((0, 1), repeat=2):
        q = (q_a if a else 1 - q_a) * (q_b[a] if b else 1 - q_b[a])
        log_p = (np.log(p_a if a else 1 - p_a) + np.log(p_b[a] if b else 1 - p_b[a])
                 + stats.norm.logpdf(x, a - 2.0 * b))
        exact += q * (log_p - np.log(q))
    assert loss_of(model, guide, (x,), 0) == pytest.approx(-exact, rel=1e-12)
    assert_grads_match_fd(model, guide, (x,), 0)


def test_continuous_guide_site_with_model_enumeration(fresh_store):
    def model(data):
        loc = csvi.sample("loc", dist.Normal(0.0, 3.0))
        with csvi.plate("data", len(data)):
            z = csvi.sample("z", dist.Bernoulli(0.4), infer={"enumerate": "parallel"})
            csvi.sample("x", dist.Normal(loc + 2.0 * z, 1.0), obs=data)

    def guide(data):
        csvi.sample("loc", dist.Normal(csvi.param("m", 0.5), 0.7))

    csvi.set_rng_seed(3)
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    model_trace, guide_trace = elbo._get_traces(model, guide, (DATA,), {})
    loc = float(_core.value_of(guide_trace.nodes["loc"]["value"]))
    csvi.set_rng_seed(3)
    loss = elbo.loss(model, guide, DATA)
    lik = logsumexp(np.log([0.6, 0.4])[:, None]
                    + stats.norm.logpdf(DATA[None], loc + 2.0 * np.arange(2)[:, None]), 0)
    exact = lik.sum() + stats.norm.logpdf(loc, 0, 3) - stats.norm.logpdf(loc, 0.5, 0.7)
    assert loss == pytest.approx(-exact, rel=1e-12)


def test_sampled_discrete_guide_site_gets_an_unbiased_score_gradient(fresh_store):
    """Without enumeration in the guide, the Bernoulli site is sampled and its
    gradient is a score-function estimate; averaged it equals the exact one."""
    def guide(x):
        q = csvi.param("q", 0.6, constraint=constraints.unit_interval)
        csvi.sample("z", dist.Bernoulli(q))

    x = 0.4
    csvi.set_rng_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nothing enumerated
        grads = [loss_grads(two_state_model, guide, (x,), 0)[1]["q"] for _ in range(4000)]
    csvi.clear_param_store()
    exact = loss_grads(two_state_model, two_state_guide, (x,), 0)[1]["q"]
    mean, sem = np.mean(grads), np.std(grads) / np.sqrt(len(grads))
    assert abs(mean - exact) < 4 * sem


# ---- training, compiled ------------------------------------------------------

def test_compiled_equals_eager_on_a_chain_in_plates(fresh_store):
    seqs = RNG.normal(size=(4, 5))

    def model(seqs):
        trans = csvi.param("trans", TRANS.copy(), constraint=constraints.simplex)
        locs = csvi.param("locs", MU.copy())
        with csvi.plate("sequences", seqs.shape[0], subsample_size=2, dim=-1) as batch:
            x = 0
            for t in csvi.markov(range(seqs.shape[1])):
                probs = INIT if t == 0 else trans[x]
                x = csvi.sample(f"x_{t}", dist.Categorical(probs),
                                infer={"enumerate": "parallel"})
                csvi.sample(f"y_{t}", dist.Normal(locs[x], 1.0), obs=seqs[batch, t])

    assert_compiled_matches_eager(model, lambda: empty_guide, lambda: Adam({"lr": 0.05}),
                                  lambda: TraceEnum_ELBO(max_plate_nesting=1), args=(seqs,),
                                  steps=15)


def test_jit_trace_enum_elbo_steps_match_eager(fresh_store):
    runs = []
    for elbo in (TraceEnum_ELBO, JitTraceEnum_ELBO):
        csvi.clear_param_store()
        csvi.set_rng_seed(1)
        svi = SVI(mixture, empty_guide, Adam({"lr": 0.05}), elbo(max_plate_nesting=1))
        losses = [svi.step(DATA) for _ in range(10)]
        runs.append((losses, csvi.get_param_store().unconstrained("locs").copy()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-12)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-12)


def test_training_recovers_the_maximum_likelihood_mixture(fresh_store):
    data = np.concatenate([RNG.normal(-2, 0.5, 60), RNG.normal(2, 0.5, 40)])

    def model(data):
        w = csvi.param("w", np.ones(2) / 2, constraint=constraints.simplex)
        locs = csvi.param("locs", np.array([-0.5, 0.5]))
        with csvi.plate("data", len(data)):
            z = csvi.sample("z", dist.Categorical(w), infer={"enumerate": "parallel"})
            csvi.sample("x", dist.Normal(locs[z], 0.5), obs=data)

    svi = SVI(model, empty_guide, Adam({"lr": 0.1}), TraceEnum_ELBO(max_plate_nesting=1))
    for _ in range(300):
        svi.step(data)
    store = csvi.get_param_store()
    locs = np.asarray(_core.value_of(store["locs"]))
    w = np.asarray(_core.value_of(store["w"]))
    assert locs == pytest.approx([-2, 2], abs=0.2)
    assert w == pytest.approx([0.6, 0.4], abs=0.05)


# ---- bad input ---------------------------------------------------------------

def test_too_many_plates_for_max_plate_nesting(fresh_store):
    def model(data):
        with csvi.plate("a", 2, dim=-1), csvi.plate("b", 3, dim=-2):
            csvi.sample("z", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})

    with pytest.raises(ValueError, match=r"site 'z'.*plate 'b'.*max_plate_nesting to 2"):
        loss_of(model, args=(None,), max_plate_nesting=1)


def test_enumerating_a_continuous_site_names_it(fresh_store):
    def model():
        csvi.sample("w", dist.Normal(0.0, 1.0), infer={"enumerate": "parallel"})

    with pytest.raises(ValueError, match=r"site 'w'.*Normal has no finite support"):
        loss_of(model, max_plate_nesting=0)


def test_enumerating_an_unbounded_count_names_it(fresh_store):
    def model():
        csvi.sample("n", dist.Poisson(3.0), infer={"enumerate": "parallel"})

    with pytest.raises(ValueError, match=r"site 'n'.*Poisson has no finite support"):
        loss_of(model, max_plate_nesting=0)


def test_sequential_enumeration_in_the_model_is_refused(fresh_store):
    def model():
        csvi.sample("z", dist.Bernoulli(0.5), infer={"enumerate": "sequential"})

    with pytest.raises(ValueError, match=r"site 'z'.*sequential"):
        loss_of(model, max_plate_nesting=0)


def test_a_batch_dim_without_a_plate_is_named(fresh_store):
    def model():
        z = csvi.sample("z", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})
        csvi.sample("x", dist.Normal(z + np.zeros((3, 1)), 1.0), obs=np.zeros((3, 1)))

    with pytest.raises(ValueError, match=r"site 'x'.*no enumerated variable"):
        loss_of(model, max_plate_nesting=0)


def test_warns_when_nothing_is_enumerated(fresh_store):
    def model():
        csvi.sample("x", dist.Normal(0.0, 1.0), obs=0.0)

    with pytest.warns(RuntimeWarning, match="no sample sites configured for enumeration"):
        loss_of(model, max_plate_nesting=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_of(model, max_plate_nesting=0, strict_enumeration_warning=False)


def test_trace_elbo_still_refuses_an_enumerated_model_site(fresh_store):
    with pytest.raises(ValueError, match="site 'z'"):
        Trace_ELBO().loss(mixture, empty_guide, DATA)
