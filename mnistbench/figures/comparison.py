"""``comparison.png``: one bar panel per headline metric, one bar per configuration.

:func:`comparison_data` computes what the figure shows, one row per panel and
configuration; :func:`comparison_figure` draws only from that table, the one drawing
that ``comparison.png`` and ``report.html`` both show, its bars carrying their values
for the page's hover (:func:`mnistbench.figures.style.tip`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench.columns import LOWER, metric
from mnistbench.figures.style import (
    NEUTRAL_COLOR,
    NOISY_COLOR,
    add_failure_note,
    failure_notes,
    figure,
    group_colors,
    runs_notice,
    save,
    seconds_text,
    setting,
    style_axes,
    tip,
)
from mnistbench.record import in_order, labels, ok
from mnistbench.stats import NOISY_CV, Spread

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TITLE = "Configuration comparison"

# Figure sizes in inches; pixel sizes are these times DPI.
COMPARISON_SIZE = (13.0, 4.8)  # minimum, three panels; wider when many groups need room
COMPARISON_GRID_SIZE = (13.0, 8.6)  # minimum, four panels in two rows

NOT_CONVERGED = "not converged"
_NOT_CONVERGED_FILL = "#f2f2f2"
_TIME_TO_ACCURACY = "time_to_accuracy_seconds"
_ACCURACY = "test_accuracy"
_NOISY_NOTE = f"noisy: coefficient of variation > {NOISY_CV:.0%}"
_LINE_PT = 11  # height of one label line at 9 pt, with its leading

#: The columns of :func:`comparison_data`, in order.
COMPARISON_COLUMNS = [
    "panel", "metric", "title", "ylabel", "label", "color", "runs", "n", "median", "min",
    "max", "noisy", "best", "target_runs", "converged_runs", "not_converged", "value_text",
]  # fmt: skip


@dataclass(frozen=True)
class _Panel:
    """One bar panel of ``comparison.png``."""

    column: str  # the runs.csv column
    subject: str  # the title, before "(lower is better)"
    ylabel: str  # with its unit
    scale: float  # applied to the values, e.g. 100 for a fraction shown in %
    fmt: Callable[[float], str]  # the value label above each bar

    @property
    def title(self) -> str:
        return f"{self.subject} ({metric(self.column).better} is better)"


_PANELS: list[_Panel] = [
    _Panel("fit_seconds", "Training time", "fit time (s)", 1.0, seconds_text),
    _Panel(
        "inference_samples_per_second",
        "Inference throughput",
        "samples / s",
        1.0,
        "{:,.0f}".format,
    ),
    _Panel(_ACCURACY, "Test accuracy", "test accuracy (%)", 100.0, "{:.2f}%".format),
]


def _time_to_accuracy_panel(runs: pd.DataFrame) -> _Panel | None:
    """The fourth panel, when a successful run had a target: its time, or "not converged"."""
    succeeded = ok(runs)
    reached = runs.loc[succeeded, _TIME_TO_ACCURACY].notna().any()
    # A sweep where no run reached its target still has something to show.
    targeted = runs.loc[succeeded, "converged"].notna().any()
    if not (reached or targeted):
        return None
    targets = runs.loc[succeeded, "target_accuracy"].dropna().unique()
    target = f"{targets[0]:.2%}".replace(".00%", "%") if len(targets) == 1 else "target"
    return _Panel(
        _TIME_TO_ACCURACY,
        f"Time to {target} test accuracy",
        "time to target accuracy (s)",
        1.0,
        seconds_text,
    )


# --- the data ---------------------------------------------------------------------------


def comparison_data(runs: pd.DataFrame) -> pd.DataFrame:
    """What ``comparison.png`` shows: one row per panel and configuration, in drawing order.

    Panels are fit time, inference throughput and test accuracy, plus the time to
    the target accuracy when a successful run had a target. Configurations are
    those with a successful run, in the order they ran. No rows when no run
    succeeded. Columns:

    - ``panel`` (0-based position), ``metric`` (the ``runs.csv`` column),
      ``title`` and ``ylabel`` (with its unit): the panel's;
    - ``label`` (the configuration's), ``color`` (its hex colour, shared by every
      figure of the directory), ``runs`` (its successful runs);
    - ``n``: the runs with a value; ``median``, ``min``, ``max`` over them, in
      the unit of ``ylabel`` (test accuracy in %), NaN when ``n`` is 0;
    - ``noisy``: the coefficient of variation exceeds :data:`~mnistbench.stats.NOISY_CV`;
    - ``best``: the best median of the panel (lowest or highest, as the metric
      says), with more than one configuration;
    - ``target_runs``, ``converged_runs``: the runs that had a target accuracy
      and those that reached it (0 and 0 outside the time-to-accuracy panel);
    - ``not_converged``: runs had a target and none reached it;
    - ``value_text``: the label above the bar (``"32.00 s"``, ``"97.20%"``,
      ``"not converged"``, ``"no target"``, ``"n/a"``).
    """
    import pandas as pd

    succeeded, names = ok(runs), labels(runs)
    shown = [name for name in in_order(names) if (succeeded & (names == name)).any()]
    if not shown:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    panels = list(_PANELS)
    time_to_accuracy = _time_to_accuracy_panel(runs)
    if time_to_accuracy is not None:
        panels.append(time_to_accuracy)
    rows = []
    for position, panel in enumerate(panels):
        rows += _panel_rows(runs, position, panel, shown)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _panel_rows(
    runs: pd.DataFrame, position: int, panel: _Panel, shown: list[str]
) -> list[dict[str, Any]]:
    """The rows of one panel: one per configuration in ``shown``."""
    from matplotlib.colors import to_hex

    succeeded, names, colors = ok(runs), labels(runs), group_colors(runs)
    values = runs[panel.column] * panel.scale
    targeted = panel.column == _TIME_TO_ACCURACY
    converged = runs["converged"]
    rows = []
    for name in shown:
        members = succeeded & (names == name)
        spread = Spread.of(values[members])
        known = [flag for flag in converged[members] if flag is not None] if targeted else []
        n = int(values[members].notna().sum())
        never = bool(known) and not any(known) and n == 0
        rows.append(
            {
                "panel": position,
                "metric": panel.column,
                "title": panel.title,
                "ylabel": panel.ylabel,
                "label": name,
                "color": to_hex(colors[name]),
                "runs": int(members.sum()),
                "n": n,
                "median": spread.median,
                "min": spread.min,
                "max": spread.max,
                "noisy": bool(spread.noisy),
                "best": False,
                "target_runs": len(known),
                "converged_runs": sum(known),
                "not_converged": never,
                "value_text": _value_text(panel, spread.median, len(known), never),
            }
        )
    medians = [row["median"] for row in rows if not math.isnan(row["median"])]
    if medians and len(rows) > 1:
        best = min(medians) if metric(panel.column).better == LOWER else max(medians)
        for row in rows:
            row["best"] = row["median"] == best
    return rows


def _value_text(panel: _Panel, median: float, target_runs: int, never: bool) -> str:
    if never:
        return NOT_CONVERGED
    if not math.isnan(median):
        return panel.fmt(median)
    return "no target" if panel.column == _TIME_TO_ACCURACY and not target_runs else "n/a"


# --- the figure -------------------------------------------------------------------------


def plot_comparison(runs: pd.DataFrame, path: Path | str) -> Path:
    """Write :func:`draw` as ``comparison.png``; returns the path."""
    return save(draw(runs), path)


def draw(runs: pd.DataFrame) -> Figure:
    """The comparison figure of ``runs``: training time, inference throughput, test accuracy.

    One bar panel per metric, one bar per configuration (median over its
    successful runs) in the configuration's colour, each labelled with its
    value; the best value is in bold. When a group has several successful runs,
    error bars span their min–max, and a bar whose runs disagree by more than
    :data:`~mnistbench.stats.NOISY_CV` (coefficient of variation) is marked
    "noisy", explained in the subtitle. The subtitle also says how many runs
    each bar summarizes. The accuracy axis runs from 0 to 100 % so that bar
    lengths stay honest; the labels carry the differences. Failed and diverged
    configurations are named in red under the panels.

    When a successful run had a target accuracy, a fourth panel shows the time
    to reach it (median over the runs that did); a configuration that never
    reached it gets a grey hatched bar labelled "not converged".

    Three panels make a row of 13 × 4.8 in at :data:`~mnistbench.figures.style.DPI`
    (1560 × 576 px); four make a 2 × 2 grid of 13 × 8.6 in (1560 × 1032 px).
    Either is wider from five configurations on, so that value labels never touch.

    When no run succeeded the figure is a notice naming the failures: a stale plot
    from an earlier report, or none at all, would contradict ``comparison.csv``.
    """
    data = comparison_data(runs)
    if data.empty:
        return runs_notice(TITLE, runs)
    return comparison_figure(data, setting(runs), failure_notes(runs))


def comparison_figure(data: pd.DataFrame, measured: str, failures: list[str]) -> Figure:
    """The figure of :func:`plot_comparison`, drawn from :func:`comparison_data` (not empty).

    :param measured: what was measured (:func:`~mnistbench.figures.style.setting`).
    :param failures: :func:`~mnistbench.figures.style.failure_notes`, named under the panels.
    """
    groups = in_order(data["label"])
    panels = [bars for _, bars in data.groupby("panel", sort=True)]
    rows, per_row = (2, 2) if len(panels) == 4 else (1, len(panels))
    size = COMPARISON_GRID_SIZE if rows == 2 else COMPARISON_SIZE
    # About 0.7 in per bar in each panel of a row keeps value labels apart.
    width = max(size[0], 0.7 * per_row * len(groups) + 3.2)
    fig = figure((width, size[1]))
    axes = fig.subplots(rows, per_row, squeeze=False).ravel()
    # Rotate names only when they would collide under their bars.
    rotate = max(len(g) for g in groups) * len(groups) > 10 * (9 / per_row)
    for ax, bars in zip(axes, panels, strict=True):
        _bar_panel(ax, bars.reset_index(drop=True), rotate)
    fig.suptitle(f"{TITLE} — {measured}\n{_how(data)}", fontsize=12)
    add_failure_note(fig, failures, "shown")
    return fig


def _how(data: pd.DataFrame) -> str:
    """The subtitle's second line: what a bar and its error bar summarize."""
    counts = data.drop_duplicates("label")["runs"]
    if counts.max() > 1:
        low, high = counts.min(), counts.max()
        n = str(low) if low == high else f"{low}–{high}"
        how = f"bars: median of {n} runs each; error bars: min–max"
    else:
        how = "one run per configuration: no spread shown"
    if data["noisy"].any():
        how += f"; {_NOISY_NOTE}"
    return how


def _bar_panel(ax: Axes, bars: pd.DataFrame, rotate: bool) -> None:
    """Draw one panel from its rows of :func:`comparison_data`."""
    # As tall as the slowest time: "never" is worse than every measured time.
    ceiling = bars["max"].max() if bars["n"].max() else 0.0
    ceiling = ceiling if ceiling > 0 else 1.0
    _draw_bars(ax, bars, ceiling)
    extra_lines = _label_bars(ax, bars)
    _scale_axes(ax, bars, ceiling, extra_lines, rotate)


def _draw_bars(ax: Axes, bars: pd.DataFrame, ceiling: float) -> None:
    """Median bars, grey hatched "not converged" bars, and min–max error bars."""
    import numpy as np

    x = np.arange(len(bars))
    median = bars["median"].to_numpy(dtype=float)
    drawn = ax.bar(x, np.nan_to_num(median), width=0.6, color=list(bars["color"]))
    for patch, bar in zip(drawn, bars.itertuples(index=False), strict=True):
        tip(patch, _hover_text(bar))
    for xi in x[bars["not_converged"].to_numpy(dtype=bool)]:
        ax.bar(
            xi,
            ceiling,
            width=0.6,
            color=_NOT_CONVERGED_FILL,
            edgecolor=NEUTRAL_COLOR,
            hatch="///",
            linewidth=1,
        )
        ax.text(
            xi,
            ceiling / 2,
            NOT_CONVERGED,
            rotation=90,
            ha="center",
            va="center",
            fontsize=9,
            color="dimgray",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
        )
    spread = (bars["n"] > 1).to_numpy()
    if spread.any():
        low, high = bars["min"].to_numpy(dtype=float), bars["max"].to_numpy(dtype=float)
        ax.errorbar(
            x[spread],
            median[spread],
            yerr=[(median - low)[spread], (high - median)[spread]],
            fmt="none",
            ecolor="black",
            elinewidth=1,
            capsize=5,
        )


#: Per panel's metric, how its hover writes a value (in the unit of the panel's axis).
_HOVER_FORMATS: dict[str, Callable[[float], str]] = {
    "fit_seconds": seconds_text,
    "inference_samples_per_second": "{:,.0f} samples/s".format,
    _ACCURACY: "{:.2f}%".format,
    _TIME_TO_ACCURACY: seconds_text,
}


def _hover_text(bar: Any) -> str:
    """What a bar's hover says, each value with its unit:
    ``dnn: 12.3 s (median of 3 runs, 11.9 s–13.0 s)``, ``cnn: 21,000 samples/s (1 run)``."""
    shown = _HOVER_FORMATS.get(bar.metric)
    if shown is None or bar.n == 0:
        text = f"{bar.label}: {bar.value_text}"
    else:
        text = f"{bar.label}: {shown(bar.median)}"
    if bar.n > 1:
        text += f" (median of {bar.n} runs, {_range(shown or '{:,.4g}'.format, bar.min, bar.max)})"
    elif bar.n == 1:
        text += " (1 run)"
    if 0 < bar.converged_runs < bar.target_runs:
        text += f"; {bar.converged_runs}/{bar.target_runs} converged"
    if bar.noisy:
        text += "; noisy"
    return text


def _range(shown: Callable[[float], str], low: float, high: float) -> str:
    """``30.0–34.0 s``, ``48,000–50,000 samples/s``, ``all 30.0 s``: a min–max, its unit once."""
    low_text, high_text = shown(low), shown(high)
    if low_text == high_text:
        return f"all {high_text}"
    for unit in (" samples/s", " s", "%"):
        if low_text.endswith(unit) and high_text.endswith(unit):
            low_text = low_text.removesuffix(unit)
            break
    return f"{low_text}–{high_text}"


def _label_lines(bar: Any) -> list[tuple[str, str, str]]:
    """The lines above one bar, bottom up, as (text, colour, weight)."""
    lines = [(bar.value_text, "black", "bold" if bar.best else "normal")]
    if 0 < bar.converged_runs < bar.target_runs:
        lines.append((f"{bar.converged_runs}/{bar.target_runs} converged", "dimgray", "normal"))
    if bar.noisy:
        lines.append(("noisy", NOISY_COLOR, "bold"))
    return lines


def _label_bars(ax: Axes, bars: pd.DataFrame) -> int:
    """Write each bar's lines above its error bar; returns the most lines beyond the value."""
    extra_lines = 0
    for xi, bar in enumerate(bars.itertuples(index=False)):
        if bar.not_converged:
            continue  # labelled inside its bar
        base = 0.0 if math.isnan(bar.max) else bar.max
        lines = _label_lines(bar)
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
    return extra_lines


def _scale_axes(
    ax: Axes, bars: pd.DataFrame, ceiling: float, extra_lines: int, rotate: bool
) -> None:
    """Limits with headroom for the labels, ticks, names under the bars, title and unit."""
    import numpy as np
    from matplotlib.ticker import StrMethodFormatter

    accuracy = bars["metric"].iloc[0] == _ACCURACY
    # Headroom for the value labels, which do not take part in autoscaling.
    top = 100.0 if accuracy else ceiling
    ax.set_ylim(0, top * (1.15 + 0.09 * extra_lines))
    if accuracy:
        ax.set_yticks(np.arange(0, 101, 20))
    if not bars["n"].max():
        # Only "not converged" bars: their height is a placeholder, not a time.
        ax.set_yticks([])
    else:
        # Whole numbers on tall axes; decimals where whole ticks would repeat ("1, 1, 2").
        decimals = 0 if top >= 10 else 1 if top >= 1 else 2
        ax.yaxis.set_major_formatter(StrMethodFormatter(f"{{x:,.{decimals}f}}"))
    groups = list(bars["label"])
    x = np.arange(len(groups))
    ax.set_xticks(x, groups, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    # Keep room for three bars, so one or two stay bar-shaped and centred.
    pad = max(0.0, (3 - len(groups)) / 2)
    ax.set_xlim(-0.5 - pad, len(groups) - 0.5 + pad)
    ax.set_title(bars["title"].iloc[0], fontsize=11)
    ax.set_ylabel(bars["ylabel"].iloc[0])
    style_axes(ax)
