"""``mnistbench history`` and ``mnistbench db``: the results store and what it shows."""

from __future__ import annotations

from pathlib import Path

import click

from mnistbench import layout
from mnistbench.cli.common import StoreLocation, console, db_option, make_dir, results_store
from mnistbench.cli.display import print_history
from mnistbench.columns import normalized as normalized_metric
from mnistbench.errors import MnistbenchError
from mnistbench.figures.history import panel_metrics, plot_history
from mnistbench.history import (
    PAGE_METRICS,
    HistoryError,
    check_metric,
    detect_changes,
    parse_since,
    points_from_runs,
)
from mnistbench.pages.history import write_history_pages
from mnistbench.record import in_order
from mnistbench.stores import importable


@click.command()
@db_option
@click.option(
    "--arch",
    "architectures",
    multiple=True,
    metavar="ARCH",
    help="Only this architecture's series. Repeatable.",
)
@click.option(
    "--backend", "backends", multiple=True, help="Only this backend's series. Repeatable."
)
@click.option(
    "--machine",
    "machines",
    multiple=True,
    help="Only the series of this machine: its MNISTBENCH_MACHINE label, or its description "
    "as the history shows it. Repeatable.",
)
@click.option(
    "--metric",
    default="fit_seconds",
    show_default=True,
    help="The metric to track: any metric of runs.csv (see docs/columns.md).",
)
@click.option("--since", default=None, metavar="YYYY-MM-DD", help="Only sweeps from this day on.")
@click.option(
    "--normalized",
    is_flag=True,
    help="Track the metric divided by the speed probe (METRIC_normalized) instead.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Directory for history.png [default: the SQLite file's directory, else results/].",
)
@click.option(
    "--png",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the figure to this path instead of OUTPUT/history.png.",
)
@click.option(
    "--html",
    "html_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also write the history pages (index.html, one page per configuration) into "
    "this directory; they open offline.",
)
def history(
    db_path: str,
    architectures: tuple[str, ...],
    backends: tuple[str, ...],
    machines: tuple[str, ...],
    metric: str,
    since: str | None,
    normalized: bool,
    output: Path | None,
    png: Path | None,
    html_dir: Path | None,
) -> None:
    """Each configuration's METRIC sweep after sweep, and the commits where it changed."""
    if output is not None and png is not None:
        raise MnistbenchError("give --output DIR or --png PATH, not both")
    check_metric(metric)
    if normalized:
        if normalized_metric(metric) is None:
            raise HistoryError(f"--normalized: {metric} has no normalized column")
        metric = normalized_metric(metric)
    day = parse_since(since) if since is not None else None
    store = results_store(db_path, check=False)
    runs = store.read_runs()
    points = points_from_runs(
        runs, architectures=architectures, backends=backends, machines=machines, since=day
    )
    if points.empty:
        wanted = [
            *(f"architecture {a}" for a in architectures),
            *(f"backend {b}" for b in backends),
            *(f"machine {m!r}" for m in machines),
            *([f"since {day}"] if day else []),
        ]
        if wanted:
            known = sorted({m for m in runs["machine"] if m}) if machines else []
            hint = f" (its machines: {'; '.join(known)})" if known else ""
            raise HistoryError(f"{store}: no runs match {', '.join(wanted)}{hint}")
        click.echo(
            f"{store} holds no runs yet: `mnistbench run` records each sweep in it, "
            "`mnistbench db import DIR` adds earlier ones."
        )
        return
    detected: dict[str, list] = {}  # changes per metric, each detected once

    def changes_of(names) -> list:
        for name in names:
            if name not in detected:
                detected[name] = detect_changes(points, name)
        return [change for name in names for change in detected[name]]

    changes = changes_of(panel_metrics(points, metric))
    print_history(console(), points, metric, [c for c in changes if c.metric == metric])
    path = png or layout.HISTORY_PNG.of(output or store.beside())
    make_dir(path.parent)
    click.echo(f"wrote {plot_history(points, metric, changes, path)}", err=True)
    if html_dir is not None:
        shown = in_order([metric.removesuffix("_normalized"), *PAGE_METRICS])
        panels = [panel for name in shown for panel in (name, normalized_metric(name)) if panel]
        make_dir(html_dir)
        pages = write_history_pages(points, changes_of(panels), html_dir, metrics=shown)
        click.echo(f"wrote {pages[0]} and {len(pages) - 1} more file(s)", err=True)


@click.group(name="db")
def database() -> None:
    """The results store: every sweep's runs, in an SQLite file or a PostgreSQL database."""


@database.command(name="import")
@click.argument("directories", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
def import_(directories: tuple[Path, ...], db_path: str) -> None:
    """Add the runs of existing output DIRECTORIES (runs.csv, manifest.json, environment.json).

    Importing a directory again adds and changes nothing; a sweep whose store could not
    be written while it ran (a server that was down) gets the runs it missed."""
    checked = importable(directories)  # first: a wrong one leaves no new, empty store
    with results_store(db_path).open() as store:
        for directory, imported in zip(
            directories, [store.import_directory(path) for path in checked], strict=True
        ):
            click.echo(
                f"{directory}: {imported.added} run(s) added, {imported.updated} updated, "
                f"{imported.unchanged} unchanged (sweep {imported.sweep_id})"
            )
    click.echo(f"results store: {store}")


@database.command(name="copy")
@click.argument("source", type=StoreLocation())
@click.argument("target", type=StoreLocation())
def copy(source: str, target: str) -> None:
    """Copy every sweep and run of the store SOURCE into the store TARGET (a path or a URL
    each): a laptop's SQLite history into the team's PostgreSQL. Copying again adds and
    changes nothing; runs already in TARGET stay."""
    origin = results_store(source, check=False)
    destination = results_store(target)
    if str(origin) == str(destination) and origin.url == destination.url:
        raise MnistbenchError(f"db copy: {origin} is both the source and the target")
    with origin, destination:
        sweeps, changed = origin.copy_to(destination)
    click.echo(
        f"copied {sweeps} sweep(s) from {origin} into {destination}: "
        f"{changed} run(s) added or updated"
    )
