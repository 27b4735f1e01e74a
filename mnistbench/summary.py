"""A sweep's headline table: one row per configuration, its medians with their spread.

:func:`comparison_table` is ``comparison.csv``, and what the terminal's medians, the
HTML report's headline table and ``report --format markdown|json`` show. Runs are grouped
by configuration, labelled as :func:`mnistbench.record.label` says (``dnn-spe32``, or
``dnn-spe32 (jax)`` when several backends ran). Only runs with status ``ok`` feed the
statistics; failed and diverged ones are counted.

A number without its spread is a guess: each metric's median comes with its spread
(:class:`mnistbench.stats.Spread`), and a metric whose coefficient of variation exceeds
:data:`mnistbench.stats.NOISY_CV` is flagged noisy.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mnistbench.columns import HEADLINE, LOWER, Column, in_view
from mnistbench.format import first_error, missing
from mnistbench.record import in_order, labels, ok
from mnistbench.stats import SPREAD_FIELDS, Spread

if TYPE_CHECKING:
    import pandas as pd

#: The identity columns of each configuration's row, before its counts.
IDS = ("config_id", "architecture", "backend", "steps_per_execution", "jit_compile")
#: The counts of each configuration's row, before its metrics.
COUNTS = ("status", "runs", "failed", "converged", "noisy_metrics")


def headline_metrics() -> list[Column]:
    """The headline metrics, in ``runs.csv`` order."""
    return in_view(HEADLINE)


def _converged_text(converged: pd.Series) -> str:
    """``"2/3"``: runs that reached the target of those that had one; "" when none had one."""
    known = [flag for flag in converged if flag is not None]
    return f"{sum(known)}/{len(known)}" if known else ""


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (and backend, when several ran), in the order they ran.

    ``runs`` is a typed table of runs (:func:`mnistbench.record.frame`). Columns, in order:

    - ``config_id``, ``architecture``, ``backend`` (empty when unknown),
      ``steps_per_execution`` and ``jit_compile`` (the group's first known value);
    - ``status``: ``ok`` (every run succeeded), ``partial`` (some failed or
      diverged) or ``failed`` (none succeeded);
    - ``runs``: the number of successful runs; ``failed``: the number of failed
      and diverged ones;
    - ``converged``: ``"k/n"``, k of the n successful runs with a target
      accuracy reached it; empty when no run had a target;
    - ``noisy_metrics``: the metrics whose ``<metric>_noisy`` is True,
      separated by spaces; empty when none is;
    - one column per headline metric (:func:`headline_metrics`), in ``runs.csv``
      order: the median over successful runs, in the unit of the ``runs.csv`` column of
      the same name (empty when the group has no successful run with a value;
      ``time_to_accuracy_seconds`` has values only for converged runs);
    - ``<metric>_ratio_to_best``: the median divided by the best median over all
      groups, rounded to 4 decimals. The best group has 1.0 in every metric.
      For "lower is better" metrics (times, loss, memory, parameters) the others
      are above 1.0, e.g. 1.91 for a model that trains 1.91 times as long; for
      "higher is better" metrics (throughput, accuracy) they are below 1.0, e.g.
      0.5 for half the throughput. Empty when the best is zero or unknown;
    - per metric, its spread over the successful runs: ``<metric>_min``,
      ``<metric>_max``, ``<metric>_iqr`` (interquartile range),
      ``<metric>_stdev`` (sample standard deviation), ``<metric>_cv``
      (coefficient of variation, stdev / mean) and ``<metric>_noisy`` (True
      when the cv exceeds :data:`mnistbench.stats.NOISY_CV`, else False).
      Stdev, cv and noisy are empty with fewer than 2 runs: one number has no spread;
    - ``error``: the first error of the group's failed runs, empty otherwise.
    """
    import pandas as pd

    metrics = [column.name for column in headline_metrics()]
    names = labels(runs)
    rows = [_group_row(runs, names == name, metrics) for name in in_order(names)]
    ratios = [f"{name}_ratio_to_best" for name in metrics]
    spreads = [f"{name}_{field}" for name in metrics for field in SPREAD_FIELDS]
    table = pd.DataFrame(rows, columns=[*IDS, *COUNTS, *metrics, *spreads, "error"])
    for column in headline_metrics():
        table[f"{column.name}_ratio_to_best"] = _ratio_to_best(table[column.name], column.better)
    # Counts are whole numbers; keep them so in the CSV ("32", not "32.0").
    for name in ["steps_per_execution", "params", "params_min", "params_max"]:
        table[name] = pd.to_numeric(table[name]).round().astype("Int64")
    # Flags hold True, False or None (empty in the CSV), whether or not a group lacks one.
    for name in ["jit_compile", *(f"{name}_noisy" for name in metrics)]:
        table[name] = table[name].astype(object).where(table[name].notna(), None)
    return table[[*IDS, *COUNTS, *metrics, *ratios, *spreads, "error"]]


def _first_known(values: pd.Series) -> Any:
    """The first value that is neither None, NaN nor empty; None when there is none."""
    known = [value for value in values if not missing(value)]
    return known[0] if known else None


def _group_row(runs: pd.DataFrame, members: pd.Series, metrics: list[str]) -> dict[str, Any]:
    """The row of ``comparison.csv`` for the runs in ``members``, without ratios."""
    succeeded_runs = members & ok(runs)
    succeeded, failed = int(succeeded_runs.sum()), int((members & ~ok(runs)).sum())
    group = runs[members]
    row: dict[str, Any] = {
        "config_id": group["config_id"].iloc[0],
        "architecture": group["architecture"].iloc[0],
        "backend": _first_known(group["backend"]) or "",
        "steps_per_execution": _first_known(group["steps_per_execution"]),
        "jit_compile": _first_known(group["jit_compile"]),
        "status": "ok" if not failed else ("failed" if not succeeded else "partial"),
        "runs": succeeded,
        "failed": failed,
        "converged": _converged_text(runs.loc[succeeded_runs, "converged"]),
    }
    noisy = []
    for name in metrics:
        spread = Spread.of(runs.loc[succeeded_runs, name])
        row[name] = spread.median
        for field in SPREAD_FIELDS:
            row[f"{name}_{field}"] = getattr(spread, field)
        if spread.noisy:
            noisy.append(name)
    row["noisy_metrics"] = " ".join(noisy)
    row["error"] = first_error(runs.loc[members & ~ok(runs), "error"])
    return row


def _ratio_to_best(medians: pd.Series, better: str) -> pd.Series:
    """Each median over the best one, rounded to 4 decimals; NaN when the best is 0 or unknown."""
    import pandas as pd

    best = medians.min() if better == LOWER else medians.max()
    ratio = medians / best if best and not math.isnan(best) else math.nan
    return pd.Series(ratio, index=medians.index).round(4)
