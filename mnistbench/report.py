"""The built-in reporter: ``comparison.csv`` and three plots from the runs of one directory.

Each public function takes the ``runs.csv`` DataFrame (plus a path) and returns
a DataFrame or the path it wrote, so each is testable alone;
``mnistbench_write_report`` is the core's implementation of the report hook and
only ties them together.

Runs are grouped by configuration: the ``config_id`` (an architecture plus its
non-default options, e.g. ``dnn-spe32``), which repeats share. Older
``runs.csv`` files have no ``config_id``; their runs are grouped by
architecture. When ``runs.csv`` holds more than one backend the backend is part
of the group too: the group is labelled ``dnn-spe32`` with a single backend and
``dnn-spe32 (jax)`` with several. Only runs with status ``ok`` feed the
statistics and the figures; failed and diverged ones are counted in
``comparison.csv`` and named in a note on the plots.

A number without its spread is a guess: ``comparison.csv`` gives each metric's
median with its min, max, interquartile range, standard deviation and
coefficient of variation, and flags as noisy a metric whose coefficient of
variation exceeds :data:`NOISY_CV`; ``comparison.png`` marks those bars.

The figures are ``matplotlib.figure.Figure`` objects saved through the Agg
renderer, never pyplot: pyplot would register them with a global figure
manager, and forcing its backend with ``matplotlib.use("Agg")`` would close the
figures of a caller who uses pyplot interactively (a notebook). Nothing is
registered, so nothing needs closing; a figure is freed with its last reference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mnistbench
from mnistbench.atomic import atomic_writer
from mnistbench.results import SAMPLES_NPZ

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Headline columns of ``comparison.csv`` and the direction that is best. A
#: metric whose column is absent from ``runs.csv`` (an older file) is left out.
HEADLINE_METRICS: dict[str, str] = {
    "fit_seconds": "min",
    "first_epoch_seconds": "min",
    "steady_epoch_seconds": "min",
    "seconds_per_epoch": "min",
    "time_to_accuracy_seconds": "min",
    "train_samples_per_second": "max",
    "train_flops_per_second": "max",
    "train_peak_fraction": "max",
    "test_accuracy": "max",
    "test_loss": "min",
    "inference_samples_per_second": "max",
    "inference_peak_fraction": "max",
    "latency_ms": "min",
    "latency_p95_ms": "min",
    "latency_p99_ms": "min",
    "params": "min",
    "peak_memory_mb": "min",
}

#: A metric is noisy when its coefficient of variation (stdev / mean) over a
#: group's successful runs exceeds this: a difference smaller than the noise is
#: not a difference.
NOISY_CV = 0.10

# The spread columns of each metric in comparison.csv, in order.
_SPREAD_SUFFIXES = ("min", "max", "iqr", "stdev", "cv", "noisy")

COMPARISON_CSV = "comparison.csv"
COMPARISON_PNG = "comparison.png"
CURVES_PNG = "curves.png"
PREDICTIONS_PNG = "predictions.png"

#: Resolution of every plot: sharp on a laptop screen, small enough for a README.
DPI = 120

# Figure sizes in inches; pixel sizes are these times DPI.
COMPARISON_SIZE = (13.0, 4.8)  # minimum, three panels; wider when many groups need room
COMPARISON_GRID_SIZE = (13.0, 8.6)  # minimum, four panels in two rows
CURVES_SIZE = (12.0, 4.6)
NOTICE_SIZE = (9.0, 3.0)

# Red for wrong predictions and failures; always paired with a ✗ or the word
# "failed", so the plots do not rely on colour alone.
WRONG_COLOR = "#c62828"
# Orange for the "noisy" mark on a bar; the word carries the meaning, not the colour.
NOISY_COLOR = "#b45309"
NOT_CONVERGED_COLOR = "#9e9e9e"
ERROR_TEXT_CHARS = 90


# --- grouping and parsing -------------------------------------------------------------


def _is_ok(runs: pd.DataFrame) -> pd.Series:
    """True for successful runs; anything but "ok" (failed, diverged, interrupted, empty) is not."""
    return runs["status"].astype(str).str.strip().eq("ok")


def _text(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as stripped strings, "" where missing (an all-empty column reads as floats)."""
    import pandas as pd

    if column not in runs.columns:
        return pd.Series("", index=runs.index, dtype=object)
    values = runs[column]
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


def _flags(runs: pd.DataFrame, column: str) -> pd.Series:
    """A True/False column as Python bools, None where empty or unreadable.

    pandas reads such a column as bool, as strings when some cells are empty,
    or as floats; all of them mean the same.
    """
    text = _text(runs, column).str.lower()
    return text.map(lambda value: True if value in _TRUE else False if value in _FALSE else None)


def _group_keys(runs: pd.DataFrame) -> pd.Series:
    """One key per row: the ``config_id``, or the architecture where there is none."""
    architecture = runs["architecture"].astype(str)
    config = _text(runs, "config_id")
    # Older runs.csv files have no config_id: the architecture is the best key they offer.
    return config.where(config != "", architecture)


def _group_labels(runs: pd.DataFrame) -> pd.Series:
    """One label per row: the configuration, with the backend when several backends ran."""
    keys = _group_keys(runs)
    backend = _text(runs, "backend")
    if backend[backend != ""].nunique() <= 1:
        return keys
    # A run that failed before its backend was known keeps the bare name.
    return keys.where(backend == "", keys + " (" + backend + ")")


def _group_order(labels: pd.Series) -> list[str]:
    """Labels in order of first appearance: the order the sweep ran them in."""
    return list(dict.fromkeys(labels))


def _numeric(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats; missing columns and unparsable cells become NaN."""
    import pandas as pd

    if column not in runs.columns:
        return pd.Series(math.nan, index=runs.index, dtype=float)
    return pd.to_numeric(runs[column], errors="coerce").astype(float)


def _json_list(value: Any) -> list:
    """A JSON-list cell as a list; empty for failed runs (NaN, "") and unreadable cells."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return []
    return parsed if isinstance(parsed, list) else []


def _colors(runs: pd.DataFrame) -> dict[str, Any]:
    """One colour per group, fixed by run order, so every plot of a directory agrees."""
    from matplotlib import colormaps

    palette = list(colormaps["tab10"].colors) + list(colormaps["Dark2"].colors)
    order = _group_order(_group_labels(runs))
    return {label: palette[i % len(palette)] for i, label in enumerate(order)}


# Unsuccessful statuses the notes name as they are; any other is "failed".
_NAMED_FAILURES = ("diverged", "interrupted")


def _failure_notes(runs: pd.DataFrame) -> list[str]:
    """One line per group with unsuccessful runs: which, how many, what went wrong, first error."""
    labels, ok = _group_labels(runs), _is_ok(runs)
    errors, statuses = _text(runs, "error"), _text(runs, "status")
    notes = []
    for label in _group_order(labels):
        members = labels == label
        failed = int((members & ~ok).sum())
        if not failed:
            continue
        total = int(members.sum())
        # Say what happened: "diverged" or "interrupted" where the status says so.
        kinds = statuses[members & ~ok].map(lambda s: s if s in _NAMED_FAILURES else "failed")
        word = " or ".join(dict.fromkeys(kinds))
        error = _first_error(errors[members & ~ok], ERROR_TEXT_CHARS)
        what = word if failed == total else f"{failed} of {total} runs {word}"
        note = f"{label}: {what}" + (f" ({error})" if error else "")
        notes.append(note)
    return notes


def _first_error(errors: pd.Series, limit: int | None = None) -> str:
    """The first non-empty error, on one line; cut to ``limit`` characters for plots."""
    for error in errors:
        error = " ".join(str(error).split())
        if error:
            if limit is not None and len(error) > limit:
                error = error[: limit - 1] + "…"
            return error
    return ""


def _span(values: pd.Series, fmt: Callable[[int], str] = str) -> str | None:
    """``"5"`` when every run agrees, ``"1–5"`` when they differ, None when unknown."""
    values = values.dropna()
    if values.empty:
        return None
    low, high = int(values.min()), int(values.max())
    return fmt(low) if low == high else f"{fmt(low)}–{fmt(high)}"


def _setting(runs: pd.DataFrame) -> str:
    """What was measured, from the data: "MNIST: 60,000 train / 10,000 test samples, ..."."""
    ok = _is_ok(runs)
    # Successful runs know how many samples they used; fall back to the configuration.
    source = runs[ok] if ok.any() else runs
    train = _span(_numeric(source, "train_samples"), "{:,}".format)
    test = _span(_numeric(source, "test_samples"), "{:,}".format)
    epochs = _span(_numeric(source, "epochs"))
    batch = _span(_numeric(source, "batch_size"))
    text = "MNIST"
    if train and test:
        text += f": {train} train / {test} test samples"
    if epochs:
        text += f", {epochs} epoch{'' if epochs == '1' else 's'}"
    if batch:
        text += f", batch size {batch}"
    backends = sorted(set(_text(source, "backend")) - {""})
    if backends:
        text += f", backend {' / '.join(backends)}"
    return text


# --- comparison.csv -------------------------------------------------------------------


@dataclass(frozen=True)
class _Spread:
    """One metric over one group's successful runs: its median and how far the runs disagree."""

    median: float
    min: float
    max: float
    iqr: float  # 75th minus 25th percentile, interpolated linearly
    stdev: float  # sample standard deviation (n - 1); NaN with fewer than 2 runs
    cv: float  # stdev / mean; NaN with fewer than 2 runs or a zero mean
    noisy: bool | None  # cv > NOISY_CV; None when cv is unknown

    @classmethod
    def of(cls, values: pd.Series) -> _Spread:
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


def _metrics(runs: pd.DataFrame) -> dict[str, str]:
    """The :data:`HEADLINE_METRICS` that ``runs`` has a column for."""
    return {m: best for m, best in HEADLINE_METRICS.items() if m in runs.columns}


def _converged_text(flags: pd.Series) -> str:
    """``"2/3"``: runs that reached the target of those that had one; "" when none had one."""
    known = [flag for flag in flags if flag is not None]
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
    - one column per :data:`HEADLINE_METRICS` key present in ``runs``: the
      median over successful runs, in the unit of the ``runs.csv`` column of
      the same name (empty when the group has no successful run with a value;
      ``time_to_accuracy_seconds`` has values only for converged runs);
    - ``<metric>_ratio_to_best``: the median divided by the best median over all
      groups, rounded to 4 decimals. The best group has 1.0 in every metric.
      For "min" metrics (times, loss, memory, parameters) the others are above
      1.0, e.g. 1.91 for a model that trains 1.91 times as long; for "max"
      metrics (throughput, accuracy) they are below 1.0, e.g. 0.5 for half the
      throughput. Empty when the best is zero or unknown;
    - per metric, its spread over the successful runs: ``<metric>_min``,
      ``<metric>_max``, ``<metric>_iqr`` (interquartile range),
      ``<metric>_stdev`` (sample standard deviation), ``<metric>_cv``
      (coefficient of variation, stdev / mean) and ``<metric>_noisy`` (True
      when the cv exceeds :data:`NOISY_CV`, else False). Stdev, cv and noisy
      are empty with fewer than 2 runs: one number has no spread;
    - ``error``: the first error of the group's failed runs, empty otherwise.
    """
    import pandas as pd

    labels, ok = _group_labels(runs), _is_ok(runs)
    metrics = _metrics(runs)
    values = {column: _numeric(runs, column) for column in metrics}
    keys, backends, errors = _group_keys(runs), _text(runs, "backend"), _text(runs, "error")
    steps, jit, converged = (
        _numeric(runs, "steps_per_execution"),
        _flags(runs, "jit_compile"),
        _flags(runs, "converged"),
    )

    def first(series: pd.Series) -> Any:
        known = [v for v in series if v is not None and v == v and v != ""]
        return known[0] if known else None

    rows = []
    for label in _group_order(labels):
        members = labels == label
        succeeded, failed = int((members & ok).sum()), int((members & ~ok).sum())
        row: dict[str, Any] = {
            "config_id": keys[members].iloc[0],
            "architecture": runs.loc[members, "architecture"].astype(str).iloc[0],
            "backend": first(backends[members]) or "",
            "steps_per_execution": first(steps[members]),
            "jit_compile": first(jit[members]),
            "status": "ok" if not failed else ("failed" if not succeeded else "partial"),
            "runs": succeeded,
            "failed": failed,
            "converged": _converged_text(converged[members & ok]),
        }
        noisy = []
        for column, column_values in values.items():
            spread = _Spread.of(column_values[members & ok])
            row[column] = spread.median
            for suffix in _SPREAD_SUFFIXES:
                row[f"{column}_{suffix}"] = getattr(spread, suffix)
            if spread.noisy:
                noisy.append(column)
        row["noisy_metrics"] = " ".join(noisy)
        row["error"] = _first_error(errors[members & ~ok])
        rows.append(row)

    ids = ["config_id", "architecture", "backend", "steps_per_execution", "jit_compile"]
    counts = ["status", "runs", "failed", "converged", "noisy_metrics"]
    ratios = [f"{column}_ratio_to_best" for column in metrics]
    spreads = [f"{column}_{suffix}" for column in metrics for suffix in _SPREAD_SUFFIXES]
    table = pd.DataFrame(rows, columns=[*ids, *counts, *metrics, *spreads, "error"])
    for column, direction in metrics.items():
        best = table[column].min() if direction == "min" else table[column].max()
        ratio = table[column] / best if best and not math.isnan(best) else math.nan
        table[f"{column}_ratio_to_best"] = pd.Series(ratio, index=table.index).round(4)
    # Counts are whole numbers; keep them so in the CSV ("32", not "32.0").
    whole = ["steps_per_execution"]
    if "params" in metrics:
        whole += ["params", "params_min", "params_max"]
    for column in whole:
        table[column] = pd.to_numeric(table[column]).round().astype("Int64")
    # Flags hold True, False or None (empty in the CSV), whether or not a group lacks one.
    for column in ["jit_compile", *(f"{column}_noisy" for column in metrics)]:
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table[[*ids, *counts, *metrics, *ratios, *spreads, "error"]]


# --- figures --------------------------------------------------------------------------


def _figure(size: tuple[float, float], layout: str | None = "constrained") -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout=layout)


def _save(fig: Figure, path: Path | str) -> Path:
    path = Path(path)
    with atomic_writer(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=DPI)
    return path


def _notice(path: Path | str, title: str, runs: pd.DataFrame) -> Path:
    """A plot that says there is nothing to plot and why, instead of a stale or missing file."""
    fig = _figure(NOTICE_SIZE)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    ax = fig.add_subplot()
    ax.set_axis_off()
    lines = ["No successful runs: nothing to plot.", "", *_failure_notes(runs)]
    ax.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=10, wrap=True)
    fig.supxlabel(_setting(runs), fontsize=9, color="dimgray")
    return _save(fig, path)


def _add_failure_note(fig: Figure, runs: pd.DataFrame, shown: str) -> None:
    """Name failed groups under the plot, so a missing bar or line is never a mystery."""
    notes = _failure_notes(runs)
    if notes:
        text = f"Not {shown} — " + "; ".join(notes)
        fig.supxlabel(text, fontsize=9, color=WRONG_COLOR, wrap=True)


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _seconds(value: float) -> str:
    if value < 10:
        return f"{value:.2f} s"
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


@dataclass(frozen=True)
class _Panel:
    """One bar panel of ``comparison.png``."""

    column: str  # the runs.csv column
    title: str
    ylabel: str  # with its unit
    scale: float  # applied to the values, e.g. 100 for a fraction shown in %
    fmt: Callable[[float], str]  # the value label above each bar


_COMPARISON_PANELS: list[_Panel] = [
    _Panel("fit_seconds", "Training time (lower is better)", "fit time (s)", 1.0, _seconds),
    _Panel(
        "inference_samples_per_second",
        "Inference throughput (higher is better)",
        "samples / s",
        1.0,
        "{:,.0f}".format,
    ),
    _Panel(
        "test_accuracy",
        "Test accuracy (higher is better)",
        "test accuracy (%)",
        100.0,
        "{:.2f}%".format,
    ),
]

_TIME_TO_ACCURACY = "time_to_accuracy_seconds"
_NOISY_NOTE = f"noisy: coefficient of variation > {NOISY_CV:.0%}"
_LINE_PT = 11  # height of one label line at 9 pt, with its leading


def _time_to_accuracy_panel(runs: pd.DataFrame) -> _Panel | None:
    """The fourth panel, when a successful run had a target: its time, or "not converged"."""
    if _TIME_TO_ACCURACY not in runs.columns:
        return None
    ok = _is_ok(runs)
    reached = _numeric(runs, _TIME_TO_ACCURACY)[ok].notna().any()
    # A sweep where no run reached its target still has something to show.
    targeted = _flags(runs, "converged")[ok].notna().any()
    if not (reached or targeted):
        return None
    targets = _numeric(runs, "target_accuracy")[ok].dropna().unique()
    target = f"{targets[0]:.2%}".replace(".00%", "%") if len(targets) == 1 else "target"
    return _Panel(
        _TIME_TO_ACCURACY,
        f"Time to {target} test accuracy (lower is better)",
        "time to target accuracy (s)",
        1.0,
        _seconds,
    )


def _bar_panel(
    ax: Axes,
    panel: _Panel,
    runs: pd.DataFrame,
    groups: list[str],
    colors: dict[str, Any],
    rotate: bool,
) -> bool:
    """Draw one panel: median bars, min–max error bars and value labels; True if one is noisy.

    A noisy bar gets a "noisy" line above its value. In the time-to-accuracy
    panel a group none of whose runs reached the target gets a grey hatched bar
    labelled "not converged" instead of a time, and a group only some of whose
    runs did says how many ("2/3 converged") above its time, the median of those.
    """
    import numpy as np
    from matplotlib.ticker import StrMethodFormatter

    ok, labels = _is_ok(runs), _group_labels(runs)
    values = _numeric(runs, panel.column) * panel.scale
    members = [ok & (labels == g) for g in groups]
    spreads = [_Spread.of(values[m]) for m in members]
    median = np.array([s.median for s in spreads])
    low, high = np.array([s.min for s in spreads]), np.array([s.max for s in spreads])
    counts = [int(values[m].notna().sum()) for m in members]
    x = np.arange(len(groups))

    # Per group: None (no target), or (runs that reached it, runs that had one).
    convergence: list[tuple[int, int] | None] = [None] * len(groups)
    if panel.column == _TIME_TO_ACCURACY:
        flags = _flags(runs, "converged")
        for i, m in enumerate(members):
            known = [flag for flag in flags[m] if flag is not None]
            if known:
                convergence[i] = (sum(known), len(known))
    never = np.array(
        [c is not None and c[0] == 0 and counts[i] == 0 for i, c in enumerate(convergence)]
    )

    top = np.nanmax(high, initial=0.0) if counts and max(counts) else 0.0
    data_ceiling = top if top > 0 else 1.0
    ax.bar(x, np.nan_to_num(median), width=0.6, color=[colors[g] for g in groups])
    for xi in x[never]:
        # As tall as the slowest time: "never" is worse than every measured time.
        ax.bar(
            xi,
            data_ceiling,
            width=0.6,
            color="#f2f2f2",
            edgecolor=NOT_CONVERGED_COLOR,
            hatch="///",
            linewidth=1,
        )
        ax.text(
            xi,
            data_ceiling / 2,
            "not converged",
            rotation=90,
            ha="center",
            va="center",
            fontsize=9,
            color="dimgray",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
        )
    spread = np.array([n > 1 for n in counts])
    if spread.any():
        ax.errorbar(
            x[spread],
            median[spread],
            yerr=[(median - low)[spread], (high - median)[spread]],
            fmt="none",
            ecolor="black",
            elinewidth=1,
            capsize=5,
        )

    known = median[~np.isnan(median)]
    best = None
    if known.size:
        best = known.min() if HEADLINE_METRICS[panel.column] == "min" else known.max()
    any_noisy, extra_lines = False, 0
    for i, (xi, value) in enumerate(zip(x, median, strict=True)):
        if never[i]:
            continue
        base = 0.0 if np.isnan(high[i]) else high[i]
        if not np.isnan(value):
            text = panel.fmt(value)
        else:
            no_target = panel.column == _TIME_TO_ACCURACY and convergence[i] is None
            text = "no target" if no_target else "n/a"
        is_best = best is not None and value == best and len(groups) > 1
        lines = [(text, "black", "bold" if is_best else "normal")]
        reached = convergence[i]
        if reached is not None and 0 < reached[0] < reached[1]:
            lines.append((f"{reached[0]}/{reached[1]} converged", "dimgray", "normal"))
        if spreads[i].noisy:
            lines.append(("noisy", NOISY_COLOR, "bold"))
            any_noisy = True
        extra_lines = max(extra_lines, len(lines) - 1)
        for j, (line, color, weight) in enumerate(lines):
            ax.annotate(
                line,
                (xi, base),
                xytext=(0, 4 + j * _LINE_PT),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=9,
                color=color,
                fontweight=weight,
            )

    # Headroom for the value labels, which do not take part in autoscaling.
    ceiling = 100.0 if panel.column == "test_accuracy" else data_ceiling
    ax.set_ylim(0, ceiling * (1.15 + 0.09 * extra_lines))
    if panel.column == "test_accuracy":
        ax.set_yticks(np.arange(0, 101, 20))
    if not counts or not max(counts):
        # Only "not converged" bars: their height is a placeholder, not a time.
        ax.set_yticks([])
    else:
        # Whole numbers on tall axes; decimals where whole ticks would repeat ("1, 1, 2").
        decimals = 0 if ceiling >= 10 else 1 if ceiling >= 1 else 2
        ax.yaxis.set_major_formatter(StrMethodFormatter(f"{{x:,.{decimals}f}}"))
    ax.set_xticks(x, groups, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    # Keep room for three bars, so one or two stay bar-shaped and centred.
    pad = max(0.0, (3 - len(groups)) / 2)
    ax.set_xlim(-0.5 - pad, len(groups) - 0.5 + pad)
    ax.set_title(panel.title, fontsize=11)
    ax.set_ylabel(panel.ylabel)
    _style(ax)
    return any_noisy


def plot_comparison(runs: pd.DataFrame, path: Path | str) -> Path:
    """Write ``comparison.png``: training time, inference throughput, test accuracy.

    One bar panel per metric, one bar per configuration (median over its
    successful runs) in the configuration's colour, each labelled with its
    value; the best value is in bold. When a group has several successful runs,
    error bars span their min–max, and a bar whose runs disagree by more than
    :data:`NOISY_CV` (coefficient of variation) is marked "noisy", explained in
    the subtitle. The subtitle also says how many runs each bar summarizes. The
    accuracy axis runs from 0 to 100 % so that bar lengths stay honest; the
    labels carry the differences. Failed and diverged configurations are named
    in red under the panels.

    When a successful run had a target accuracy, a fourth panel shows the time
    to reach it (median over the runs that did); a configuration that never
    reached it gets a grey hatched bar labelled "not converged".

    Three panels make a row of 13 × 4.8 in at :data:`DPI` (1560 × 576 px);
    four make a 2 × 2 grid of 13 × 8.6 in (1560 × 1032 px). Either is wider
    from five configurations on, so that value labels never touch.

    When no run succeeded the file still is written, as a notice naming the
    failures: a stale plot from an earlier report, or none at all, would
    contradict ``comparison.csv``.
    """
    ok = _is_ok(runs)
    if not ok.any():
        return _notice(path, "Configuration comparison", runs)

    labels = _group_labels(runs)
    groups = [label for label in _group_order(labels) if (ok & (labels == label)).any()]
    colors = _colors(runs)
    counts = [int((ok & (labels == g)).sum()) for g in groups]

    panels = list(_COMPARISON_PANELS)
    time_to_accuracy = _time_to_accuracy_panel(runs)
    if time_to_accuracy is not None:
        panels.append(time_to_accuracy)
    rows, per_row = (2, 2) if len(panels) == 4 else (1, len(panels))
    size = COMPARISON_GRID_SIZE if rows == 2 else COMPARISON_SIZE
    # About 0.7 in per bar in each panel of a row keeps value labels apart.
    width = max(size[0], 0.7 * per_row * len(groups) + 3.2)
    fig = _figure((width, size[1]))
    axes = fig.subplots(rows, per_row, squeeze=False).ravel()
    # Rotate names only when they would collide under their bars.
    rotate = max(len(g) for g in groups) * len(groups) > 10 * (9 / per_row)
    noisy = False
    for ax, panel in zip(axes, panels, strict=True):
        noisy |= _bar_panel(ax, panel, runs, groups, colors, rotate)

    if max(counts) > 1:
        low_n, high_n = min(counts), max(counts)
        n = str(low_n) if low_n == high_n else f"{low_n}–{high_n}"
        how = f"bars: median of {n} runs each; error bars: min–max"
    else:
        how = "one run per configuration: no spread shown"
    if noisy:
        how += f"; {_NOISY_NOTE}"
    fig.suptitle(f"Configuration comparison — {_setting(runs)}\n{how}", fontsize=12)
    _add_failure_note(fig, runs, "shown")
    return _save(fig, path)


def plot_curves(runs: pd.DataFrame, path: Path | str) -> Path:
    """Write ``curves.png``: training accuracy (%) and training loss per epoch.

    One line with markers per configuration, in its colour (markers keep a
    single-epoch run visible as a point). With several successful runs the line
    is the per-epoch median and a shaded band spans their min–max. Epochs are
    numbered from 1 on integer ticks; one legend beside the panels names every
    line. The figure is 12 × 4.6 in at :data:`DPI` (1440 × 552 px). Like
    :func:`plot_comparison`, writes a notice when no run succeeded.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    ok = _is_ok(runs)
    labels = _group_labels(runs)
    colors = _colors(runs)
    series: dict[str, dict[str, np.ndarray]] = {}
    for label in _group_order(labels):
        members = runs[ok & (labels == label)]
        for key in ("epoch_accuracy", "epoch_loss"):
            column = members[key] if key in members.columns else []
            lists = [v for v in map(_json_list, column) if v]
            if not lists:
                continue
            # Pad with NaN so repeats that stopped early still line up by epoch.
            width = max(map(len, lists))
            matrix = np.full((len(lists), width), np.nan)
            for i, values in enumerate(lists):
                matrix[i, : len(values)] = np.asarray(values, dtype=float)
            series.setdefault(label, {})[key] = matrix
    if not series:
        return _notice(path, "Training curves", runs)

    fig = _figure(CURVES_SIZE)
    axes = fig.subplots(1, 2)
    panels = [
        ("epoch_accuracy", "Training accuracy per epoch", "training accuracy (%)", 100.0),
        ("epoch_loss", "Training loss per epoch", "training loss (cross-entropy)", 1.0),
    ]
    last_epoch = 1
    for ax, (key, title, ylabel, scale) in zip(axes, panels, strict=True):
        for label, matrices in series.items():
            if key not in matrices:
                continue
            matrix = matrices[key] * scale
            epochs = np.arange(1, matrix.shape[1] + 1)
            last_epoch = max(last_epoch, int(epochs[-1]))
            color = colors[label]
            ax.plot(
                epochs,
                np.nanmedian(matrix, axis=0),
                marker="o",
                color=color,
                label=label,
                linewidth=2,
            )
            if matrix.shape[0] > 1:
                low, high = np.nanmin(matrix, axis=0), np.nanmax(matrix, axis=0)
                ax.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        _style(ax)
    for ax in axes:
        ax.set_xlim(0.6, last_epoch + 0.4)
        # Every epoch gets its tick while they fit; the locator alone would
        # put fractional ticks around a single epoch.
        if last_epoch <= 20:
            ax.set_xticks(np.arange(1, last_epoch + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    # One legend outside the axes: it never hides a line, and both panels share it.
    handles, names = axes[0].get_legend_handles_labels()
    if not handles:
        handles, names = axes[1].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right upper", title="configuration")
    counts = [int((ok & (labels == label)).sum()) for label in series]
    how = (
        "lines: median per epoch; bands: min–max over repeats"
        if max(counts) > 1
        else "one run per configuration"
    )
    fig.suptitle(f"Training curves — {_setting(runs)}\n{how}", fontsize=12)
    _add_failure_note(fig, runs, "plotted")
    return _save(fig, path)


# --- predictions.png ------------------------------------------------------------------

# Layout of predictions.png in inches: each digit is a cell with the true label
# above the image and one line per configuration below it. Sizes are computed,
# not left to a layout engine, so that lines never overlap whatever the number
# of configurations or digits.
_DIGITS_PER_ROW = 8
_IMAGE_IN = 0.9
_TRUE_LINE_IN = 0.26
_PREDICTION_LINE_IN = 0.19
_CELL_PAD_IN = 0.22
_HEADER_IN = 1.1
_MARGIN_IN = 0.2
_CHAR_IN = 0.075  # rough width of one character at 9 pt


def _sample_predictions(runs: pd.DataFrame) -> dict[str, list]:
    """Per group, the predictions of its first successful run that has any."""
    labels, ok = _group_labels(runs), _is_ok(runs)
    if "sample_predictions" not in runs.columns:
        return {}
    predictions: dict[str, list] = {}
    for index in runs.index[ok]:
        label = labels[index]
        if label not in predictions:
            values = _json_list(runs.at[index, "sample_predictions"])
            if values:
                predictions[label] = values
    order = _group_order(labels)
    return {label: predictions[label] for label in order if label in predictions}


def plot_predictions(runs: pd.DataFrame, samples_npz: Path | str, path: Path | str) -> Path:
    """Write ``predictions.png``: the digits of ``samples.npz`` and each configuration's guesses.

    One cell per digit, eight to a row, in test-set order: the true label above
    the image, below it one line per configuration (``cnn: 7``) from the first
    successful run of that configuration. A wrong prediction is red, bold and
    marked ✗, and its digit gets a red frame; right ones are black. A digit
    beyond the length of a configuration's predictions shows ``–``. The
    subtitle counts each configuration's mistakes.

    :param samples_npz: ``x`` (K, 28, 28) uint8 images and ``y`` (K,) labels.
    """
    import numpy as np

    with np.load(samples_npz, allow_pickle=False) as samples:
        images, truth = samples["x"], samples["y"].astype(int)
    count = len(truth)
    predictions = _sample_predictions(runs)

    columns = max(1, min(count, _DIGITS_PER_ROW))
    rows = max(1, math.ceil(count / columns))
    longest = max((len(f"{label}: 0 ✗") for label in predictions), default=0)
    cell_w = max(1.2, longest * _CHAR_IN + 0.25)
    cell_h = _TRUE_LINE_IN + _IMAGE_IN + len(predictions) * _PREDICTION_LINE_IN + _CELL_PAD_IN
    width = max(6.5, columns * cell_w + 2 * _MARGIN_IN)
    height = _HEADER_IN + rows * cell_h + _MARGIN_IN
    fig = _figure((width, height), layout=None)
    left = (width - columns * cell_w) / 2  # centre the grid when the title sets the width

    mistakes = dict.fromkeys(predictions, 0)
    for i in range(count):
        row, column = divmod(i, columns)
        centre = left + (column + 0.5) * cell_w
        image_top = height - _HEADER_IN - row * cell_h - _TRUE_LINE_IN
        ax = fig.add_axes(
            (
                (centre - _IMAGE_IN / 2) / width,
                (image_top - _IMAGE_IN) / height,
                _IMAGE_IN / width,
                _IMAGE_IN / height,
            )
        )
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.text(
            centre / width,
            (image_top + 0.05) / height,
            f"true {truth[i]}",
            ha="center",
            va="bottom",
            fontsize=10,
            fontweight="bold",
        )
        any_wrong = False
        for j, (label, predicted) in enumerate(predictions.items()):
            y = (image_top - _IMAGE_IN - 0.04 - j * _PREDICTION_LINE_IN) / height
            if i >= len(predicted):
                text, color, weight = f"{label}: –", "gray", "normal"
            elif int(predicted[i]) == truth[i]:
                text, color, weight = f"{label}: {int(predicted[i])}", "black", "normal"
            else:
                text, color, weight = f"{label}: {int(predicted[i])} ✗", WRONG_COLOR, "bold"
                mistakes[label] += 1
                any_wrong = True
            fig.text(
                centre / width,
                y,
                text,
                ha="center",
                va="top",
                fontsize=9,
                color=color,
                fontweight=weight,
            )
        for spine in ax.spines.values():
            spine.set_color(WRONG_COLOR if any_wrong else "lightgray")
            spine.set_linewidth(2 if any_wrong else 1)

    fig.text(
        0.5,
        1 - 0.12 / height,
        f"Predictions on the first {count} test digits (red = wrong)",
        ha="center",
        va="top",
        fontsize=13,
        fontweight="bold",
    )
    if predictions:
        wrong = " · ".join(f"{label} {n} of {count}" for label, n in mistakes.items())
        detail = (
            f"true label above each digit, each configuration's prediction below\nwrong: {wrong}"
        )
    else:
        detail = "no successful run recorded predictions"
    fig.text(
        0.5,
        1 - 0.45 / height,
        f"{detail}\n{_setting(runs)}",
        ha="center",
        va="top",
        fontsize=9,
        color="dimgray",
    )
    return _save(fig, path)


# --- the hook -------------------------------------------------------------------------


@mnistbench.hookimpl
def mnistbench_write_report(runs: pd.DataFrame, output_dir: Path) -> list[Path]:
    """Write ``comparison.csv``, ``comparison.png``, ``curves.png`` and ``predictions.png``.

    ``predictions.png`` only when ``output_dir/samples.npz`` exists and a
    successful run recorded ``sample_predictions``. Every file is written
    atomically. Returns the paths written, in that order.
    """
    output_dir = Path(output_dir)
    csv_path = output_dir / COMPARISON_CSV
    with atomic_writer(csv_path, "w") as handle:
        comparison_table(runs).to_csv(handle, index=False)
    written = [
        csv_path,
        plot_comparison(runs, output_dir / COMPARISON_PNG),
        plot_curves(runs, output_dir / CURVES_PNG),
    ]
    samples = output_dir / SAMPLES_NPZ
    if samples.is_file() and _sample_predictions(runs):
        written.append(plot_predictions(runs, samples, output_dir / PREDICTIONS_PNG))
    return written
