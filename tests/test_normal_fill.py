"""csvi's standard-normal draws (src_c/normal_fill.c): the ziggurat tables
against their generator and the ziggurat's equations, every site that draws
normals (NORMAL_RS, LOGNORMAL_RS, HALFNORMAL_RS, DRAW_NOISE, the families
and Predictive built on them) against scipy.stats by KS and moments, the
tail beyond |x| > 3.5 and beyond the ziggurat's r against the exact
probability, NumPy's own ziggurat on the same stream (same layout, so the
same values to rounding and the same bits consumed), and the draw's order
through broadcast iteration."""
import importlib.util
import os

import numpy as np
import pytest
import scipy.stats as st

import csvi
import csvi.distributions as dist
from csvi.distributions import draws
from csvi.infer import Predictive

KS_P = 1e-3
N = 200_000
TABLES_PY = os.path.join(os.path.dirname(__file__), os.pardir, "src_c", "normal_tables.py")
TABLES_H = os.path.join(os.path.dirname(__file__), os.pardir, "src_c", "csvi_normal_tables.h")


@pytest.fixture(autouse=True)
def seeded():
    csvi.set_rng_seed(3)


def load_generator():
    spec = importlib.util.spec_from_file_location("normal_tables", TABLES_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_header():
    """(r, k, w, f) as read from the C header."""
    text = open(TABLES_H).read()

    def table(name):
        body = text.split(f"{name}[256] = {{")[1].split("};")[0]
        return [item.strip() for item in body.replace("\n", " ").split(",") if item.strip()]

    r = float.fromhex(text.split("#define CSVI_ZIG_R ")[1].split()[0])
    k = np.array([int(x[len("UINT64_C("):-1]) for x in table("csvi_zig_k")])
    w = np.array([float.fromhex(x) for x in table("csvi_zig_w")])
    f = np.array([float.fromhex(x) for x in table("csvi_zig_f")])
    return r, k, w, f


def test_header_is_the_generators_output():
    assert load_generator().header_text() == open(TABLES_H).read()


def test_tables_satisfy_the_ziggurat_equations():
    """In float64 with scipy: every layer's area is v, the base strip with
    the tail too; k is each layer's share inside the next one up."""
    r, k, w, f = parse_header()
    x = w * 2.0 ** 52  # x[i] for i >= 1, the base strip's width for i = 0
    fr = np.exp(-0.5 * r * r)
    v = r * fr + np.sqrt(2 * np.pi) * st.norm.sf(r)  # r f(r) + int_r^inf f
    assert len(k) == len(w) == len(f) == 256
    assert x[255] == r and f[0] == 1.0
    np.testing.assert_allclose(f[1:], np.exp(-0.5 * x[1:] ** 2), rtol=1e-15)
    np.testing.assert_allclose(x[0] * fr, v, rtol=1e-14)
    np.testing.assert_allclose(x[1:] * (f[:-1] - f[1:]), v, rtol=1e-10)
    assert k[1] == 0 and np.all(np.diff(x[1:]) > 0)
    np.testing.assert_allclose(k[0], 2.0 ** 52 * r / x[0], rtol=1e-15)
    np.testing.assert_allclose(k[2:], 2.0 ** 52 * x[1:-1] / x[2:], rtol=1e-15)


def assert_standard_normal(z):
    """KS against N(0, 1) and the first four moments within ~5 standard errors."""
    z = np.ravel(z)
    n = z.size
    assert st.kstest(z, st.norm.cdf).pvalue > KS_P
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2 / n)
    assert abs(st.skew(z)) < 5 * np.sqrt(6 / n)
    assert abs(st.kurtosis(z)) < 5 * np.sqrt(24 / n)


@pytest.mark.parametrize("site", ["normal_rsample", "normal_sample", "lognormal", "halfnormal",
                                  "draw_noise", "mvn", "predictive"])
def test_every_site_draws_standard_normals(site):
    loc, scale = 0.5, 2.0
    if site == "normal_rsample":
        z = (dist.Normal(loc, scale).rsample((N,)).numpy() - loc) / scale
    elif site == "normal_sample":
        z = (dist.Normal(np.full(4, loc), scale).sample((N // 4,)).numpy() - loc) / scale
    elif site == "lognormal":
        z = (np.log(dist.LogNormal(loc, scale).rsample((N,)).numpy()) - loc) / scale
    elif site == "halfnormal":
        h = dist.HalfNormal(scale).rsample((N,)).numpy() / scale
        assert h.min() >= 0.0
        z = h * np.where(np.arange(N) % 2, 1.0, -1.0)  # a symmetric law from |z|
    elif site == "draw_noise":
        z = draws.standard_normal((N,)).numpy()
    elif site == "mvn":  # eps @ L^T, whitened back
        L = np.array([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-1.0, 0.3, 0.7]])
        x = dist.MultivariateNormal(np.zeros(3), scale_tril=L).rsample((N // 3,)).numpy()
        z = np.linalg.solve(L, x.T)
    else:
        def model():
            with csvi.plate("n", 1000):
                csvi.sample("z", dist.Normal(loc, scale))
        z = (Predictive(model, num_samples=N // 1000, parallel=True)()["z"] - loc) / scale
    assert_standard_normal(z)


def test_student_t_on_normal_noise_follows_its_law():
    x = dist.StudentT(5.0, 1.0, 3.0).rsample((N,)).numpy()
    assert st.kstest(x, st.t(5.0, 1.0, 3.0).cdf).pvalue > KS_P


def test_tails_have_the_exact_frequency():
    """Beyond |x| > 3.5 (the last layers and the tail) and beyond r (the
    tail method alone): counts within 5 standard deviations of the exact
    binomial mean, and the tail's own shape by KS."""
    r = parse_header()[0]
    n = 4_000_000
    z = np.abs(draws.standard_normal((n,)).numpy())
    for c in (3.5, r):
        p = 2 * st.norm.sf(c)
        assert abs((z > c).sum() - n * p) < 5 * np.sqrt(n * p * (1 - p))
    tail = z[z > r]
    assert st.kstest(tail, lambda t: 1 - st.norm.sf(t) / st.norm.sf(r)).pvalue > KS_P
    layer = z[(z > 1.0) & (z < 1.1)]  # a stretch of wedges, conditional law
    a, b = st.norm.cdf(1.0), st.norm.cdf(1.1)
    assert st.kstest(layer, lambda t: (st.norm.cdf(t) - a) / (b - a)).pvalue > KS_P


@pytest.mark.parametrize("n", [0, 1, 7, 255, 256, 1001, 100_003])
def test_numpys_ziggurat_on_the_same_stream(n):
    """NumPy's random_standard_normal has the same layout with its own
    tables (which differ in the last bits): the same seed gives the same
    values to ~1e-14 and leaves the generator in the same state."""
    csvi.set_rng_seed(11)
    x = draws.standard_normal((n,)).numpy()
    ref = np.random.Generator(np.random.PCG64(11))
    expected = ref.standard_normal(n)
    assert x.shape == (n,)
    np.testing.assert_allclose(x, expected, rtol=1e-13, atol=0)
    assert csvi._core.get_generator().bit_generator.state == ref.bit_generator.state


def test_draws_do_not_depend_on_how_they_are_split():
    csvi.set_rng_seed(5)
    whole = draws.standard_normal((1000,)).numpy()
    csvi.set_rng_seed(5)
    parts = [draws.standard_normal((k,)).numpy() for k in (1, 300, 0, 699)]
    assert np.array_equal(whole.view(np.uint64), np.concatenate(parts).view(np.uint64))


def test_seed_reproduces_the_draws():
    csvi.set_rng_seed(8)
    a = dist.Normal(0.0, 1.0).rsample((5000,)).numpy()
    csvi.set_rng_seed(8)
    b = dist.Normal(0.0, 1.0).rsample((5000,)).numpy()
    assert np.array_equal(a.view(np.uint64), b.view(np.uint64))


@pytest.mark.parametrize("sample_shape", [(), (2,)])
def test_broadcast_draws_take_the_stream_in_output_order(sample_shape):
    """A loc (3, 1) against a scale (1, 4): the iterator walks the inputs
    with zero strides; element i of the output takes the i-th draw, as the
    noise op's, and the scale's gradient sums its noise over the broadcast."""
    loc = csvi.tensor(np.array([[0.0], [1.0], [-2.0]]), requires_grad=True)
    scale = csvi.tensor(np.array([[0.5, 1.0, 2.0, 4.0]]), requires_grad=True)
    shape = sample_shape + (3, 4)
    csvi.set_rng_seed(2)
    eps = draws.standard_normal(shape).numpy()
    for family, expect in [
        (lambda: dist.Normal(loc, scale), loc.numpy() + scale.numpy() * eps),
        (lambda: dist.HalfNormal(scale.expand((3, 4))), scale.numpy() * np.abs(eps)),
    ]:
        csvi.set_rng_seed(2)
        y = family().rsample(sample_shape)
        assert y.shape == shape
        assert np.array_equal(y.numpy(), expect)
    csvi.set_rng_seed(2)
    y = dist.LogNormal(loc, scale).rsample(sample_shape)
    # exp may be libmvec's vector variant (the loop now vectorizes): last bits only
    np.testing.assert_allclose(y.numpy(), np.exp(loc.numpy() + scale.numpy() * eps), rtol=1e-14)
    csvi.set_rng_seed(2)
    y = dist.Normal(loc, scale).rsample(sample_shape)
    y.sum().backward()
    axes = tuple(range(len(sample_shape)))
    np.testing.assert_allclose(scale.grad, eps.sum(axis=axes + (len(shape) - 2,))[None, :],
                               rtol=1e-12)
    np.testing.assert_allclose(loc.grad, np.full((3, 1), 4.0 * (2 if sample_shape else 1)))
