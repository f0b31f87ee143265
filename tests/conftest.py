"""Shared fixtures."""
import pytest

import csvi


@pytest.fixture
def fresh_store():
    """An empty param store and a seeded generator, cleaned up afterwards."""
    csvi.clear_param_store()
    csvi.set_rng_seed(0)
    yield csvi.get_param_store()
    csvi.clear_param_store()
