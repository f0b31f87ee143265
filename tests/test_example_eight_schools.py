"""examples/eight_schools.py, briefly: AutoNormal on the non-centred model
gets mu and the school means near the exact posterior means (a grid
integral), and tau below its exact mean, as mean-field VI does here."""
import numpy as np

from example_loader import load_example


def test_eight_schools_example():
    example = load_example("eight_schools")
    guide, losses = example.fit(num_steps=6000, progress_bar=False)
    assert np.isfinite(losses).all() and losses[-500:].mean() < losses[:500].mean()
    mu, tau, theta = example.posterior_means(guide, num_samples=4000)
    exact_mu, exact_tau, exact_theta = example.exact_posterior_means()
    assert abs(exact_mu - 4.4) < 0.1 and abs(exact_tau - 3.6) < 0.1  # BDA's numbers
    assert abs(mu - exact_mu) < 0.5
    assert 1.0 < tau < exact_tau
    np.testing.assert_array_less(np.abs(theta - exact_theta), 1.5)
