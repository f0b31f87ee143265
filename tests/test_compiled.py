"""Compiled SVI: the frozen C loop must reproduce eager steps exactly, refuse
models it cannot freeze, and run in constant memory."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi.infer import SVI, Trace_ELBO, TraceEnum_ELBO
from csvi.optim import Adam, ClippedAdam
from models import (COIN, coin, coin_guide, coin_loop, eight_schools, eight_schools_guide,
                    linear_gaussian, linear_gaussian_guide, logreg, logreg_guide, mixture,
                    mixture_guide)

def logreg_data(n, d=5):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ rng.normal(size=d)))).astype(float)
    return x, y


def run(model, guide, args, steps, compiled, optim=None, particles=1, split=None):
    csvi.clear_param_store()
    csvi.set_rng_seed(123)
    svi = SVI(model, guide, optim or Adam({"lr": 0.01}), Trace_ELBO(num_particles=particles))
    if compiled:
        losses = svi.compile(*args).run(steps)
    elif split:
        first = [svi.step(*args) for _ in range(split)]
        middle = svi.compile(*args).run(steps - 2 * split)
        last = [svi.step(*args) for _ in range(split)]
        losses = np.concatenate([first, middle, last])
    else:
        losses = np.array([svi.step(*args) for _ in range(steps)])
    store = csvi.get_param_store()
    return losses, {n: store.unconstrained(n).copy() for n in store.names()}


X, Y = logreg_data(200)
XS, YS = logreg_data(5000)
CASES = {
    "coin_loop": (coin_loop, coin_guide, (COIN,)),
    "coin_plate": (coin, coin_guide, (COIN,)),
    "logreg": (logreg, logreg_guide, (X, Y)),
    "logreg_subsample": (logreg, logreg_guide, (csvi.as_tensor(XS), csvi.as_tensor(YS), 50)),
    "eight_schools": (eight_schools, eight_schools_guide,
                      (np.array([28.0, 8, -3, 7, -1, 1, 18, 12]),
                       np.array([15.0, 10, 16, 11, 9, 11, 10, 18]))),
    "discrete_latent": (mixture, mixture_guide, (0.8,)),
    "linear_gaussian": (linear_gaussian, linear_gaussian_guide, (np.array([1.0, -0.5, 2.0]),)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_run_equals_eager_run(case):
    model, guide, args = CASES[case]
    eager_losses, eager_params = run(model, guide, args, 60, compiled=False)
    losses, params = run(model, guide, args, 60, compiled=True)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12, atol=0)
    assert params.keys() == eager_params.keys()
    for name in params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=1e-12, atol=0)


def test_mixing_eager_and_compiled_steps_continues_the_same_run():
    model, guide, args = CASES["eight_schools"]
    optim = ClippedAdam({"lr": 0.02, "lrd": 0.999})
    eager_losses, eager_params = run(model, guide, args, 40, False, optim=optim)
    optim = ClippedAdam({"lr": 0.02, "lrd": 0.999})
    losses, params = run(model, guide, args, 40, False, optim=optim, split=10)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12, atol=0)
    for name in params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_particles_run_as_a_particle_dimension_and_match_eager(case):
    # Draws keep the eager order; only the order in which the particles'
    # gradients are summed differs, hence rounding-level differences.
    model, guide, args = CASES[case]
    eager_losses, eager_params = run(model, guide, args, 60, False, particles=4)
    losses, params = run(model, guide, args, 60, True, particles=4)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-10, atol=0)
    for name in params:
        np.testing.assert_allclose(params[name], eager_params[name], rtol=1e-9, atol=1e-12)


def test_particles_are_traced_once():
    model, guide, args = CASES["logreg"]
    num_ops = {}
    for particles in (1, 10):
        csvi.clear_param_store()
        svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO(num_particles=particles))
        num_ops[particles] = svi.compile(*args).num_ops
    assert num_ops[10] == num_ops[1]


def test_subsample_draws_fresh_minibatches_each_compiled_step():
    seen = []

    def model(x):
        with csvi.plate("data", 1000, subsample_size=3) as idx:
            seen.append(idx)
            csvi.sample("obs", dist.Normal(csvi.param("m", 0.0), 1.0), obs=x[idx])

    def guide(x):
        pass

    csvi.clear_param_store()
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    compiled = svi.compile(csvi.as_tensor(np.arange(1000.0)))
    idx = seen[-1]
    draws = set()
    for _ in range(20):
        compiled.step()
        draws.add(tuple(np.asarray(idx).tolist()))
    assert len(draws) == 20


def test_python_control_flow_on_a_traced_value_is_refused():
    def branchy(data):
        f = csvi.sample("f", dist.Beta(10.0, 10.0))
        if f > 0.5:
            csvi.sample("obs", dist.Bernoulli(f), obs=1.0)

    def to_float(data):
        f = csvi.sample("f", dist.Beta(10.0, 10.0))
        csvi.sample("obs", dist.Bernoulli(float(f)), obs=1.0)

    for model in (branchy, to_float):
        csvi.clear_param_store()
        svi = SVI(model, coin_guide, Adam({"lr": 0.01}), Trace_ELBO())
        with pytest.raises(RuntimeError, match="eager"):
            svi.compile(COIN)
        svi.step(COIN)  # eager still works


@pytest.mark.parametrize("particles", [1, 3])
def test_site_whose_shape_changes_between_steps_is_refused(particles):
    rng = np.random.default_rng(0)

    def model():
        n = int(rng.integers(2, 100))
        csvi.sample("x", dist.Normal(0.0, 1.0).expand([n]).to_event(1), obs=np.zeros(n))
        csvi.sample("z", dist.Normal(csvi.param("m", 0.0), 1.0), obs=0.0)

    csvi.clear_param_store()
    svi = SVI(model, lambda: None, Adam({"lr": 0.01}), Trace_ELBO(num_particles=particles))
    with pytest.raises(ValueError, match="'x'"):
        svi.compile()


def test_unknown_python_op_is_refused_naming_it():
    def model(data):
        f = csvi.sample("f", dist.Beta(10.0, 10.0))
        csvi.sample("obs", dist.Bernoulli(np.sin(f)), obs=1.0)

    svi = SVI(model, coin_guide, Adam({"lr": 0.01}), Trace_ELBO())
    with pytest.raises(TypeError, match="sin"):
        svi.compile(COIN)


def test_non_finite_loss_stops_with_site_and_keeps_last_finite_state():
    def model(x):
        m = csvi.param("m", 0.0)
        csvi.sample("x", dist.Normal(m, 1.0), obs=x)

    csvi.clear_param_store()
    optim = Adam({"lr": 0.5})
    data = csvi.as_tensor(np.array(0.0))
    svi = SVI(model, lambda x: None, optim, Trace_ELBO())
    compiled = svi.compile(data)
    compiled.run(5)
    store = csvi.get_param_store()
    before = store.unconstrained("m").copy()
    state = {k: np.copy(v) for k, v in optim.state_of("m").items()}
    csvi._core.value_of(data)[...] = np.inf  # the program reads this buffer every step
    with pytest.raises(ValueError, match="'x'"):
        compiled.run(3)
    np.testing.assert_array_equal(store.unconstrained("m"), before)
    for k, v in optim.state_of("m").items():
        np.testing.assert_array_equal(v, state[k])


def test_non_finite_loss_names_a_site_whose_scaled_log_prob_the_step_skips():
    """TraceEnum_ELBO sums the unscaled log-density of an enumerated site, so
    the compiled step skips its scaled log_prob; the diagnosis of a
    non-finite loss still sees that step's values."""
    def model(data):
        locs = csvi.param("locs", np.array([-1.0, 1.0]))
        with csvi.plate("d", 4, subsample_size=2) as idx:
            z = csvi.sample("z", dist.Categorical(np.array([0.5, 0.5])),
                            infer={"enumerate": "parallel"})
            csvi.sample("x", dist.Normal(locs[z], 1.0), obs=data[idx])

    csvi.clear_param_store()
    data = csvi.as_tensor(np.zeros(4))
    svi = SVI(model, lambda data: None, Adam({"lr": 0.1}), TraceEnum_ELBO(max_plate_nesting=1))
    compiled = svi.compile(data)
    compiled.run(3)
    csvi._core.value_of(data)[...] = np.inf
    with pytest.raises(ValueError, match="site 'x'"):
        compiled.run(1)


def test_param_store_load_reaches_a_compiled_program_and_clear_is_refused(tmp_path):
    model, guide, args = CASES["eight_schools"]
    _, eager_params = run(model, guide, args, 30, False)
    store = csvi.get_param_store()
    path = tmp_path / "params.npz"
    store.save(path)
    csvi.clear_param_store()
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    compiled = svi.compile(*args)
    store.load(path)  # same shapes: loaded in place, into the program's buffers
    for name in eager_params:
        np.testing.assert_array_equal(store.unconstrained(name), eager_params[name])
    compiled.run(1)
    assert not np.array_equal(store.unconstrained("mu_loc"), eager_params["mu_loc"])
    csvi.clear_param_store()
    with pytest.raises(ValueError, match="compile"):
        compiled.run(1)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_memory_stays_flat_over_a_million_steps():
    csvi.clear_param_store()
    svi = SVI(coin, coin_guide, Adam({"lr": 0.0005}), Trace_ELBO())
    compiled = svi.compile(COIN)
    compiled.run(10_000)
    before = _rss_bytes()
    for _ in range(10):
        compiled.run(100_000)
    growth = _rss_bytes() - before
    # the loss history itself is 800 kB per call and freed; nothing else grows
    assert growth < 2 * 2**20
