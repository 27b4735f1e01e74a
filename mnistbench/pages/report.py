"""``report.html``: one sweep on one page that opens offline, everything embedded.

:func:`write_html_report` writes it into the sweep's output directory; the built-in
reporter (:mod:`mnistbench.report`) calls it after its other files, so ``mnistbench run``
and ``mnistbench report DIR`` both leave it. The page holds, in order:

- the headline table: per configuration and headline metric
  (:func:`mnistbench.summary.headline_metrics`) the median with its spread and a
  noisy flag, from :func:`mnistbench.report.comparison_table`;
- the comparison, training-curve, prediction and (where the runs measured them)
  inference-curve figures: the same drawings as the PNGs, as SVG whose bars and points
  show their values on hover (:mod:`mnistbench.figures`), with each configuration's
  mistakes from :func:`~mnistbench.figures.predictions.predictions_data`;
- failed, diverged and interrupted runs with their error and the tail of their log;
- the environment (``environment.json``), a link to every other file in the directory
  with what it holds, and the command that reproduces the sweep, shell-quoted, with
  the ``MNISTBENCH_*`` and ``KERAS_BACKEND`` variables that were set.

The figures, the style and the hover script are inlined, so the file needs nothing beside
it and stays small (a few hundred KB). Every text from plugins and runs is escaped
(:mod:`mnistbench.pages.render`).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mnistbench import format as fmt
from mnistbench import layout
from mnistbench.columns import HIGHER, Column
from mnistbench.environment import read_environment
from mnistbench.figures.predictions import predictions_data
from mnistbench.figures.style import setting
from mnistbench.pages.render import figure, render, write_page
from mnistbench.record import in_order, labels, ok
from mnistbench.summary import comparison_table, headline_metrics

if TYPE_CHECKING:
    import pandas as pd

#: Lines of a failed run's log shown in the page (the whole log is linked).
LOG_TAIL_LINES = 25
#: Characters of a failed run's log read from its end at most.
LOG_TAIL_BYTES = 64 * 1024

_DATA_KEYS = ("source", "origin", "cache_path")


def write_html_report(
    runs: pd.DataFrame,
    output_dir: Path,
    figures: dict[str, str],
    table: pd.DataFrame | None = None,
) -> Path:
    """Write ``output_dir/report.html`` for ``runs`` (a typed table of the directory's runs).

    ``figures`` are the SVG of the figures the reporter drew, by their PNG's name
    (``comparison.png``...), a missing one left out of the page. Reads the directory's
    ``environment.json`` and worker logs where they exist, and lists every other file in
    it, so call it after the other reporters. ``table``: the reporter's
    ``comparison_table(runs)``, when it made it already. Returns the path written
    (atomically).
    """
    output_dir = Path(output_dir)
    page = report_page(runs, output_dir, figures, table)
    return write_page(layout.REPORT_HTML.of(output_dir), page)


def report_page(
    runs: pd.DataFrame,
    output_dir: Path,
    figures: dict[str, str],
    table: pd.DataFrame | None = None,
) -> str:
    """The HTML of ``report.html`` (see :func:`write_html_report`)."""
    output_dir = Path(output_dir)
    environment = read_environment(output_dir)
    shown = {name: figure(svg) for name, svg in figures.items()}
    predictions = _predictions(runs, output_dir, shown.get(str(layout.PREDICTIONS_PNG)))
    inference = shown.get(str(layout.INFERENCE_PNG))
    sections = [
        ("headline", "Headline figures"),
        ("comparison", "Comparison"),
        ("curves", "Training curves"),
    ]
    if predictions is not None:
        sections.append(("predictions", "Predictions"))
    if inference is not None:
        sections.append(("inference", "Inference curves"))
    sections += [
        ("failures", "Failed runs"),
        ("environment", "Environment"),
        ("files", "Files"),
        ("reproduce", "Reproduce"),
    ]
    succeeded = ok(runs)
    return render(
        "report.html",
        title=_title(environment),
        subtitle=_subtitle(runs),
        nav=[(f"#{anchor}", name) for anchor, name in sections],
        summary=_summary(runs),
        headline=headline_rows(runs, table),
        comparison=shown.get(str(layout.COMPARISON_PNG)) if succeeded.any() else None,
        curves=shown.get(str(layout.CURVES_PNG)) if succeeded.any() else None,
        predictions=predictions,
        inference=inference,
        failures=failed_runs(runs, output_dir),
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
    started = sorted(set(runs["started_at"]) - {""})
    when = f" · started {started[0][:19].replace('T', ' ')}" if started else ""
    return setting(runs) + when


def _summary(runs: pd.DataFrame) -> str:
    statuses = runs["status"]
    configurations = len(in_order(labels(runs)))
    counts = ", ".join(
        f"{n} {status or 'unknown'}" for status, n in statuses.value_counts(sort=False).items()
    )
    plural = "" if configurations == 1 else "s"
    return f"{configurations} configuration{plural}, {len(runs)} runs: {counts}."


# Headline table ---------------------------------------------------------------------------


def headline_rows(runs: pd.DataFrame, table: pd.DataFrame | None = None) -> dict[str, Any]:
    """The headline table: its configurations and one row per metric measured by any.

    Returns ``{"configurations": [...], "rows": [...]}``: each configuration's ``label``,
    ``status``, ``runs`` and ``failed``; each row's metric ``name``, ``unit``,
    ``better`` and ``description``, and per configuration a cell with the formatted
    ``median``, ``spread`` ("min–max · cv 3.2%" over several runs, else ""), ``noisy``
    and ``best`` (the best median of several configurations). ``table`` is
    ``comparison_table(runs)``, computed here when not given.
    """
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
    for column in headline_metrics():
        if table[column.name].isna().all():
            continue
        cells = []
        for _, row in table.iterrows():
            median = row[column.name]
            spread = ""
            if int(row["runs"]) > 1 and not fmt.missing(median):
                spread = _spread(column, row)
            ratio = row[f"{column.name}_ratio_to_best"]
            cells.append(
                {
                    "median": column.format(median),
                    "spread": spread,
                    "noisy": row[f"{column.name}_noisy"] is True,
                    "best": len(table) > 1 and not fmt.missing(ratio) and ratio == 1.0,
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
    low = column.format(row[f"{column.name}_min"])
    high = column.format(row[f"{column.name}_max"])
    if low == high:
        return f"{int(row['runs'])} runs alike"
    if column.unit and low.endswith(f" {column.unit}"):
        low = low.removesuffix(f" {column.unit}")
    cv = row[f"{column.name}_cv"]
    return f"{low}–{high}" + ("" if fmt.missing(cv) else f" · cv {cv:.1%}")


def _predictions(runs: pd.DataFrame, output_dir: Path, drawn: Any) -> dict[str, Any] | None:
    """The predictions figure and each configuration's mistakes; None without it."""
    samples = layout.SAMPLES_NPZ.of(output_dir)
    if drawn is None or not samples.is_file():
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
    return {"figure": drawn, "mistakes": mistakes, "digits": digits}


# Failures, environment, files, command -----------------------------------------------------


def failed_runs(runs: pd.DataFrame, output_dir: Path) -> list[dict[str, str]]:
    """Every run whose status is not ``ok``, in ``runs.csv`` order.

    Each has its ``run_id``, configuration ``label``, ``status``, ``error``, and its
    log's ``log`` path relative to ``output_dir`` with its last :data:`LOG_TAIL_LINES`
    lines in ``log_tail`` ("" where the run left no log: it ran in the mnistbench
    process, or never started).
    """
    names = labels(runs)
    ids, statuses, errors = runs["run_id"], runs["status"], runs["error"]
    failures = []
    for index in runs.index[~ok(runs)]:
        run_id = ids[index]
        log = layout.log_path("", run_id)
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
    return [(name, fmt.text(value)) for name, value in facts if value not in (None, "")]


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
            "plugin": fmt.text(info.get("plugin")),
            "distribution": info.get("distribution") or "-",
            "version": info.get("version") or "-",
        }
        for name, info in sorted(plugins.items())
        if isinstance(info, dict)
    ]


def output_files(output_dir: Path) -> list[dict[str, str]]:
    """Every file under ``output_dir`` but ``report.html`` and hidden (temporary) ones:
    its ``path`` relative to the directory, ``href``, ``size`` and ``description``
    (:func:`mnistbench.layout.describe`). Top-level files first, each level sorted by
    name."""
    output_dir = Path(output_dir)
    found = [
        path
        for path in output_dir.rglob("*")
        if path.is_file()
        and path.name != str(layout.REPORT_HTML)
        and not any(part.startswith(".") for part in path.relative_to(output_dir).parts)
    ]
    files = []
    for path in sorted(found, key=lambda p: (len(p.relative_to(output_dir).parts), p.as_posix())):
        relative = path.relative_to(output_dir).as_posix()
        description = layout.describe(relative)
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
