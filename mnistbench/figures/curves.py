"""``curves.png``: training accuracy and loss per epoch, one line per configuration.

:func:`curves_data` computes the lines, one row per configuration, series and
epoch; :func:`curves_figure` draws only from that table, the one drawing that
``curves.png`` and ``report.html`` both show, each point carrying its value for the
page's hover.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mnistbench.figures.style import (
    add_failure_note,
    failure_notes,
    figure,
    group_colors,
    runs_notice,
    save,
    setting,
    style_axes,
    tip_points,
)
from mnistbench.record import in_order, labels, ok

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

TITLE = "Training curves"

#: Figure size in inches: 1440 × 552 px at :data:`~mnistbench.figures.style.DPI`.
CURVES_SIZE = (12.0, 4.6)

# Per series: the runs.csv column of per-epoch values, the scale to the unit shown,
# the panel title, its axis label and a point's value on hover.
_SERIES = {
    "accuracy": (
        "epoch_accuracy",
        100.0,
        "Training accuracy per epoch",
        "training accuracy (%)",
        "{:.2f}%",
    ),
    "loss": (
        "epoch_loss",
        1.0,
        "Training loss per epoch",
        "training loss (cross-entropy)",
        "{:.4f}",
    ),
}

#: The columns of :func:`curves_data`, in order.
CURVES_COLUMNS = ["label", "color", "series", "epoch", "median", "min", "max", "runs"]


def curves_data(runs: pd.DataFrame) -> pd.DataFrame:
    """What ``curves.png`` shows: one row per configuration, series and epoch.

    Only successful runs with recorded per-epoch values count; configurations
    come in the order they ran, epochs from 1. No rows when there is none. Columns:

    - ``label`` and ``color`` (hex): the configuration's label and colour;
    - ``series``: ``"accuracy"`` (training accuracy, in %) or ``"loss"``
      (training loss);
    - ``epoch``: 1-based;
    - ``median``, ``min``, ``max``: over the runs that reached that epoch;
    - ``runs``: how many runs of the configuration have this series (repeats
      that stopped early count at every epoch).
    """
    import numpy as np
    import pandas as pd
    from matplotlib.colors import to_hex

    succeeded, names, colors = ok(runs), labels(runs), group_colors(runs)
    frames = []
    for name in in_order(names):
        members = runs[succeeded & (names == name)]
        for series, (column, scale, *_) in _SERIES.items():
            lists = [values for values in members[column] if values]
            if not lists:
                continue
            # Pad with NaN so repeats that stopped early still line up by epoch.
            matrix = np.full((len(lists), max(map(len, lists))), np.nan)
            for i, values in enumerate(lists):
                matrix[i, : len(values)] = np.asarray(values, dtype=float)
            matrix *= scale
            line = {
                "label": name,
                "color": to_hex(colors[name]),
                "series": series,
                "epoch": np.arange(1, matrix.shape[1] + 1),
                "median": np.nanmedian(matrix, axis=0),
                "min": np.nanmin(matrix, axis=0),
                "max": np.nanmax(matrix, axis=0),
                "runs": len(lists),
            }
            frames.append(pd.DataFrame(line, columns=CURVES_COLUMNS))
    if not frames:
        return pd.DataFrame(columns=CURVES_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def plot_curves(runs: pd.DataFrame, path: Path | str) -> Path:
    """Write :func:`draw` as ``curves.png``; returns the path."""
    return save(draw(runs), path)


def draw(runs: pd.DataFrame) -> Figure:
    """The training curves of ``runs``: training accuracy (%) and training loss per epoch.

    One line with markers per configuration, in its colour (markers keep a
    single-epoch run visible as a point). With several successful runs the line
    is the per-epoch median and a shaded band spans their min–max. Epochs are
    numbered from 1 on integer ticks; one legend beside the panels names every
    line. The figure is 12 × 4.6 in at :data:`~mnistbench.figures.style.DPI`
    (1440 × 552 px). A notice naming the failures when no run succeeded.
    """
    data = curves_data(runs)
    if data.empty:
        return runs_notice(TITLE, runs)
    return curves_figure(data, setting(runs), failure_notes(runs))


def curves_figure(data: pd.DataFrame, measured: str, failures: list[str]) -> Figure:
    """The figure of :func:`plot_curves`, drawn from :func:`curves_data` (not empty).

    :param measured: what was measured (:func:`~mnistbench.figures.style.setting`).
    :param failures: :func:`~mnistbench.figures.style.failure_notes`, named under the panels.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    fig = figure(CURVES_SIZE)
    axes = fig.subplots(1, 2)
    for ax, (series, (_, _, title, ylabel, shown)) in zip(axes, _SERIES.items(), strict=True):
        for name, line in data[data["series"] == series].groupby("label", sort=False):
            color = line["color"].iloc[0]
            epochs = line["epoch"].to_numpy()
            runs = int(line["runs"].iloc[0])
            ax.plot(epochs, line["median"], marker="o", color=color, label=name, linewidth=2)
            texts = [
                f"{name}, epoch {epoch}: {shown.format(value)}"
                + (f" (median of {runs} runs)" if runs > 1 else "")
                for epoch, value in zip(epochs, line["median"], strict=True)
            ]
            tip_points(ax, epochs, line["median"], texts, color)
            if line["runs"].iloc[0] > 1:
                ax.fill_between(
                    epochs, line["min"], line["max"], color=color, alpha=0.2, linewidth=0
                )
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        style_axes(ax)
    last_epoch = int(data["epoch"].max())
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
    how = (
        "lines: median per epoch; bands: min–max over repeats"
        if data["runs"].max() > 1
        else "one run per configuration"
    )
    fig.suptitle(f"{TITLE} — {measured}\n{how}", fontsize=12)
    add_failure_note(fig, failures, "plotted")
    return fig
