"""The handler stack: it unwinds after any failure (errors and Ctrl-C at
every point of a step), it is per thread, and handlers written Pyro's way
(`_pyro_sample`, `_process_message`, `effectful`, Pyro's module paths) run."""
import sys
import threading

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core, handlers
from csvi.handlers.runtime import get_stack
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from models import coin as coin_model, coin_guide


def unrelated_loss():
    """A param-free model's loss at a fixed seed: what a clean stack gives."""
    def model():
        with csvi.plate("d", 3):
            csvi.sample("x", dist.Normal(0.0, 1.0), obs=np.array([0.1, -0.2, 0.3]))
        csvi.sample("y", dist.Normal(0.0, 1.0))

    def guide():
        csvi.sample("y", dist.Normal(0.5, 0.5))

    with handlers.seed(rng_seed=7):
        return Trace_ELBO().loss(model, guide)


CLEAN_LOSS = unrelated_loss()


DATA = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])


def test_name_clash_leaves_the_stack_empty(fresh_store):
    def model(data):
        csvi.sample("f", dist.Beta(1.0, 1.0))
        with csvi.plate("data", len(data)):
            csvi.sample("f", dist.Bernoulli(0.5), obs=data)

    svi = SVI(model, coin_guide, Adam({"lr": 0.01}), Trace_ELBO())
    with pytest.raises(ValueError, match="Multiple sample sites named 'f'"):
        svi.step(DATA)
    assert get_stack() == []
    assert unrelated_loss() == CLEAN_LOSS


def test_replay_error_leaves_the_stack_empty(fresh_store):
    def guide(data):
        csvi.sample("f", dist.Beta(2.0, 2.0))
        csvi.sample("data", dist.Normal(0.0, 1.0))  # the model's plate is named "data"

    svi = SVI(coin_model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    with pytest.raises(ValueError, match="replay: site 'data' is a sample site in the "
                                         "replayed trace but a subsample site here"):
        svi.step(DATA)
    assert get_stack() == []
    assert unrelated_loss() == CLEAN_LOSS


def test_failed_plate_enter_is_not_pushed():
    with csvi.plate("a", 3, dim=-1) as _:
        before = list(get_stack())
        with pytest.raises(ValueError, match="dim -1 is already used"):
            with csvi.plate("b", 4, dim=-1):
                pass
        assert get_stack() == before
    assert get_stack() == []


def test_exit_of_an_outer_handler_unwinds_inner_ones_left_behind():
    outer = handlers.trace()
    with pytest.raises(RuntimeError):
        with outer:
            csvi.plate("p", 3).__enter__()  # entered, never exited
            raise RuntimeError("boom")
    assert get_stack() == []


class _InterruptAt:
    """A tracer raising KeyboardInterrupt at the k-th line run inside csvi."""

    def __init__(self, k):
        self.k = k
        self.count = 0

    def __call__(self, frame, event, arg):
        if "/csvi/" not in frame.f_code.co_filename:
            return None
        if event == "line":
            self.count += 1
            if self.count == self.k:
                raise KeyboardInterrupt
        return self


def test_ctrl_c_at_every_point_of_a_step_leaves_a_clean_stack(fresh_store):
    svi = SVI(coin_model, coin_guide, Adam({"lr": 0.01}), Trace_ELBO())
    svi.step(DATA)  # params exist; later steps take the common path
    probe = _InterruptAt(-1)
    sys.settrace(probe)
    try:
        svi.step(DATA)
    finally:
        sys.settrace(None)
    total = probe.count
    assert total > 50
    for k in range(1, total + 1, 2):
        tracer = _InterruptAt(k)
        sys.settrace(tracer)
        try:
            svi.step(DATA)
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        assert get_stack() == [], f"handlers left on the stack after Ctrl-C at line {k}"
        svi.step(DATA)  # the next step runs and cleans up whatever the interrupt skipped
        assert get_stack() == []
        assert _core.current_tape() is not svi._tape, f"still recording after line {k}"
    assert unrelated_loss() == CLEAN_LOSS


# ---- threads -----------------------------------------------------------------------

def test_each_thread_has_its_own_handler_stack():
    barrier = threading.Barrier(2)
    seen = {}

    def work(tag):
        with handlers.block(hide=[tag]) as h:
            barrier.wait()
            seen[tag] = list(get_stack())
            barrier.wait()
            assert get_stack() == [h]
        seen[tag + "_after"] = list(get_stack())

    threads = [threading.Thread(target=work, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen["a"]) == 1 and len(seen["b"]) == 1
    assert seen["a"][0] is not seen["b"][0]
    assert seen["a_after"] == [] and seen["b_after"] == []
    assert get_stack() == []


# ---- handlers written Pyro's way -------------------------------------------------------

def scale_model(guess):
    weight = csvi.sample("weight", dist.Normal(guess, 1.0))
    return csvi.sample("measurement", dist.Normal(weight, 0.75))


def reference_log_joint(guess, weight, measurement):
    from scipy import stats
    return stats.norm(guess, 1.0).logpdf(weight) + stats.norm(weight, 0.75).logpdf(measurement)


def test_pyro_module_paths():
    from csvi.handlers.condition_messenger import ConditionMessenger
    from csvi.handlers.messenger import Messenger
    from csvi.handlers.runtime import apply_stack, effectful  # noqa: F401
    from csvi.handlers.trace_messenger import TraceMessenger

    assert issubclass(TraceMessenger, Messenger)
    with TraceMessenger() as tracer:
        with ConditionMessenger(data={"measurement": 9.5, "weight": 8.23}):
            scale_model(8.5)
    assert tracer.trace.log_prob_sum().item() == pytest.approx(
        reference_log_joint(8.5, 8.23, 9.5))


class LogJointMessenger(handlers.Messenger):
    """The effect-handler tutorial's handler, verbatim but for the imports
    (no call to Messenger.__init__, `_pyro_sample` only)."""

    def __init__(self, cond_data):
        self.data = cond_data

    def __call__(self, fn):
        def _fn(*args, **kwargs):
            with self:
                fn(*args, **kwargs)
                return self.logp

        return _fn

    def __enter__(self):
        self.logp = 0.0
        return super().__enter__()

    def __exit__(self, exc_type, exc_value, traceback):
        self.logp = 0.0
        return super().__exit__(exc_type, exc_value, traceback)

    def _pyro_sample(self, msg):
        assert msg["name"] in self.data
        msg["value"] = self.data[msg["name"]]
        msg["is_observed"] = True
        self.logp = self.logp + (msg["scale"] * msg["fn"].log_prob(msg["value"])).sum()


class LogJointMessenger2(handlers.Messenger):
    def __init__(self, cond_data):
        self.data = cond_data

    def __enter__(self):
        self.logp = 0.0
        return super().__enter__()

    def _pyro_sample(self, msg):
        if msg["name"] in self.data:
            msg["value"] = self.data[msg["name"]]
            msg["done"] = True

    def _pyro_post_sample(self, msg):
        assert msg["done"]
        self.logp = self.logp + (msg["scale"] * msg["fn"].log_prob(msg["value"])).sum()


def test_pyro_style_sample_hook_is_called():
    data = {"measurement": 9.5, "weight": 8.23}
    logp = LogJointMessenger(cond_data=data)(scale_model)(8.5)
    assert float(logp) == pytest.approx(reference_log_joint(8.5, 8.23, 9.5))
    with LogJointMessenger2(cond_data=data) as m:
        scale_model(8.5)
        assert float(m.logp) == pytest.approx(reference_log_joint(8.5, 8.23, 9.5))
    assert get_stack() == []


def test_pyro_style_hooks_for_params_and_other_types():
    calls = []

    class Recorder(handlers.Messenger):
        def _pyro_param(self, msg):
            calls.append(("param", msg["name"]))

        def _pyro_post_my_effect(self, msg):
            calls.append(("post", msg["name"], msg["value"]))

    from csvi.handlers.runtime import effectful

    double = effectful(lambda x: 2 * x, type="my_effect")
    csvi.clear_param_store()
    with Recorder():
        csvi.param("w", 1.0)
        assert double(4, name="d") == 8
        csvi.sample("z", dist.Normal(0.0, 1.0))  # no hook for sample: untouched
    assert calls == [("param", "w"), ("post", "d", 8)]
    csvi.clear_param_store()


def test_process_message_spelled_as_pyro():
    class Lazy(handlers.Messenger):
        def _process_message(self, msg):
            if msg["type"] == "apply" and not msg["done"]:
                msg["done"] = True
                msg["value"] = ("lazy", msg["fn"], msg["args"])

    from csvi.handlers.runtime import effectful

    @effectful(type="apply")
    def add(x, y):
        return x + y

    assert add(1, 2) == 3  # no handler: a plain call
    with Lazy():
        value = add(1, 2, name="s")
    assert value[0] == "lazy" and value[2] == (1, 2)


def test_effectful_with_obs_and_trace():
    from csvi.handlers.runtime import effectful

    noisy = effectful(lambda: 1.0, type="custom")
    tr = handlers.trace(lambda: noisy(name="n", obs=5.0)).get_trace()
    assert tr.nodes["n"]["value"] == 5.0 and tr.nodes["n"]["is_observed"]


def test_condition_accepts_a_trace():
    tr = handlers.trace(handlers.condition(scale_model, data={"weight": 8.0,
                                                              "measurement": 9.0})).get_trace(8.5)
    tr2 = handlers.trace(handlers.condition(scale_model, data=tr)).get_trace(8.5)
    assert float(tr2.nodes["weight"]["value"]) == 8.0
