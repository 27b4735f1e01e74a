"""``inference.png``: inference throughput and latency against batch size, one line per
configuration (the runs' ``inference_curve``, measured with ``--inference-batch-sizes``).

:func:`inference_curve_data` computes the lines, one row per configuration and batch
size; :func:`inference_figure` draws only from that table, the one drawing that
``inference.png`` and ``report.html`` both show, each point carrying its value for the
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
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TITLE = "Inference curves"

#: Figure size in inches: 1440 × 552 px at :data:`~mnistbench.figures.style.DPI`.
INFERENCE_SIZE = (12.0, 4.6)

#: The columns of :func:`inference_curve_data`, in order.
INFERENCE_COLUMNS = [
    "label", "color", "batch_size", "runs",
    "samples_per_second", "samples_per_second_min", "samples_per_second_max",
    "latency_ms", "latency_ms_min", "latency_ms_max",
]  # fmt: skip

# Per panel: the measure, its title, its axis label and a point's value on hover.
_PANELS = {
    "samples_per_second": (
        "Inference throughput (higher is better)",
        "samples / s (log scale)",
        "{:,.0f} samples/s",
    ),
    "latency_ms": (
        "Latency of one batch call (lower is better)",
        "ms per call (log scale)",
        "{:.3g} ms",
    ),
}


def inference_curve_data(runs: pd.DataFrame) -> pd.DataFrame:
    """What ``inference.png`` shows: one row per configuration and batch size.

    Only successful runs with a recorded ``inference_curve`` count; configurations
    come in the order they ran, batch sizes ascending. No rows when no run has a curve.
    Columns:

    - ``label`` and ``color`` (hex): the configuration's label and colour;
    - ``batch_size``: the inference batch size;
    - ``runs``: how many runs of the configuration measured this batch size;
    - ``samples_per_second``: median over those runs of the point's throughput (images
      per second), with ``samples_per_second_min`` and ``samples_per_second_max``;
    - ``latency_ms``: median over those runs of the point's median call time in ms, with
      ``latency_ms_min`` and ``latency_ms_max``.
    """
    import pandas as pd
    from matplotlib.colors import to_hex

    succeeded, names, colors = ok(runs), labels(runs), group_colors(runs)
    cells = runs["inference_curve"]
    rows = []
    for name in in_order(names):
        members = succeeded & (names == name)
        if not members.any():
            continue
        points = pd.DataFrame(
            [
                point
                for cell in cells[members]
                for point in cell
                if isinstance(point, dict) and {"batch_size", *_PANELS} <= point.keys()
            ]
        )
        if points.empty:
            continue
        for size, group in points.groupby("batch_size", sort=True):
            row = {"label": name, "color": to_hex(colors[name]), "batch_size": int(size)}
            row["runs"] = len(group)
            for measure in _PANELS:
                values = group[measure].astype(float)
                row[measure] = float(values.median())
                row[f"{measure}_min"] = float(values.min())
                row[f"{measure}_max"] = float(values.max())
            rows.append(row)
    return pd.DataFrame(rows, columns=INFERENCE_COLUMNS)


def has_inference_curves(runs: pd.DataFrame) -> bool:
    """Whether any successful run recorded an inference curve (then ``inference.png`` is
    written)."""
    return not inference_curve_data(runs).empty


def plot_inference(runs: pd.DataFrame, path: Path | str) -> Path:
    """Write :func:`draw` as ``inference.png``; returns the path."""
    return save(draw(runs), path)


def draw(runs: pd.DataFrame) -> Figure:
    """The inference curves of ``runs``: throughput (samples/s) and latency per call (ms)
    against the inference batch size, both axes logarithmic, one line with markers per configuration
    in its colour; with several runs the line is the median and a band spans their
    min–max. The batch sizes measured are the ticks. A legend beside the panels names
    every line. A notice naming the failures when no run has a curve.
    """
    data = inference_curve_data(runs)
    if data.empty:
        return runs_notice(TITLE, runs)
    measured = setting(runs).replace(", batch size", ", training batch size")
    return inference_figure(data, measured, failure_notes(runs))


def _batch_size_axis(ax: Axes, sizes: list[int]) -> None:
    """A log-2 x axis whose ticks are the measured batch sizes, written as integers."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    ax.xaxis.set_major_formatter(formatter)
    # Room around the first and last points, on the log scale.
    ax.set_xlim(min(sizes) / 1.5, max(sizes) * 1.5)


def _value_axis(ax: Axes) -> None:
    """A log y axis with plain numbers at 1, 2 and 5 of each decade (``20,000``, ``0.5``),
    not powers of ten: readable whatever range the curves span."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.10g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def inference_figure(data: pd.DataFrame, measured: str, failures: list[str]) -> Figure:
    """The figure of :func:`plot_inference`, drawn from :func:`inference_curve_data` (not
    empty).

    :param measured: what was measured (:func:`~mnistbench.figures.style.setting`).
    :param failures: :func:`~mnistbench.figures.style.failure_notes`, named under the panels.
    """
    fig = figure(INFERENCE_SIZE)
    axes = fig.subplots(1, 2)
    sizes = sorted(int(size) for size in data["batch_size"].unique())
    for ax, (measure, (title, ylabel, shown)) in zip(axes, _PANELS.items(), strict=True):
        for name, line in data.groupby("label", sort=False):
            color = line["color"].iloc[0]
            x = line["batch_size"].to_numpy()
            ax.plot(x, line[measure], marker="o", color=color, label=name, linewidth=2)
            texts = [
                f"{name}, batch size {size}: {shown.format(value)}"
                + (f" (median of {runs} runs)" if runs > 1 else "")
                for size, value, runs in zip(x, line[measure], line["runs"], strict=True)
            ]
            tip_points(ax, x, line[measure], texts, color)
            if line["runs"].max() > 1:
                ax.fill_between(
                    x,
                    line[f"{measure}_min"],
                    line[f"{measure}_max"],
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
        _value_axis(ax)
        _batch_size_axis(ax, sizes)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("inference batch size (images per call)")
        ax.set_ylabel(ylabel)
        style_axes(ax, grid="both")

    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right upper", title="configuration")
    how = (
        "lines: median over repeats; bands: min–max"
        if data["runs"].max() > 1
        else "one run per configuration"
    )
    # The setting on a line of its own: in one line with the title it runs under the legend.
    fig.suptitle(f"{TITLE} — {how}\n{measured}", fontsize=12)
    add_failure_note(fig, failures, "plotted")
    return fig
