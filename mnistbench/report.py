"""The built-in reporter: ``comparison.csv`` and the figures of one output directory.

:func:`comparison_table` is ``comparison.csv``; each figure is a module of
:mod:`mnistbench.plots` (``comparison.png``, ``curves.png``, ``predictions.png``).
``report.html`` is :mod:`mnistbench.pages.report`. ``mnistbench_write_report`` is
the core's implementation of the report hook and only ties them together.

Runs are grouped by configuration, labelled as :mod:`mnistbench.runs` says
(``dnn-spe32``, or ``dnn-spe32 (jax)`` when several backends ran). Only runs with
status ``ok`` feed the statistics; failed and diverged ones are counted in
``comparison.csv`` and named in a note on the figures.

A number without its spread is a guess: ``comparison.csv`` gives each metric's
median with its spread (:class:`mnistbench.stats.Spread`), and flags as noisy a
metric whose coefficient of variation exceeds :data:`mnistbench.stats.NOISY_CV`.

pandas and matplotlib are imported where they are used, so that importing this
module (as the plugin manager does for every command) stays fast.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mnistbench
from mnistbench.atomic import atomic_writer
from mnistbench.metrics import HEADLINE, LOWER, Column, in_view
from mnistbench.plots.comparison import COMPARISON_PNG, plot_comparison
from mnistbench.plots.curves import CURVES_PNG, plot_curves
from mnistbench.plots.inference import INFERENCE_PNG, has_inference_curves, plot_inference
from mnistbench.plots.predictions import PREDICTIONS_PNG, plot_predictions, sample_predictions
from mnistbench.plots.style import first_error
from mnistbench.results import SAMPLES_NPZ
from mnistbench.runs import config_keys, flags, in_order, is_ok, labels, numeric, text
from mnistbench.stats import SPREAD_FIELDS, Spread

if TYPE_CHECKING:
    import pandas as pd

COMPARISON_CSV = "comparison.csv"


def _metrics(runs: pd.DataFrame) -> list[Column]:
    """The headline metrics that ``runs`` has a column for, in ``runs.csv`` order."""
    return [column for column in in_view(HEADLINE) if column.name in runs.columns]


def _converged_text(converged: pd.Series) -> str:
    """``"2/3"``: runs that reached the target of those that had one; "" when none had one."""
    known = [flag for flag in converged if flag is not None]
    return f"{sum(known)}/{len(known)}" if known else ""


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (and backend, when several ran), in the order they ran.

    Columns, in order:

    - ``config_id`` (the architecture for older ``runs.csv`` files without
      one), ``architecture``, ``backend`` (empty when unknown),
      ``steps_per_execution`` and ``jit_compile`` (the group's first known value);
    - ``status``: ``ok`` (every run succeeded), ``partial`` (some failed or
      diverged) or ``failed`` (none succeeded);
    - ``runs``: the number of successful runs; ``failed``: the number of failed
      and diverged ones;
    - ``converged``: ``"k/n"``, k of the n successful runs with a target
      accuracy reached it; empty when no run had a target;
    - ``noisy_metrics``: the metrics whose ``<metric>_noisy`` is True,
      separated by spaces; empty when none is;
    - one column per headline metric (:func:`mnistbench.metrics.in_view`
      ``(HEADLINE)``) present in ``runs``, in ``runs.csv`` order: the median
      over successful runs, in the unit of the ``runs.csv`` column of the same
      name (empty when the group has no successful run with a value;
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

    headline = _metrics(runs)
    metrics = [column.name for column in headline]
    names = labels(runs)
    rows = [_group_row(runs, names == name, metrics) for name in in_order(names)]
    ids = ["config_id", "architecture", "backend", "steps_per_execution", "jit_compile"]
    counts = ["status", "runs", "failed", "converged", "noisy_metrics"]
    ratios = [f"{name}_ratio_to_best" for name in metrics]
    spreads = [f"{name}_{field}" for name in metrics for field in SPREAD_FIELDS]
    table = pd.DataFrame(rows, columns=[*ids, *counts, *metrics, *spreads, "error"])
    for column in headline:
        table[f"{column.name}_ratio_to_best"] = _ratio_to_best(table[column.name], column.better)
    # Counts are whole numbers; keep them so in the CSV ("32", not "32.0").
    whole = ["steps_per_execution"]
    if "params" in metrics:
        whole += ["params", "params_min", "params_max"]
    for name in whole:
        table[name] = pd.to_numeric(table[name]).round().astype("Int64")
    # Flags hold True, False or None (empty in the CSV), whether or not a group lacks one.
    for name in ["jit_compile", *(f"{name}_noisy" for name in metrics)]:
        table[name] = table[name].astype(object).where(table[name].notna(), None)
    return table[[*ids, *counts, *metrics, *ratios, *spreads, "error"]]


def _first_known(values: pd.Series) -> Any:
    """The first value that is neither None, NaN nor empty; None when there is none."""
    known = [v for v in values if v is not None and v == v and v != ""]
    return known[0] if known else None


def _group_row(runs: pd.DataFrame, members: pd.Series, metrics: list[str]) -> dict[str, Any]:
    """The row of ``comparison.csv`` for the runs in ``members``, without ratios."""
    ok = is_ok(runs)
    succeeded, failed = int((members & ok).sum()), int((members & ~ok).sum())
    row: dict[str, Any] = {
        "config_id": config_keys(runs)[members].iloc[0],
        "architecture": runs.loc[members, "architecture"].astype(str).iloc[0],
        "backend": _first_known(text(runs, "backend")[members]) or "",
        "steps_per_execution": _first_known(numeric(runs, "steps_per_execution")[members]),
        "jit_compile": _first_known(flags(runs, "jit_compile")[members]),
        "status": "ok" if not failed else ("failed" if not succeeded else "partial"),
        "runs": succeeded,
        "failed": failed,
        "converged": _converged_text(flags(runs, "converged")[members & ok]),
    }
    noisy = []
    for name in metrics:
        spread = Spread.of(numeric(runs, name)[members & ok])
        row[name] = spread.median
        for field in SPREAD_FIELDS:
            row[f"{name}_{field}"] = getattr(spread, field)
        if spread.noisy:
            noisy.append(name)
    row["noisy_metrics"] = " ".join(noisy)
    row["error"] = first_error(text(runs, "error")[members & ~ok])
    return row


def _ratio_to_best(medians: pd.Series, better: str) -> pd.Series:
    """Each median over the best one, rounded to 4 decimals; NaN when the best is 0 or unknown."""
    import pandas as pd

    best = medians.min() if better == LOWER else medians.max()
    ratio = medians / best if best and not math.isnan(best) else math.nan
    return pd.Series(ratio, index=medians.index).round(4)


# --- the hook -------------------------------------------------------------------------


# trylast: the other reporters (pytest-benchmark.json, third parties') write first, so that
# report.html, written last, links every file of the directory.
@mnistbench.hookimpl(trylast=True)
def mnistbench_write_report(runs: pd.DataFrame, output_dir: Path) -> list[Path]:
    """Write ``comparison.csv``, ``comparison.png``, ``curves.png``, ``predictions.png``,
    ``inference.png`` and ``report.html``.

    ``predictions.png`` only when ``output_dir/samples.npz`` exists and a
    successful run recorded ``sample_predictions``; ``inference.png`` only when a
    successful run recorded an ``inference_curve`` (``--inference-batch-sizes``).
    ``report.html`` (:mod:`mnistbench.pages.report`) comes last: it embeds the others and
    links every file in the directory, so this reporter runs after the other reporters.
    Every file is written atomically. Returns the paths written, in that order.
    """
    from mnistbench.pages.report import write_html_report

    output_dir = Path(output_dir)
    csv_path = output_dir / COMPARISON_CSV
    table = comparison_table(runs)
    with atomic_writer(csv_path, "w") as handle:
        table.to_csv(handle, index=False)
    written = [
        csv_path,
        plot_comparison(runs, output_dir / COMPARISON_PNG),
        plot_curves(runs, output_dir / CURVES_PNG),
    ]
    samples = output_dir / SAMPLES_NPZ
    if samples.is_file() and sample_predictions(runs):
        written.append(plot_predictions(runs, samples, output_dir / PREDICTIONS_PNG))
    if has_inference_curves(runs):
        written.append(plot_inference(runs, output_dir / INFERENCE_PNG))
    written.append(write_html_report(runs, output_dir, table))
    return written
