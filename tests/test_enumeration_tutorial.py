"""Pyro's enumeration tutorial (tutorial/source/enumeration.ipynb), its cells
written once over a library namespace: csvi's shapes at every site equal
Pyro's (run side by side when pyro is installed), and the enumerated losses
equal brute-force sums."""
import itertools
import types

import numpy as np
import pytest
from scipy.special import logsumexp

import csvi
import csvi.distributions as cdist
from csvi import handlers
from csvi.distributions import constraints as cconstraints
from csvi.infer import TraceEnum_ELBO as CTraceEnum, config_enumerate as cconfig, infer_discrete
from csvi.infer.autoguide import AutoNormal as CAutoNormal
from csvi.ops.indexing import Vindex as CVindex


def csvi_namespace():
    return types.SimpleNamespace(
        pyro=csvi, dist=cdist, poutine=handlers, constraints=cconstraints, TraceEnum_ELBO=CTraceEnum,
        config_enumerate=cconfig, AutoNormal=CAutoNormal, Vindex=CVindex,
        ones=np.ones, positive=lambda *s: np.exp(np.random.default_rng(0).normal(size=s)),
        zeros_long=lambda *s: np.zeros(s, dtype=np.int64), array=np.asarray)


def pyro_namespace():
    torch = pytest.importorskip("torch")
    pyro = pytest.importorskip("pyro")
    import pyro.distributions as dist
    from pyro import poutine
    from pyro.infer import TraceEnum_ELBO, config_enumerate
    from pyro.infer.autoguide import AutoNormal
    from pyro.ops.indexing import Vindex
    from torch.distributions import constraints
    return types.SimpleNamespace(
        pyro=pyro, dist=dist, poutine=poutine, constraints=constraints,
        TraceEnum_ELBO=TraceEnum_ELBO, config_enumerate=config_enumerate,
        AutoNormal=AutoNormal, Vindex=Vindex, ones=lambda *s: torch.ones(*s),
        positive=lambda *s: torch.tensor(np.exp(np.random.default_rng(0).normal(size=s)),
                                         dtype=torch.float32),
        zeros_long=lambda *s: torch.zeros(*s, dtype=torch.long),
        array=lambda a: torch.tensor(np.asarray(a)))


def chain_cell(L, shapes):
    @L.config_enumerate
    def model():
        p = L.pyro.param("p", L.positive(3, 3), constraint=L.constraints.simplex)
        x = L.pyro.sample("x", L.dist.Categorical(p[0]))
        y = L.pyro.sample("y", L.dist.Categorical(p[x]))
        z = L.pyro.sample("z", L.dist.Categorical(p[y]))
        shapes.append(("xyz", tuple(x.shape), tuple(y.shape), tuple(z.shape)))
        return x, y, z

    return model, lambda: None, 0, ()


def vindex_cell(L, shapes):
    @L.config_enumerate
    def model():
        p = L.pyro.param("p", L.positive(5, 4, 3, 2), constraint=L.constraints.simplex)
        x = L.pyro.sample("x", L.dist.Categorical(L.ones(4)))
        y = L.pyro.sample("y", L.dist.Categorical(L.ones(3)))
        with L.pyro.plate("z_plate", 5):
            p_xy = L.Vindex(p)[..., x, y, :]
            z = L.pyro.sample("z", L.dist.Categorical(p_xy))
        shapes.append(("vindex", tuple(x.shape), tuple(y.shape), tuple(p_xy.shape),
                       tuple(z.shape)))

    return model, lambda: None, 1, ()


def plates_cell(L, shapes):
    @L.config_enumerate
    def model():
        data_plate = L.pyro.plate("data_plate", 6, dim=-1)
        feature_plate = L.pyro.plate("feature_plate", 5, dim=-2)
        component_plate = L.pyro.plate("component_plate", 4, dim=-1)
        with feature_plate:
            with component_plate:
                p = L.pyro.sample("p", L.dist.Dirichlet(L.ones(3)))
        with data_plate:
            c = L.pyro.sample("c", L.dist.Categorical(L.ones(4)))
            with feature_plate as vdx:
                pc = L.Vindex(p)[vdx[..., None], c, :]
                x = L.pyro.sample("x", L.dist.Categorical(pc), obs=L.zeros_long(5, 6))
        shapes.append(("plates", tuple(p.shape), tuple(c.shape), tuple(vdx.shape),
                       tuple(pc.shape), tuple(x.shape)))

    def guide():
        feature_plate = L.pyro.plate("feature_plate", 5, dim=-2)
        component_plate = L.pyro.plate("component_plate", 4, dim=-1)
        with feature_plate, component_plate:
            L.pyro.sample("p", L.dist.Dirichlet(L.ones(3)))

    return model, guide, 2, ()


def hmm_cell(L, shapes, markov):
    data = L.array([0, 3, 1, 2, 2, 0, 1, 3, 3, 0])

    def hmm_model(data, data_dim, hidden_dim=10):
        with L.pyro.plate("hidden_state", hidden_dim):
            transition = L.pyro.sample("transition", L.dist.Dirichlet(0.5 * L.ones(hidden_dim)))
            emission = L.pyro.sample("emission", L.dist.Dirichlet(0.5 * L.ones(data_dim)))
        x = 0
        steps = enumerate(data)
        for t, y in (L.pyro.markov(steps) if markov else steps):
            x = L.pyro.sample(f"x_{t}", L.dist.Categorical(transition[x]),
                              infer={"enumerate": "parallel"})
            L.pyro.sample(f"y_{t}", L.dist.Categorical(emission[x]), obs=y)
            shapes.append((t, tuple(x.shape)))

    guide = L.AutoNormal(L.poutine.block(hmm_model, expose=["transition", "emission"]))
    return hmm_model, guide, 1, (data, 4)


CELLS = {"chain": chain_cell, "vindex": vindex_cell, "plates": plates_cell,
         "hmm": lambda L, s: hmm_cell(L, s, markov=False),
         "hmm_markov": lambda L, s: hmm_cell(L, s, markov=True)}


def enumerated_shapes(L, cell):
    L.pyro.clear_param_store()
    L.pyro.set_rng_seed(0)
    shapes = []
    model, guide, nesting, args = CELLS[cell](L, shapes)
    L.TraceEnum_ELBO(max_plate_nesting=nesting).loss(model, guide, *args)
    return shapes


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_site_shapes_equal_pyros(fresh_store, cell):
    expected = enumerated_shapes(pyro_namespace(), cell)
    assert enumerated_shapes(csvi_namespace(), cell)[-len(expected):] == expected


def test_markov_hmm_shapes_alternate_two_dims(fresh_store):
    shapes = enumerated_shapes(csvi_namespace(), "hmm_markov")[-10:]
    assert [s for _, s in shapes] == [(10, 1), (10, 1, 1)] * 5


def test_chain_loss_equals_the_brute_force_sum(fresh_store):
    L = csvi_namespace()
    model, guide, _, _ = chain_cell(L, [])
    loss = CTraceEnum(max_plate_nesting=0).loss(model, guide)
    p = np.asarray(csvi.param("p"))
    total = logsumexp([np.log(p[0, x] * p[x, y] * p[y, z])
                       for x, y, z in itertools.product(range(3), repeat=3)])
    assert loss == pytest.approx(-total, abs=1e-12)
    x, y, z = infer_discrete(model, first_available_dim=-1, temperature=0)()
    best = max(itertools.product(range(3), repeat=3),
               key=lambda v: p[0, v[0]] * p[v[0], v[1]] * p[v[1], v[2]])
    assert (int(x), int(y), int(z)) == best
