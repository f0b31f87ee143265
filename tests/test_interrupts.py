"""Ctrl-C and failing steps: a run stops after a whole step with params,
optimizer state and step counts in agreement, and its losses so far kept;
a step applies every param's update or none."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam

DATA = np.random.default_rng(0).normal(1.0, 2.0, size=2000)


def model():
    mu = csvi.sample("mu", dist.Normal(0.0, 10.0))
    with csvi.plate("data", len(DATA)):
        csvi.sample("obs", dist.Normal(mu, 2.0), obs=DATA)


def guide():
    loc = csvi.param("loc", 0.0)
    scale = csvi.param("scale", 1.0, constraint=constraints.positive)
    csvi.sample("mu", dist.Normal(loc, scale))


def new_svi(optim_args=None):
    csvi.clear_param_store()
    csvi.set_rng_seed(7)
    return SVI(model, guide, Adam(optim_args or {"lr": 0.01}), loss=Trace_ELBO())


def snapshot(svi):
    store = csvi.get_param_store()
    return ({n: store.unconstrained(n).copy() for n in store},
            {n: svi.optim.state_of(n) for n in store})


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own SIGINT handler (a shell starting a background job makes
    SIGINT ignored, and Python then keeps it ignored)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def interrupt_after(seconds):
    """SIGINT to this process after `seconds`; returns when it was sent (a list)."""
    sent = []

    def fire():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(seconds, fire)
    timer.start()
    return timer, sent


def assert_same_run(a, b):
    (pa, sa), (pb, sb) = a, b
    assert pa.keys() == pb.keys()
    for name in pa:
        np.testing.assert_array_equal(pa[name], pb[name])
        assert sa[name].keys() == sb[name].keys()
        for key in sa[name]:
            np.testing.assert_array_equal(sa[name][key], sb[name][key])


@pytest.mark.parametrize("how", ["compiled.run", "svi.run(compile=True)"])
def test_ctrl_c_stops_a_compiled_run_after_a_whole_step(fresh_store, how):
    svi = new_svi()
    compiled = svi.compile()
    num_steps = 50_000_000  # minutes: only Ctrl-C ends it in time
    timer, sent = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt) as info:
        if how == "compiled.run":
            compiled.run(num_steps)
        else:
            svi.run(num_steps, compile=True, progress_bar=False)
    latency = time.perf_counter() - sent[0]
    timer.join()
    assert latency < 0.5, f"SIGINT surfaced {latency:.2f} s after it was sent"
    losses = info.value.losses
    done = len(losses)
    assert 0 < done < num_steps
    interrupted = snapshot(svi)
    assert interrupted[1]["loc"]["step"] == interrupted[1]["scale"]["step"] == done
    # the same number of steps, uninterrupted, from the same seed
    svi = new_svi()
    again = svi.compile().run(done)
    np.testing.assert_array_equal(losses, again)
    assert_same_run(interrupted, snapshot(svi))


def test_a_run_continues_correctly_after_ctrl_c(fresh_store):
    svi = new_svi()
    compiled = svi.compile()
    timer, _ = interrupt_after(0.2)
    with pytest.raises(KeyboardInterrupt) as info:
        compiled.run(50_000_000)
    timer.join()
    done = len(info.value.losses)
    rest = compiled.run(100)  # the next step's bias correction uses step done + 1
    svi_b = new_svi()
    both = svi_b.compile().run(done + 100)
    np.testing.assert_array_equal(both[done:], rest)


def test_a_step_that_fails_in_the_optimizer_updates_no_param(fresh_store):
    # the second param's lr is invalid: found only when its optimizer is made
    svi = new_svi(lambda name: {"lr": -1.0 if name == "scale" else 0.01})
    store = csvi.get_param_store()
    with pytest.raises(ValueError, match="param 'scale'.*lr=-1"):
        svi.step()
    assert store.unconstrained("loc") == 0.0
    assert svi.optim.state_of("loc")["step"] == 0  # no update counted either


def test_an_optimizer_step_checks_every_param_before_updating_any():
    opt = Adam({"lr": 0.1})
    a, b = np.zeros(3), np.zeros(2)
    with pytest.raises(ValueError, match="param 'b'"):
        opt.step([("a", a, np.ones(3)), ("b", b, np.ones(5))])
    np.testing.assert_array_equal(a, 0.0)
    opt.step([("a", a, np.ones(3)), ("b", b, np.ones(2))])
    assert opt.state_of("a")["step"] == opt.state_of("b")["step"] == 1


def test_ctrl_c_in_the_middle_of_an_eager_step_updates_no_param(fresh_store):
    # Ctrl-C arriving while the second param's optimizer is being made
    def optim_args(name):
        if name == "scale":
            raise KeyboardInterrupt
        return {"lr": 0.01}

    svi = new_svi(optim_args)
    with pytest.raises(KeyboardInterrupt):
        svi.step()
    assert csvi.get_param_store().unconstrained("loc") == 0.0
    assert svi.optim.state_of("loc")["step"] == 0
