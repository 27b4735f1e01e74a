"""The built-in reporter: ``comparison.csv`` and three plots from the runs of one directory.

Each public function takes the ``runs.csv`` DataFrame (plus a path) and returns
a DataFrame or the path it wrote, so each is testable alone;
``mnistbench_write_report`` is the core's implementation of the report hook and
only ties them together.

Runs are grouped by architecture, and by backend too when ``runs.csv`` holds
more than one: the group is labelled ``dnn`` with a single backend and
``dnn (jax)`` with several. Only runs with status ``ok`` feed the figures;
failed ones are counted in ``comparison.csv`` and named in a note on the plots.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mnistbench
from mnistbench.results import SAMPLES_NPZ, atomic_writer

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Headline columns of ``comparison.csv`` and the direction that is best.
HEADLINE_METRICS: dict[str, str] = {
    "fit_seconds": "min",
    "seconds_per_epoch": "min",
    "train_samples_per_second": "max",
    "test_accuracy": "max",
    "test_loss": "min",
    "inference_samples_per_second": "max",
    "latency_ms": "min",
    "params": "min",
    "peak_memory_mb": "min",
}

COMPARISON_CSV = "comparison.csv"
COMPARISON_PNG = "comparison.png"
CURVES_PNG = "curves.png"
PREDICTIONS_PNG = "predictions.png"

#: Resolution of every plot: sharp on a laptop screen, small enough for a README.
DPI = 120

# Figure sizes in inches; pixel sizes are these times DPI.
COMPARISON_SIZE = (13.0, 4.8)  # minimum; wider when many groups need room for labels
CURVES_SIZE = (12.0, 4.6)
NOTICE_SIZE = (9.0, 3.0)

# Red for wrong predictions and failures; always paired with a ✗ or the word
# "failed", so the plots do not rely on colour alone.
WRONG_COLOR = "#c62828"
ERROR_TEXT_CHARS = 90


# --- grouping and parsing -------------------------------------------------------------


def _is_ok(runs: pd.DataFrame) -> pd.Series:
    """True for successful runs; anything but "ok" (failed, empty, unknown) is not."""
    return runs["status"].astype(str).str.strip().eq("ok")


def _text(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as stripped strings, "" where missing (an all-empty column reads as floats)."""
    import pandas as pd

    if column not in runs.columns:
        return pd.Series("", index=runs.index, dtype=object)
    values = runs[column]
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _group_labels(runs: pd.DataFrame) -> pd.Series:
    """One label per row: the architecture, with the backend when several backends ran."""
    architecture = runs["architecture"].astype(str)
    backend = _text(runs, "backend")
    if backend[backend != ""].nunique() <= 1:
        return architecture
    # A run that failed before its backend was known keeps the bare name.
    return architecture.where(backend == "", architecture + " (" + backend + ")")


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


def _failure_notes(runs: pd.DataFrame) -> list[str]:
    """One line per group with failed runs: which, how many, and the first error."""
    labels, ok = _group_labels(runs), _is_ok(runs)
    errors = _text(runs, "error")
    notes = []
    for label in _group_order(labels):
        members = labels == label
        failed = int((members & ~ok).sum())
        if not failed:
            continue
        total = int(members.sum())
        error = _first_error(errors[members & ~ok], ERROR_TEXT_CHARS)
        what = "failed" if failed == total else f"{failed} of {total} runs failed"
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


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture (and backend, when several ran), in the order they ran.

    Columns, in order:

    - ``architecture``, ``backend`` (empty when unknown);
    - ``status``: ``ok`` (every run succeeded), ``partial`` (some failed) or
      ``failed`` (none succeeded);
    - ``runs``: the number of successful runs; ``failed``: the number of failed ones;
    - one column per :data:`HEADLINE_METRICS` key: the median over successful
      runs, in the unit of the ``runs.csv`` column of the same name (empty when
      the group has no successful run);
    - ``<metric>_ratio_to_best``: the median divided by the best median over all
      groups, rounded to 4 decimals. The best group has 1.0 in every metric.
      For "min" metrics (times, loss, memory, parameters) the others are above
      1.0, e.g. 1.91 for a model that trains 1.91 times as long; for "max"
      metrics (throughput, accuracy) they are below 1.0, e.g. 0.5 for half the
      throughput. Empty when the best is zero or unknown;
    - ``error``: the first error of the group's failed runs, empty otherwise.
    """
    import pandas as pd

    labels, ok = _group_labels(runs), _is_ok(runs)
    metrics = {column: _numeric(runs, column) for column in HEADLINE_METRICS}
    backends = _text(runs, "backend")
    errors = _text(runs, "error")

    rows = []
    for label in _group_order(labels):
        members = labels == label
        succeeded, failed = int((members & ok).sum()), int((members & ~ok).sum())
        known_backends = [b for b in backends[members] if b]
        row: dict[str, Any] = {
            "architecture": runs.loc[members, "architecture"].astype(str).iloc[0],
            "backend": known_backends[0] if known_backends else "",
            "status": "ok" if not failed else ("failed" if not succeeded else "partial"),
            "runs": succeeded,
            "failed": failed,
        }
        for column, values in metrics.items():
            row[column] = values[members & ok].median() if succeeded else math.nan
        row["error"] = _first_error(errors[members & ~ok])
        rows.append(row)

    columns = ["architecture", "backend", "status", "runs", "failed", *HEADLINE_METRICS]
    table = pd.DataFrame(rows, columns=[*columns, "error"])
    for column, direction in HEADLINE_METRICS.items():
        best = table[column].min() if direction == "min" else table[column].max()
        ratio = table[column] / best if best and not math.isnan(best) else math.nan
        table[f"{column}_ratio_to_best"] = pd.Series(ratio, index=table.index).round(4)
    # A parameter count is a whole number; keep it one in the CSV.
    table["params"] = table["params"].round().astype("Int64")
    ratios = [f"{column}_ratio_to_best" for column in HEADLINE_METRICS]
    return table[[*columns, *ratios, "error"]]


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


# metric column, panel title, y label, scale applied to the values, bar label format
_COMPARISON_PANELS: list[tuple[str, str, str, float, Callable[[float], str]]] = [
    ("fit_seconds", "Training time (lower is better)", "fit time (s)", 1.0, _seconds),
    (
        "inference_samples_per_second",
        "Inference throughput (higher is better)",
        "samples / s",
        1.0,
        "{:,.0f}".format,
    ),
    (
        "test_accuracy",
        "Test accuracy (higher is better)",
        "test accuracy (%)",
        100.0,
        "{:.2f}%".format,
    ),
]


def plot_comparison(runs: pd.DataFrame, path: Path | str) -> Path:
    """Write ``comparison.png``: training time, inference throughput and test accuracy.

    Three bar panels, one bar per architecture (median over its successful
    runs) in the architecture's colour, each labelled with its value; the best
    value is in bold. When a group has several successful runs, error bars span
    their min–max; the subtitle says how many runs each bar summarizes. The
    accuracy axis runs from 0 to 100 % so that bar lengths stay honest; the
    labels carry the differences. Failed architectures are named in red under
    the panels. The figure is 13 × 4.8 in at :data:`DPI` (1560 × 576 px), wider
    from five architectures on, so that value labels never touch.

    When no run succeeded the file still is written, as a notice naming the
    failures: a stale plot from an earlier report, or none at all, would
    contradict ``comparison.csv``.
    """
    import numpy as np
    from matplotlib.ticker import StrMethodFormatter

    ok = _is_ok(runs)
    if not ok.any():
        return _notice(path, "Architecture comparison", runs)

    labels = _group_labels(runs)
    groups = [label for label in _group_order(labels) if (ok & (labels == label)).any()]
    colors = _colors(runs)
    counts = [int((ok & (labels == g)).sum()) for g in groups]

    # About 0.7 in per bar in each of the three panels keeps value labels apart.
    width = max(COMPARISON_SIZE[0], 2.1 * len(groups) + 3.2)
    fig = _figure((width, COMPARISON_SIZE[1]))
    axes = fig.subplots(1, len(_COMPARISON_PANELS))
    x = np.arange(len(groups))
    # Rotate names only when they would collide under their bars.
    rotate = max(len(g) for g in groups) * len(groups) > 30
    for ax, (column, title, ylabel, scale, fmt) in zip(axes, _COMPARISON_PANELS, strict=True):
        values = _numeric(runs, column) * scale
        per_group = [values[ok & (labels == g)].dropna() for g in groups]
        median = np.array([v.median() if len(v) else np.nan for v in per_group])
        low = np.array([v.min() if len(v) else np.nan for v in per_group])
        high = np.array([v.max() if len(v) else np.nan for v in per_group])
        ax.bar(x, np.nan_to_num(median), width=0.6, color=[colors[g] for g in groups])
        if any(len(v) > 1 for v in per_group):
            ax.errorbar(
                x,
                median,
                yerr=[median - low, high - median],
                fmt="none",
                ecolor="black",
                elinewidth=1,
                capsize=5,
            )
        known = median[~np.isnan(median)]
        best = None
        if known.size:
            best = known.min() if HEADLINE_METRICS[column] == "min" else known.max()
        for xi, value, top in zip(x, median, high, strict=True):
            is_best = best is not None and value == best and len(groups) > 1
            ax.annotate(
                "n/a" if np.isnan(value) else fmt(value),
                (xi, 0 if np.isnan(top) else top),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=9,
                fontweight="bold" if is_best else "normal",
            )
        # Headroom for the value labels, which do not take part in autoscaling.
        ceiling = 100.0 if column == "test_accuracy" else np.nanmax(high, initial=0.0)
        ax.set_ylim(0, ceiling * 1.15 if ceiling > 0 else 1.0)
        if column == "test_accuracy":
            ax.set_yticks(np.arange(0, 101, 20))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.set_xticks(x, groups, rotation=30 if rotate else 0, ha="right" if rotate else "center")
        # Keep room for three bars, so one or two stay bar-shaped and centred.
        pad = max(0.0, (3 - len(groups)) / 2)
        ax.set_xlim(-0.5 - pad, len(groups) - 0.5 + pad)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(ylabel)
        _style(ax)

    if max(counts) > 1:
        low_n, high_n = min(counts), max(counts)
        n = str(low_n) if low_n == high_n else f"{low_n}–{high_n}"
        how = f"bars: median of {n} runs each; error bars: min–max"
    else:
        how = "one run per architecture: no spread shown"
    fig.suptitle(f"Architecture comparison — {_setting(runs)}\n{how}", fontsize=12)
    _add_failure_note(fig, runs, "shown")
    return _save(fig, path)


def plot_curves(runs: pd.DataFrame, path: Path | str) -> Path:
    """Write ``curves.png``: training accuracy (%) and training loss per epoch.

    One line with markers per architecture, in its colour (markers keep a
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
    fig.legend(handles, names, loc="outside right upper", title="architecture")
    counts = [int((ok & (labels == label)).sum()) for label in series]
    how = (
        "lines: median per epoch; bands: min–max over repeats"
        if max(counts) > 1
        else "one run per architecture"
    )
    fig.suptitle(f"Training curves — {_setting(runs)}\n{how}", fontsize=12)
    _add_failure_note(fig, runs, "plotted")
    return _save(fig, path)


# --- predictions.png ------------------------------------------------------------------

# Layout of predictions.png in inches: each digit is a cell with the true label
# above the image and one line per architecture below it. Sizes are computed,
# not left to a layout engine, so that lines never overlap whatever the number
# of architectures or digits.
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
    """Write ``predictions.png``: the digits of ``samples.npz`` and each architecture's guesses.

    One cell per digit, eight to a row, in test-set order: the true label above
    the image, below it one line per architecture (``cnn: 7``) from the first
    successful run of that architecture. A wrong prediction is red, bold and
    marked ✗, and its digit gets a red frame; right ones are black. A digit
    beyond the length of an architecture's predictions shows ``–``. The
    subtitle counts each architecture's mistakes.

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
            f"true label above each digit, each architecture's prediction below\nwrong: {wrong}"
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
