"""``report.html``: one sweep on one page that opens offline, everything embedded.

:func:`write_html_report` writes it into the sweep's output directory; the built-in
reporter (:mod:`mnistbench.report`) calls it after its other files, so ``mnistbench run``
and ``mnistbench report DIR`` both leave it. The page holds, in order:

- the headline table: per configuration and headline metric
  (:func:`mnistbench.metrics.in_view` ``(HEADLINE)``) the median with its spread and a
  noisy flag, from :func:`mnistbench.report.comparison_table`;
- the comparison, training-curve and (where the runs measured them) inference-curve
  charts, drawn with plotly from the same figure data as the PNGs
  (:func:`~mnistbench.plots.comparison.comparison_data`,
  :func:`~mnistbench.plots.curves.curves_data`, and the inference curve's data
  function), and ``predictions.png`` embedded as an image with each configuration's
  mistakes from :func:`~mnistbench.plots.predictions.predictions_data`;
- failed, diverged and interrupted runs with their error and the tail of their log;
- the environment (``environment.json``), a link to every other file in the directory
  with what it holds, and the command that reproduces the sweep, shell-quoted, with
  the ``MNISTBENCH_*`` and ``KERAS_BACKEND`` variables that were set.

plotly's JavaScript is inlined and the PNG is a ``data:`` URI, so the file needs
nothing beside it. Every text from plugins and runs is escaped (:mod:`mnistbench.pages.shell`).
"""

from __future__ import annotations

import base64
import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mnistbench.environment import read_environment
from mnistbench.metrics import HEADLINE, HIGHER, Column, in_view
from mnistbench.pages.shell import chart, plain, plot_text, render, style_figure, write_page
from mnistbench.plots.style import setting
from mnistbench.runs import in_order, is_ok, labels, numeric, text

if TYPE_CHECKING:
    import pandas as pd

REPORT_HTML = "report.html"
#: Lines of a failed run's log shown in the page (the whole log is linked).
LOG_TAIL_LINES = 25
#: Characters of a failed run's log read from its end at most.
LOG_TAIL_BYTES = 64 * 1024

#: What the files mnistbench writes hold, by path relative to the output directory.
KNOWN_FILES = {
    "runs.csv": "one row per run: every measurement, status and error",
    "comparison.csv": "one row per configuration: headline medians, spreads, ratios to best",
    "comparison.png": "training time, inference throughput and test accuracy per configuration",
    "curves.png": "training accuracy and loss per epoch, per configuration",
    "predictions.png": "the first test digits with each configuration's predicted label",
    "inference.png": "inference throughput against batch size, per configuration",
    "environment.json": "versions, CPU, data source, plugins, command line and git commit",
    "samples.npz": "the test digits shown in predictions.png",
    "pytest-benchmark.json": "the timings in pytest-benchmark's JSON format",
    "manifest.json": "the sweep's plan and the state of each run (read by --resume)",
    "sweep.toml": "the sweep file the sweep was planned from",
}
LOG_DESCRIPTION = "the output of run {run_id}'s worker process"
THIRD_PARTY = "written by another reporter"

_DATA_KEYS = ("source", "origin", "cache_path")


def write_html_report(
    runs: pd.DataFrame, output_dir: Path, table: pd.DataFrame | None = None
) -> Path:
    """Write ``output_dir/report.html`` for ``runs`` (read from ``output_dir/runs.csv``).

    Reads the directory's ``environment.json``, ``samples.npz``, ``predictions.png``
    and worker logs where they exist, and lists every other file in it, so call it
    after the other reporters. ``table``: their ``comparison_table(runs)``, when they
    made it already. Returns the path written (atomically).
    """
    output_dir = Path(output_dir)
    return write_page(output_dir / REPORT_HTML, report_page(runs, output_dir, table))


def report_page(runs: pd.DataFrame, output_dir: Path, table: pd.DataFrame | None = None) -> str:
    """The HTML of ``report.html`` for the ``runs`` of ``output_dir``
    (see :func:`write_html_report`)."""
    output_dir = Path(output_dir)
    environment = read_environment(output_dir)
    sections: list[tuple[str, str]] = [("headline", "Headline figures")]
    comparison = _comparison_chart(runs)
    curves = _curves_chart(runs)
    predictions = _predictions(runs, output_dir)
    inference = _inference_chart(runs)
    sections += [("comparison", "Comparison"), ("curves", "Training curves")]
    if predictions is not None:
        sections.append(("predictions", "Predictions"))
    if inference is not None:
        sections.append(("inference", "Inference curves"))
    failures = failed_runs(runs, output_dir)
    sections += [
        ("failures", "Failed runs"),
        ("environment", "Environment"),
        ("files", "Files"),
        ("reproduce", "Reproduce"),
    ]
    ok = int(is_ok(runs).sum())
    return render(
        _PAGE,
        title=_title(environment),
        subtitle=_subtitle(runs),
        nav=[(f"#{anchor}", name) for anchor, name in sections],
        plotly="inline",
        summary=_summary(runs, ok),
        headline=headline_rows(runs, table),
        comparison=comparison,
        curves=curves,
        predictions=predictions,
        inference=inference,
        failures=failures,
        environment=_environment_facts(environment),
        plugins=_plugins(environment),
        environment_json=json.dumps(environment, indent=2) if environment else "",
        files=output_files(output_dir),
        reproduce=reproduce_command(environment),
        resumed="--resume" in shlex.split(environment.get("command") or ""),
        sweep_file=bool(environment.get("sweep_file")),
    )


def _title(environment: dict) -> str:
    sweep_id = environment.get("sweep_id")
    return f"mnistbench sweep {sweep_id}" if sweep_id else "mnistbench sweep"


def _subtitle(runs: pd.DataFrame) -> str:
    started = sorted(set(text(runs, "started_at")) - {""})
    when = f" · started {started[0][:19].replace('T', ' ')}" if started else ""
    return setting(runs) + when


def _summary(runs: pd.DataFrame, ok: int) -> str:
    statuses = text(runs, "status")
    configurations = len(in_order(labels(runs)))
    counts = ", ".join(
        f"{n} {status or 'unknown'}" for status, n in statuses.value_counts(sort=False).items()
    )
    plural = "" if configurations == 1 else "s"
    return f"{configurations} configuration{plural}, {len(runs)} runs: {counts}."


# Headline table ---------------------------------------------------------------------------


def _number(column: Column, value: Any) -> str:
    """``value`` with its unit; whole counts (parameters) with thousands separators."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(number):
        return "-"
    if not column.unit and number.is_integer() and abs(number) >= 1000:
        return f"{number:,.0f}"
    return column.format(number)


def headline_rows(runs: pd.DataFrame, table: pd.DataFrame | None = None) -> dict[str, Any]:
    """The headline table: its configurations and one row per metric measured by any.

    Returns ``{"configurations": [...], "rows": [...]}``: each configuration's ``label``,
    ``status``, ``runs`` and ``failed``; each row's metric ``name``, ``unit``,
    ``better`` and ``description``, and per configuration a cell with the formatted
    ``median``, ``spread`` ("min–max · cv 3.2%" over several runs, else ""), ``noisy``
    and ``best`` (the best median of several configurations). ``table`` is
    ``comparison_table(runs)``, computed here when not given.
    """
    from mnistbench.report import comparison_table

    table = comparison_table(runs) if table is None else table
    names = in_order(labels(runs))
    configurations = [
        {
            "label": name,
            "status": str(row["status"]),
            "runs": int(row["runs"]),
            "failed": int(row["failed"]),
        }
        for name, (_, row) in zip(names, table.iterrows(), strict=True)
    ]
    rows = []
    for column in in_view(HEADLINE):
        if column.name not in table.columns:
            continue
        medians = numeric(table, column.name)
        if medians.isna().all():
            continue
        cells = []
        for _, row in table.iterrows():
            median = row[column.name]
            spread = ""
            if int(row["runs"]) > 1 and not _missing(median):
                spread = _spread(column, row)
            ratio = row[f"{column.name}_ratio_to_best"]
            cells.append(
                {
                    "median": _number(column, median),
                    "spread": spread,
                    "noisy": row[f"{column.name}_noisy"] is True,
                    "best": len(table) > 1 and not _missing(ratio) and ratio == 1.0,
                }
            )
        rows.append(
            {
                "name": column.name,
                "unit": column.unit,
                "better": "↑ higher is better" if column.better == HIGHER else "↓ lower is better",
                "description": column.description.replace("`", ""),
                "cells": cells,
            }
        )
    return {"configurations": configurations, "rows": rows}


def _spread(column: Column, row: pd.Series) -> str:
    """``"30.0–39.0 s · cv 13.7%"``: the min–max of several runs and their cv."""
    low = _number(column, row[f"{column.name}_min"])
    high = _number(column, row[f"{column.name}_max"])
    if low == high:
        return f"{int(row['runs'])} runs alike"
    if column.unit and low.endswith(f" {column.unit}"):
        low = low.removesuffix(f" {column.unit}")
    cv = row[f"{column.name}_cv"]
    return f"{low}–{high}" + ("" if _missing(cv) else f" · cv {cv:.1%}")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


# Charts -----------------------------------------------------------------------------------


def _comparison_chart(runs: pd.DataFrame) -> Any:
    """One bar panel per metric of ``comparison_data``, as ``comparison.png`` has: the
    median per configuration, min–max error bars over several runs, the value above each
    bar (the best in bold) with "noisy" or the converged count where they apply."""
    from plotly.subplots import make_subplots

    from mnistbench.plots.comparison import comparison_data

    data = comparison_data(runs)
    if data.empty:
        return None
    panels = [bars.reset_index(drop=True) for _, bars in data.groupby("panel", sort=True)]
    columns = 2 if len(panels) == 4 else len(panels)
    rows = 2 if len(panels) == 4 else 1
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[plot_text(bars["title"].iloc[0]) for bars in panels],
        horizontal_spacing=0.11,
        vertical_spacing=0.2,
    )
    fig.update_annotations(font={"size": 14})  # the panel titles
    style_figure(fig, title="", y_title="", height=440 if rows == 1 else 780)
    for i, bars in enumerate(panels):
        row, col = divmod(i, columns)
        _bar_panel(fig, bars, row + 1, col + 1)
    fig.update_layout(title=None, margin={"t": 40})
    return chart(fig, "chart-comparison")


def _bar_panel(fig: Any, bars: pd.DataFrame, row: int, col: int) -> None:
    import plotly.graph_objects as go

    names = [plot_text(label) for label in bars["label"]]
    several = [n > 1 for n in bars["n"]]
    medians = [0.0 if math.isnan(v) else float(v) for v in bars["median"]]
    fig.add_trace(
        go.Bar(
            x=names,
            y=medians,
            marker={"color": list(bars["color"])},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [
                    hi - med if many else 0.0
                    for hi, med, many in zip(bars["max"], medians, several, strict=True)
                ],
                "arrayminus": [
                    med - lo if many else 0.0
                    for lo, med, many in zip(bars["min"], medians, several, strict=True)
                ],
                "visible": any(several),
                "color": "#1f2933",
                "thickness": 1.5,
            },
            customdata=[
                [plot_text(bar.value_text), bar.runs, plot_text(_range(bar))]
                for bar in bars.itertuples(index=False)
            ],
            hovertemplate="%{x}: <b>%{customdata[0]}</b><br>%{customdata[1]} runs"
            "%{customdata[2]}<extra></extra>",
            showlegend=False,
        ),
        row=row,
        col=col,
    )
    # Labels above the error bars, where the bars' own text would collide with them.
    for name, bar in zip(names, bars.itertuples(index=False), strict=True):
        value = plot_text(bar.value_text)
        lines = [f"<b>{value}</b>" if bar.best else value]
        if 0 < bar.converged_runs < bar.target_runs:
            lines.append(f"{bar.converged_runs}/{bar.target_runs} converged")
        if bar.noisy:
            lines.append('<span style="color:#b45309"><b>noisy</b></span>')
        fig.add_annotation(
            x=name,
            y=0.0 if math.isnan(bar.max) else float(bar.max),
            text="<br>".join(lines),
            showarrow=False,
            yanchor="bottom",
            yshift=3,
            font={"size": 12},
            row=row,
            col=col,
        )
    top = float(bars["max"].max()) if bars["n"].max() else 1.0
    accuracy = bars["metric"].iloc[0] == "test_accuracy"
    headroom = 1.18 + 0.08 * int(bars["noisy"].any())
    fig.update_yaxes(
        title_text=plot_text(bars["ylabel"].iloc[0]),
        range=[0, (100 if accuracy else (top or 1.0)) * headroom],
        row=row,
        col=col,
    )


def _range(bar: Any) -> str:
    if bar.n > 1 and not math.isnan(bar.min):
        return f" · min {bar.min:,.4g}, max {bar.max:,.4g}"
    return ""


def _curves_chart(runs: pd.DataFrame) -> Any:
    """Training accuracy and loss per epoch, one line per configuration, from ``curves_data``."""
    from mnistbench.plots.curves import curves_data

    data = curves_data(runs)
    if data.empty:
        return None
    panels = [
        _LinePanel(
            "Training accuracy per epoch",
            "training accuracy (%)",
            data[data["series"] == "accuracy"].rename(columns={"epoch": "x"}),
            "epoch %{x}: <b>%{y:.2f}%</b>",
        ),
        _LinePanel(
            "Training loss per epoch",
            "training loss (cross-entropy)",
            data[data["series"] == "loss"].rename(columns={"epoch": "x"}),
            "epoch %{x}: <b>%{y:.4f}</b>",
        ),
    ]
    fig = _line_panels(panels, x_title="epoch")
    last = int(data["epoch"].max())
    fig.update_xaxes(range=[0.6, last + 0.4], dtick=1 if last <= 20 else None)
    return chart(fig, "chart-curves")


def _inference_chart(runs: pd.DataFrame) -> Any:
    """Throughput and latency against the inference batch size, one line per configuration,
    from ``inference_curve_data``; None when no successful run measured a curve."""
    from mnistbench.plots.inference import inference_curve_data

    data = inference_curve_data(runs)
    if data.empty:
        return None
    panels = []
    for measure, title, axis, value in (
        ("samples_per_second", "Inference throughput (higher is better)", "samples / s",
         "%{y:,.0f} samples/s"),
        ("latency_ms", "Latency of one batch call (lower is better)", "ms per call",
         "%{y:.3g} ms"),
    ):  # fmt: skip
        frame = data.rename(
            columns={
                "batch_size": "x",
                measure: "median",
                f"{measure}_min": "min",
                f"{measure}_max": "max",
            }
        )
        panels.append(_LinePanel(title, axis, frame, f"batch size %{{x}}: <b>{value}</b>"))
    fig = _line_panels(panels, x_title="inference batch size (log scale)")
    sizes = sorted({int(size) for size in data["batch_size"]})
    fig.update_xaxes(type="log", tickvals=sizes, ticktext=[str(size) for size in sizes])
    fig.update_yaxes(type="log", dtick=1)
    return chart(fig, "chart-inference")


@dataclass(frozen=True)
class _LinePanel:
    """One panel of lines: per configuration (``label``, ``color``, ``runs``) the ``median``
    at each ``x``, with a band from ``min`` to ``max`` over several runs."""

    title: str
    axis: str
    data: pd.DataFrame
    hover: str  # the point's line in its hover box, plotly's template syntax


def _line_panels(panels: list[_LinePanel], *, x_title: str) -> Any:
    """Side-by-side line panels sharing one legend (a configuration per entry)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=len(panels),
        subplot_titles=[plot_text(panel.title) for panel in panels],
        horizontal_spacing=0.1,
    )
    for col, panel in enumerate(panels, start=1):
        for name, line in panel.data.groupby("label", sort=False):
            color, runs = line["color"].iloc[0], int(line["runs"].max())
            x = [float(value) for value in line["x"]]
            group = plot_text(name)
            if runs > 1:
                fig.add_trace(
                    go.Scatter(
                        x=x + x[::-1],
                        y=list(line["max"]) + list(line["min"])[::-1],
                        mode="lines",
                        fill="toself",
                        fillcolor=_translucent(color),
                        line={"width": 0},
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=group,
                    ),
                    row=1,
                    col=col,
                )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=list(line["median"]),
                    mode="lines+markers",
                    name=group,
                    legendgroup=group,
                    showlegend=col == 1,
                    line={"color": color, "width": 2},
                    marker={"color": color, "size": 8},
                    hovertemplate=f"{group}<br>{panel.hover}"
                    + (f"<br>median of {runs} runs" if runs > 1 else "")
                    + "<extra></extra>",
                ),
                row=1,
                col=col,
            )
    style_figure(fig, title="", y_title="", x_title=x_title, height=440, legend=True)
    for col, panel in enumerate(panels, start=1):
        fig.update_yaxes(title_text=plot_text(panel.axis), row=1, col=col)
    fig.update_layout(title=None, margin={"t": 40, "b": 96}, legend={"y": -0.2})
    fig.update_annotations(font={"size": 14})
    return fig


def _translucent(color: str) -> str:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.2)"


def _predictions(runs: pd.DataFrame, output_dir: Path) -> dict[str, Any] | None:
    """``predictions.png`` as a data URI and each configuration's mistakes; None without it."""
    from mnistbench.plots.predictions import PREDICTIONS_PNG, predictions_data
    from mnistbench.results import SAMPLES_NPZ

    png, samples = output_dir / PREDICTIONS_PNG, output_dir / SAMPLES_NPZ
    if not (png.is_file() and samples.is_file()):
        return None
    data = predictions_data(runs, samples)
    if data.empty:
        return None
    digits = int(data["digit"].nunique())
    mistakes = [
        {
            "label": name,
            "wrong": int(frame["correct"].eq(False).sum()),
            "digits": digits,
            "which": ", ".join(
                f"#{row.digit + 1}: {row.predicted} for {row.true}"
                for row in frame[frame["correct"].eq(False).fillna(False)].itertuples(index=False)
            ),
        }
        for name, frame in data.groupby("label", sort=False)
    ]
    source = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
    return {"src": source, "mistakes": mistakes, "digits": digits}


# Failures, environment, files, command -----------------------------------------------------


def failed_runs(runs: pd.DataFrame, output_dir: Path) -> list[dict[str, str]]:
    """Every run whose status is not ``ok``, in ``runs.csv`` order.

    Each has its ``run_id``, configuration ``label``, ``status``, ``error``, and its
    log's ``log`` path relative to ``output_dir`` with its last :data:`LOG_TAIL_LINES`
    lines in ``log_tail`` ("" where the run left no log: it ran in the mnistbench
    process, or never started).
    """
    from mnistbench.sweep import LOG_DIR

    names, ok = labels(runs), is_ok(runs)
    ids, statuses, errors = text(runs, "run_id"), text(runs, "status"), text(runs, "error")
    failures = []
    for index in runs.index[~ok]:
        run_id = ids[index]
        log = Path(LOG_DIR) / f"{run_id}.log"
        has_log = bool(run_id) and (output_dir / log).is_file()
        failures.append(
            {
                "run_id": run_id or "-",
                "label": names[index],
                "status": statuses[index] or "unknown",
                "error": errors[index] or "(no error recorded)",
                "log": log.as_posix() if has_log else "",
                "log_href": _href(log.as_posix()) if has_log else "",
                "log_tail": log_tail(output_dir / log) if has_log else "",
            }
        )
    return failures


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the text file at ``path`` (undecodable bytes replaced)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - LOG_TAIL_BYTES))
        tail = handle.read().decode("utf-8", errors="replace")
    return "\n".join(tail.rstrip("\n").splitlines()[-lines:])


def _environment_facts(environment: dict) -> list[tuple[str, str]]:
    """The environment's main entries as (name, text), in reading order."""
    if not environment:
        return []
    packages = environment.get("packages") or {}
    backends = environment.get("backends") or {}
    data = environment.get("data") or {}
    facts = [
        ("sweep", environment.get("sweep_id")),
        ("mnistbench", packages.get("mnistbench")),
        ("python", environment.get("python")),
        (
            "packages",
            ", ".join(f"{name} {version}" for name, version in packages.items() if version),
        ),
        ("backend", environment.get("backend")),
        (
            "backends run",
            ", ".join(f"{name} {version or '?'}" for name, version in backends.items()),
        ),
        ("executor", environment.get("executor")),
        ("platform", environment.get("platform")),
        (
            "CPU",
            f"{environment.get('cpu') or '?'} × {environment.get('cpu_count') or '?'} cores",
        ),
        ("data", " · ".join(dict.fromkeys(str(data[k]) for k in _DATA_KEYS if data.get(k)))),
        ("devices", _devices(environment.get("devices"))),
        ("git commit", environment.get("git_commit") or "not a git repository"),
        ("sweep file", (environment.get("sweep_file") or {}).get("path")),
    ]
    return [(name, plain(value)) for name, value in facts if value not in (None, "")]


def _devices(reported: Any) -> str:
    """``{node: {backend: [device, ...]}}`` on one line: ``node1 · jax: gpu NVIDIA H200``."""
    if not isinstance(reported, dict):
        return ""
    parts = []
    for node, backends in reported.items():
        for backend, devices in (backends or {}).items():
            names = ", ".join(
                " ".join(str(d[key]) for key in ("kind", "name") if d.get(key))
                for d in devices
                if isinstance(d, dict)
            )
            parts.append(f"{node} · {backend}: {names}" if node else f"{backend}: {names}")
    return "; ".join(parts)


def _plugins(environment: dict) -> list[dict[str, str]]:
    plugins = environment.get("plugins") or {}
    return [
        {
            "architecture": name,
            "plugin": plain(info.get("plugin")),
            "distribution": info.get("distribution") or "-",
            "version": info.get("version") or "-",
        }
        for name, info in sorted(plugins.items())
        if isinstance(info, dict)
    ]


def output_files(output_dir: Path) -> list[dict[str, str]]:
    """Every file under ``output_dir`` but ``report.html`` and hidden (temporary) ones:
    its ``path`` relative to the directory, ``href``, ``size`` and ``description``
    (:data:`THIRD_PARTY` for a file mnistbench does not write). Top-level files first,
    each level sorted by name."""
    from mnistbench.sweep import LOG_DIR

    output_dir = Path(output_dir)
    found = [
        path
        for path in output_dir.rglob("*")
        if path.is_file()
        and path.name != REPORT_HTML
        and not any(part.startswith(".") for part in path.relative_to(output_dir).parts)
    ]
    files = []
    for path in sorted(found, key=lambda p: (len(p.relative_to(output_dir).parts), p.as_posix())):
        relative = path.relative_to(output_dir).as_posix()
        description = KNOWN_FILES.get(relative, THIRD_PARTY)
        if relative.startswith(f"{LOG_DIR}/") and relative.endswith(".log"):
            description = LOG_DESCRIPTION.format(run_id=path.stem)
        files.append(
            {
                "path": relative,
                "href": _href(relative),
                "size": _size(path.stat().st_size),
                "description": description,
            }
        )
    return files


def _href(relative: str) -> str:
    return quote(relative)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def reproduce_command(environment: dict) -> str:
    """The command that ran the sweep, shell-quoted, after the ``MNISTBENCH_*`` and
    ``KERAS_BACKEND`` variables that were set (``KERAS_BACKEND=jax mnistbench run ...``);
    "" when ``environment.json`` recorded no command."""
    command = environment.get("command") or ""
    if not command:
        return ""
    variables = environment.get("environment_variables") or {}
    assignments = [f"{name}={shlex.quote(str(value))}" for name, value in variables.items()]
    return " ".join([*assignments, command])


_PAGE = """{% extends "base.html" %}
{% block content %}
<section class="card" id="headline">
<h2>Headline figures</h2>
<p class="note">{{ summary }} Each cell: the median over a configuration's successful runs;
under it, with several runs, their min–max and coefficient of variation (cv).
<span class="badge noisy">noisy</span> marks a cv above 10%; the best median is in bold.</p>
{% if headline.rows %}
<div class="scroll"><table class="headline">
<thead><tr><th>metric</th>
{% for config in headline.configurations %}
<th class="num">{{ config.label }}<br>
<span class="badge {{ config.status }}">{{ config.status }}</span>
<span class="sub">{{ config.runs }} ok
{%- if config.failed %}, {{ config.failed }} failed{% endif %}</span></th>
{% endfor %}</tr></thead>
<tbody>
{% for row in headline.rows %}
<tr><td title="{{ row.description }}"><code>{{ row.name }}</code>
<span class="hint">{{ row.unit }}{% if row.unit %} · {% endif %}{{ row.better }}</span></td>
{% for cell in row.cells %}
<td class="num">{% if cell.best %}<b>{{ cell.median }}</b>{% else %}{{ cell.median }}{% endif %}
{% if cell.noisy %} <span class="badge noisy">noisy</span>{% endif %}
{% if cell.spread %}<span class="sub">{{ cell.spread }}</span>{% endif %}</td>
{% endfor %}</tr>
{% endfor %}
</tbody></table></div>
{% else %}
<p>No successful run: nothing measured.</p>
{% endif %}
</section>

<section class="card" id="comparison">
<h2>Comparison</h2>
{% if comparison %}
<p class="note">The figures of <a href="comparison.png">comparison.png</a>: bars are
medians; with several runs the error bars span their min–max. Hover a bar for its runs.</p>
{{ comparison }}
{% else %}<p>No successful run: nothing to compare.</p>{% endif %}
</section>

<section class="card" id="curves">
<h2>Training curves</h2>
{% if curves %}
<p class="note">The figures of <a href="curves.png">curves.png</a>: the median per epoch;
with several runs a band spans their min–max.</p>
{{ curves }}
{% else %}<p>No successful run recorded per-epoch values.</p>{% endif %}
</section>

{% if predictions %}
<section class="card" id="predictions">
<h2>Predictions</h2>
<p class="note">The first {{ predictions.digits }} test digits with each configuration's
prediction (wrong ones in red), as in <a href="predictions.png">predictions.png</a>.</p>
<div class="scroll"><table>
<thead><tr><th>configuration</th><th class="num">wrong</th>
<th>mistakes (digit: predicted for true)</th></tr></thead>
<tbody>
{% for row in predictions.mistakes %}
<tr><td>{{ row.label }}</td><td class="num">{{ row.wrong }} of {{ row.digits }}</td>
<td>{{ row.which or "none" }}</td></tr>
{% endfor %}
</tbody></table></div>
<p><img class="figure" src="{{ predictions.src }}"
 alt="predictions.png: the first {{ predictions.digits }} test digits and the predictions"></p>
</section>
{% endif %}

{% if inference %}
<section class="card" id="inference">
<h2>Inference curves</h2>
<p class="note">The figures of <a href="inference.png">inference.png</a>: throughput and
latency of one call measured after training at each inference batch size
(<code>--inference-batch-sizes</code>), both axes logarithmic; with several runs a band
spans their min–max.</p>
{{ inference }}
</section>
{% endif %}

<section class="card" id="failures">
<h2>Failed runs</h2>
{% if failures %}
<p class="note">Runs that did not finish with status ok: their error and the last lines of
their worker's log.</p>
{% for run in failures %}
<div class="failure">
<h3 class="failure-title"><span class="badge failed">{{ run.status }}</span>
<code>{{ run.run_id }}</code> · {{ run.label }}</h3>
<pre class="error">{{ run.error }}</pre>
{% if run.log %}
<details open><summary>last lines of <a href="{{ run.log_href }}">{{ run.log }}</a></summary>
<pre class="log tail">{{ run.log_tail }}</pre></details>
{% else %}
<p class="note">No worker log: the run ran in the mnistbench process or never started.</p>
{% endif %}
</div>
{% endfor %}
{% else %}
<p>None: every run finished with status ok.</p>
{% endif %}
</section>

<section class="card" id="environment">
<h2>Environment</h2>
{% if environment %}
<dl class="facts">
{% for name, value in environment %}<dt>{{ name }}</dt><dd>{{ value }}</dd>
{% endfor %}
</dl>
{% if plugins %}
<h3>Architectures</h3>
<div class="scroll"><table>
<thead><tr><th>architecture</th><th>plugin</th><th>distribution</th><th>version</th></tr></thead>
<tbody>
{% for row in plugins %}
<tr><td>{{ row.architecture }}</td><td>{{ row.plugin }}</td><td>{{ row.distribution }}</td>
<td>{{ row.version }}</td></tr>
{% endfor %}
</tbody></table></div>
{% endif %}
<details><summary>all of <a href="environment.json">environment.json</a></summary>
<pre class="log">{{ environment_json }}</pre></details>
{% else %}
<p>No environment.json in this directory.</p>
{% endif %}
</section>

<section class="card" id="files">
<h2>Files</h2>
<p class="note">Every file of this directory, as the reporters left it.</p>
<div class="scroll"><table>
<thead><tr><th>file</th><th class="num">size</th><th>what it holds</th></tr></thead>
<tbody>
{% for file in files %}
<tr><td class="mono"><a href="{{ file.href }}">{{ file.path }}</a></td>
<td class="num">{{ file.size }}</td><td>{{ file.description }}</td></tr>
{% endfor %}
</tbody></table></div>
</section>

<section class="card" id="reproduce">
<h2>Reproduce</h2>
{% if reproduce %}
<p class="note">The command that ran this sweep, with the MNISTBENCH_* and KERAS_BACKEND
variables that were set. {% if sweep_file %} Its sweep file is copied here as
<a href="sweep.toml">sweep.toml</a>. {% endif %}{% if resumed %} It resumed an earlier
sweep: the plan is in <a href="manifest.json">manifest.json</a>. {% endif %}
Its output directory must be new or empty (or add --force).</p>
<pre class="command">{{ reproduce }}</pre>
{% else %}
<p>No command recorded in environment.json.</p>
{% endif %}
</section>
{% endblock %}
"""
