"""stats: which sample sizes can show a significant change, and the test itself."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from mnistbench.stats import (
    ALPHA,
    can_be_significant,
    mann_whitney_p,
    repeats_needed,
    smallest_p_value,
)


@pytest.mark.parametrize(
    "n_baseline, n_candidate, expected",
    [
        (3, 3, 2 / 20),
        (4, 4, 2 / 70),
        (5, 5, 2 / 252),
        (3, 4, 2 / 35),
        (3, 5, 2 / 56),
        (5, 3, 2 / 56),
        (1, 1, 1.0),
        (0, 5, 1.0),
    ],
)
def test_smallest_p_value_is_two_orderings_of_all(n_baseline, n_candidate, expected) -> None:
    assert smallest_p_value(n_baseline, n_candidate) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n_baseline", range(1, 7))
@pytest.mark.parametrize("n_candidate", range(1, 7))
def test_smallest_p_value_is_what_the_exact_test_gives_separated_samples(
    n_baseline: int, n_candidate: int
) -> None:
    below = list(range(n_baseline))
    above = list(range(n_baseline, n_baseline + n_candidate))
    exact = mannwhitneyu(below, above, alternative="two-sided", method="exact").pvalue
    assert smallest_p_value(n_baseline, n_candidate) == pytest.approx(exact, rel=1e-12)


def test_the_significance_level_is_0_05() -> None:
    assert ALPHA == 0.05


@pytest.mark.parametrize(
    "n_baseline, n_candidate, possible",
    [
        (3, 3, False),  # 0.1
        (3, 4, False),  # 0.057
        (4, 4, True),  # 0.029
        (3, 5, True),  # 0.036
        (2, 100, False),  # two values are not a distribution
        (100, 2, False),
    ],
)
def test_can_be_significant_at_0_05(n_baseline: int, n_candidate: int, possible: bool) -> None:
    assert can_be_significant(n_baseline, n_candidate) is possible


@pytest.mark.parametrize(
    "alpha, needed",
    [(0.05, 4), (0.01, 5), (0.001, 7), (0.2, 3), (0.0286, 4), (0.0285, 5)],
)
def test_repeats_needed_follow_from_alpha(alpha: float, needed: int) -> None:
    # 2 / C(8, 4) = 0.02857...: 4 a side just reach 0.0286, not 0.0285.
    assert repeats_needed(alpha) == needed


def test_repeats_needed_rejects_an_impossible_alpha() -> None:
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\], got 0"):
        repeats_needed(0)


def test_mann_whitney_p_of_separated_samples_is_exact() -> None:
    p = mann_whitney_p(pd.Series([1.0, 2.0, 3.0, 4.0]), pd.Series([5.0, 6.0, 7.0, 8.0]))
    assert p == pytest.approx(2 / 70, rel=1e-12)


def test_mann_whitney_p_of_interleaved_samples_is_1() -> None:
    p = mann_whitney_p(pd.Series([1.0, 4.0, 5.0, 8.0]), pd.Series([2.0, 3.0, 6.0, 7.0]))
    assert p == 1.0
