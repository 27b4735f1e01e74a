"""``mnistbench report``, ``compare``, ``merge`` and ``export``: what to do with result
directories."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mnistbench import builtins, layout, record
from mnistbench.cli.common import (
    EXIT_RUN_FAILED,
    StoreLocation,
    console,
    format_option,
    make_dir,
    results_store,
    warn,
)
from mnistbench.compare import (
    compare_runs,
    regressions,
    work_differences,
    write_compare_csv,
)
from mnistbench.environment import read_environment
from mnistbench.errors import MnistbenchError
from mnistbench.exports import FORMATS, benchmarks, latest_of_machine, write_export
from mnistbench.figures.compare import plot_compare
from mnistbench.gates import FailRule
from mnistbench.outputs import Output
from mnistbench.outputs.digest import compare_digest, sweep_digest
from mnistbench.speeds import machine_comparison, normalized_lines
from mnistbench.summary import comparison_table
from mnistbench.sweep import merge_directories, merged_runs, prepare_output_dir


def _output(output_format: str) -> Output:
    # With Markdown or JSON, stdout holds only that document.
    return Output(console=console() if output_format == "text" else None)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@format_option("the headline table")
def report(directory: Path, output_format: str) -> None:
    """Regenerate comparison.csv, the figures, report.html and pytest-benchmark.json of
    DIRECTORY from its runs.csv."""
    plugins = builtins.load_plugins()
    renderer = plugins.output_format(output_format)
    runs = record.read(directory)
    warning = record.reservation_warning(runs)
    if warning:
        warn(warning)
    for path in plugins.write_report(runs, directory):
        click.echo(f"wrote {path}", err=True)  # stdout is the headline table's, in any format
    renderer.sweep(sweep_digest(comparison_table(record.frame(runs))), _output(output_format))


@click.command()
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
@format_option("the comparison")
def compare(
    baseline: Path,
    candidate: Path,
    fail_rules: tuple[str, ...],
    output: Path | None,
    allow_different_work: bool,
    output_format: str,
) -> None:
    """Compare two result directories metric by metric, with significance tests."""
    renderer = builtins.load_plugins().output_format(output_format)
    rules = [FailRule.parse(text) for text in fail_rules]
    baseline_runs, candidate_runs = record.read(baseline), record.read(candidate)
    base, cand = record.frame(baseline_runs), record.frame(candidate_runs)
    machines = machine_comparison(
        base, cand, read_environment(baseline), read_environment(candidate)
    )
    table = compare_runs(
        base,
        cand,
        rules,
        allow_different_work=allow_different_work,
        normalization_withheld=machines.withheld,
    )
    warning = record.reservation_warning([*baseline_runs, *candidate_runs])
    if warning:
        warn(warning)
    outcome = "compared anyway" if allow_different_work else "no verdict"
    for line in work_differences(table):
        warn(f"{line}: {outcome}")
    output = output or candidate
    make_dir(output)
    renderer.compare(compare_digest(table, machines), _output(output_format))
    for line in normalized_lines(table, machines):
        click.echo(f"machine: {line}", err=True)
    for path in (
        write_compare_csv(table, output),
        plot_compare(table, layout.COMPARE_PNG.of(output)),
    ):
        click.echo(f"wrote {path}", err=True)
    failures = regressions(table)
    for line in failures:
        click.echo(f"regression: {line}", err=True)
    if failures:
        sys.exit(EXIT_RUN_FAILED)


@click.command()
@click.argument("output", type=click.Path(path_type=Path, file_okay=False))
@click.argument("directories", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--force", is_flag=True, help="Write into a non-empty OUTPUT directory (never a sweep's)."
)
def merge(output: Path, directories: tuple[Path, ...], force: bool) -> None:
    """Merge the runs of result DIRECTORIES (sweeps of one side, run in halves) into OUTPUT,
    for `compare` and `report`."""
    if Path(output).resolve() in {Path(d).resolve() for d in directories}:
        raise MnistbenchError(f"{output} is one of the directories to merge; choose another")
    if layout.RUNS_CSV.of(output).exists():  # even with --force: its runs would be lost
        raise MnistbenchError(
            f"{output} holds a sweep ({layout.RUNS_CSV}); merge into a new directory"
        )
    runs = merged_runs(directories)  # before OUTPUT is made: a failed merge leaves nothing
    commits = {read_environment(d).get("git_commit") or "" for d in directories} - {""}
    if len(commits) > 1:  # halves of one side ran one commit; this is likely a mistake
        shown = ", ".join(sorted(commit[:7] for commit in commits))
        warn(f"the directories ran {len(commits)} commits ({shown}): merged as one side")
    prepare_output_dir(output, force=force)
    merge_directories(list(directories), output, runs)
    click.echo(f"merged {len(directories)} director(ies) into {layout.RUNS_CSV.of(output)}")


@click.command()
@click.argument("directory", type=click.Path(path_type=Path), required=False)
@click.option(
    "--db",
    "db_path",
    type=StoreLocation(),
    default=None,
    help="Export from this results store instead of a DIRECTORY: the latest sweep of each "
    "configuration on one machine.",
)
@click.option(
    "--machine",
    default=None,
    help="With --db: the machine whose runs to export (its MNISTBENCH_MACHINE label or "
    "description); needed when the store holds several.",
)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(FORMATS),
    required=True,
    help="bmf: Bencher Metric Format (bmf.json, for `bencher run --adapter json`); "
    "github-action-benchmark: its customSmallerIsBetter and customBiggerIsBetter inputs "
    "(two files).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Directory for the files [default: DIRECTORY, or results/ with --db].",
)
def export(
    directory: Path | None,
    db_path: str | None,
    machine: str | None,
    export_format: str,
    output: Path | None,
) -> None:
    """Write a result DIRECTORY's (or a store's) metrics for Bencher or
    github-action-benchmark: one benchmark per configuration, named by all of its options."""
    if (directory is None) == (db_path is None):
        raise MnistbenchError("export: give a result DIRECTORY or --db URL|PATH, one of them")
    if machine is not None and db_path is None:
        raise MnistbenchError("export: --machine chooses among a store's machines; add --db")
    if directory is not None:
        runs = record.frame(record.read(directory, require_runs=True))
        runs["git_commit"] = read_environment(directory).get("git_commit") or ""
        target = output or directory
    else:
        with results_store(db_path, check=False) as store:
            runs = latest_of_machine(store.read_runs(), machine)
        target = output or Path("results")
    found, failed = benchmarks(runs)
    for name in failed:
        warn(f"left out, every run failed: {name}")
    make_dir(target)
    for path in write_export(found, export_format, target):
        click.echo(f"wrote {path}")
