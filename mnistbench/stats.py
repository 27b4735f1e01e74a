"""Statistics over repeats: a metric's spread, whether it is noisy, and whether two differ.

A number without its spread is a guess: every median mnistbench reports comes with
its min, max, interquartile range, standard deviation and coefficient of variation.

Whether two sets of repeats differ is a two-sided Mann-Whitney U test at
:data:`ALPHA`. With few repeats the exact test cannot reach that level however far
apart the samples are (3 vs 3: p >= 0.1), so it is run only when it can
(:func:`can_be_significant`); :func:`repeats_needed` says how many repeats a side
make a verdict possible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: A metric is noisy when its coefficient of variation (stdev / mean) over a
#: configuration's successful runs exceeds this: a difference smaller than the noise is
#: not a difference.
NOISY_CV = 0.10

#: The spread fields of :class:`Spread` besides the median, in the order of their
#: ``comparison.csv`` columns (``<metric>_min``, ...).
SPREAD_FIELDS = ("min", "max", "iqr", "stdev", "cv", "noisy")


@dataclass(frozen=True)
class Spread:
    """One metric over one configuration's runs: its median and how far the runs disagree."""

    median: float
    min: float
    max: float
    iqr: float  # 75th minus 25th percentile, interpolated linearly
    stdev: float  # sample standard deviation (n - 1); NaN with fewer than 2 runs
    cv: float  # stdev / mean; NaN with fewer than 2 runs or a zero mean
    noisy: bool | None  # cv > NOISY_CV; None when cv is unknown

    @classmethod
    def of(cls, values: pd.Series) -> Spread:
        """The spread of ``values``, NaN ignored; all NaN when none is left."""
        values = values.dropna()
        if values.empty:
            return cls(*(math.nan,) * 6, noisy=None)
        stdev = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        mean = float(values.mean())
        cv = stdev / abs(mean) if len(values) > 1 and mean else math.nan
        return cls(
            median=float(values.median()),
            min=float(values.min()),
            max=float(values.max()),
            iqr=float(values.quantile(0.75) - values.quantile(0.25)),
            stdev=stdev,
            cv=cv,
            noisy=None if math.isnan(cv) else bool(cv > NOISY_CV),
        )


# --- significance of a difference between two sets of repeats ---------------------------

#: Significance level of the two-sided Mann-Whitney U test that ``mnistbench compare`` runs.
ALPHA = 0.05
#: Fewest repeats on a side that are ever tested: two numbers are not a distribution.
MIN_REPEATS = 3


def smallest_p_value(n_baseline: int, n_candidate: int) -> float:
    """The smallest p-value the exact two-sided Mann-Whitney U test can give for these sizes.

    Without ties it is reached when the two samples do not overlap at all: 2 of the
    ``C(n1 + n2, n1)`` equally likely orderings are that extreme, one either way, so
    ``p = 2 / C(n1 + n2, n1)`` (3 vs 3: 2 / 20 = 0.1; 4 vs 4: 2 / 70 ≈ 0.029), at most 1.
    With an empty side there is nothing to test: 1.
    """
    if n_baseline < 1 or n_candidate < 1:
        return 1.0
    return min(1.0, 2 / math.comb(n_baseline + n_candidate, n_baseline))


def can_be_significant(n_baseline: int, n_candidate: int, alpha: float = ALPHA) -> bool:
    """Whether a test of these sizes can find a change at ``alpha``.

    Both sides need at least :data:`MIN_REPEATS` values, and the exact test must be
    able to go below ``alpha`` (:func:`smallest_p_value`): 3 vs 3 cannot at 0.05, so
    a difference there is never significant however large, and is not tested.
    """
    return (
        min(n_baseline, n_candidate) >= MIN_REPEATS
        and smallest_p_value(n_baseline, n_candidate) < alpha
    )


def repeats_needed(alpha: float = ALPHA) -> int:
    """The fewest repeats a side with which a change can be significant at ``alpha``.

    4 at 0.05 (2 / C(8, 4) ≈ 0.029), 5 at 0.01 (2 / C(10, 5) ≈ 0.0079).
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    n = MIN_REPEATS
    while not can_be_significant(n, n, alpha):
        n += 1
    return n


def mann_whitney_p(baseline: pd.Series, candidate: pd.Series) -> float:
    """The two-sided Mann-Whitney U p-value of two samples; NaN when it is undefined.

    scipy's default method: exact without ties and with fewer than 8 values a side,
    else the normal approximation. Identical samples give NaN, which is no evidence
    of a change.
    """
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(baseline, candidate, alternative="two-sided").pvalue)
