"""Statistics over repeats: a metric's spread, whether it is noisy, whether two differ, and
every ratio's confidence interval.

A number without its spread is a guess: every median mnistbench reports comes with
its min, max, interquartile range, standard deviation and coefficient of variation.

Whether two sets of repeats differ is a two-sided Mann-Whitney U test at
:data:`ALPHA`. With few repeats the exact test cannot reach that level however far
apart the samples are (3 vs 3: p >= 0.1), so it is run only when it can
(:func:`can_be_significant`); :func:`repeats_needed` says how many repeats a side
make a verdict possible.

A ratio comes with its 95% interval (:class:`Ratio`): unpaired sides by a bootstrap of
the ratio of medians (:func:`ratio_of_medians`), paired runs by the t interval of the
mean log-ratio with its paired t-test (:func:`paired_ratio`). Several tests gated at once
are adjusted together by Holm's method (:func:`holm`), so the chance of any false alarm
among them stays at :data:`ALPHA`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
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


# --- ratios and their confidence intervals ---------------------------------------------------

#: The confidence level of every interval mnistbench reports.
CONFIDENCE = 0.95
#: Bootstrap resamples of an unpaired ratio of medians.
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Ratio:
    """A ratio (candidate over baseline, head over base) with its confidence interval.

    ``low`` and ``high`` are NaN when there are too few values for an interval;
    ``p_value`` NaN when untested; ``n`` the pairs (paired) or the smaller side (unpaired)
    behind it; ``method`` names how it was computed.
    """

    ratio: float
    low: float
    high: float
    p_value: float
    n: int
    method: str

    @property
    def half_width(self) -> float:
        """The interval's half-width in log units (``ln(high / low) / 2``): ±5% is about
        0.049; NaN without an interval."""
        if not (self.low > 0 and self.high > 0):
            return math.nan
        return math.log(self.high / self.low) / 2

    def excludes_one(self) -> bool:
        """Whether the interval lies entirely above or below 1: a change at its level."""
        return self.low > 1 or self.high < 1


def paired_ratio(base: Sequence[float], head: Sequence[float]) -> Ratio:
    """Head over base from pairs of runs: the geometric mean of the pairs' ratios, with the
    t interval of the mean log-ratio and the paired t-test's two-sided p-value.

    Each pair (``base[i]``, ``head[i]``) ran the same configuration back to back or at
    once, so the machine's drift between pairs cancels in the log-ratio
    ``ln(head_i / base_i)``; the test is Student's one-sample t-test of those log-ratios
    against 0 (the paired t-test on log scale), and the interval
    ``exp(mean ± t_{0.975, n-1} · sd / √n)`` is its 95% confidence interval for the ratio
    of geometric means (Kalibera & Jones, "Rigorous Benchmarking in Reasonable Time", ISMM
    2013, recommend reporting a ratio with such an interval). Pairs with a missing or
    non-positive value are left out. Fewer than 2 pairs: no interval, no test.
    """
    from scipy import stats

    logs = [
        math.log(h / b)
        for b, h in zip(base, head, strict=True)
        if b is not None
        and h is not None
        and b > 0
        and h > 0
        and math.isfinite(b)
        and math.isfinite(h)
    ]
    n = len(logs)
    if n == 0:
        return Ratio(math.nan, math.nan, math.nan, math.nan, 0, PAIRED_T)
    mean = sum(logs) / n
    if n < 2:
        return Ratio(math.exp(mean), math.nan, math.nan, math.nan, n, PAIRED_T)
    sd = statistics.stdev(logs)
    se = sd / math.sqrt(n)
    t = stats.t.ppf(1 - (1 - CONFIDENCE) / 2, n - 1)
    if se == 0:
        p_value = 1.0 if mean == 0 else 0.0
    else:
        p_value = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return Ratio(
        math.exp(mean), math.exp(mean - t * se), math.exp(mean + t * se), p_value, n, PAIRED_T
    )


def pairs_needed(base: Sequence[float], head: Sequence[float], margin: float) -> int | None:
    """How many pairs would make the interval of :func:`paired_ratio` no wider than
    ``±margin`` (0.05 for ±5%) at the log-ratios' spread seen so far; None without a spread
    (fewer than 2 pairs)."""
    from scipy import stats

    logs = [
        math.log(h / b)
        for b, h in zip(base, head, strict=True)
        if b is not None and h is not None and b > 0 and h > 0
    ]
    if len(logs) < 2:
        return None
    sd = statistics.stdev(logs)
    target = math.log(1 + margin)
    n = 2
    while stats.t.ppf(1 - (1 - CONFIDENCE) / 2, n - 1) * sd / math.sqrt(n) > target:
        n += 1
        if n > 100_000:
            return None
    return n


def ratio_of_medians(baseline: Sequence[float], candidate: Sequence[float], seed: int = 0) -> Ratio:
    """Candidate over baseline from unpaired runs: the ratio of medians, with a percentile
    bootstrap interval (each side resampled on its own, :data:`BOOTSTRAP_RESAMPLES` times,
    seeded so the same runs give the same interval). No interval with fewer than 2 runs a
    side; ``p_value`` is left to the rank test of :func:`mann_whitney_p`."""
    import numpy as np

    b = np.asarray([v for v in baseline if v is not None and math.isfinite(v)], dtype=float)
    c = np.asarray([v for v in candidate if v is not None and math.isfinite(v)], dtype=float)
    n = int(min(len(b), len(c)))
    if n == 0 or not np.median(b):
        return Ratio(math.nan, math.nan, math.nan, math.nan, n, BOOTSTRAP)
    ratio = float(np.median(c) / np.median(b))
    if n < 2:
        return Ratio(ratio, math.nan, math.nan, math.nan, n, BOOTSTRAP)
    rng = np.random.default_rng(seed)
    resampled_b = np.median(rng.choice(b, (BOOTSTRAP_RESAMPLES, len(b))), axis=1)
    resampled_c = np.median(rng.choice(c, (BOOTSTRAP_RESAMPLES, len(c))), axis=1)
    valid = resampled_b != 0
    ratios = resampled_c[valid] / resampled_b[valid]
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return Ratio(ratio, float(low), float(high), math.nan, n, BOOTSTRAP)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of several p-values (Holm, "A simple sequentially
    rejective multiple test procedure", Scand. J. Statist. 6, 1979): an adjusted p-value
    below α rejects at a family-wise false-alarm rate of at most α, whatever the tests'
    dependence. NaN (untested) stays NaN and does not count."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    m = len(tested)
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


PAIRED_T = "paired t-test on log-ratios"
BOOTSTRAP = "bootstrap of the ratio of medians"
