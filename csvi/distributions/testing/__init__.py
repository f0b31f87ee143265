"""Test helpers with Pyro's module path (pyro.distributions.testing)."""
