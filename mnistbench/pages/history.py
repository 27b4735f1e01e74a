"""The history page set: every configuration's figures over sweeps, and where they changed.

:func:`write_history_pages` writes, into one directory that opens offline from the file
system:

- ``index.html``: every configuration's latest figures (with the sweep's date and
  commit), every detected change (regressions first, largest first), and one trend
  chart per metric with a line per configuration;
- ``config-<series>.html``, one per configuration: its settings, its changes, and per
  metric a trend chart of the raw figure above its speed-normalized one (the
  ``<metric>_normalized`` column, where it has one), with each change marked by a
  line and its size; and the sweeps it was measured in.

The trend charts are the drawing of ``history.png`` (:mod:`mnistbench.figures.history`)
as SVG, each point showing its sweep, commit and value on hover. It draws from plain
values: the points of :mod:`mnistbench.history` (one row per configuration and sweep,
metric medians) and its detected changes. Names, units and better directions come from
:mod:`mnistbench.columns`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mnistbench import format as fmt
from mnistbench import layout
from mnistbench.columns import BY_NAME, SETTING, WORK, Column, normalized, with_role
from mnistbench.errors import ConfigError
from mnistbench.figures import history as history_figure
from mnistbench.figures.style import svg
from mnistbench.history import MACHINE, REGRESSION, Change, sort_changes
from mnistbench.pages.render import figure, render, write_page

TITLE = "mnistbench history"

#: The columns of a point that say what ran and where: shown on each configuration's page.
CONFIGURATION_COLUMNS = (*(column.name for column in with_role(WORK, SETTING)), MACHINE)

NORMALIZED_SUFFIX = "_normalized"


@dataclass(frozen=True)
class _Series:
    series: str
    label: str
    page: str
    points: pd.DataFrame  # this configuration's points, oldest first


def write_history_pages(
    points: pd.DataFrame,
    changes: Sequence[Change],
    out_dir: Path,
    *,
    metrics: Sequence[str],
) -> list[Path]:
    """Write the history pages of ``points`` and ``changes`` into ``out_dir``.

    :param points: one row per (series, sweep), as :mod:`mnistbench.history` builds it.
    :param changes: the detected changes of any of ``metrics`` (or of their normalized
        counterparts), marked on the charts and listed, regressions first.
    :param out_dir: created if missing; files of an earlier call are replaced.
    :param metrics: the metrics shown, in order; a metric's ``_normalized`` counterpart
        is drawn beside it, so naming it too changes nothing.
    :returns: the files written: ``index.html``, then the configuration pages.
    :raises ConfigError: a name in ``metrics`` that is not a metric.
    """
    shown = _shown_metrics(metrics)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_series = _series(points)
    ordered = sort_changes(changes)
    pages = [
        write_page(out_dir / one.page, _config_page(one, ordered, shown)) for one in all_series
    ]
    page = _index_page(points, all_series, ordered, shown)
    index = write_page(layout.INDEX_HTML.of(out_dir), page)
    return [index, *pages]


def _shown_metrics(metrics: Sequence[str]) -> list[Column]:
    shown: list[Column] = []
    for name in metrics:
        column = BY_NAME.get(name)
        if column is None or not column.is_metric:
            known = ", ".join(c.name for c in BY_NAME.values() if c.is_metric)
            raise ConfigError(f"unknown metric {name!r}; metrics are: {known}")
        if name.endswith(NORMALIZED_SUFFIX) and name.removesuffix(NORMALIZED_SUFFIX) in metrics:
            continue  # drawn beside its raw metric
        if column not in shown:
            shown.append(column)
    return shown


def _normalized(column: Column) -> Column | None:
    name = normalized(column.name)
    return BY_NAME[name] if name else None


def _series(points: pd.DataFrame) -> list[_Series]:
    """Each configuration's points, oldest first, in order of their labels."""
    if points.empty:
        return []
    ordered = points.sort_values(["started_at", "sweep_id"], kind="stable")
    result, used = [], set()
    groups = sorted(
        ordered.groupby("series", sort=False), key=lambda group: str(group[1]["label"].iloc[-1])
    )
    for series, frame in groups:
        page = _page_name(str(series), used)
        used.add(page)
        result.append(
            _Series(
                series=str(series),
                label=str(frame["label"].iloc[-1]),
                page=page,
                points=frame.reset_index(drop=True),
            )
        )
    return result


def _page_name(series: str, used: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", series).strip("-.")[:80] or "configuration"
    name, n = f"config-{slug}.html", 2
    while name in used:
        name, n = f"config-{slug}-{n}.html", n + 1
    return name


# Formatting -------------------------------------------------------------------------------


def _date(value: Any) -> str:
    if value is None or pd.isna(value):
        return "-"
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def _commit(point: pd.Series) -> str:
    commit = point.get("commit")
    text = "unknown" if commit is None or pd.isna(commit) or commit == "" else str(commit)
    return f"{text} (dirty)" if bool(point.get("dirty")) is True else text


def _short(commit: str | None) -> str:
    return "?" if commit is None or (isinstance(commit, float) and math.isnan(commit)) else commit


def _value(column: Column, value: Any) -> str:
    return column.format(value)


def _ratio(ratio: float) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "-"
    return f"×{ratio:.2f} ({ratio - 1:+.0%})"


def _holds(value: bool | None) -> str:
    return {True: "yes", False: "no"}.get(value, "-")


def _values(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series([math.nan] * len(frame), index=frame.index, dtype=float)
    return pd.to_numeric(frame[name], errors="coerce")


def _chart(points: pd.DataFrame, column: Column, changes: Sequence[Change], **options) -> Any:
    """The trend chart of ``column`` over ``points``: the drawing of ``history.png``."""
    shown = [c for c in changes if c.metric in (column.name, normalized(column.name))]
    drawn = history_figure.draw(points, column.name, shown, **options)
    return figure(svg(drawn, f"{column.name} over the sweeps"))


def _measured(frame: pd.DataFrame, name: str) -> bool:
    return bool(_values(frame, name).notna().any())


# Pages ------------------------------------------------------------------------------------


def _change_rows(changes: Sequence[Change], pages: dict[str, _Series]) -> list[dict[str, str]]:
    """The rows of a changes table. A change of a normalized metric that its raw metric
    shows too is left out: the raw row's "holds when normalized" says it."""
    raw_steps = {
        (c.series, c.metric, c.position)
        for c in changes
        if not c.metric.endswith(NORMALIZED_SUFFIX)
    }
    rows = []
    for change in changes:
        raw_metric = change.metric.removesuffix(NORMALIZED_SUFFIX)
        if raw_metric != change.metric and any(
            (change.series, raw_metric, change.position + shift) in raw_steps
            for shift in (-1, 0, 1)
        ):
            continue
        one = pages.get(change.series)
        column = BY_NAME.get(change.metric)
        raw = change.metric.removesuffix(NORMALIZED_SUFFIX)
        href = one.page if one else ""
        position = int(change.position)
        date = "-"
        if one is not None and 0 <= position < len(one.points):
            date = _date(one.points["started_at"].iloc[position])
        rows.append(
            {
                "kind": change.kind,
                "arrow": "▲" if change.kind == REGRESSION else "▼",
                "label": change.label,
                "href": href,
                "metric": change.metric,
                "metric_href": f"{href}#metric-{raw}",
                "from_commit": _short(change.from_commit),
                "to_commit": _short(change.to_commit),
                "date": date,
                "before": _value(column, change.before) if column else fmt.text(change.before),
                "after": _value(column, change.after) if column else fmt.text(change.after),
                "ratio": _ratio(change.ratio),
                "interval": fmt.interval(change.low, change.high) or "-",
                "holds": _holds(change.survives_normalization),
            }
        )
    return rows


def _index_page(
    points: pd.DataFrame,
    all_series: Sequence[_Series],
    changes: Sequence[Change],
    shown: Sequence[Column],
) -> str:
    pages = {one.series: one for one in all_series}
    latest = []
    for one in all_series:
        point = one.points.iloc[-1]
        latest.append(
            {
                "label": one.label,
                "machine": fmt.text(point.get(MACHINE)),
                "href": one.page,
                "date": _date(point["started_at"]),
                "commit": _commit(point),
                "sweeps": len(one.points),
                "values": [_value(column, point.get(column.name)) for column in shown],
            }
        )
    charts = [
        {"name": column.name, "chart": _chart(points, column, changes, with_normalized=False)}
        for column in shown
        if any(_measured(one.points, column.name) for one in all_series)
    ]
    subtitle = ""
    if all_series:
        sweeps = points["sweep_id"].nunique()
        subtitle = (
            f"{len(all_series)} configurations over {sweeps} sweeps, "
            f"{_date(points['started_at'].min())} to {_date(points['started_at'].max())}"
        )
    return render(
        "history_index.html",
        title=TITLE,
        subtitle=subtitle,
        series=all_series,
        changes=_change_rows(changes, pages),
        latest=latest,
        metrics=shown,
        charts=charts,
    )


def _config_page(one: _Series, changes: Sequence[Change], shown: Sequence[Column]) -> str:
    mine = [c for c in changes if c.series == one.series]
    latest = one.points.iloc[-1]
    facts = [
        (name, fmt.text(latest.get(name))) for name in CONFIGURATION_COLUMNS if name in latest.index
    ]
    items = []
    for column in shown:
        norm = normalized(column.name)
        measured = _measured(one.points, column.name)
        items.append(
            {
                "name": column.name,
                "description": column.description.replace("`", ""),
                "latest": _value(column, latest.get(column.name)),
                "normalized": norm if norm and _measured(one.points, norm) else "",
                # A normalized form these sweeps did not measure (no speed probe yet).
                "unmeasured": (
                    f"{norm}: not measured in these sweeps"
                    if norm and not _measured(one.points, norm)
                    else ""
                ),
                "chart": _chart(one.points, column, mine, legend=False) if measured else None,
                "missing": f"{column.name}: not measured in these sweeps",
            }
        )
    sweeps = [
        {
            "date": _date(point["started_at"]),
            "sweep_id": fmt.text(point.get("sweep_id")),
            "commit": _commit(point),
            "mnistbench_version": fmt.text(point.get("mnistbench_version")),
            "plugin_version": fmt.text(point.get("plugin_version")),
            "runs": fmt.text(point.get("runs")),
        }
        for _, point in one.points.iloc[::-1].iterrows()
    ]
    first, last = one.points["started_at"].iloc[0], one.points["started_at"].iloc[-1]
    return render(
        "history_series.html",
        title=one.label,
        subtitle=f"{len(one.points)} sweeps, {_date(first)} to {_date(last)}",
        nav=[(str(layout.INDEX_HTML), "← all configurations")],
        series=one.series,
        facts=facts,
        changes=_change_rows(mine, {one.series: one}),
        metrics=items,
        sweeps=sweeps,
    )
