"""The digests every CI output format renders: a comparison's and a sweep's, as typed records.

:func:`compare_digest` turns :func:`mnistbench.compare.compare_runs`'s table and the two
machines' speeds into a :class:`ComparisonDigest`: the rows in the order a reviewer reads
them (regressions first, then the other changes, then the rest), the failing ``--fail``
rules, the machine-speed lines and the verdict counts. :func:`sweep_digest` turns
:func:`mnistbench.summary.comparison_table` into a :class:`SweepDigest`: each
configuration's medians with their spread, and its failed runs.

The output formats (:mod:`mnistbench.outputs`: text, Markdown, JSON, and any a plugin
registers) read only these records, so each format is its own module and adding one
touches no other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mnistbench.columns import HEADLINE, in_view
from mnistbench.compare import (
    CANNOT_TELL,
    DIFFERENT_WORK,
    IMPROVED,
    NO_CHANGE,
    ONLY_IN_BASELINE,
    ONLY_IN_CANDIDATE,
    REGRESSED,
    regressions,
    row_labels,
    work_differences,
)
from mnistbench.format import missing
from mnistbench.record import label, several_backends
from mnistbench.speeds import MachineSpeed, normalized_lines

if TYPE_CHECKING:
    import pandas as pd

#: The verdicts in the order their counts are given.
VERDICT_ORDER = (
    REGRESSED,
    IMPROVED,
    DIFFERENT_WORK,
    ONLY_IN_BASELINE,
    ONLY_IN_CANDIDATE,
    NO_CHANGE,
    CANNOT_TELL,
)

# Where a row of the comparison goes, in reading order.
FAILING = "failing"  # a --fail rule fails on it
REGRESSION = "regression"  # regressed (raw or normalized), no rule failing
CHANGE = "change"  # improved, different work, only on one side
UNCHANGED = "unchanged"  # no significant change, cannot tell
GROUP_ORDER = (FAILING, REGRESSION, CHANGE, UNCHANGED)


def _float(value: object) -> float:
    """A cell as a float: NaN for None, NA and empty."""
    return math.nan if missing(value) else float(value)  # type: ignore[arg-type]


def _text(value: object) -> str:
    """A cell as text: "" for None, NaN and NA."""
    return "" if missing(value) else str(value)


# --- a comparison ---------------------------------------------------------------------


@dataclass(frozen=True)
class ComparedRow:
    """One configuration and metric of a comparison (a row of ``compare.csv``).

    ``config`` is the configuration's label (:func:`mnistbench.record.label`); medians are
    in the metric's unit, NaN when a side has none; ``ratio_low``, ``ratio_high`` the
    ratio's 95% bootstrap interval; ``p_holm`` the p-value adjusted across the tests the
    ``--fail`` rules make (NaN for the others); ``failed_rules`` are the failing ``--fail``
    rules as their text; ``group`` is one of :data:`GROUP_ORDER`.
    """

    config: str
    metric: str
    better: str
    baseline: float
    candidate: float
    ratio: float
    ratio_low: float
    ratio_high: float
    baseline_n: int
    candidate_n: int
    p_value: float
    p_holm: float
    verdict: str
    normalized_ratio: float
    normalized_verdict: str
    different_work: str
    failed_rules: tuple[str, ...]
    group: str


@dataclass(frozen=True)
class ComparisonDigest:
    """What a comparison says, for a pull request: see :func:`compare_digest`."""

    rows: tuple[ComparedRow, ...]
    failing: tuple[str, ...]
    machine: tuple[str, ...]
    work_differences: tuple[str, ...]
    verdicts: dict[str, int]


def _group(verdict: str, normalized_verdict: str, failing: bool) -> str:
    if failing:
        return FAILING
    if REGRESSED in (verdict, normalized_verdict):
        return REGRESSION
    if verdict in (IMPROVED, DIFFERENT_WORK, ONLY_IN_BASELINE, ONLY_IN_CANDIDATE):
        return CHANGE
    if normalized_verdict == IMPROVED:
        return CHANGE
    return UNCHANGED


def compare_digest(table: pd.DataFrame, machines: MachineSpeed) -> ComparisonDigest:
    """The digest of a :func:`mnistbench.compare.compare_runs` table.

    - ``rows``: every row of the table, rows failing a ``--fail`` rule first, then the
      other regressions (raw or normalized), then the other changes (improved, different
      work, only on one side), then the rest (no significant change, cannot tell); in
      the table's order within each group;
    - ``failing``: the failing rules, one line each (:func:`mnistbench.compare.regressions`);
    - ``machine``: the machine-speed lines (:func:`mnistbench.speeds.normalized_lines`);
    - ``work_differences``: the configurations whose sides did different work
      (:func:`mnistbench.compare.work_differences`);
    - ``verdicts``: how many rows got each verdict, in :data:`VERDICT_ORDER`, only the
      verdicts that occur.
    """
    rows = []
    for name, row in zip(row_labels(table), table.to_dict("records"), strict=True):
        verdict, normalized_verdict = _text(row["verdict"]), _text(row["normalized_verdict"])
        failed = tuple(rule for rule in _text(row["failed_rule"]).split("; ") if rule)
        rows.append(
            ComparedRow(
                config=name,
                metric=row["metric"],
                better=row["better"],
                baseline=_float(row["baseline_median"]),
                candidate=_float(row["candidate_median"]),
                ratio=_float(row["ratio"]),
                ratio_low=_float(row["ratio_low"]),
                ratio_high=_float(row["ratio_high"]),
                baseline_n=int(row["baseline_n"]),
                candidate_n=int(row["candidate_n"]),
                p_value=_float(row["p_value"]),
                p_holm=_float(row["p_holm"]),
                verdict=verdict,
                normalized_ratio=_float(row["normalized_ratio"]),
                normalized_verdict=normalized_verdict,
                different_work=_text(row["different_work"]),
                failed_rules=failed,
                group=_group(verdict, normalized_verdict, bool(row["regression"])),
            )
        )
    rows.sort(key=lambda r: GROUP_ORDER.index(r.group))  # stable: table order within a group
    counts = {verdict: 0 for verdict in VERDICT_ORDER}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    return ComparisonDigest(
        rows=tuple(rows),
        failing=tuple(regressions(table)),
        machine=tuple(normalized_lines(table, machines)),
        work_differences=tuple(work_differences(table)),
        verdicts={verdict: count for verdict, count in counts.items() if count},
    )


# --- a sweep --------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpread:
    """One headline metric of one configuration: its median over the successful runs, the
    range, and the coefficient of variation (NaN with fewer than 2 runs); ``noisy`` is
    None when the cv is unknown."""

    median: float
    min: float
    max: float
    cv: float
    noisy: bool | None


@dataclass(frozen=True)
class SweepConfig:
    """One configuration of a sweep (a row of ``comparison.csv``)."""

    config: str
    architecture: str
    backend: str
    status: str
    runs: int
    failed: int
    metrics: dict[str, MetricSpread]
    noisy: tuple[str, ...]
    error: str


@dataclass(frozen=True)
class SweepDigest:
    """A sweep's headline table: ``metrics`` names the headline metrics it holds, in
    ``runs.csv`` order; each configuration has a :class:`MetricSpread` for each."""

    metrics: tuple[str, ...]
    configs: tuple[SweepConfig, ...]

    @property
    def runs(self) -> int:
        """Successful runs over all configurations."""
        return sum(config.runs for config in self.configs)

    @property
    def failed(self) -> int:
        """Failed and diverged runs over all configurations."""
        return sum(config.failed for config in self.configs)


def _noisy(value: object) -> bool | None:
    text = _text(value).strip().lower()
    return {"true": True, "false": False}.get(text)


def sweep_digest(comparison: pd.DataFrame, *, repeated_only: bool = False) -> SweepDigest:
    """The digest of a :func:`mnistbench.summary.comparison_table`: its configurations in
    order, each with its headline metrics' medians and spreads, its counts and first error;
    with ``repeated_only``, only the configurations with more than one successful run."""
    metrics = tuple(c.name for c in in_view(HEADLINE) if c.name in comparison.columns)
    several = several_backends(comparison["backend"])
    configs = []
    for row in comparison.to_dict("records"):
        if repeated_only and int(row["runs"]) < 2:
            continue
        backend = _text(row["backend"])
        spreads = {
            name: MetricSpread(
                median=_float(row[name]),
                min=_float(row[f"{name}_min"]),
                max=_float(row[f"{name}_max"]),
                cv=_float(row[f"{name}_cv"]),
                noisy=_noisy(row[f"{name}_noisy"]),
            )
            for name in metrics
        }
        configs.append(
            SweepConfig(
                config=label(_text(row["config_id"]), backend, several),
                architecture=_text(row["architecture"]),
                backend=backend,
                status=_text(row["status"]),
                runs=int(row["runs"]),
                failed=int(row["failed"]),
                metrics=spreads,
                noisy=tuple(_text(row["noisy_metrics"]).split()),
                error=_text(row["error"]),
            )
        )
    return SweepDigest(metrics=metrics, configs=tuple(configs))


# --- an A/B measurement ---------------------------------------------------------------


@dataclass(frozen=True)
class ABRow:
    """One configuration and metric of ``mnistbench ab``: the sides' medians, the ratio head
    over base with its 95% interval, the paired test's p-value (and its Holm-adjusted one
    where a ``--fail`` rule gates the metric), the pairs behind it and the verdict
    (``cannot tell (needs about N pairs)`` says how many would decide)."""

    config: str
    metric: str
    better: str
    base: float
    head: float
    ratio: float
    low: float
    high: float
    p_value: float
    p_holm: float
    pairs: int
    verdict: str
    gated: bool
    failed_rules: tuple[str, ...]


@dataclass(frozen=True)
class ABDigest:
    """What an A/B measurement says: the two sides, how it ran and why it stopped, one
    :class:`ABRow` per configuration and metric (gated metrics first), the failing rules
    and the method of its intervals."""

    base: str
    head: str
    mode: str
    pairs: int
    failed_pairs: int
    stopped: str
    method: str
    rows: tuple[ABRow, ...]
    failing: tuple[str, ...]
    machine: tuple[str, ...]
