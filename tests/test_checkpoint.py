"""Checkpoints: save at step k, restore in a fresh process, continue -- the
same bits as the uninterrupted run; and files that are not (good) csvi files
are refused with errors naming the file, changing nothing."""
import json
import zipfile

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core, constraints
from csvi.infer import SVI, Trace_ELBO, load_checkpoint, save_checkpoint
from csvi.optim import ClippedAdam, ExponentialLR
from scripts import run_python

DATA = np.random.default_rng(1).normal(0.5, 1.5, size=500)


def model():
    mu = csvi.sample("mu", dist.Normal(0.0, 10.0))
    with csvi.plate("data", len(DATA), subsample_size=50) as idx:  # indices drawn each step
        csvi.sample("obs", dist.Normal(mu, 1.5), obs=csvi.as_tensor(DATA)[idx])


def guide():
    loc = csvi.param("loc", 0.0)
    scale = csvi.param("scale", 1.0, constraint=constraints.positive)
    csvi.sample("mu", dist.Normal(loc, scale))


def new_svi():
    # ClippedAdam decays its lr every step; the scheduler keeps an epoch count
    sched = ExponentialLR({"optimizer": ClippedAdam, "optim_args": {"lr": 0.05, "lrd": 0.999},
                           "gamma": 0.9})
    return SVI(model, guide, sched, loss=Trace_ELBO())


def steps(svi, n, compiled):
    """n steps, with a scheduler epoch every 10 steps; returns the losses."""
    out = []
    run = svi.compile().run if compiled else None
    for _ in range(n // 10):
        out.extend(run(10) if compiled else [svi.step() for _ in range(10)])
        svi.optim.step()
    return np.array(out)


def params():
    store = csvi.get_param_store()
    return {n: store.unconstrained(n).copy() for n in store}


@pytest.mark.parametrize("compiled", [False, True])
def test_a_restored_run_continues_bit_for_bit_in_a_fresh_process(fresh_store, tmp_path,
                                                                  compiled):
    csvi.set_rng_seed(3)
    svi = new_svi()
    expected = steps(svi, 60, compiled)
    expected_params, expected_state = params(), svi.optim.get_state()
    ckpt, out = tmp_path / "run.ckpt.npz", tmp_path / "rest.npz"
    saving = run_python(f"""
import csvi
from csvi.infer import save_checkpoint
from test_checkpoint import new_svi, steps
csvi.set_rng_seed(3)
svi = new_svi()
steps(svi, 30, {compiled})
save_checkpoint({str(ckpt)!r}, svi)
""")
    assert saving.returncode == 0, saving.stderr[-2000:]
    restoring = run_python(f"""
import numpy as np
import csvi
from csvi.infer import load_checkpoint
from test_checkpoint import new_svi, steps, params
csvi.set_rng_seed(12345)  # overwritten by the checkpoint
svi = new_svi()
load_checkpoint({str(ckpt)!r}, svi)
losses = steps(svi, 30, {compiled})
np.savez({str(out)!r}, losses=losses, **params())
""")
    assert restoring.returncode == 0, restoring.stderr[-2000:]
    with np.load(out) as got:
        np.testing.assert_array_equal(got["losses"], expected[30:])
        for name, value in expected_params.items():
            np.testing.assert_array_equal(got[name], value)
    # and in this process, onto the finished run: back to step 30
    load_checkpoint(ckpt, svi)
    assert svi.optim.state_of("loc")["step"] == 30
    np.testing.assert_array_equal(steps(svi, 30, compiled), expected[30:])
    assert svi.optim.get_state().keys() == expected_state.keys()


@pytest.fixture
def saved(fresh_store, tmp_path):
    """A trained SVI, its checkpoint path, and a snapshot to compare against."""
    svi = new_svi()
    steps(svi, 10, False)
    path = tmp_path / "good.npz"
    save_checkpoint(path, svi)
    steps(svi, 10, False)  # moves on: a failed load must not roll back to the file
    before = (params(), svi.optim.get_state(), _core.get_generator().bit_generator.state)
    yield svi, path, before
    after = (params(), svi.optim.get_state(), _core.get_generator().bit_generator.state)
    for name in before[0]:
        np.testing.assert_array_equal(after[0][name], before[0][name])
    assert repr(after[1]) == repr(before[1])
    assert after[2] == before[2]


def rewrite(src, dst, change):
    """Copy the .npz at src to dst with change(header dict, arrays dict) applied."""
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays.pop("__csvi__")))
    change(header, arrays)
    arrays["__csvi__"] = np.array(json.dumps(header))
    np.savez(dst, **arrays)


def test_a_foreign_file_is_refused(saved, tmp_path):
    svi, _, _ = saved
    text = tmp_path / "notes.txt"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match=r"notes.txt: not a csvi checkpoint file"):
        load_checkpoint(text, svi)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.ones(3))
    with pytest.raises(ValueError, match=r"other.npz: not a csvi checkpoint file \(no csvi header\)"):
        load_checkpoint(other, svi)
    store_file = tmp_path / "params.npz"
    csvi.get_param_store().save(store_file)
    with pytest.raises(ValueError, match="params.npz: a csvi 'params' file, not a checkpoint"):
        load_checkpoint(store_file, svi)


def test_a_truncated_file_is_refused(saved, tmp_path):
    svi, path, _ = saved
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="cut.npz: not a csvi checkpoint file, or a truncated"):
        load_checkpoint(cut, svi)


def test_a_corrupt_member_is_refused(saved, tmp_path):
    svi, path, _ = saved
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(bad, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "param/loc.npy":
                data = data[:-8]  # the array's bytes cut short
            out.writestr(info, data)
    with pytest.raises(ValueError, match="bad.npz: "):
        load_checkpoint(bad, svi)


def test_non_finite_values_are_refused(saved, tmp_path):
    svi, path, _ = saved
    nan = tmp_path / "nan.npz"
    rewrite(path, nan, lambda h, a: a.__setitem__("param/loc", np.array(np.nan)))
    with pytest.raises(ValueError, match="nan.npz: param 'loc' has non-finite values"):
        load_checkpoint(nan, svi)
    inf = tmp_path / "inf.npz"
    rewrite(path, inf, lambda h, a: a.__setitem__("optim/scale/exp_avg_sq", np.array(np.inf)))
    with pytest.raises(ValueError, match="inf.npz: optimizer state 'exp_avg_sq' of param "
                                         "'scale' has non-finite values"):
        load_checkpoint(inf, svi)


def test_a_newer_or_inconsistent_file_is_refused(saved, tmp_path):
    svi, path, _ = saved
    newer = tmp_path / "newer.npz"
    rewrite(path, newer, lambda h, a: h.__setitem__("version", 99))
    with pytest.raises(ValueError, match="newer.npz: written by a newer csvi"):
        load_checkpoint(newer, svi)
    shape = tmp_path / "shape.npz"
    rewrite(path, shape, lambda h, a: a.__setitem__("optim/loc/exp_avg", np.zeros(3)))
    with pytest.raises(ValueError, match=r"shape.npz: .*param 'loc': exp_avg has shape \(3,\)"):
        load_checkpoint(shape, svi)
    step = tmp_path / "step.npz"
    rewrite(path, step, lambda h, a: h["optim"]["loc"]["numbers"].__setitem__("step", -4))
    with pytest.raises(ValueError, match="step.npz: .*step=-4"):
        load_checkpoint(step, svi)
    gen = tmp_path / "gen.npz"
    rewrite(path, gen, lambda h, a: h["generator"].__setitem__("bit_generator", "Mersenne"))
    with pytest.raises(ValueError, match="gen.npz: corrupt checkpoint: the generator is an unknown bit generator"):
        load_checkpoint(gen, svi)


def test_param_store_files_are_checked_too(fresh_store, tmp_path):
    csvi.param("w", np.ones(3), constraint=constraints.positive)
    path = tmp_path / "store.npz"
    csvi.get_param_store().save(path)
    csvi.clear_param_store()
    csvi.get_param_store().load(path)
    np.testing.assert_allclose(csvi.get_param_store()["w"].numpy(), np.ones(3))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a csvi params file"):
        csvi.get_param_store().load(junk)


def test_a_simplex_param_loads_through_the_softmax_it_was_stored_with(fresh_store, tmp_path):
    """Params map to their constraint with transform_to (softmax for a
    simplex, as Pyro); a load must read them back the same way."""
    csvi.param("w", np.array([1.0, 2.0, 3.0]), constraint=constraints.simplex)
    path = tmp_path / "store.npz"
    fresh_store.save(path)
    csvi.clear_param_store()
    csvi.get_param_store().load(path)
    np.testing.assert_allclose(csvi.get_param_store()["w"].numpy(), [1 / 6, 2 / 6, 3 / 6],
                               rtol=1e-12)
