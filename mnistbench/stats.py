"""Statistics over repeats: a metric's spread, and whether it is noisy.

A number without its spread is a guess: every median mnistbench reports comes with
its min, max, interquartile range, standard deviation and coefficient of variation.
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
