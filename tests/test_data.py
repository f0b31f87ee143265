"""NumPy data given to SVI.step / SVI.compile: model and guide see DataArray
views that stay NumPy for NumPy code, while indexing with a csvi Tensor (a
plate's indices, a discrete draw) is recorded, so eager and compiled runs
agree.  A global NumPy array indexed by a traced Tensor is refused with
advice while compiling."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core, constraints
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam

RNG = np.random.default_rng(11)
X = RNG.standard_normal((400, 3))
Y = (RNG.random(400) < 1 / (1 + np.exp(-X @ np.array([1.0, -2.0, 0.5])))).astype(float)
LABELS = RNG.integers(0, 3, size=400)          # int64 data
LOCS = np.array([-3.0, 0.0, 2.5])


def fit(model, guide, args, steps, compiled, seed=3, kwargs=None):
    csvi.clear_param_store()
    csvi.set_rng_seed(seed)
    svi = SVI(model, guide, Adam({"lr": 0.02}), Trace_ELBO())
    if compiled:
        return svi.compile(*args, **(kwargs or {})).run(steps)
    return np.array([svi.step(*args, **(kwargs or {})) for _ in range(steps)])


def logreg(x, y):
    w = csvi.sample("w", dist.Normal(np.zeros(3), 1.0).to_event(1))
    with csvi.plate("data", len(x), subsample_size=32) as idx:
        csvi.sample("y", dist.Bernoulli(logits=x[idx] @ w), obs=y[idx])


def logreg_guide(x, y):
    loc = csvi.param("loc", np.zeros(3))
    scale = csvi.param("scale", np.full(3, 0.1), constraint=constraints.positive)
    csvi.sample("w", dist.Normal(loc, scale).to_event(1))


def test_numpy_data_indexed_by_plate_indices_compiles_and_matches_eager():
    eager = fit(logreg, logreg_guide, (X, Y), 30, compiled=False)
    compiled = fit(logreg, logreg_guide, (X, Y), 30, compiled=True)
    as_tensors = fit(logreg, logreg_guide, (csvi.as_tensor(X), csvi.as_tensor(Y)), 30, True)
    np.testing.assert_array_equal(compiled, eager)
    np.testing.assert_array_equal(as_tensors, eager)
    by_keyword = fit(logreg, logreg_guide, (), 30, compiled=True, kwargs={"x": X, "y": Y})
    np.testing.assert_array_equal(by_keyword, eager)


def test_compiled_loop_gathers_fresh_rows_from_numpy_data():
    rows = []

    def model(x):
        with csvi.plate("data", len(x), subsample_size=4) as idx:
            xb = x[idx]
            rows.append(xb)
            csvi.sample("obs", dist.Normal(csvi.param("m", 0.0), 1.0), obs=xb)

    csvi.clear_param_store()
    data = np.arange(1000.0)
    compiled = SVI(model, lambda x: None, Adam({"lr": 0.01}), Trace_ELBO()).compile(data)
    xb = rows[-1]
    seen = set()
    for _ in range(10):
        compiled.step()
        seen.add(tuple(_core.value_of(xb)))
    assert len(seen) == 10


def test_numpy_code_on_data_keeps_working_eager_and_compiled():
    seen = {}

    def model(x, labels):
        # NumPy-only things on data stay NumPy (and Python decisions on them
        # are fine while compiling: the data does not change between steps)
        seen["types"] = (type(x.sum()), type(np.mean(x)), type(len(x)), type(x.shape))
        seen["labels"] = (labels.dtype, np.unique(labels).tolist(), int(labels.max()) + 1)
        seen["numpy_only"] = (x[x[:, 0] > 0].shape[1], x.astype(np.float32).dtype,
                              float(np.median(x)), repr(x[:1, :1]))
        centre = x.mean(0) if x.sum() > -1e9 else 0.0
        w = csvi.sample("w", dist.Normal(np.zeros(3), 1.0).to_event(1))
        with csvi.plate("data", x.shape[0], subsample_size=16) as idx:
            csvi.sample("y", dist.Normal((x[idx] - centre) @ w, 1.0), obs=labels[idx].float())

    def guide(x, labels):
        logreg_guide(x, labels)

    for compiled in (False, True):
        seen.clear()
        fit(model, guide, (X, LABELS), 3, compiled)
        assert seen["types"] == (np.float64, np.float64, int, tuple)
        assert seen["labels"] == (np.dtype(np.int64), [0, 1, 2], 3)
        assert seen["numpy_only"][0] == 3 and seen["numpy_only"][1] == np.float32
        assert seen["numpy_only"][3] == repr(X[:1, :1])


def test_data_is_a_view_and_other_arguments_pass_unchanged():
    got = {}

    def model(x, n, items, flags):
        got.update(x=x, n=n, items=items, flags=flags)
        csvi.sample("z", dist.Normal(csvi.param("m", 0.0), 1.0), obs=0.0)

    flags = np.array([True, False])
    items = [1.0, 2.0]
    fit(model, lambda *a: None, (X, 3, items, flags), 1, compiled=False)
    assert isinstance(got["x"], np.ndarray) and np.shares_memory(got["x"], X)
    assert got["n"] == 3 and got["items"] is items and got["flags"] is flags


def mixture(data, locs):
    with csvi.plate("data", len(data)):
        k = csvi.sample("k", dist.Categorical(logits=np.zeros(3)))
        csvi.sample("x", dist.Normal(locs[k], 1.0), obs=data)


def mixture_guide(data, locs):
    logits = csvi.param("logits", np.zeros((len(data), 3)))
    with csvi.plate("data", len(data)):
        csvi.sample("k", dist.Categorical(logits=logits))


def test_discrete_draw_indexes_numpy_data_eager_and_compiled():
    data = np.array([-2.9, 2.4, 0.1, 2.6])
    eager = fit(mixture, mixture_guide, (data, LOCS), 25, compiled=False)
    compiled = fit(mixture, mixture_guide, (data, LOCS), 25, compiled=True)
    np.testing.assert_array_equal(compiled, eager)


def test_integer_data_indexed_by_plate_indices_is_an_integer_tensor():
    def model(labels):
        with csvi.plate("data", len(labels), subsample_size=8) as idx:
            lab = labels[idx]
            assert lab.dtype == np.int64
            loc = csvi.param("locs", np.zeros(3))[lab]   # an integer Tensor indexes on
            csvi.sample("obs", dist.Normal(loc, 1.0), obs=lab.float())

    eager = fit(model, lambda labels: None, (LABELS,), 20, compiled=False)
    compiled = fit(model, lambda labels: None, (LABELS,), 20, compiled=True)
    np.testing.assert_array_equal(compiled, eager)


def test_global_numpy_array_indexed_by_a_traced_tensor_is_refused_with_advice():
    def plate_model():
        with csvi.plate("data", len(X), subsample_size=8) as idx:
            csvi.sample("y", dist.Normal(csvi.param("m", 0.0), 1.0), obs=Y[idx])

    def draw_model():
        k = csvi.sample("k", dist.Categorical(logits=np.zeros(3)))
        csvi.sample("x", dist.Normal(LOCS[k], 1.0), obs=0.3)

    def draw_guide():
        csvi.sample("k", dist.Categorical(logits=csvi.param("logits", np.zeros(3))))

    for model, guide in ((plate_model, lambda: None), (draw_model, draw_guide)):
        fit(model, guide, (), 2, compiled=False)  # eager: NumPy indexing works
        with pytest.raises(RuntimeError, match="csvi.as_tensor"):
            fit(model, guide, (), 2, compiled=True)
