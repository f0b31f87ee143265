"""Threads: every Python thread has its own tapes and generator, so threads
neither crash each other nor change each other's results (README, "Threads,
interrupts and checkpoints")."""
import threading

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core, constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam
from scripts import run_python


def in_threads(*fns):
    """Runs each fn in its own thread, all started together; returns their
    results and re-raises the first error."""
    results, errors = [None] * len(fns), []
    start = threading.Barrier(len(fns))

    def body(k):
        try:
            start.wait()
            results[k] = fns[k]()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_big_draws_and_constant_ops_in_two_threads_do_not_crash():
    # Ops of >= 65536 elements release the GIL; they used to share one scratch
    # tape and generator (a use-after-free: segfault in 20 of 20 runs).
    run = run_python("""
import threading
import numpy as np
import csvi, csvi.distributions as dist

def work(out):
    for _ in range(200):
        x = dist.Normal(0.0, 1.0).sample((1 << 17,))
        y = csvi.exp(x)
    out.append(np.allclose(y.numpy(), np.exp(x.numpy()), rtol=1e-14, atol=0))

out = []
threads = [threading.Thread(target=work, args=(out,)) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(out)
""")
    assert run.returncode == 0 and run.stdout.strip() == "[True, True]", run.stderr[-2000:]


def draws(seed):
    csvi.set_rng_seed(seed)
    return [dist.Normal(0.0, 1.0).sample((1 << 16,)).numpy() for _ in range(5)]


def test_each_thread_draws_from_its_own_generator():
    alone = [draws(1), draws(2)]
    together = in_threads(lambda: draws(1), lambda: draws(2))
    for a, b in zip(alone, together):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_a_new_thread_starts_with_its_own_fresh_generator():
    csvi.set_rng_seed(0)
    main = _core.get_generator()
    other = in_threads(_core.get_generator)[0]
    assert other is not main
    assert _core.get_generator() is main  # untouched by the other thread


def test_a_generator_cannot_be_current_in_two_threads():
    gen = np.random.default_rng(3)
    _core.set_generator(gen)
    with pytest.raises(ValueError, match="another thread"):
        in_threads(lambda: _core.set_generator(gen))
    csvi.set_rng_seed(0)


def scaled_model(prefix):
    data = np.random.default_rng(5).normal(1.0, 2.0, size=70_000)  # over the GIL-release size

    def model():
        mu = csvi.sample(f"{prefix}_mu", dist.Normal(0.0, 10.0))
        with csvi.plate(f"{prefix}_data", len(data)):
            csvi.sample(f"{prefix}_obs", dist.Normal(mu, 2.0), obs=data)

    def guide():
        loc = csvi.param(f"{prefix}_loc", 0.0)
        scale = csvi.param(f"{prefix}_scale", 1.0, constraint=constraints.positive)
        csvi.sample(f"{prefix}_mu", dist.Normal(loc, scale))

    return model, guide


def fit(prefix, seed, compiled):
    csvi.set_rng_seed(seed)
    model, guide = scaled_model(prefix)
    svi = SVI(model, guide, Adam({"lr": 0.05}), loss=Trace_ELBO())
    losses = svi.run(30, compile=compiled, progress_bar=False).losses
    store = csvi.get_param_store()
    return losses, {n: store.unconstrained(n).copy() for n in store if n.startswith(prefix)}


@pytest.mark.parametrize("compiled", [False, True])
def test_two_svis_in_two_threads_match_running_them_one_after_the_other(fresh_store, compiled):
    alone = [fit("a", 1, compiled), fit("b", 2, compiled)]
    csvi.clear_param_store()
    together = in_threads(lambda: fit("a", 1, compiled), lambda: fit("b", 2, compiled))
    for (la, pa), (lb, pb) in zip(alone, together):
        np.testing.assert_array_equal(la, lb)
        assert pa.keys() == pb.keys()
        for name in pa:
            np.testing.assert_array_equal(pa[name], pb[name])


def test_one_svi_stepped_from_two_threads_takes_turns(fresh_store):
    model, guide = scaled_model("s")
    svi = SVI(model, guide, Adam({"lr": 0.05}), loss=Trace_ELBO())
    in_threads(*[lambda: [svi.step() for _ in range(10)]] * 2)
    assert svi.optim.state_of("s_loc")["step"] == 20


def test_a_param_created_from_many_threads_at_once_is_created_once(fresh_store, monkeypatch):
    store = csvi.get_param_store()
    calls = []
    create = type(store)._create
    monkeypatch.setattr(type(store), "_create",
                        lambda self, *a: calls.append(a[0]) or create(self, *a))
    # positive: the init's inverse transform is an op over 70000 elements,
    # which releases the GIL in the middle of creating the param
    in_threads(*[lambda: csvi.param("shared", np.ones(70_000),
                                    constraint=constraints.positive)] * 4)
    assert calls == ["shared"]
