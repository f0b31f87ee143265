"""Plates as Pyro's tutorials write them: arbitrary size, subsampling given
only in the guide, one plate object entered several times, sequential
subsampling, param subsampling by event_dim, and the tensor-shapes
tutorial's shape assertions."""
import math

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints, handlers
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam


def run_loss(model, guide, *args):
    """The tutorial's `test_model` helper: one ELBO evaluation must succeed."""
    return Trace_ELBO().loss(model, guide, *args)


def traced(fn, *args, seed=0):
    return handlers.trace(handlers.seed(fn, rng_seed=seed)).get_trace(*args)


# ---- arbitrary size ------------------------------------------------------------

def test_plate_without_size_takes_its_size_from_the_sites(fresh_store):
    seen = {}

    def model():
        with csvi.plate("data") as idx:
            seen["idx"] = idx
            csvi.sample("x", dist.Normal(np.zeros(4), 1.0))

    tr = traced(model)
    assert seen["idx"] is None
    site = tr.nodes["x"]
    assert site.value.shape == (4,)
    assert site.scale == 1.0
    assert [f.name for f in site.cond_indep_stack] == ["data"]
    assert site.cond_indep_stack[0].dim == -1


def test_plate_without_size_does_not_broadcast_a_scalar_site(fresh_store):
    def model():
        with csvi.plate("data"):
            return csvi.sample("x", dist.Normal(0.0, 1.0))

    assert traced(model).nodes["x"].value.shape == ()


def test_plate_without_size_rejects_subsample_size():
    with pytest.raises(ValueError, match="plate 'p'.*subsample_size needs a size"):
        csvi.plate("p", subsample_size=3)


# ---- subsampling given only in the guide ------------------------------------------

def test_subsample_size_only_in_guide_reaches_the_model(fresh_store):
    data = np.arange(10.0)

    def model(data):
        loc = csvi.sample("loc", dist.Normal(0.0, 10.0))
        with csvi.plate("data", len(data)) as idx:
            csvi.sample("obs", dist.Normal(loc, 1.0), obs=csvi.as_tensor(data)[idx])

    def guide(data):
        m = csvi.param("m", 0.0)
        csvi.sample("loc", dist.Normal(m, 1.0))
        with csvi.plate("data", len(data), subsample_size=4):
            pass

    guide_tr = traced(guide, data)
    model_tr = handlers.trace(handlers.replay(model, trace=guide_tr)).get_trace(data)
    obs = model_tr.nodes["obs"]
    guide_idx = np.asarray(guide_tr.nodes["data"].value)
    assert np.array_equal(np.asarray(model_tr.nodes["data"].value), guide_idx)
    assert obs.value.shape == (4,)
    np.testing.assert_array_equal(np.asarray(obs.value), data[guide_idx])
    assert obs.scale == pytest.approx(10 / 4)
    assert math.isfinite(run_loss(model, guide, data))


def test_subsample_only_in_guide_gives_an_unbiased_loss(fresh_store):
    """The scaled minibatch loss averages to the full-data loss."""
    data = np.linspace(-1.0, 2.0, 8)

    def model(data, subsample_size=None):
        with csvi.plate("data", len(data)) as idx:
            csvi.sample("obs", dist.Normal(0.5, 1.0), obs=csvi.as_tensor(data)[idx])

    def guide(data, subsample_size=None):
        with csvi.plate("data", len(data), subsample_size=subsample_size):
            pass

    full = run_loss(model, guide, data, None)
    csvi.set_rng_seed(1)
    mini = np.mean([run_loss(model, guide, data, 2) for _ in range(4000)])
    assert mini == pytest.approx(full, rel=0.02)


def test_subsample_size_mismatch_between_model_and_guide_names_the_plate(fresh_store):
    def model():
        with csvi.plate("data", 10, subsample_size=3):
            pass

    def guide():
        with csvi.plate("data", 10, subsample_size=4):
            pass

    guide_tr = traced(guide)
    with pytest.raises(ValueError, match="plate 'data'.*subsample_size is 3.*length 4"):
        handlers.replay(model, trace=guide_tr)()


# ---- one plate object, entered several times ----------------------------------------

def test_plate_object_entered_several_times_and_combined(fresh_store):
    def model():
        x_axis = csvi.plate("x_axis", 3, dim=-2)
        y_axis = csvi.plate("y_axis", 2, dim=-3)
        with x_axis:
            x = csvi.sample("x", dist.Normal(0.0, 1.0))
        with y_axis:
            y = csvi.sample("y", dist.Normal(0.0, 1.0))
        with x_axis, y_axis:
            xy = csvi.sample("xy", dist.Normal(0.0, 1.0))
        return x, y, xy

    tr = traced(model)
    assert tr.nodes["x"].value.shape == (3, 1)
    assert tr.nodes["y"].value.shape == (2, 1, 1)
    assert tr.nodes["xy"].value.shape == (2, 3, 1)
    assert [n for n, s in tr.nodes.items() if s.type == "subsample"] == ["x_axis", "y_axis"]
    assert math.isfinite(run_loss(model, model))


def test_plate_nested_in_itself_is_an_error():
    p = csvi.plate("p", 3)
    with p:
        with pytest.raises(ValueError, match="plate 'p' is already active"):
            with p:
                pass


def test_explicit_dim_clash_names_both_plates():
    with csvi.plate("a", 3, dim=-1):
        with pytest.raises(ValueError, match="plate 'b': dim -1 is already used by the "
                                             "enclosing plate 'a'"):
            with csvi.plate("b", 4, dim=-1):
                pass


# ---- sequential plates ---------------------------------------------------------------

def test_sequential_plate_subsample_iterates_the_subsample_with_scaling(fresh_store):
    data = np.arange(20.0)
    seen = []

    def model():
        for i in csvi.plate("data_loop", len(data), subsample_size=5):
            seen.append(i)
            csvi.sample(f"obs_{i}", dist.Normal(0.0, 1.0), obs=data[i])

    tr = traced(model)
    assert len(seen) == 5 and len(set(seen)) == 5
    assert all(isinstance(i, int) and 0 <= i < 20 for i in seen)
    for i in seen:
        site = tr.nodes[f"obs_{i}"]
        assert site.scale == pytest.approx(4.0)
        assert site.cond_indep_stack[0].dim is None
    # the indices are the recorded subsample site
    assert sorted(np.asarray(tr.nodes["data_loop"].value).tolist()) == sorted(seen)


def test_sequential_plate_without_subsampling_is_unscaled(fresh_store):
    def model():
        for i in csvi.plate("loop", 3):
            csvi.sample(f"x_{i}", dist.Normal(0.0, 1.0), obs=0.0)

    tr = traced(model)
    assert [tr.nodes[f"x_{i}"].scale for i in range(3)] == [1.0, 1.0, 1.0]


# ---- params subsampled by event_dim ---------------------------------------------------

def test_param_with_event_dim_is_subsampled_inside_a_plate(fresh_store):
    init = np.arange(12.0).reshape(6, 2)

    def guide():
        with csvi.plate("data", 6, subsample_size=3):
            loc = csvi.param("loc", init, event_dim=1)
            csvi.sample("z", dist.Normal(loc, 1.0).to_event(1))

    tr = traced(guide)
    idx = np.asarray(tr.nodes["data"].value)
    np.testing.assert_array_equal(tr.nodes["loc"].value.numpy(), init[idx])
    np.testing.assert_array_equal(np.asarray(tr.nodes["z"].fn.mean), init[idx])


def test_param_with_wrong_size_for_its_plate_names_it(fresh_store):
    def guide():
        with csvi.plate("data", 6, subsample_size=3):
            csvi.param("loc", np.zeros((5, 2)), event_dim=1)

    with pytest.raises(ValueError, match="param 'loc'.*size 5.*plate 'data' of size 6"):
        traced(guide)


def test_subsampled_param_trains_only_the_rows_drawn(fresh_store):
    def model():
        with csvi.plate("data", 6):
            csvi.sample("z", dist.Normal(0.0, 1.0))

    def guide():
        with csvi.plate("data", 6, subsample_size=2):
            loc = csvi.param("loc", np.zeros(6), event_dim=0)
            csvi.sample("z", dist.Normal(loc, 1.0))

    svi = SVI(model, guide, Adam({"lr": 0.1}), Trace_ELBO())
    svi.step()
    moved = np.flatnonzero(csvi.get_param_store()["loc"].numpy() != 0.0)
    assert len(moved) == 2


# ---- the tensor-shapes tutorial ----------------------------------------------------------

def test_tensor_shapes_tutorial_distribution_shapes():
    d = dist.Bernoulli(0.5)
    assert d.batch_shape == () and d.event_shape == ()
    x = d.sample()
    assert x.shape == () and d.log_prob(x).shape == ()

    d = dist.Bernoulli(0.5 * np.ones((3, 4)))
    assert d.batch_shape == (3, 4) and d.event_shape == ()
    x = d.sample()
    assert x.shape == (3, 4) and d.log_prob(x).shape == (3, 4)

    d = dist.Bernoulli(np.array([0.1, 0.2, 0.3, 0.4])).expand([3, 4])
    assert d.batch_shape == (3, 4) and d.event_shape == ()
    x = d.sample()
    assert x.shape == (3, 4) and d.log_prob(x).shape == (3, 4)

    d = dist.Bernoulli(0.5 * np.ones((3, 4))).to_event(1)
    assert d.batch_shape == (3,) and d.event_shape == (4,)
    x = d.sample()
    assert x.shape == (3, 4) and d.log_prob(x).shape == (3,)


def tutorial_model1():
    a = csvi.sample("a", dist.Normal(0, 1))
    b = csvi.sample("b", dist.Normal(np.zeros(2), 1).to_event(1))
    with csvi.plate("c_plate", 2):
        c = csvi.sample("c", dist.Normal(np.zeros(2), 1))
    with csvi.plate("d_plate", 3):
        d = csvi.sample("d", dist.Normal(np.zeros((3, 4, 5)), 1).to_event(2))
    assert a.shape == ()
    assert b.shape == (2,)
    assert c.shape == (2,)
    assert d.shape == (3, 4, 5)

    x_axis = csvi.plate("x_axis", 3, dim=-2)
    y_axis = csvi.plate("y_axis", 2, dim=-3)
    with x_axis:
        x = csvi.sample("x", dist.Normal(0, 1))
    with y_axis:
        y = csvi.sample("y", dist.Normal(0, 1))
    with x_axis, y_axis:
        xy = csvi.sample("xy", dist.Normal(0, 1))
        z = csvi.sample("z", dist.Normal(0, 1).expand([5]).to_event(1))
    assert x.shape == (3, 1)
    assert y.shape == (2, 1, 1)
    assert xy.shape == (2, 3, 1)
    assert z.shape == (2, 3, 1, 5)


def test_tensor_shapes_tutorial_model1(fresh_store):
    assert math.isfinite(run_loss(tutorial_model1, tutorial_model1))


def test_tensor_shapes_tutorial_format_shapes(fresh_store):
    tr = traced(tutorial_model1)
    tr.compute_log_prob()
    table = tr.format_shapes()
    lines = table.splitlines()
    assert lines[0].strip() == "Trace Shapes:"
    assert lines[1].strip() == "Param Sites:"
    assert lines[2].strip() == "Sample Sites:"
    rows = {line.split()[0] + (" " + line.split()[1] if line.split()[1] == "dist" else ""):
            line.split() for line in lines[3:]}
    assert rows["d dist"] == ["d", "dist", "3", "|", "4", "5"]
    assert rows["z dist"] == ["z", "dist", "2", "3", "1", "|", "5"]
    # value and log_prob rows follow their site's dist row
    i = next(k for k, line in enumerate(lines) if line.split()[:2] == ["z", "dist"])
    assert lines[i + 1].split() == ["value", "2", "3", "1", "|", "5"]
    assert lines[i + 2].split() == ["log_prob", "2", "3", "1", "|"]
    # right-aligned columns: every '|' sits in the same column
    bars = {line.index("|") for line in lines[3:]}
    assert len(bars) == 1


def test_format_shapes_lists_params(fresh_store):
    def guide():
        csvi.param("w", np.zeros((2, 3)))
        csvi.sample("s", dist.Normal(0.0, 1.0))

    table = traced(guide).format_shapes()
    assert ["w", "2", "3"] in [line.split() for line in table.splitlines()]
    assert handlers.Trace().format_shapes() == "Trace Shapes:"


def test_tensor_shapes_tutorial_model2_subsampled_data_and_params(fresh_store):
    data = np.arange(100.0)

    def model2():
        mean = csvi.param("mean", np.zeros(len(data)))
        with csvi.plate("data", len(data), subsample_size=10) as ind:
            assert len(ind) == 10
            batch = data[ind]
            mean_batch = mean[ind]
            x = csvi.sample("x", dist.Normal(mean_batch, 1), obs=batch)
            assert len(x) == 10

    assert math.isfinite(run_loss(model2, lambda: None))


def test_tensor_shapes_tutorial_broadcasting_model_without_enumeration(fresh_store):
    width, height = 8, 10
    sparse_pixels = [(3, 2), (3, 5), (3, 9), (7, 1)]

    def fun(observe):
        p_x = csvi.param("p_x", 0.1, constraint=constraints.unit_interval)
        p_y = csvi.param("p_y", 0.1, constraint=constraints.unit_interval)
        x_axis = csvi.plate("x_axis", width, dim=-2)
        y_axis = csvi.plate("y_axis", height, dim=-1)
        with x_axis:
            x_active = csvi.sample("x_active", dist.Bernoulli(p_x))
        with y_axis:
            y_active = csvi.sample("y_active", dist.Bernoulli(p_y))
        assert x_active.shape == (width, 1)
        assert y_active.shape == (height,)
        p = 0.1 + 0.5 * x_active * y_active
        assert p.shape == (width, height)
        dense_pixels = np.zeros(np.broadcast_shapes(p.shape, (width, height)))
        for x, y in sparse_pixels:
            dense_pixels[..., x, y] = 1
        assert dense_pixels.shape == (width, height)
        with x_axis, y_axis:
            if observe:
                csvi.sample("pixels", dist.Bernoulli(p), obs=dense_pixels)

    assert math.isfinite(run_loss(lambda: fun(True), lambda: fun(False)))


# ---- bad input at the primitives ------------------------------------------------------

def test_sample_of_something_not_a_distribution_names_the_site():
    with pytest.raises(TypeError, match="sample site 'x': got the class Normal"):
        csvi.sample("x", dist.Normal)
    with pytest.raises(TypeError, match="sample site 'x': expected a distribution"):
        with handlers.trace():
            csvi.sample("x", 3.0)


def test_plate_subsample_must_be_integer_indices_in_range():
    with pytest.raises(ValueError, match="plate 'p': subsample must hold nonnegative integer"):
        csvi.plate("p", 4, subsample=[0.5, 1.5])
    with pytest.raises(ValueError, match="plate 'p': subsample index 7 is out of range"):
        csvi.plate("p", 4, subsample=[1, 7])
    assert np.array_equal(csvi.plate("p", 4, subsample=[3, 1])._indices, [3, 1])


def test_factor_errors_name_the_factor():
    with pytest.raises((TypeError, ValueError), match="factor 'penalty'"):
        with handlers.trace():
            csvi.factor("penalty", "abc")
