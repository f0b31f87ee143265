"""The op registries (src_c/*.def) are the one list of ops: the built
extension must hold exactly their lines, columns included, and what the
columns claim must hold when the ops run."""
import pathlib
import re

import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import _core

SRC_C = pathlib.Path(__file__).resolve().parents[1] / "src_c"
LINE = re.compile(r"^CSVI_OP\((\w+), (\w+), (\w+), (\w+), (\w+)\)$", re.M)


def registry_lines():
    if not SRC_C.is_dir():
        pytest.skip("needs the source tree's src_c/")
    return [m.groups() for path in sorted(SRC_C.glob("*.def")) for m in LINE.finditer(path.read_text())]


def test_every_def_line_is_in_the_extension_with_its_columns():
    lines = registry_lines()
    table = _core.op_registry()
    assert sorted(name for name, *_ in lines) == sorted(table)
    for name, _, _, flags, aux in lines:
        assert table[name][1:] == (flags, aux), name
    assert _core.OPCODES == {name: code for name, (code, *_) in table.items()}


def generator_moved(fn):
    """Whether fn() reads csvi's bit generator."""
    draws = []
    for run in (fn, lambda: None):
        csvi.set_rng_seed(5)
        run()
        draws.append(csvi.sample("probe", dist.Normal(0.0, 1.0)).item())
    return draws[0] != draws[1]


FAMILIES = [dist.Normal(0.5, 2.0), dist.LogNormal(0.0, 1.0), dist.HalfNormal(1.0),
            dist.HalfCauchy(1.0), dist.Exponential(2.0), dist.Uniform(0.0, 2.0),
            dist.Gamma(2.0, 1.0), dist.Beta(2.0, 3.0), dist.Bernoulli(0.3),
            dist.Bernoulli(logits=0.3), dist.Categorical(np.array([0.2, 0.8])), dist.Poisson(2.0)]


@pytest.mark.parametrize("d", FAMILIES, ids=repr)
def test_draws_flag_says_which_ops_read_the_generator(fresh_store, d):
    names = {code: name for name, code in _core.OPCODES.items()}
    table = _core.op_registry()
    assert table[names[d._rs_op]][1] == "CSVI_DRAWS" and generator_moved(d.sample)
    value = d.sample()
    assert table[names[d._lp_op]][1] == "0" and not generator_moved(lambda: d.log_prob(value))


def test_subsample_is_a_draw(fresh_store):
    assert _core.op_registry()["SUBSAMPLE"][1] == "CSVI_DRAWS"
    assert generator_moved(lambda: _core.draw_subsample(100, 10))
