"""csvi.distributed: data-parallel SVI over MPI.

In this process: the shard arithmetic and the distributed plate's scaling
(with stand-in communicators of any size), the compiled program's gradient
hook, and one-rank DistributedSVI == SVI bit for bit.  Through `mpiexec -n 2`
(tests/mpi_workers/*, skipped without mpi4py and mpiexec): params stay
bit-identical across ranks, eager == compiled, two ranks reproduce one
process's global minibatch to rounding, a failing rank makes every rank
raise, and checkpoints from rank 0 restore on one and two ranks."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core, distributed, handlers
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import SGD, Adam

from models import logreg, logreg_guide

CSVI_HOME = os.path.dirname(os.path.dirname(os.path.abspath(csvi.__file__)))
WORKERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_workers")
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "examples", "distributed_logreg.py")


def _mpiexec():
    """mpiexec, on the PATH or beside this Python (pip's mpich puts it there)."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return shutil.which("mpiexec") or (beside if os.access(beside, os.X_OK) else None)


try:
    import mpi4py  # noqa: F401
    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False
needs_mpi4py = pytest.mark.skipif(not HAVE_MPI4PY, reason="needs mpi4py (csvi[mpi])")
needs_mpiexec = pytest.mark.skipif(not (HAVE_MPI4PY and _mpiexec()),
                                   reason="needs mpi4py and mpiexec (csvi[mpi])")


class LocalComm:
    """A stand-in communicator: `size` ranks of which this is `rank`; its
    collectives are those of a one-rank world (only used with size 1)."""

    def __init__(self, size=1, rank=0):
        self.size, self.rank = size, rank

    def Get_size(self):
        return self.size

    def Get_rank(self):
        return self.rank

    def Allreduce(self, sendbuf, recvbuf, op=None):
        assert self.size == 1

    def Bcast(self, buffer, root=0):
        assert self.size == 1

    def allgather(self, value):
        return [value]

    def gather(self, value, root=0):
        return [value]

    def bcast(self, value, root=0):
        return value


# ---- shards and the distributed plate ---------------------------------------

def test_shard_range_partitions_rows_in_rank_order():
    for ranks in range(1, 6):
        for size in range(0, 14):
            blocks = [distributed.shard_range(size, LocalComm(ranks, r)) for r in range(ranks)]
            assert blocks[0][0] == 0 and blocks[-1][1] == size
            assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
            lengths = [hi - lo for lo, hi in blocks]
            assert max(lengths) - min(lengths) <= 1
    with pytest.raises(ValueError, match="size"):
        distributed.shard_range(-1, LocalComm())


def _plate_site(comm, size, **plate_kwargs):
    def model():
        with distributed.plate("data", size, comm=comm, **plate_kwargs) as idx:
            csvi.sample("x", dist.Normal(0.0, 1.0), obs=np.zeros(len(np.asarray(idx))))
    tr = handlers.trace(handlers.seed(model, rng_seed=1)).get_trace()
    return tr.nodes["x"], np.asarray(_core.value_of(tr.nodes["data"]["value"]))


@pytest.mark.parametrize("size,ranks", [(12, 3), (10, 3), (7, 2)])
def test_plate_draws_local_rows_and_averages_to_the_global_scale(size, ranks):
    """Rank r draws B of its n_r rows, scaled ranks * n_r / B: averaged over
    the ranks (as DistributedSVI averages gradients) each rank's expected
    minibatch sum is sum_r, so the average is the sum over all N rows --
    N / (ranks * B) per row when the shards are equal."""
    batch = 2
    for rank in range(ranks):
        comm = LocalComm(ranks, rank)
        lo, hi = distributed.shard_range(size, comm)
        site, idx = _plate_site(comm, size, subsample_size=batch)
        assert idx.shape == (batch,) and idx.min() >= 0 and idx.max() < hi - lo
        assert site["scale"] == pytest.approx(ranks * (hi - lo) / batch, rel=1e-15)
        frame = site["cond_indep_stack"][0]
        assert (frame.size, frame.subsample_size) == (size, batch)
        if size % ranks == 0:
            assert site["scale"] / ranks == pytest.approx(size / (ranks * batch), rel=1e-15)


def test_plate_without_subsample_size_takes_the_whole_shard():
    comm = LocalComm(2, 1)
    site, idx = _plate_site(comm, 9)
    np.testing.assert_array_equal(idx, np.arange(5))  # rows 4..8 of 9
    assert site["scale"] == pytest.approx(2.0)         # averaged: 1 per row


def test_plate_rejects_what_a_shard_cannot_hold():
    comm = LocalComm(2, 0)
    with pytest.raises(ValueError, match="plate 'data': subsample_size .* \\[1, 5\\]"):
        distributed.plate("data", 10, subsample_size=6, comm=comm)
    with pytest.raises(ValueError, match="plate 'data': subsample holds local row indices"):
        distributed.plate("data", 10, subsample=np.array([0, 5]), comm=comm)
    with pytest.raises(ValueError, match="plate 'data': size must be the global"):
        distributed.plate("data", None, comm=comm)
    with pytest.raises(TypeError, match="vectorized only"):
        list(distributed.plate("data", 10, comm=comm))

    def model():
        with distributed.plate("data", 10, subsample_size=2, comm=comm):
            csvi.param("local", np.zeros(10), event_dim=0)
    with pytest.raises(ValueError, match="param 'local'.*not supported"):
        handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()


def test_missing_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(distributed, "_MPI", None)  # as if never imported
    with pytest.raises(ImportError, match=r"csvi\[mpi\]"):
        distributed.world()


# ---- the compiled program's gradient hook ------------------------------------

def _data(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(np.float64)
    return x, y


def _fit_compiled(optim, steps, hook=None, seed=0):
    csvi.clear_param_store()
    csvi.set_rng_seed(seed)
    x, y = _data()
    compiled = SVI(logreg, logreg_guide, optim, Trace_ELBO()).compile(x, y)
    if hook is not None:
        compiled._program.set_grad_hook(hook)
    losses = compiled.run(steps)
    store = csvi.get_param_store()
    return losses, {n: store.unconstrained(n).copy() for n in store.keys()}, compiled


def test_grad_hook_sees_the_gradients_and_its_changes_are_applied(fresh_store):
    """The hook's buffer is [gradients in param order, loss, flag]: an identity
    hook changes nothing, and doubling the gradients under SGD equals doubling
    the learning rate, bit for bit."""
    plain_losses, plain, compiled = _fit_compiled(SGD({"lr": 0.01}), 5)
    seen = []
    sizes = sum(v.size for v in plain.values())

    def identity(buffer):
        assert buffer.shape == (sizes + 2,) and buffer[-1] == 0.0
        seen.append(buffer[-2])

    losses, params, compiled = _fit_compiled(SGD({"lr": 0.01}), 5, identity)
    assert compiled._program.hook_size == sizes + 2
    np.testing.assert_array_equal(losses, plain_losses)
    np.testing.assert_array_equal(seen, plain_losses)
    for name in plain:
        np.testing.assert_array_equal(params[name], plain[name])

    def double(buffer):
        buffer[:-2] *= 2.0

    _, doubled, _ = _fit_compiled(SGD({"lr": 0.01}), 5, double)
    _, faster, _ = _fit_compiled(SGD({"lr": 0.02}), 5)
    for name in plain:
        np.testing.assert_array_equal(doubled[name], faster[name])


def test_grad_hook_failure_flag_and_errors_stop_before_the_update(fresh_store):
    calls = []

    def fail_third(buffer):
        calls.append(1)
        if len(calls) == 3:
            buffer[-1] = 1.0  # as if another process's step had failed

    _, _, compiled = _fit_compiled(Adam({"lr": 0.05}), 2, fail_third)
    store = csvi.get_param_store()
    before = {n: store.unconstrained(n).copy() for n in store.keys()}
    state = compiled.svi.optim.get_state()
    losses, status = compiled._program.run(4)
    assert status == "peer_failed" and len(losses) == 0
    for name in before:
        np.testing.assert_array_equal(store.unconstrained(name), before[name])
    assert json.dumps(compiled.svi.optim.get_state(), default=np.ndarray.tolist) \
        == json.dumps(state, default=np.ndarray.tolist)

    def broken(buffer):
        raise OSError("transport down")

    compiled._program.set_grad_hook(broken)
    with pytest.raises(OSError, match="transport down") as info:
        compiled.run(3)
    assert len(info.value.losses) == 0
    for name in before:
        np.testing.assert_array_equal(store.unconstrained(name), before[name])
    compiled._program.set_grad_hook(None)
    assert np.isfinite(compiled.run(2)).all()
    with pytest.raises(TypeError, match="callable"):
        compiled._program.set_grad_hook(3)


@needs_mpi4py
def test_one_rank_equals_plain_svi_bit_for_bit(fresh_store):
    x, y = _data()

    def fit(make_svi, compiled):
        csvi.clear_param_store()
        csvi.set_rng_seed(4)
        svi = make_svi()
        if compiled:
            losses = svi.compile(x, y, subsample_size=20).run(6)
        else:
            losses = [svi.step(x, y, subsample_size=20) for _ in range(6)]
        store = csvi.get_param_store()
        return np.asarray(losses), {n: store.unconstrained(n).copy() for n in store.keys()}

    def sharded_model(x, y, subsample_size=None):
        logreg_with(distributed.plate, x, y, subsample_size)

    def plain_model(x, y, subsample_size=None):
        logreg_with(csvi.plate, x, y, subsample_size)

    for compiled in (False, True):
        got = fit(lambda: distributed.DistributedSVI(sharded_model, logreg_guide,
                                                     Adam({"lr": 0.05}), Trace_ELBO(),
                                                     comm=LocalComm()), compiled)
        want = fit(lambda: SVI(plain_model, logreg_guide, Adam({"lr": 0.05}), Trace_ELBO()),
                   compiled)
        np.testing.assert_array_equal(got[0], want[0])
        for name in want[1]:
            np.testing.assert_array_equal(got[1][name], want[1][name])


def logreg_with(plate, x, y, subsample_size):
    w = csvi.sample("w", dist.Normal(np.zeros(x.shape[1]), 1.0).to_event(1))
    b = csvi.sample("b", dist.Normal(0.0, 1.0))
    kwargs = {"comm": LocalComm()} if plate is distributed.plate else {}
    with plate("data", x.shape[0], subsample_size=subsample_size, **kwargs) as idx:
        csvi.sample("y", dist.Bernoulli(logits=x[idx] @ w + b), obs=y[idx])


# ---- across processes: mpiexec -n 2 ----------------------------------------------

def _mpirun(ranks, script, *args, tmp_path, timeout=90):
    """Runs tests/mpi_workers/<script> on `ranks` processes; returns each
    rank's JSON report.  The timeout turns a hang into a failure."""
    out = str(tmp_path / script.replace(".py", ""))
    env = dict(os.environ, CSVI_HOME=CSVI_HOME, OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([CSVI_HOME, WORKERS]))
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, os.path.join(WORKERS, script),
           out, *args]
    if ranks == 0:  # a plain process, no MPI launcher
        cmd, ranks = cmd[3:], 1
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = []
    for rank in range(ranks):
        with open(f"{out}.{rank}.json") as f:
            reports.append(json.load(f))
    return reports


@needs_mpiexec
def test_params_stay_bit_identical_across_ranks_and_compiled_equals_eager(tmp_path):
    a, b = _mpirun(2, "identical.py", tmp_path=tmp_path)
    assert (a["shard"], b["shard"]) == ([0, 1000], [1000, 2000])
    for mode in ("eager", "compiled", "jit", "run"):
        assert a[mode] == b[mode], mode  # bit for bit across ranks
    assert a["eager"] == a["compiled"] == a["jit"]
    assert a["run"]["params"] == a["eager"]["params"]
    assert a["eager"]["losses"][-1] != a["eager"]["losses"][0]


@needs_mpiexec
def test_two_ranks_equal_one_process_on_one_global_minibatch(tmp_path):
    ranks = _mpirun(2, "one_minibatch.py", "distributed", tmp_path=tmp_path)
    (reference,) = _mpirun(0, "one_minibatch.py", "reference", tmp_path=tmp_path)
    assert ranks[0] == ranks[1]
    for run in ("eager", "compiled"):
        got, want = ranks[0][run], reference[run]
        np.testing.assert_allclose(got["losses"], want["losses"], rtol=1e-13)
        for name, value in want["params"].items():
            np.testing.assert_allclose(got["params"][name], value, rtol=1e-12, atol=1e-15)


@needs_mpiexec
def test_a_failing_rank_makes_every_rank_raise(tmp_path):
    for report in _mpirun(2, "failing.py", tmp_path=tmp_path, timeout=60):
        for case, cause in (("eager_nan", "Bernoulli: logits must be a real number"),
                            ("eager_exception", "subsample holds local row indices"),
                            ("compiled_nan", "the loss is not finite")):
            got = report[case]
            assert got["raised"] == "DistributedStepError", (case, got)
            assert got["failed_ranks"] == [1] and cause in got["message"]
            assert got["unchanged"]  # params and optimizer state
        assert report["eager_after"] and report["compiled_after"]


@needs_mpiexec
def test_checkpoint_from_rank_0_restores_on_one_and_two_ranks(tmp_path):
    path = str(tmp_path / "fit.ckpt.npz")
    saved = _mpirun(2, "checkpoint.py", "save", path, tmp_path=tmp_path)
    on_two = _mpirun(2, "checkpoint.py", "restore", path, tmp_path=tmp_path)
    (on_one,) = _mpirun(1, "checkpoint.py", "restore", path, tmp_path=tmp_path)
    assert saved[0] == saved[1] and on_two[0] == on_two[1]
    for restored in (on_two[0], on_one):
        assert restored["at_checkpoint"] == saved[0]["at_checkpoint"]
        assert restored["optim_at_checkpoint"] == saved[0]["optim_at_checkpoint"]
    assert on_two[0]["continued"] == saved[0]["continued"]  # the run goes on exactly
    assert on_one["continued"] != saved[0]["continued"]     # one rank: all rows, new stream
    csvi.clear_param_store()  # and a plain process reads it as any checkpoint
    svi = SVI(logreg, logreg_guide, Adam({"lr": 0.05}), Trace_ELBO())
    from csvi.infer.checkpoint import load_checkpoint
    load_checkpoint(path, svi)
    store = csvi.get_param_store()
    for name, value in saved[0]["at_checkpoint"].items():
        assert store.unconstrained(name).ravel().tolist() == value
    csvi.clear_param_store()


@needs_mpiexec
@pytest.mark.skipif(not os.path.exists(EXAMPLE), reason="examples/ not beside tests/ "
                    "(CI's sanitizer copy)")
def test_example_fits_on_two_ranks(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=CSVI_HOME)
    proc = subprocess.run([_mpiexec(), "-n", "2", sys.executable, EXAMPLE, "--rows", "100000",
                           "--features", "5", "--batch", "256", "--steps", "400"],
                          capture_output=True, text=True, timeout=90, env=env,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("2 rank(s), 100,000 rows")  # rank 0 alone prints
    def numbers(line):  # "<label> b <b> w [w0 w1 ...]"
        b, w = line.split(" b ")[1].split(" w ")
        return np.array([float(b)] + w.strip("[] ").split(), dtype=float)

    np.testing.assert_allclose(numbers(lines[-1]), numbers(lines[-2]), atol=0.15)


def test_run_refuses_a_convergence_stop(fresh_store):
    from csvi.infer import ConvergenceStop
    x, y = _data()
    svi = distributed.DistributedSVI(logreg, logreg_guide, Adam({"lr": 0.05}), Trace_ELBO(),
                                     comm=LocalComm())
    with pytest.raises(ValueError, match="stop= is not supported"):
        svi.run(10, x, y, stop=ConvergenceStop())
    assert len(list(csvi.get_param_store().keys())) == 0  # refused before any step
