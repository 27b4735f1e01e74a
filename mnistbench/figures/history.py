"""``history.png``: one metric sweep after sweep, a line per series, its changes marked.

Drawn from :func:`history_data`, a table of what the figure shows, built from the
points of :func:`mnistbench.history.points_from_runs` and the changes of
:func:`mnistbench.history.detect_changes`. The x axis is the sweeps in order of their
start, each labelled with its commit and date; a change is a vertical line between
the last point before it and the first after, annotated with its size. When the
metric has a normalized column (divided by the speed probe) with values, it is a
second panel below: a change that is gone there came from the machine, not the code.
The same drawing is ``history.png`` and each trend chart of the history pages, every
point carrying its sweep's date, commit and value for the pages' hover.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from mnistbench.columns import BY_NAME, normalized
from mnistbench.figures.style import (
    GOOD_COLOR,
    WRONG_COLOR,
    figure,
    notice_figure,
    save,
    style_axes,
    tip_points,
)
from mnistbench.format import missing
from mnistbench.history import REGRESSION, Change, commit_label
from mnistbench.record import in_order

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TITLE = "History"

#: The columns of :func:`history_data`.
HISTORY_COLUMNS = (
    "panel",
    "metric",
    "series",
    "label",
    "x",
    "tick",
    "value",
    "change",
    "ratio",
    "hover",
)

_PANEL_WIDTH_IN = 10.0
_PER_SWEEP_IN = 0.6
_PANEL_HEIGHT_IN = 3.6


def panel_metrics(points: pd.DataFrame, metric: str) -> list[str]:
    """The metrics drawn, one panel each: ``metric``, then its normalized column when the
    registry has one and some point has a value for it."""
    shown = [metric]
    norm = normalized(metric)
    if norm and norm in points.columns and points[norm].notna().any():
        shown.append(norm)
    return shown


def sweep_ticks(points: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """Each sweep's x position and tick label (short commit over date), in start order; the
    time of day too (to the minute, else the second) where sweeps of one commit share a
    date, so that each tick is its own."""
    sweeps = points.sort_values(["started_at", "sweep_id"], kind="stable").drop_duplicates(
        "sweep_id"
    )

    def tick(row, when: str) -> str:
        moment = row.started_at.strftime(when) if not missing(row.started_at) else "?"
        return f"{commit_label(row.commit, row.dirty)}\n{moment}"

    rows = list(sweeps.itertuples(index=False))
    labels = [tick(row, "%Y-%m-%d") for row in rows]
    for finer in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        labels = [
            tick(row, finer) if labels.count(label) > 1 else label
            for row, label in zip(rows, labels, strict=True)
        ]
    return {
        row.sweep_id: (x, label) for x, (row, label) in enumerate(zip(rows, labels, strict=True))
    }


def history_data(points: pd.DataFrame, metric: str, changes: list[Change]) -> pd.DataFrame:
    """What ``history.png`` shows: one row per panel, series and point (:data:`HISTORY_COLUMNS`).

    ``x`` is the sweep's position on the shared axis and ``tick`` its label; ``change``
    is the kind of a change whose first point after is this one ("" otherwise), with its
    ``ratio``. ``changes`` are those of ``metric`` and of its normalized column.
    """
    import pandas as pd

    ticks = sweep_ticks(points)
    rows = []
    for panel, name in enumerate(panel_metrics(points, metric)):
        marked = {(c.series, c.position): c for c in changes if c.metric == name}
        for series in in_order(points["series"]):
            members = points[points["series"] == series].reset_index(drop=True)
            for position, point in members.iterrows():
                change = marked.get((series, position))
                x, tick = ticks[point["sweep_id"]]
                value = point[name] if name in members.columns else math.nan
                hover = _hover_text(point, name, value)
                rows.append(
                    {
                        "panel": panel,
                        "metric": name,
                        "series": series,
                        "label": point["label"],
                        "x": x,
                        "tick": tick,
                        "value": float(value) if value is not None else math.nan,
                        "change": change.kind if change else "",
                        "ratio": change.ratio if change else math.nan,
                        "hover": hover,
                    }
                )
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def _hover_text(point: pd.Series, metric: str, value: float) -> str:
    """What a point's hover says, one line each: the configuration and its value, when and at
    which commit its sweep ran, the versions that ran it, the sweep::

        dnn: 14.0 s (median of 3 runs)
        2024-05-07 12:00 UTC · commit c000006
        mnistbench 0.1.0 · plugin 1.0
        sweep 2024-05-07T120000
    """
    runs = int(point["runs"])
    how = "1 run" if runs == 1 else f"median of {runs} runs"
    when = (
        "date unknown"
        if missing(point["started_at"])
        else f"{point['started_at']:%Y-%m-%d %H:%M} UTC"
    )
    versions = f"mnistbench {point['mnistbench_version'] or '?'}"
    if point["plugin_version"]:
        versions += f" · plugin {point['plugin_version']}"
    return "\n".join(
        [
            f"{point['label']}: {BY_NAME[metric].format(value)} ({how})",
            f"{when} · commit {commit_label(point['commit'], point['dirty'])}",
            versions,
            f"sweep {point['sweep_id']}",
        ]
    )


def plot_history(
    points: pd.DataFrame, metric: str, changes: list[Change], path: Path | str
) -> Path:
    """Write :func:`draw` as ``history.png``; returns the path."""
    return save(draw(points, metric, changes), path)


def draw(
    points: pd.DataFrame,
    metric: str,
    changes: list[Change],
    *,
    legend: bool = True,
    with_normalized: bool = True,
) -> Figure:
    """``metric`` over the sweeps of ``points``, a line per series, changes marked; its
    normalized form in a second panel when measured and ``with_normalized``. A notice when
    there are no points. ``legend``: name the series under the panels (a page about one
    series does not)."""
    if points.empty:
        return notice_figure(TITLE, ["No sweeps recorded: nothing to plot."])
    data = history_data(points, metric, changes)
    if data[data["metric"] == metric]["value"].isna().all():  # axes of nothing, no figure
        return notice_figure(
            TITLE,
            [
                f"No sweep measured {metric}: every run of these sweeps failed,",
                "or none recorded it (a normalized figure needs the speed probe).",
            ],
        )
    if not with_normalized:
        data = data[data["metric"] == metric]
    panels = in_order(data["metric"])
    sweeps = data.drop_duplicates("x").sort_values("x")
    width = max(_PANEL_WIDTH_IN, 2.5 + _PER_SWEEP_IN * len(sweeps))
    fig = figure((width, 1.2 + _PANEL_HEIGHT_IN * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    colors = _colors(in_order(data["series"]))
    for ax, name in zip(axes, panels, strict=True):
        _panel(ax, data[data["metric"] == name], name, colors)
    axes[-1].set_xticks(list(sweeps["x"]), list(sweeps["tick"]), fontsize=8)
    axes[-1].set_xlabel("sweep (commit, date), oldest first")
    handles, labels = axes[0].get_legend_handles_labels()
    if legend:
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(3, len(labels)), frameon=False
        )
    fig.suptitle(
        f"{TITLE}: {metric}, median per sweep\n"
        "vertical lines: detected changes (red regression, green improvement)",
        fontsize=11,
    )
    return fig


def _panel(ax: Axes, data: pd.DataFrame, name: str, colors: dict) -> None:
    column = BY_NAME[name]
    for series in in_order(data["series"]):
        line = data[data["series"] == series]
        measured = line[line["value"].notna()]
        ax.plot(
            measured["x"],
            measured["value"],
            marker="o",
            color=colors[series],
            label=str(line["label"].iloc[0]),
        )
        tip_points(ax, measured["x"], measured["value"], measured["hover"], colors[series])
        for row in line[line["change"] != ""].itertuples(index=False):
            before = measured[measured["x"] < row.x]["x"]
            at = (before.iloc[-1] + row.x) / 2 if not before.empty else row.x - 0.5
            color = WRONG_COLOR if row.change == REGRESSION else GOOD_COLOR
            ax.axvline(at, color=color, linestyle="--", linewidth=1.2)
            ax.annotate(
                f"{row.change} {(row.ratio - 1) * 100:+.0f}%",
                (at, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                va="top",
                fontsize=8,
                color=color,
            )
    if column.unit:
        unit = f" ({column.unit})"
    elif name.endswith("_normalized"):  # a ratio to the speed probe's time: no unit
        unit = "\n(relative to the speed probe)"
    else:
        unit = ""
    ax.set_ylabel(f"{name}{unit}", fontsize=9)
    ax.set_title(f"{name}: {column.better} is better", fontsize=10, loc="left")
    style_axes(ax)


def _colors(series: list[str]) -> dict:
    from matplotlib import colormaps

    palette = list(colormaps["tab10"].colors) + list(colormaps["Dark2"].colors)
    return {name: palette[i % len(palette)] for i, name in enumerate(series)}
