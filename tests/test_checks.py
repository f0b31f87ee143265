"""first_outside (src_c/checks.c): its blockwise vectorized pass (blocks of
1,024 elements, 32 lanes each) must find the same first violation as an
element-by-element scan, wherever in which block or lane a NaN, an infinity
or an out-of-bounds value sits; and a gathered Tensor, checked through its
smaller source, must get the answer its own values give."""
import numpy as np
import pytest

from csvi import _core

BOUNDS = [(-np.inf, np.inf), (0.0, np.inf), (0.0, 1.0), (-1.0, 1.0)]
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0, 2.0, -2.0, 1e300]


def reference(x, lo, hi, lo_open, hi_open):
    with np.errstate(invalid="ignore"):
        ok = ((x > lo) if lo_open else (x >= lo)) & ((x < hi) if hi_open else (x <= hi))
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else -1


@pytest.mark.parametrize("lo,hi", BOUNDS)
@pytest.mark.parametrize("lo_open,hi_open", [(False, False), (True, True), (True, False),
                                             (False, True)])
def test_first_outside_matches_a_scan(lo, hi, lo_open, hi_open):
    rng = np.random.default_rng(0)
    for n in [0, 1, 7, 31, 32, 33, 255, 700, 1023, 1024, 1025, 2100]:
        for _ in range(20):
            x = rng.uniform(0.05, 0.95, n)
            for _ in range(rng.integers(0, 4)):  # a few specials anywhere
                if n:
                    x[rng.integers(n)] = SPECIAL[rng.integers(len(SPECIAL))]
            assert _core.first_outside(x, lo, hi, lo_open, hi_open) == \
                reference(x, lo, hi, lo_open, hi_open)


def test_an_allowed_infinity_does_not_hide_a_later_violation():
    # the first block holds +inf (allowed by a closed upper end at inf): the
    # exact rescan of that block finds nothing, and the NaN in a later block
    # must still be found
    x = np.full(3000, 0.5)
    x[3] = np.inf
    x[2900] = np.nan
    assert _core.first_outside(x, 0.0, np.inf) == 2900
    x[2900] = -0.5
    assert _core.first_outside(x, 0.0, np.inf) == 2900
    x[2900] = 0.5
    assert _core.first_outside(x, 0.0, np.inf) == -1


def test_integer_checks_whole_numbers():
    x = np.array([0.0, 1.0, 2.0, 2.5, 3.0])
    assert _core.first_outside(x, 0.0, np.inf, False, False, True) == 3
    assert _core.first_outside(x[:3], 0.0, np.inf, False, False, True) == -1


def gathered(source, index):
    """source[index] recorded on a live tape (as a model's `a[group]` is)."""
    tape = _core.Tape(record_all=True)
    with _core.recording(tape):
        a = _core.Tensor(source, requires_grad=True)
        return tape, a[np.asarray(index)]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_a_gathered_tensor_is_checked_through_its_source_with_the_same_answer(bad):
    # IntervalCheck reads the GATHER's smaller source first; when that has a
    # violation the gathered values may not (it was not picked), so the
    # answer must still be the gathered tensor's own first violation
    positive = _core.IntervalCheck(0.0, np.inf, True, True)
    rng = np.random.default_rng(1)
    source = rng.uniform(0.5, 2.0, 50)
    index = np.repeat(np.arange(50), 20)
    for where in [None, 0, 17, 49]:
        src = source.copy()
        if where is not None:
            src[where] = bad
        for picked in (index, index[index != where]):
            tape, x = gathered(src, picked)
            assert positive.first_violation(x) == \
                reference(_core.value_of(x), 0.0, np.inf, True, True)
            assert positive.first_violation(_core.value_of(x)) == positive.first_violation(x)


def test_only_a_gather_stands_in_for_its_result():
    positive = _core.IntervalCheck(0.0, np.inf, True, True)
    tape, x = gathered(np.full(10, 1.0), np.zeros(40, dtype=int))
    with _core.recording(tape):
        shifted = x - 5.0  # another op's input (all of x fine) is no stand-in
        assert positive.first_violation(shifted) == 0
        tape.clear()
    # x's tape has moved on: its own values are read
    assert positive.first_violation(x) == -1
