"""The history page set: every configuration's figures over sweeps, and where they changed.

:func:`write_history_pages` writes, into one directory that opens offline from the file
system:

- ``index.html``: every configuration's latest figures (with the sweep's date and
  commit), every detected change (regressions first, largest first), and one trend
  chart per metric with a line per configuration;
- ``config-<series>.html``, one per configuration: its settings, its changes, and per
  metric a trend chart of the raw figure beside its speed-normalized one (the
  ``<metric>_normalized`` column, where it has one), with each change marked by a
  line and its commit range and ratio; and the sweeps it was measured in;
- ``plotly.min.js``, the chart library, shared by the pages.

It draws from plain values: the points of :mod:`mnistbench.history` (one row per
configuration and sweep, metric medians) and its detected changes. Names, units and
better directions come from :mod:`mnistbench.metrics`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mnistbench.errors import ConfigError
from mnistbench.history import REGRESSION, Change, sort_changes
from mnistbench.metrics import BY_NAME, HIGHER, Column, normalized
from mnistbench.pages.shell import (
    IMPROVEMENT_COLOR,
    REGRESSION_COLOR,
    SERIES_COLORS,
    chart,
    plain,
    plot_text,
    render,
    style_figure,
    write_page,
    write_plotly_js,
)

INDEX_HTML = "index.html"
TITLE = "mnistbench history"

#: The columns of a point that say what ran: shown on each configuration's page.
CONFIGURATION_COLUMNS = (
    "architecture", "backend", "executor", "isolation", "cpus_reserved", "epochs",
    "batch_size", "steps_per_execution", "jit_compile", "train_samples", "test_samples",
    "target_accuracy", "eval_every",
)  # fmt: skip

NORMALIZED_SUFFIX = "_normalized"


@dataclass(frozen=True)
class _Series:
    series: str
    label: str
    page: str
    color: str
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
    :returns: the files written: ``index.html``, then the configuration pages, then
        ``plotly.min.js``.
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
    index = write_page(out_dir / INDEX_HTML, _index_page(points, all_series, ordered, shown))
    return [index, *pages, write_plotly_js(out_dir)]


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
    for i, (series, frame) in enumerate(groups):
        page = _page_name(str(series), used)
        used.add(page)
        result.append(
            _Series(
                series=str(series),
                label=str(frame["label"].iloc[-1]),
                page=page,
                color=SERIES_COLORS[i % len(SERIES_COLORS)],
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
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return column.format(number)


def _ratio(ratio: float) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "-"
    return f"×{ratio:.2f} ({ratio - 1:+.0%})"


def _holds(value: bool | None) -> str:
    return {True: "yes", False: "no"}.get(value, "-")


def _title(column: Column) -> str:
    direction = "higher" if column.better == HIGHER else "lower"
    return f"{column.name} ({direction} is better)"


def _axis(column: Column) -> str:
    # The chart's title names the metric; the axis says what its numbers are in.
    if column.unit:
        return column.unit
    if column.name.endswith(NORMALIZED_SUFFIX):
        return "relative to the speed probe"
    return column.name


def _values(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series([math.nan] * len(frame), index=frame.index, dtype=float)
    return pd.to_numeric(frame[name], errors="coerce")


# Charts -----------------------------------------------------------------------------------


def _hover(column: Column, frame: pd.DataFrame) -> tuple[list[list[str]], str]:
    values = _values(frame, column.name)
    customdata = [
        [
            plot_text(_value(column, value)),
            plot_text(_date(point["started_at"])),
            plot_text(_commit(point)),
            plot_text(point.get("mnistbench_version")),
            plot_text(point.get("plugin_version")),
            plot_text(point.get("sweep_id")),
            plot_text(point.get("runs")),
        ]
        for value, (_, point) in zip(values, frame.iterrows(), strict=True)
    ]
    template = (
        "<b>%{customdata[0]}</b><br>%{customdata[1]}<br>commit %{customdata[2]}<br>"
        "mnistbench %{customdata[3]} · plugin %{customdata[4]}<br>"
        "sweep %{customdata[5]} · %{customdata[6]} runs"
    )
    return customdata, template


def _trace(column: Column, one: _Series, *, name: str | None = None) -> Any:
    """One configuration's line; its hover box names the configuration unless ``name``
    (a chart of that configuration alone) is given."""
    import plotly.graph_objects as go

    customdata, template = _hover(column, one.points)
    return go.Scatter(
        x=list(one.points["started_at"]),
        y=list(_values(one.points, column.name)),
        mode="lines+markers",
        name=plot_text(name if name is not None else one.label),
        line={"color": one.color, "width": 2},
        marker={"size": 8, "color": one.color},
        connectgaps=True,
        customdata=customdata,
        hovertemplate=template
        + ("<extra></extra>" if name else f"<extra>{plot_text(one.label)}</extra>"),
    )


def _mark_change(fig: Any, change: Change, frame: pd.DataFrame, row: int) -> None:
    """A dashed line between the last point before the step and the first after it."""
    position = int(change.position)
    if not 0 < position < len(frame):
        return
    before, after = frame["started_at"].iloc[position - 1], frame["started_at"].iloc[position]
    x = before + (after - before) / 2
    color = REGRESSION_COLOR if change.kind == REGRESSION else IMPROVEMENT_COLOR
    fig.add_shape(
        type="line",
        xref="x",
        yref="paper",
        x0=x,
        x1=x,
        y0=0,
        y1=1,
        line={"color": color, "width": 2, "dash": "dash"},
    )
    text = f"{_short(change.from_commit)}→{_short(change.to_commit)} ×{change.ratio:.2f}"
    fig.add_annotation(
        x=x,
        y=1 - 0.09 * row,
        xref="x",
        yref="paper",
        text=plot_text(text),
        showarrow=False,
        xanchor="left",
        yanchor="top",
        font={"color": color, "size": 12},
        bgcolor="rgba(255,255,255,0.85)",
        bordercolor=color,
        borderwidth=1,
        borderpad=2,
    )


def _series_chart(one: _Series, column: Column, changes: Sequence[Change], chart_id: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(_trace(column, one, name=column.name))
    style_figure(fig, title=_title(column), y_title=_axis(column), x_title="sweep date (UTC)")
    mine = [c for c in changes if c.series == one.series and c.metric == column.name]
    for row, change in enumerate(mine):
        _mark_change(fig, change, one.points, row)
    return chart(fig, chart_id)


def _overview_chart(all_series: Sequence[_Series], column: Column, chart_id: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure([_trace(column, one) for one in all_series])
    height = 380 + 22 * len(all_series)
    style_figure(
        fig,
        title=_title(column),
        y_title=_axis(column),
        x_title="sweep date (UTC)",
        height=height,
        legend=True,
    )
    # The legend under the axis title, one configuration per line where labels are long.
    fig.update_layout(margin={"b": 90 + 22 * len(all_series)}, legend={"y": -0.22})
    return chart(fig, chart_id)


def _measured(frame: pd.DataFrame, name: str) -> bool:
    return bool(_values(frame, name).notna().any())


# Pages ------------------------------------------------------------------------------------

_CHANGES_TABLE = """
{% macro changes_table(rows, link) %}
<div class="scroll"><table>
<thead><tr><th>change</th>{% if link %}<th>configuration</th>{% endif %}<th>metric</th>
<th>commits</th><th>first sweep after</th><th class="num">before</th><th class="num">after</th>
<th class="num">ratio</th><th>holds when normalized</th></tr></thead>
<tbody>
{% for row in rows %}
<tr><td><span class="badge {{ row.kind }}">{{ row.arrow }} {{ row.kind }}</span></td>
{% if link %}<td><a href="{{ row.href }}">{{ row.label }}</a></td>{% endif %}
<td><a href="{{ row.metric_href }}"><code>{{ row.metric | breakable }}</code></a></td>
<td class="mono nowrap">{{ row.from_commit }} → {{ row.to_commit }}</td>
<td class="nowrap">{{ row.date }}</td>
<td class="num">{{ row.before }}</td><td class="num">{{ row.after }}</td>
<td class="num">{{ row.ratio }}</td><td>{{ row.holds }}</td></tr>
{% endfor %}
</tbody></table></div>
{% endmacro %}
"""

_INDEX = (
    """{% extends "base.html" %}"""
    + _CHANGES_TABLE
    + """
{% block content %}
{% if not series %}
<section class="card"><p>No sweeps recorded yet.</p></section>
{% else %}
<section class="card">
<h2>Changes</h2>
{% if changes %}
<p class="note">Steps detected in each configuration's history: regressions first, the
largest first. "Holds when normalized" says whether the step is still there once each
run is divided by the machine's speed probe (no: the machine was slower or faster).</p>
{{ changes_table(changes, True) }}
{% else %}
<p>No change detected.</p>
{% endif %}
</section>
<section class="card">
<h2>Latest figures</h2>
<p class="note">Each configuration's most recent sweep: medians over its runs.</p>
<div class="scroll"><table>
<thead><tr><th>configuration</th><th>latest sweep</th><th>commit</th>
<th class="num">sweeps</th>{% for column in metrics %}
<th class="num">{{ column.name | breakable }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in latest %}
<tr><td><a href="{{ row.href }}">{{ row.label }}</a></td><td class="nowrap">{{ row.date }}</td>
<td class="mono nowrap">{{ row.commit }}</td><td class="num">{{ row.sweeps }}</td>
{% for value in row["values"] %}<td class="num">{{ value }}</td>{% endfor %}</tr>
{% endfor %}
</tbody></table></div>
</section>
<section class="card">
<h2>Trends</h2>
<p class="note">One line per configuration; hover a point for its sweep, commit and
versions. Each configuration's page has the speed-normalized figures and the changes.</p>
{% for item in charts %}
<div id="metric-{{ item.name }}">{{ item.chart }}</div>
{% endfor %}
</section>
{% endif %}
{% endblock %}
"""
)

_CONFIG = (
    """{% extends "base.html" %}"""
    + _CHANGES_TABLE
    + """
{% block content %}
<section class="card">
<h2>Configuration</h2>
<dl class="facts">
<dt>series</dt><dd><code>{{ series }}</code></dd>
{% for name, value in facts %}<dt>{{ name }}</dt><dd>{{ value }}</dd>{% endfor %}
</dl>
</section>
<section class="card">
<h2>Changes</h2>
{% if changes %}{{ changes_table(changes, False) }}{% else %}<p>No change detected.</p>{% endif %}
</section>
{% for item in metrics %}
<section class="card" id="metric-{{ item.name }}">
<h2>{{ item.name }}</h2>
<p class="note">{{ item.description }}. Latest: <b>{{ item.latest }}</b>.</p>
<div class="pair{% if item.panels|length == 1 %} single{% endif %}">
{% for panel in item.panels %}
{% if panel.chart %}{{ panel.chart }}
{% else %}<div class="missing">{{ panel.missing }}</div>{% endif %}
{% endfor %}
</div>
</section>
{% endfor %}
<section class="card">
<h2>Sweeps</h2>
<div class="scroll"><table>
<thead><tr><th>started</th><th>sweep</th><th>commit</th><th>mnistbench</th><th>plugin</th>
<th class="num">runs</th></tr></thead>
<tbody>
{% for row in sweeps %}
<tr><td>{{ row.date }}</td><td class="mono">{{ row.sweep_id }}</td>
<td class="mono">{{ row.commit }}</td><td>{{ row.mnistbench_version }}</td>
<td>{{ row.plugin_version }}</td><td class="num">{{ row.runs }}</td></tr>
{% endfor %}
</tbody></table></div>
</section>
{% endblock %}
"""
)


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
                "before": _value(column, change.before) if column else plain(change.before),
                "after": _value(column, change.after) if column else plain(change.after),
                "ratio": _ratio(change.ratio),
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
                "href": one.page,
                "date": _date(point["started_at"]),
                "commit": _commit(point),
                "sweeps": len(one.points),
                "values": [_value(column, point.get(column.name)) for column in shown],
            }
        )
    charts = [
        {"name": column.name, "chart": _overview_chart(all_series, column, f"trend-{i}")}
        for i, column in enumerate(shown)
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
        _INDEX,
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
        (name, plain(latest.get(name))) for name in CONFIGURATION_COLUMNS if name in latest.index
    ]
    items = []
    for i, column in enumerate(shown):
        panels = []
        for j, panel_column in enumerate(filter(None, (column, _normalized(column)))):
            if _measured(one.points, panel_column.name):
                chart_html = _series_chart(one, panel_column, mine, f"chart-{i}-{j}")
                panels.append({"chart": chart_html, "missing": ""})
            else:
                missing = f"{panel_column.name}: not measured in these sweeps"
                panels.append({"chart": None, "missing": missing})
        items.append(
            {
                "name": column.name,
                "description": column.description.replace("`", ""),
                "latest": _value(column, latest.get(column.name)),
                "panels": panels,
            }
        )
    sweeps = [
        {
            "date": _date(point["started_at"]),
            "sweep_id": plain(point.get("sweep_id")),
            "commit": _commit(point),
            "mnistbench_version": plain(point.get("mnistbench_version")),
            "plugin_version": plain(point.get("plugin_version")),
            "runs": plain(point.get("runs")),
        }
        for _, point in one.points.iloc[::-1].iterrows()
    ]
    first, last = one.points["started_at"].iloc[0], one.points["started_at"].iloc[-1]
    return render(
        _CONFIG,
        title=one.label,
        subtitle=f"{len(one.points)} sweeps, {_date(first)} to {_date(last)}",
        nav=[(INDEX_HTML, "← all configurations")],
        series=one.series,
        facts=facts,
        changes=_change_rows(mine, {one.series: one}),
        metrics=items,
        sweeps=sweeps,
    )
