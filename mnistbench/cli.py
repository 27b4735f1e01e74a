"""The command line: parses, validates, shows progress, and calls the library.

Nothing here imports Keras or a backend: ``mnistbench --help`` must answer at
once, and each run's worker imports only the backend it uses.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import datetime
from pathlib import Path

import click

from mnistbench import __version__
from mnistbench.errors import MnistbenchError
from mnistbench.sweepfile import (
    GridOption,
    SweepFile,
    choose_architectures,
    load_sweep_file,
    save_sweep_file,
)

EXIT_USAGE = 2
EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped or captured output has no width; rich would assume 80 columns and cut
    # the tables' run names. A log file can be as wide as the table needs.
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def _setup_logging(debug: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(
        console=_console(stderr=True), show_time=False, show_path=False, markup=False
    )
    logger = logging.getLogger("mnistbench")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False


class MnistbenchGroup(click.Group):
    """Turns user errors into one line and exit code 2; ``--debug`` keeps the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MnistbenchError as error:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.echo(f"Error: {error}", err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=MnistbenchGroup)
@click.version_option(__version__, prog_name="mnistbench")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Benchmark deep-learning architectures on MNIST with Keras 3.

    Every architecture comes from a plugin; `mnistbench plugins` lists them.
    """
    ctx.obj = {"debug": debug}
    _setup_logging(debug)


def _default_output() -> Path:
    return Path("results") / datetime.now().strftime("%Y-%m-%dT%H-%M-%S")


#: Options that shape the plan; a resumed sweep keeps the plan it saved.
_PLAN_OPTIONS = (
    "epochs",
    "batch_size",
    "train_limit",
    "test_limit",
    "seed",
    "repeats",
    "steps_per_execution",
    "jit_compile",
    "target_accuracy",
    "eval_every",
    "backends",
    "inference_batch_sizes",
    "force",
    "config",
)
#: Options of how a sweep executes; on --resume, given ones replace the saved ones.
_EXECUTION_OPTIONS = ("executor", "isolation", "timeout", "ray_address", "cpus_per_run")


_data_option = click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    default=None,
    envvar="MNISTBENCH_DATA",
    show_envvar=True,
    help="MNIST as mnist.npz or a directory of the four IDX files.",
)


#: Where sweeps record their runs unless --db, $MNISTBENCH_DB or --no-db says otherwise;
#: beside the default output directories, results/<timestamp>.
DEFAULT_DB = Path("results") / "mnistbench.sqlite"

_db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_DB,
    show_default=True,
    envvar="MNISTBENCH_DB",
    show_envvar=True,
    help="The results database (SQLite) that gathers every sweep's runs.",
)


def _int_list(ctx, param, value: str) -> list[int]:
    try:
        numbers = [int(item) for item in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if any(number < 1 for number in numbers):
        raise click.BadParameter(f"{value!r}: every value must be at least 1")
    return numbers


_JIT_VALUES = {"auto": None, "on": True, "off": False}


def _jit_list(ctx, param, value: str) -> list[bool | None]:
    items = [item.strip().lower() for item in value.split(",")]
    unknown = [item for item in items if item not in _JIT_VALUES]
    if unknown:
        raise click.BadParameter(f"{unknown[0]!r} is not one of auto, on, off")
    return [_JIT_VALUES[item] for item in items]


@cli.command()
@click.argument("architectures", nargs=-1)
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    is_eager=True,
    callback=load_sweep_file,
    metavar="FILE",
    help="Take the options from a TOML sweep file (see examples/sweep.toml); "
    "architectures and options given here replace the file's.",
)
@click.option("--all", "run_all", is_flag=True, help="Run every registered architecture.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Training epochs per run.",
)
@click.option(
    "--batch-size",
    cls=GridOption,
    item_type=int,
    default="32",
    show_default=True,
    callback=_int_list,
    metavar="N[,N...]",
    help="Batch size for training, evaluation and inference timing; a list makes a grid.",
)
@click.option(
    "--train-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Train on the first N training images (default: all 60000).",
)
@click.option(
    "--test-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate on the first N test images (default: all 10000).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random seed for weights and shuffling.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory [default: results/<timestamp>].",
)
@click.option("--force", is_flag=True, help="Write into a non-empty output directory.")
@click.option(
    "--resume",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="DIR",
    help="Continue an interrupted sweep in DIR: keep finished runs, rerun the others.",
)
@_data_option
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs per configuration, seeds seed..seed+N-1; medians and spread reported.",
)
@click.option(
    "--steps-per-execution",
    "steps_per_execution",
    cls=GridOption,
    item_type=int,
    default="1",
    show_default=True,
    callback=_int_list,
    metavar="N[,N...]",
    help="Batches per compiled call (Keras compile option); a list makes a grid.",
)
@click.option(
    "--jit",
    "jit_compile",
    cls=GridOption,
    default="auto",
    show_default=True,
    callback=_jit_list,
    metavar="auto|on|off[,...]",
    help="XLA compilation; a list makes a grid.",
)
@click.option(
    "--inference-batch-sizes",
    "inference_batch_sizes",
    cls=GridOption,
    item_type=int,
    default=None,
    callback=lambda ctx, param, value: _int_list(ctx, param, value) if value else [],
    metavar="N[,N...]",
    help="After training, measure inference throughput and latency at each batch size "
    "(runs.csv inference_curve, inference.png) [default: none].",
)
@click.option(
    "--target-accuracy",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Stop training when test accuracy reaches this; report the time to reach it.",
)
@click.option(
    "--eval-every",
    type=click.IntRange(min=1),
    default=None,
    help="With --target-accuracy: evaluate every N steps instead of every epoch.",
)
@click.option(
    "--backend",
    "backends",
    cls=GridOption,
    default=None,
    callback=lambda ctx, param, value: (
        [b.strip() for b in (value or "").split(",") if b.strip()] or [None]
    ),
    metavar="NAME[,NAME...]",
    help="Keras backends: tensorflow, jax, torch; a list makes a grid "
    "[default: $KERAS_BACKEND or Keras' configured one].",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Run one after another here, or as tasks on a Ray cluster.",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="ADDRESS",
    help="With --executor ray: the cluster to join [default: start a local Ray instance].",
)
@click.option(
    "--cpus-per-run",
    type=click.IntRange(min=1),
    default=None,
    help="With --executor ray: CPUs each run reserves [default: all CPUs of a node].",
)
@click.option("--dry-run", is_flag=True, help="Print the planned runs and an ETA; run nothing.")
@click.option(
    "--isolation",
    type=click.Choice(["process", "none"]),
    default="process",
    show_default=True,
    help="Run each architecture in a fresh worker process, or in this one (debugging).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds after which a run's worker is stopped and the run recorded as failed.",
)
@_db_option
@click.option("--no-db", is_flag=True, help="Record the runs in no results database.")
def run(
    architectures: tuple[str, ...],
    run_all: bool,
    config: SweepFile | None,
    epochs: int,
    batch_size: list[int],
    train_limit: int | None,
    test_limit: int | None,
    seed: int,
    repeats: int,
    steps_per_execution: list[int],
    jit_compile: list[bool | None],
    inference_batch_sizes: list[int],
    target_accuracy: float | None,
    eval_every: int | None,
    output: Path | None,
    force: bool,
    data_path: Path | None,
    isolation: str,
    timeout: float | None,
    resume: Path | None,
    backends: list[str | None],
    executor: str,
    ray_address: str | None,
    cpus_per_run: int | None,
    dry_run: bool,
    db_path: Path,
    no_db: bool,
) -> None:
    """Train, evaluate and time ARCHITECTURES (or --all); write CSVs and plots."""
    from mnistbench.plan import Execution, plan, select_architectures
    from mnistbench.plugins import load_plugins
    from mnistbench.sweep import Sweep, estimate_seconds

    ctx = click.get_current_context()
    # Typed (or from the environment); a sweep file's values replace only the defaults.
    given = {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name)
        not in (click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)
    }
    plugins = load_plugins()
    if resume is not None:
        plan_options = sorted(given & {*_PLAN_OPTIONS, "architectures", "run_all", "output"})
        if plan_options:
            flags = ", ".join(_flag(name) for name in plan_options)
            raise MnistbenchError(
                "--resume DIR continues the plan saved in DIR: give no architectures, "
                f"--all, --output or plan options ({flags}) with it"
            )
        overrides = {name: ctx.params[name] for name in _EXECUTION_OPTIONS if name in given}
        if "executor" in given:  # another executor: the saved one's settings do not carry over
            overrides.update(ray_address=ray_address, cpus_per_run=cpus_per_run)
        sweep = Sweep.resume(resume, **overrides)
        sweep.check_architectures(list(plugins.architectures))
    else:
        architectures, run_all = choose_architectures(ctx, architectures, run_all)
        configs = plan(
            select_architectures(architectures, run_all, list(plugins.architectures)),
            epochs=epochs,
            batch_size=batch_size,
            train_limit=train_limit,
            test_limit=test_limit,
            seed=seed,
            repeats=repeats,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
            target_accuracy=target_accuracy,
            eval_every=eval_every,
            backends=backends,
            inference_batch_sizes=inference_batch_sizes,
        )
        execution = Execution(executor, isolation, timeout, ray_address, cpus_per_run)
        sweep = Sweep.new(configs, execution, output or _default_output())
    if dry_run:
        from mnistbench.display import print_plan

        print_plan(_console(), sweep.pending, estimate_seconds(sweep.pending, Path("results")))
        return
    typed = click.core.ParameterSource.COMMANDLINE
    db_typed = ctx.get_parameter_source("db_path") is typed
    if no_db and db_typed and ctx.get_parameter_source("no_db") is typed:
        raise MnistbenchError("give --db PATH or --no-db, not both")
    # Typed options win over the sweep file's: a typed --db over the file's no_db.
    db = None if no_db and not db_typed else db_path
    if db is not None:  # a file it could never write is refused before any run
        from mnistbench.db import check

        check(db)
    _run_sweep(sweep, plugins, data_path, force=force and resume is None, db=db, sweep_file=config)


def _make_dir(path: Path) -> None:
    """Create ``path`` (and its parents) for a command's output; one line if it cannot."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MnistbenchError(f"cannot write to {path}: {error.strerror or error}") from None


def _flag(name: str) -> str:
    return {"architectures": "ARCH", "run_all": "--all"}.get(name, f"--{name.replace('_', '-')}")


def _run_sweep(
    sweep,
    plugins,
    data_path: Path | None,
    *,
    force: bool,
    db: Path | None,
    sweep_file: SweepFile | None = None,
) -> None:
    """Run ``sweep`` with live progress; print the summary; exit 1 on failed runs, 130/143
    on SIGINT/SIGTERM. A new sweep keeps a copy of its ``sweep_file``."""
    import signal

    from mnistbench.data import resolve_mnist
    from mnistbench.display import RunProgress, print_medians, print_summary
    from mnistbench.executor import Interrupted
    from mnistbench.report import comparison_table
    from mnistbench.sweep import prepare_output_dir, run_sweep

    output_dir = sweep.output_dir
    if sweep.manifest is None:
        prepare_output_dir(output_dir, force=force)
        save_sweep_file(output_dir, sweep_file)
    console = _console(stderr=True)
    mnist = resolve_mnist(data_path)
    console.print(f"MNIST from {mnist.source}: {mnist.origin}", soft_wrap=True)
    console.print(f"Writing results to {output_dir}", soft_wrap=True)

    def stop(signal_number, frame):
        raise Interrupted(signal_number)

    # SIGTERM stops the sweep the way Ctrl-C does: the run in progress is recorded.
    previous_handler = signal.signal(signal.SIGTERM, stop)
    try:
        with RunProgress(console) as progress:
            result = run_sweep(
                sweep, mnist=mnist, plugins=plugins, on_progress=progress.update, db=db
            )
    except KeyboardInterrupt as interruption:
        code = getattr(interruption, "exit_code", EXIT_INTERRUPTED)
        # soft_wrap: paths stay on one line, whole, so they can be copied.
        console.print(
            f"Interrupted. Finished runs are saved in {output_dir / 'runs.csv'}.\n"
            f"Resume with: mnistbench run --resume {output_dir}",
            soft_wrap=True,
        )
        sys.exit(code)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    if result.skipped:
        console.print(f"Kept {result.skipped} run(s) already finished in {output_dir}.")
    print_summary(_console(), result.rows)
    print_medians(_console(), comparison_table(result.runs))
    _warn_reservations(result.runs, console)
    for path in result.reports:
        console.print(f"wrote {path}", soft_wrap=True)
    if result.failed:
        names = ", ".join(row["run_id"] for row in result.failed)
        console.print(f"{len(result.failed)} run(s) failed: {names}")
        sys.exit(EXIT_RUN_FAILED)


def _warn_reservations(runs, console=None) -> None:
    """Warn when the runs' times were measured under different CPU reservations."""
    from mnistbench.runs import reservation_warning

    warning = reservation_warning(runs)
    if warning is None:
        return
    if console is None:
        click.echo(f"warning: {warning}", err=True)
    else:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)


@cli.command(name="plugins")
@click.option(
    "--no-params",
    is_flag=True,
    help="Skip building each model to count its parameters (no Keras import).",
)
def list_plugins(no_params: bool) -> None:
    """List the registered architectures and the plugins that provide them."""
    from mnistbench.display import print_plugins
    from mnistbench.plugins import load_plugins

    plugins = load_plugins()
    params = {} if no_params else _count_params(plugins)
    print_plugins(_console(), plugins, params)


def _count_params(plugins) -> dict[str, str]:
    import os

    import numpy as np

    from mnistbench.backends import native_stderr_to, quiet_backend_logs
    from mnistbench.runner import NUM_CLASSES

    quiet_backend_logs()
    counts = {}
    probe = np.zeros((1, 28, 28), dtype=np.uint8)
    # Keras, its backend and the device probe print start-up lines: noise in a listing.
    with native_stderr_to(os.devnull):
        for name in plugins.architectures:
            try:
                shape = plugins.prepare_data(name, probe, "test").shape[1:]
                model = plugins.build_model(name, shape, NUM_CLASSES)
                counts[name] = f"{model.count_params():,}"
            except Exception as error:  # listing must survive a broken plugin
                counts[name] = f"error: {type(error).__name__}"
    return counts


@cli.group()
def data() -> None:
    """Find, fetch and inspect MNIST."""


@data.command()
@_data_option
def fetch(data_path: Path | None) -> None:
    """Resolve MNIST (fetching it if needed), validate it and cache it."""
    from mnistbench.data import resolve_mnist

    mnist = resolve_mnist(data_path)
    click.echo(f"MNIST from {mnist.source}: {mnist.origin}")
    click.echo(f"cached at {mnist.cache_path}")


@data.command()
@_data_option
def info(data_path: Path | None) -> None:
    """Show where MNIST is and which source it came from, without downloading."""
    from mnistbench.data import describe, resolve_mnist

    for key, value in describe(resolve_mnist(data_path, offline=True)).items():
        click.echo(f"{key}: {value}")


@cli.group(name="db")
def database() -> None:
    """The results database: every sweep's runs in one SQLite file."""


@database.command(name="import")
@click.argument("directories", nargs=-1, required=True, type=click.Path(path_type=Path))
@_db_option
def import_(directories: tuple[Path, ...], db_path: Path) -> None:
    """Add the runs of existing output DIRECTORIES (runs.csv, manifest.json, environment.json)."""
    from mnistbench.db import Database

    with Database(db_path) as db:
        for directory, imported in zip(
            directories, db.import_directories(directories), strict=True
        ):
            click.echo(
                f"{directory}: {imported.added} run(s) added, {imported.updated} updated, "
                f"{imported.unchanged} unchanged (sweep {imported.sweep_id})"
            )
    click.echo(f"database: {db_path}")


#: ``--format`` of ``report`` and ``compare``: the terminal's table, Markdown for CI, JSON.
OUTPUT_FORMATS = ("text", "markdown", "json")


def _format_option(what: str):
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(OUTPUT_FORMATS),
        default="text",
        show_default=True,
        help=f"How to print {what}: a table for the terminal, Markdown for a pull-request "
        "comment (also appended to $GITHUB_STEP_SUMMARY when set), or JSON.",
    )


def _print_markdown(render) -> None:
    """Print ``render``'s Markdown cut to a comment's limit; append it to the step summary."""
    from mnistbench.markdown import append_step_summary, comment_limit, step_summary_path

    click.echo(render(comment_limit()), nl=False)
    summary = step_summary_path()
    if summary is not None and not append_step_summary(summary, render):
        click.echo(f"warning: step summary {summary} is full: nothing appended", err=True)


@cli.command()
@click.argument("output", type=click.Path(path_type=Path, file_okay=False))
@click.argument("directories", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Write into a non-empty OUTPUT directory.")
def merge(output: Path, directories: tuple[Path, ...], force: bool) -> None:
    """Merge the runs of result DIRECTORIES (sweeps of one side, run in halves) into OUTPUT,
    for `compare` and `report`."""
    from mnistbench.results import merge_directories
    from mnistbench.runs import read_result_rows
    from mnistbench.sweep import prepare_output_dir

    if Path(output).resolve() in {Path(d).resolve() for d in directories}:
        raise MnistbenchError(f"{output} is one of the directories to merge; choose another")
    for directory in directories:  # before OUTPUT is made: a failed merge leaves nothing
        read_result_rows(directory)
    prepare_output_dir(output, force=force)
    merge_directories(list(directories), output)
    click.echo(f"merged {len(directories)} director(ies) into {output / 'runs.csv'}")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@_format_option("the headline table")
def report(directory: Path, output_format: str) -> None:
    """Regenerate comparison.csv, the plots and pytest-benchmark.json of DIRECTORY from runs.csv."""
    from mnistbench.plugins import load_plugins
    from mnistbench.runs import read_runs

    runs = read_runs(directory)
    _warn_reservations(runs)
    # With Markdown or JSON, stdout holds only that document.
    text = output_format == "text"
    for path in load_plugins().write_report(runs, directory):
        click.echo(f"wrote {path}", err=not text)
    if text:
        return
    from mnistbench.digest import sweep_digest
    from mnistbench.report import comparison_table

    digest = sweep_digest(comparison_table(runs))
    if output_format == "json":
        from mnistbench.json_output import sweep_json

        click.echo(sweep_json(digest), nl=False)
    else:
        from mnistbench.markdown import sweep_markdown

        _print_markdown(lambda limit: sweep_markdown(digest, limit))


@cli.command()
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option(
    "--fail",
    "fail_rules",
    multiple=True,
    metavar="METRIC:THRESHOLD",
    help="Exit 1 when METRIC gets worse by more than THRESHOLD, e.g. fit_seconds:10% "
    "or test_accuracy:-0.005: significantly so when there are repeats enough to test "
    "(4 a side), else on the threshold alone. Repeatable.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for compare.csv and compare.png [default: CANDIDATE].",
)
@click.option(
    "--allow-different-work",
    is_flag=True,
    help="Test and gate configurations even when their runs did different work "
    "(epochs, batch size, samples, target accuracy), with a warning.",
)
@_format_option("the comparison")
def compare(
    baseline: Path,
    candidate: Path,
    fail_rules: tuple[str, ...],
    output: Path | None,
    allow_different_work: bool,
    output_format: str,
) -> None:
    """Compare two result directories metric by metric, with significance tests."""
    import pandas as pd

    from mnistbench.compare import (
        FailRule,
        compare_runs,
        machine_comparison,
        normalized_lines,
        regressions,
        work_differences,
        write_compare,
    )
    from mnistbench.display import print_comparison
    from mnistbench.environment import read_environment
    from mnistbench.runs import read_runs, reservation_warning

    rules = [FailRule.parse(text) for text in fail_rules]
    baseline_runs, candidate_runs = read_runs(baseline), read_runs(candidate)
    machines = machine_comparison(
        baseline_runs, candidate_runs, read_environment(baseline), read_environment(candidate)
    )
    table = compare_runs(
        baseline_runs,
        candidate_runs,
        rules,
        allow_different_work=allow_different_work,
        normalization_withheld=machines.withheld,
    )
    warning = reservation_warning(pd.concat([baseline_runs, candidate_runs]))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    outcome = "compared anyway" if allow_different_work else "no verdict"
    for line in work_differences(table):
        click.echo(f"warning: {line}: {outcome}", err=True)
    output = output or candidate
    _make_dir(output)
    if output_format == "text":
        print_comparison(_console(), table)
    else:
        from mnistbench.digest import compare_digest

        digest = compare_digest(table, machines)
        if output_format == "json":
            from mnistbench.json_output import compare_json

            click.echo(compare_json(digest), nl=False)
        else:
            from mnistbench.markdown import compare_markdown

            _print_markdown(lambda limit: compare_markdown(digest, limit))
    for line in normalized_lines(table, machines):
        click.echo(f"machine: {line}", err=True)
    for path in write_compare(table, output):
        click.echo(f"wrote {path}", err=True)
    failures = regressions(table)
    for line in failures:
        click.echo(f"regression: {line}", err=True)
    if failures:
        sys.exit(EXIT_RUN_FAILED)


@cli.command()
@_db_option
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
    help="Directory for history.png [default: the database's directory].",
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
    db_path: Path,
    architectures: tuple[str, ...],
    backends: tuple[str, ...],
    metric: str,
    since: str | None,
    normalized: bool,
    output: Path | None,
    png: Path | None,
    html_dir: Path | None,
) -> None:
    """Each configuration's METRIC sweep after sweep, and the commits where it changed."""
    from mnistbench.display import print_history
    from mnistbench.history import (
        HistoryError,
        check_metric,
        detect_changes,
        load_points,
        parse_since,
    )
    from mnistbench.metrics import normalized as normalized_metric
    from mnistbench.plots.history import panel_metrics, plot_history
    from mnistbench.runs import in_order

    if output is not None and png is not None:
        raise MnistbenchError("give --output DIR or --png PATH, not both")
    check_metric(metric)
    if normalized:
        if normalized_metric(metric) is None:
            raise HistoryError(f"--normalized: {metric} has no normalized column")
        metric = normalized_metric(metric)
    day = parse_since(since) if since is not None else None
    points = load_points(db_path, architectures=architectures, backends=backends, since=day)
    if points.empty:
        wanted = [
            *(f"architecture {a}" for a in architectures),
            *(f"backend {b}" for b in backends),
            *([f"since {day}"] if day else []),
        ]
        if wanted:
            raise HistoryError(f"{db_path}: no runs match {', '.join(wanted)}")
        click.echo(
            f"{db_path} holds no runs yet: `mnistbench run` records each sweep in it, "
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
    print_history(_console(), points, metric, [c for c in changes if c.metric == metric])
    path = png or (output or db_path.parent) / "history.png"
    _make_dir(path.parent)
    click.echo(f"wrote {plot_history(points, metric, changes, path)}", err=True)
    if html_dir is not None:
        from mnistbench.history import PAGE_METRICS
        from mnistbench.pages.history import write_history_pages

        shown = in_order([metric.removesuffix("_normalized"), *PAGE_METRICS])
        panels = [panel for name in shown for panel in (name, normalized_metric(name)) if panel]
        _make_dir(html_dir)
        pages = write_history_pages(points, changes_of(panels), html_dir, metrics=shown)
        click.echo(f"wrote {pages[0]} and {len(pages) - 1} more file(s)", err=True)


if __name__ == "__main__":
    cli()
