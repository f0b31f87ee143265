"""csvi's own special functions (src_c/special.c) against scipy.special, and
against mpmath at 40 digits where scipy's betaln itself loses digits."""
import mpmath
import numpy as np
import pytest
import scipy.special as sp

from csvi import _core

POSITIVE = np.concatenate([np.logspace(-300, -1, 60), np.linspace(0.05, 30, 600),
                           np.logspace(1.5, 300, 60), [1.0, 2.0, 0.5, 1.4616321449683622]])


def test_lgamma_matches_scipy():
    for x in np.concatenate([POSITIVE, -POSITIVE[(POSITIVE % 1 != 0) & (POSITIVE < 50)]]):
        ours, ref = _core.special("lgamma", x), sp.gammaln(x)
        assert ours == pytest.approx(ref, rel=1e-13, abs=1e-15), x


def test_digamma_matches_scipy():
    # absolute near the root at 1.4616..., where psi crosses zero
    for x in np.concatenate([POSITIVE, [-0.5, -1.5, -2.25, -10.3]]):
        ours, ref = _core.special("digamma", x), sp.psi(x)
        assert ours == pytest.approx(ref, rel=1e-13, abs=1e-15), x


def test_digamma_edges():
    assert np.isnan(_core.special("digamma", 0.0))
    assert np.isnan(_core.special("digamma", -3.0))
    assert np.isnan(_core.special("digamma", np.nan))
    assert _core.special("digamma", np.inf) == np.inf


@pytest.mark.parametrize("b", [1e-3, 0.5, 1.0, 7.3, 250.0])
def test_betaln_matches_high_precision_including_lopsided_arguments(b):
    mpmath.mp.dps = 40
    for a in np.concatenate([np.logspace(-3, 3, 40), np.logspace(3, 12, 30)]):
        ref = float(mpmath.log(mpmath.beta(mpmath.mpf(a), mpmath.mpf(b))))
        for x, y in ((a, b), (b, a)):
            assert _core.special("betaln", x, y) == pytest.approx(ref, rel=1e-13, abs=1e-14), (x, y)
