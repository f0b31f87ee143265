"""Every docstring example in csvi's modules runs, against the csvi under test
(the installed package in CI), as `python -m doctest` would run it."""
import doctest
import importlib
import pkgutil

import pytest

import csvi

MODULES = sorted(m.name for m in pkgutil.walk_packages(csvi.__path__, "csvi."))


@pytest.mark.usefixtures("fresh_store")
@pytest.mark.parametrize("name", ["csvi"] + MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed (output above)"
