"""Thompson-sampling win probabilities by quadrature, checked against large Monte Carlo samples."""

from __future__ import annotations

import numpy as np
import pytest

from croupier.runtime.policies.quadrature import BetaMaxProbability, GaussianMaxProbability, QuadratureRule

pytestmark = pytest.mark.unit

DRAWS = 400_000  # Monte Carlo standard error ≤ 0.5/sqrt(DRAWS) ≈ 8e-4 per arm
TOLERANCE = 8e-3  # documented worst case ≈ 7e-3 (wide arm racing a much narrower one), typical ≈ 1e-3


def monte_carlo(draws: np.ndarray) -> np.ndarray:
    return np.bincount(draws.argmax(axis=1), minlength=draws.shape[1]) / draws.shape[0]


GAUSSIAN_CASES = {
    "equal arms": ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
    "two close arms": ([0.1, 0.0], [0.05, 0.05]),
    "narrow best next to wide unexplored": ([0.5, 0.4, 0.2], [0.005, 0.3, 0.4]),
    "widths over three decades": ([0.3, 0.32, 0.1, 0.25, 0.31], [0.002, 0.2, 1.0, 0.05, 0.01]),
    "ten arms": (np.linspace(0.0, 0.2, 10).tolist(), np.linspace(0.03, 0.12, 10).tolist()),
}


@pytest.mark.parametrize("case", GAUSSIAN_CASES)
def test_gaussian_win_probabilities_match_monte_carlo(case: str) -> None:
    means, sds = GAUSSIAN_CASES[case]
    rng = np.random.default_rng(11)
    reference = monte_carlo(rng.standard_normal((DRAWS, len(means))) * np.array(sds) + np.array(means))
    computed = np.array(GaussianMaxProbability()(means, sds))
    assert computed.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.abs(computed - reference).max() < TOLERANCE


def test_gaussian_random_configurations_match_monte_carlo() -> None:
    rng = np.random.default_rng(5)
    quadrature = GaussianMaxProbability()
    errors = []
    for _ in range(6):
        k = int(rng.integers(2, 8))
        means = rng.normal(0.0, 1.0, k)
        sds = np.exp(rng.uniform(np.log(0.01), np.log(2.0), k))
        reference = monte_carlo(rng.standard_normal((DRAWS // 2, k)) * sds + means)
        errors.append(np.abs(np.array(quadrature(means.tolist(), sds.tolist())) - reference).max())
    assert max(errors) < TOLERANCE
    assert float(np.median(errors)) < 3e-3


def test_gaussian_degenerate_cases_are_exact() -> None:
    quadrature = GaussianMaxProbability()
    assert quadrature([0.3], [0.1]) == [1.0]
    assert quadrature([0.2, 0.5, 0.5], [0.0, 0.0, 0.0]) == [0.0, 0.5, 0.5]
    # Far behind: pruned to exactly zero.
    assert quadrature([0.0, 10.0], [0.1, 0.1]) == [0.0, 1.0]
    # Equal means and widths: equal shares, whatever the width.
    assert np.allclose(quadrature([1.0] * 4, [1e-6] * 4), 0.25, atol=1e-9)


def test_more_points_converge() -> None:
    means, sds = GAUSSIAN_CASES["widths over three decades"]
    coarse = np.array(GaussianMaxProbability(QuadratureRule(16))(means, sds))
    fine = np.array(GaussianMaxProbability(QuadratureRule(96))(means, sds))
    default = np.array(GaussianMaxProbability()(means, sds))
    assert np.abs(default - fine).max() < np.abs(coarse - fine).max()


@pytest.mark.parametrize("case", [case for case in GAUSSIAN_CASES if case != "equal arms"])  # equal arms: exact
def test_the_error_shrinks_as_the_points_double(case: str) -> None:
    """Against a 1024-point rule, every doubling of the points from 8 to 128 cuts the error, down to the float32
    tables' resolution (~1e-6); the default (32) is several times better than 8 points and 128 is within 3e-4."""
    means, sds = GAUSSIAN_CASES[case]
    reference = np.array(GaussianMaxProbability(QuadratureRule(1024))(means, sds))
    points = [8, 16, 32, 64, 128]
    errors = [np.abs(np.array(GaussianMaxProbability(QuadratureRule(n))(means, sds)) - reference).max() for n in points]
    for n, error, finer in zip(points, errors, errors[1:], strict=False):
        assert finer < error or error < 1e-5, (n, errors)
    assert errors[points.index(32)] < errors[0] / 4, errors
    assert errors[-1] < 3e-4, errors


BETA_CASES = {
    "uniform priors": ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
    "few observations": ([2.0, 1.0, 4.0, 1.0], [1.0, 3.0, 5.0, 1.0]),
    "skewed click-through rates": ([3.0, 12.0, 30.0], [300.0, 900.0, 2500.0]),
    "balanced, many pulls": ([520.0, 480.0, 505.0], [480.0, 520.0, 495.0]),
    "mixed widths": ([1.0, 40.0, 400.0, 4.0], [1.0, 60.0, 600.0, 6.0]),
}


@pytest.mark.parametrize("case", BETA_CASES)
def test_beta_win_probabilities_match_monte_carlo(case: str) -> None:
    alphas, betas = BETA_CASES[case]
    k = len(alphas)
    tables = BetaMaxProbability(k)
    for arm in range(k):
        tables.set_arm(arm, alphas[arm], betas[arm])
    rng = np.random.default_rng(3)
    reference = monte_carlo(rng.beta(alphas, betas, size=(DRAWS, k)))
    computed = np.array(tables.probabilities(list(range(k))))
    assert computed.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.abs(computed - reference).max() < 5e-3


def test_beta_subsets_and_pruning() -> None:
    tables = BetaMaxProbability(3)
    tables.set_arm(0, 900.0, 100.0)  # mean 0.9, very sure
    tables.set_arm(1, 100.0, 900.0)  # mean 0.1, very sure: cannot win against arm 0
    tables.set_arm(2, 1.0, 1.0)
    assert tables.probabilities([0, 1]) == [1.0, 0.0]
    assert tables.probabilities([1]) == [1.0]
    both = tables.probabilities([1, 2])
    assert both[0] == pytest.approx(0.1, abs=2e-3)  # P(Uniform < Beta(100, 900)) = mean of the Beta
