"""What the terminal shows besides the output formats: live progress of a sweep, the runs'
summary, the plan, the plugin list and the history tables. (A comparison and a sweep's
medians are the ``text`` output format, :mod:`mnistbench.outputs.text`.)"""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mnistbench import format as fmt
from mnistbench.columns import COLUMNS
from mnistbench.columns import metric as metric_column
from mnistbench.history import REGRESSION, commit_label, sort_changes
from mnistbench.plan import jit_word
from mnistbench.record import Run


class RunProgress:
    """Two bars: runs done out of planned, and steps of the current epoch with its ETA.

    Its :meth:`update` is the ``on_progress`` callback of :func:`mnistbench.sweep.run_sweep`.
    Without a terminal (CI logs, pipes) it prints milestones instead of drawing bars.
    """

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self._runs = self._steps = None
        self._label = "set-up"

    def __enter__(self) -> RunProgress:
        self.progress.__enter__()
        self._runs = self.progress.add_task("runs", total=None)
        self._steps = self.progress.add_task("starting", total=None)
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, event: dict) -> None:
        if not self.progress.console.is_terminal:
            self._log(event)
        kind = event["event"]
        if kind == "run":
            self.progress.update(self._runs, total=event["total"])
            config = event["config"]
            self._label = f"[{event['index'] + 1}/{event['total']}] {config.run_id}"
            self.progress.update(
                self._steps, description=f"{self._label}: starting", completed=0, total=None
            )
        elif kind == "run_end":
            self.progress.advance(self._runs)
            self.progress.update(
                self._steps, description=f"{self._end_label(event)}: {event['status']}"
            )
        elif kind == "phase":
            self.progress.update(self._steps, description=f"{self._label}: {event['phase']}")
        elif kind == "epoch":
            self.progress.reset(
                self._steps,
                total=event["steps"],
                description=f"{self._label}: epoch {event['epoch']}/{event['epochs']} steps",
            )
        elif kind == "step":
            self.progress.update(self._steps, completed=event["step"])

    def _log(self, event: dict) -> None:
        """Without a terminal (CI logs, pipes) live bars are not drawn: print milestones."""
        kind = event["event"]
        if kind == "run":
            label = f"[{event['index'] + 1}/{event['total']}] {event['config'].run_id}"
            self.progress.console.print(f"{label}: started", soft_wrap=True)
        elif kind == "epoch":
            self.progress.console.print(
                f"{self._label}: epoch {event['epoch']}/{event['epochs']}", soft_wrap=True
            )
        elif kind == "run_end":
            self.progress.console.print(
                f"{self._end_label(event)}: {event['status']}", soft_wrap=True
            )

    def _end_label(self, event: dict) -> str:
        # Runs overlap on Ray: the run that ended is not always the last one started.
        if "config" in event and "total" in event:
            return f"[{event['index'] + 1}/{event['total']}] {event['config'].run_id}"
        return self._label


def print_summary(console: Console, runs: list[Run]) -> None:
    """One line per run with the headline figures; failed runs show their error."""
    # A compact box so the table fits an 80-column terminal.
    table = Table(title="mnistbench results", box=box.SIMPLE_HEAD, pad_edge=False)
    # The columns the metric registry puts in the summary, with their headers and formats.
    # Identity first (run, status), then the figures, in runs.csv order.
    shown = sorted((c for c in COLUMNS if c.summary), key=lambda c: bool(c.spec))
    columns = {c.summary: (c.name, c.spec or None) for c in shown}
    run_width = max([3, *(len(run.run_id) for run in runs)])
    for header, (_, spec) in columns.items():
        table.add_column(
            header,
            justify="left" if spec is None else "right",
            no_wrap=True,
            min_width=run_width if header == "run" else None,
        )
    for run in runs:
        cells = []
        for key, spec in columns.values():
            value = getattr(run, key)
            if key == "status" and not run.ok:
                cells.append(f"[red]{run.status}[/red]")
            else:
                cells.append(str(value) if spec is None else fmt.spec(value, spec))
        table.add_row(*cells)
    console.print(table)
    for run in runs:
        if not run.ok:
            console.print(f"[red]{run.run_id}[/red]: {run.error}", markup=True)


def print_plugins(console: Console, plugins, params: dict[str, str]) -> None:
    """The registered architectures with the plugin, distribution and version behind each."""
    table = Table(title="mnistbench architectures")
    for header in ("architecture", "plugin", "distribution", "version", "params", "description"):
        # Only the description wraps: names and versions must stay whole to be copied.
        table.add_column(
            header,
            justify="right" if header == "params" else "left",
            no_wrap=header != "description",
        )
    for name in sorted(plugins.architectures):
        arch = plugins.architectures[name]
        table.add_row(
            name,
            arch.plugin,
            arch.distribution or "-",
            arch.version or "-",
            params.get(name, "-"),
            escape(arch.description),  # a plugin's words, not rich markup ("[ray]")
        )
    console.print(table)
    if not plugins.architectures:
        console.print("No architectures registered. Install a plugin, or check MNISTBENCH_PLUGINS.")
    others = Table(title="executors, output formats and results stores")
    for header in ("kind", "name", "plugin", "distribution", "description"):
        others.add_column(header, no_wrap=header != "description")
    for kind, registry in (
        ("executor", plugins.executors),
        ("output format", plugins.formats),
        ("results store", plugins.stores),
    ):
        names: dict[int, list[str]] = {}  # a store registers each of its URL schemes
        for name, registered in sorted(registry.items()):
            names.setdefault(id(registered.value), []).append(name)
        for name, registered in sorted(registry.items()):
            same = names[id(registered.value)]
            if name != same[0]:
                continue
            others.add_row(
                kind,
                ", ".join(same),
                registered.plugin,
                registered.distribution or "-",
                escape(getattr(registered.value, "description", "")),
            )
    console.print(others)


def print_plan(console: Console, configs, estimate: tuple[float, int]) -> None:
    """The runs a sweep would make (``--dry-run``), with the estimated duration."""
    view = Table(
        title=f"mnistbench plan: {len(configs)} run(s)", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for header in ("run", "backend", "epochs", "batch", "train", "spe", "jit", "target"):
        view.add_column(header, no_wrap=True)
    for c in configs:
        jit = jit_word(c.jit_compile)
        view.add_row(
            c.run_id,
            c.backend or "default",
            str(c.epochs),
            str(c.batch_size),
            str(c.train_samples),
            str(c.steps_per_execution),
            jit,
            "-" if c.target_accuracy is None else f"{c.target_accuracy:g}",
        )
    console.print(view)
    seconds, unknown = estimate
    known = len(configs) - unknown
    if known:
        console.print(
            f"ETA: about {seconds / 60:.1f} min for {known} run(s), from earlier "
            "results on this machine (results/*/runs.csv)."
        )
    if unknown:
        console.print(
            f"{unknown} run(s) have no earlier measurement of their architecture "
            "and backend here: not in the estimate."
        )


def print_history(console: Console, points, metric: str, changes) -> None:
    """Per series its points (date, commit, versions, the metric's median, ratio to the
    previous point), then the detected changes, regressions first."""
    column = metric_column(metric)
    changed = {(c.series, c.position): c for c in changes}
    for series in dict.fromkeys(points["series"]):
        rows = points[points["series"] == series].reset_index(drop=True)
        view = Table(
            title=f"{rows['label'].iloc[0]}: {metric} ({column.better} is better)",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            title_justify="left",
        )
        for header in ("date", "commit", "mnistbench", "plugin", "runs", metric, "vs previous"):
            right = header in ("runs", metric, "vs previous")
            view.add_column(header, justify="right" if right else "left", no_wrap=True)
        previous = math.nan
        for i, row in rows.iterrows():
            value = float(row[metric]) if metric in rows.columns else math.nan
            ratio = value / previous if math.isfinite(previous) and previous else math.nan
            step = changed.get((series, i))
            mark = ""
            if step is not None:
                color = "red" if step.kind == REGRESSION else "green"
                mark = f" [{color}]◀ {step.kind}[/{color}]"
            view.add_row(
                row["started_at"].strftime("%Y-%m-%d %H:%M")
                if not fmt.missing(row["started_at"])
                else "-",
                commit_label(row["commit"], row["dirty"]),
                row["mnistbench_version"] or "-",
                row["plugin_version"] or "-",
                str(row["runs"]),
                column.format(value)
                if math.isfinite(value)
                else ("- (no ok run)" if not row["runs"] else "- (not measured)"),
                (f"{ratio:.3f}×" if math.isfinite(ratio) else "") + mark,
            )
            if math.isfinite(value):
                previous = value
        console.print(view)
    print_changes(console, changes)


def print_changes(console: Console, changes) -> None:
    """The detected changes, regressions first: series, metric, commit range, size,
    whether they survive normalization by the speed probe."""
    regressions = sum(change.kind == REGRESSION for change in changes)
    console.print(
        f"{len(changes)} change(s) detected: {regressions} regression(s), "
        f"{len(changes) - regressions} improvement(s)."
    )
    if not changes:
        return
    view = Table(title="changes", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for header in (
        "kind",
        "series",
        "metric",
        "commits",
        "before",
        "after",
        "change",
        "95% interval",
        "normalized",
    ):
        view.add_column(header, no_wrap=True)
    for change in sort_changes(changes):
        color = "red" if change.kind == REGRESSION else "green"
        column = metric_column(change.metric)
        survives = {True: "survives", False: "gone", None: "—"}[change.survives_normalization]
        view.add_row(
            f"[{color}]{change.kind}[/{color}]",
            change.label,
            change.metric,
            f"{change.from_commit}..{change.to_commit}",
            column.format(change.before),
            column.format(change.after),
            f"{change.ratio:.2f}× ({(change.ratio - 1) * 100:+.0f}%)",
            fmt.interval(change.low, change.high) or "—",
            survives,
        )
    console.print(view)
    console.print(
        "normalized: whether the change also shows in the metric divided by the speed probe "
        "(gone: the machine's speed changed, not the code); — when not measured."
    )
