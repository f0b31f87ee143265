"""The ops behind the existing families' cdf/icdf (src_c/families.def):
ndtri, arctan and tan against SciPy/NumPy, their gradients against finite
differences, and NumPy/SciPy ufunc dispatch on a Tensor."""
import numpy as np
import pytest
import scipy.special as sp

import csvi
from gradcheck import assert_grads_match


def test_ndtri_matches_scipy_to_the_tails():
    p = np.concatenate([np.logspace(-300, -1, 300), np.linspace(0.01, 0.99, 99),
                        1.0 - np.logspace(-16, -1, 50)])
    x, ref = csvi.ndtri(p).numpy(), sp.ndtri(p)
    np.testing.assert_allclose(x, ref, rtol=1e-13, atol=1e-15)
    edges = csvi.ndtri(np.array([0.0, 1.0, 0.5, -0.1, 1.1, np.nan])).numpy()
    assert edges[0] == -np.inf and edges[1] == np.inf and edges[2] == 0.0
    assert np.isnan(edges[3:]).all()
    # ndtr inverts it
    np.testing.assert_allclose(csvi.ndtr(csvi.ndtri(p[300:399])).numpy(), p[300:399],
                               rtol=1e-14)


@pytest.mark.parametrize("name, x, ref", [
    ("arctan", np.linspace(-30.0, 30.0, 61), np.arctan),
    ("tan", np.linspace(-1.5, 1.5, 61), np.tan),
])
def test_arctan_and_tan_match_numpy(name, x, ref):
    np.testing.assert_allclose(getattr(csvi, name)(x).numpy(), ref(x), rtol=1e-15, atol=1e-16)


@pytest.mark.parametrize("name, x", [
    ("ndtri", np.array([1e-10, 0.01, 0.3, 0.5, 0.8, 0.999])),
    ("arctan", np.array([-20.0, -1.0, 0.0, 0.5, 3.0])),
    ("tan", np.array([-1.4, -0.5, 0.0, 0.7, 1.2])),
])
def test_gradients_match_finite_differences(name, x):
    assert_grads_match(getattr(csvi, name), [x[1:]], eps=1e-6, rtol=1e-6)
    if name == "ndtri":  # far in the tail, with a step to match
        assert_grads_match(csvi.ndtri, [x[:1]], eps=1e-13, rtol=1e-4)


def test_numpy_and_scipy_ufuncs_record_the_ops():
    t = csvi.tensor(np.array([0.2, 0.6]), requires_grad=True)
    for fn, ref in [(np.arctan, np.arctan), (np.tan, np.tan), (sp.ndtri, sp.ndtri)]:
        out = fn(t)
        assert isinstance(out, csvi.Tensor) and out.requires_grad
        np.testing.assert_allclose(out.numpy(), ref(t.numpy()), rtol=1e-14)
