"""``compare.png``: candidate against baseline, one panel per headline metric.

Drawn from the table :func:`mnistbench.compare.compare_runs` returns, nothing else:
each panel has a horizontal bar per configuration, the candidate / baseline ratio
of medians drawn from the line at 1.0 and coloured by verdict, and a column of notes
beside it (the change, its p-value or why there is none, a failing ``--fail`` rule).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from mnistbench import format as fmt
from mnistbench.columns import metric
from mnistbench.compare import (
    ALPHA,
    CANNOT_TELL,
    DIFFERENT_WORK,
    IMPROVED,
    NO_CHANGE,
    REGRESSED,
    REPEATS_NEEDED,
)
from mnistbench.figures.style import (
    FAINT_COLOR,
    GOOD_COLOR,
    NEUTRAL_COLOR,
    WRONG_COLOR,
    figure,
    notice_figure,
    save,
    style_axes,
    tip,
)
from mnistbench.gates import FailRule
from mnistbench.record import in_order, label, several_backends

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TITLE = "Candidate vs baseline"

#: The metrics plotted, one panel each, with their panel titles.
PLOTTED_METRICS: dict[str, str] = {
    "fit_seconds": "Training time",
    "inference_samples_per_second": "Inference throughput",
    "test_accuracy": "Test accuracy",
    "peak_memory_mb": "Peak memory",
}

#: The colour of each verdict's bar; always named beside it, never colour alone.
VERDICT_COLORS: dict[str, str] = {
    IMPROVED: GOOD_COLOR,
    REGRESSED: WRONG_COLOR,
    NO_CHANGE: NEUTRAL_COLOR,
    CANNOT_TELL: FAINT_COLOR,
}
# Runs that did different work get no bar (their ratio measures the work, not the
# change): a hatched band across the row says so instead.
_DIFFERENT_WORK_HATCH = "///"
_DIFFERENT_WORK_EDGE = "dimgray"

# Layout in inches: two rows of two panels; each panel is a bar axes plus a column
# of notes beside it, so labels never collide with bars.
_BARS_WIDTH_IN = 4.2
_NOTES_WIDTH_IN = 2.0
_ROW_IN = 0.38  # per configuration
_PANEL_EXTRA_IN = 1.1  # title and x axis of one panel
_HEADER_IN = 1.5  # figure title and legend
_CHAR_IN = 0.085  # rough width of one character of a y label at 10 pt
_NOTE_CHARS = 30  # characters of a note line that fit the notes column at 8.5 pt


def plot_compare(table: pd.DataFrame, path: Path | str) -> Path:
    """Write :func:`draw` as ``compare.png``; returns the path."""
    return save(draw(table), path)


def draw(table: pd.DataFrame) -> Figure:
    """The comparison figure of a :func:`~mnistbench.compare.compare_runs` table.

    Green improved, red regressed, grey no significant change, light grey cannot
    tell (too few repeats), a hatched band for different work (no verdict). A
    configuration measured on one side only is named in the notes. A table without
    rows gets a notice rather than no file: a stale ``compare.png`` would contradict
    ``compare.csv``.
    """
    from matplotlib.patches import Patch

    configs = in_order(zip(table["config_id"], table["backend"], strict=True))
    if not configs:
        return notice_figure(
            TITLE,
            ["Nothing to compare: neither side has a successful run", "with a compared metric."],
        )
    several = several_backends(table["backend"])
    labels = [label(config, backend, several) for config, backend in configs]
    longest = max(len(text) for text in labels)
    width = longest * _CHAR_IN + 0.4 + 2 * (_BARS_WIDTH_IN + _NOTES_WIDTH_IN)
    height = _HEADER_IN + 2 * (_PANEL_EXTRA_IN + max(2, len(configs)) * _ROW_IN)
    fig = figure((width, height))
    grid = fig.add_gridspec(2, 4, width_ratios=[_BARS_WIDTH_IN, _NOTES_WIDTH_IN] * 2)
    first = None
    for i, (name, title) in enumerate(PLOTTED_METRICS.items()):
        row, column = divmod(i, 2)
        bars = fig.add_subplot(grid[row, 2 * column], sharey=first)
        notes = fig.add_subplot(grid[row, 2 * column + 1], sharey=bars)
        first = first or bars
        _panel(bars, notes, table[table["metric"] == name], configs)
        bars.set_title(f"{title}: {name}\n({metric(name).better} is better)", fontsize=10)
        # One set of configuration names per row of panels: the left one.
        bars.set_yticks(range(len(configs)), labels)
        bars.tick_params(axis="y", labelleft=column == 0, length=0)

    handles = [Patch(color=color, label=verdict) for verdict, color in VERDICT_COLORS.items()]
    handles.append(
        Patch(
            facecolor="white",
            edgecolor=_DIFFERENT_WORK_EDGE,
            hatch=_DIFFERENT_WORK_HATCH,
            label=f"{DIFFERENT_WORK}: no verdict",
        )
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    fig.suptitle(
        "\n".join([f"{TITLE}: ratio of medians per configuration", *_key(table)]), fontsize=11
    )
    return fig


def _key(table: pd.DataFrame) -> list[str]:
    """What the notes beside the bars say, for the notes this table has."""
    tested = table["p_value"].notna()
    drawn = table["verdict"].isin(list(VERDICT_COLORS))
    key = []
    if tested.any():
        key.append(f"p: two-sided Mann-Whitney U, significant below {ALPHA:g}")
    if (drawn & ~tested).any():
        key.append(
            "n=B vs C: runs of baseline vs candidate, too few for a test "
            f"({REPEATS_NEEDED} a side needed)"
        )
    key = ["; ".join(key)] if key else []
    if (table["verdict"] == DIFFERENT_WORK).any() or table["different_work"].astype(bool).any():
        key.append("different work: the sides ran other epochs, batch size, samples or target")
    return key


def _panel(bars: Axes, notes: Axes, rows: pd.DataFrame, configs: list[tuple[str, str]]) -> None:
    """Bars from 1.0 to each configuration's ratio, top to bottom; the change beside them."""
    by_config = {(r.config_id, r.backend): r for r in rows.itertuples(index=False)}
    drawn = [
        row.ratio
        for row in by_config.values()
        if row.verdict in VERDICT_COLORS and math.isfinite(row.ratio)
    ]
    span = max(0.05, 1.15 * max((abs(r - 1) for r in drawn), default=0.0))
    for y, key in enumerate(configs):
        row = by_config.get(key)
        color, weight = "dimgray", "normal"
        if row is None:
            note = "not measured"
        elif row.verdict == DIFFERENT_WORK:
            bars.barh(
                y,
                2 * span,
                left=1 - span,
                height=0.6,
                fill=False,
                hatch=_DIFFERENT_WORK_HATCH,
                edgecolor=_DIFFERENT_WORK_EDGE,
                linewidth=0,
            )
            note = _wrap(f"{DIFFERENT_WORK}: {_options(row.different_work)}")
        elif row.verdict not in VERDICT_COLORS:
            note = row.verdict  # only in baseline / only in candidate
        elif not math.isfinite(row.ratio):
            note = "baseline median is 0"
        else:
            bars.barh(y, row.ratio - 1, left=1.0, height=0.6, color=VERDICT_COLORS[row.verdict])
            # The ratio's own mark: a bar of no change (1.0) has no length to show.
            (mark,) = bars.plot(
                [row.ratio], [y], "D", color=VERDICT_COLORS[row.verdict], markersize=7,
                markeredgecolor="black", markeredgewidth=0.8, zorder=3,
            )  # fmt: skip
            if math.isnan(row.p_value):
                evidence = f"n={row.baseline_n} vs {row.candidate_n}"
            else:
                evidence = fmt.p_value(row.p_value)
            note = f"{(row.ratio - 1) * 100:+.1f}%, {evidence}"
            column = metric(row.metric)
            tip(
                mark,
                f"{row.metric}: {column.format(row.baseline_median)} → "
                f"{column.format(row.candidate_median)} (×{row.ratio:.3f}, {evidence}, "
                f"{row.verdict})",
            )
            color = "black"
            if row.different_work:  # compared anyway (--allow-different-work)
                note += f", {DIFFERENT_WORK}"
            if row.regression:
                limits = [FailRule.parse(t).limit() for t in row.failed_rule.split("; ")]
                note += f"\nFAILS: worse by > {' and '.join(limits)}"
                color, weight = WRONG_COLOR, "bold"
        notes.text(0.02, y, note, va="center", fontsize=8.5, color=color, fontweight=weight)
    bars.axvline(1.0, color="black", linewidth=1)
    bars.set_xlim(1 - span, 1 + span)
    bars.set_ylim(len(configs) - 0.5, -0.5)  # first configuration on top
    bars.set_xlabel("candidate / baseline")
    style_axes(bars, grid="x")
    notes.set_xlim(0, 1)
    notes.set_axis_off()


def _options(different_work: str) -> str:
    """``epochs, train_samples`` from ``epochs 1 vs 5, train_samples 3,000 vs 60,000``.

    The values are in compare.csv and the terminal; the figure has room for names only.
    """
    return ", ".join(part.split(" ", 1)[0] for part in different_work.split(", ") if part)


def _wrap(note: str) -> str:
    return "\n".join(textwrap.wrap(note, _NOTE_CHARS))
