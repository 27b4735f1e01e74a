"""``mnistbench ab BASE HEAD``: two versions of the code measured against each other in pairs.

The options that shape the runs are ``run``'s own (the same declarations, so the two
commands take the same values); the options of the pairs are ab's.
"""

from __future__ import annotations

import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from mnistbench import ab, builtins
from mnistbench.checkouts import existing, install_ref, repository_root, resolve
from mnistbench.cli.common import (
    EXIT_RUN_FAILED,
    console,
    data_option,
    db_option,
    force_option,
    format_option,
    no_db_option,
    output_option,
    results_store,
    timeout_option,
    typed,
)
from mnistbench.cli.run import PLAN_OPTIONS, run
from mnistbench.data import resolve_mnist
from mnistbench.errors import ConfigError, MnistbenchError
from mnistbench.gates import FailRule, gated_metrics
from mnistbench.outputs import Output
from mnistbench.plan import plan
from mnistbench.sweep import prepare_output_dir

#: The options of ``run`` that ab takes as they are: those that shape the runs (ab makes
#: pairs instead of repeats, in its own order).
_PLANNED = [n for n in PLAN_OPTIONS if n not in ("repeats", "order_by", "force", "config")]
_RUN_OPTIONS = [*_PLANNED, "run_all", "architectures"]


def _percentage(ctx, param, value: str | None) -> float | None:
    if value is None:
        return None
    text = value.strip().removesuffix("%")
    try:
        number = float(text) / 100
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a percentage, e.g. 5%") from None
    if not 0 < number < 1:
        raise click.BadParameter(f"{value!r}: give a percentage above 0% and below 100%")
    return number


def _with_run_options(command: click.Command) -> click.Command:
    """Give ``command`` the options of ``run`` that shape the runs (:data:`_RUN_OPTIONS`)."""
    command.params[2:2] = [param for param in run.params if param.name in _RUN_OPTIONS]
    return command


@_with_run_options
@click.command(name="ab")
@click.argument("base")
@click.argument("head")
@click.option(
    "--pairs",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Pairs per configuration (with --until: before the intervals are first looked at).",
)
@click.option(
    "--until",
    callback=_percentage,
    default=None,
    metavar="PERCENT",
    help="Add pairs until each gated metric's 95% interval is within ±PERCENT (e.g. 5%), "
    "or --max-pairs or --max-minutes is reached.",
)
@click.option(
    "--max-pairs",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="With --until: the most pairs per configuration.",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --until: stop adding pairs after this many minutes.",
)
@click.option(
    "--duet",
    is_flag=True,
    help="Run each pair's two runs at the same moment, each side pinned to its own half of "
    "the CPUs with its thread pools sized to it.",
)
@click.option(
    "--warmup/--no-warmup",
    default=True,
    show_default=True,
    help="Run each configuration once on each side before the pairs, recorded nowhere: a "
    "worker's first run pays one-time costs (the backend's kernels, pools, caches).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Each run's thread pools (intra-op, inter-op, BLAS) [default: all CPUs; with --duet "
    "half of them].",
)
@click.option(
    "--probe/--no-probe",
    default=False,
    show_default=True,
    help="Run the speed probe before and after each run, as `run` does. Off: a pair's ratio "
    "cancels the machine's speed, and the probes put time between a pair's two runs.",
)
@click.option(
    "--pin",
    is_flag=True,
    help="Bind both sides' workers to the same CPUs, as many as --threads (the first of "
    "those this process may use); --duet always pins, each side to its half.",
)
@click.option(
    "--gate",
    "gates",
    multiple=True,
    metavar="METRIC",
    help="A metric whose interval --until watches (repeatable) [default: steady_step_ms, "
    "or fit_seconds where runs are too short to measure it, and the metrics of the --fail "
    "rules].",
)
@click.option(
    "--fail",
    "fail_rules",
    multiple=True,
    metavar="METRIC:THRESHOLD",
    help="Exit 1 when HEAD is worse than BASE in METRIC by more than THRESHOLD (e.g. "
    "fit_seconds:10%) and significantly so, the rules' tests adjusted together (Holm). "
    "Repeatable.",
)
@click.option(
    "--base-python",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Run BASE's side with this interpreter's environment, as it is (BASE then only names it).",
)
@click.option(
    "--head-python",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Run HEAD's side with this interpreter's environment, as it is.",
)
@timeout_option
@output_option("results/ab-<timestamp>")
@force_option
@data_option
@db_option
@no_db_option
@format_option("the verdicts")
@click.pass_context
def ab_command(ctx: click.Context, base: str, head: str, **params: Any) -> None:
    """Measure BASE against HEAD, two git refs of the project in the current directory
    (WORKTREE: the working tree as it is), in pairs of runs of each configuration."""
    plugins = builtins.load_plugins()
    renderer = plugins.output_format(params["output_format"])
    rules = [FailRule.parse(text) for text in params["fail_rules"]]
    gates = tuple(
        dict.fromkeys([*(params["gates"] or [ab.DEFAULT_GATE]), *(r.metric for r in rules)])
    )
    for name in gates:
        if name not in gated_metrics():
            raise MnistbenchError(
                f"--gate {name}: not a compared metric; known: {', '.join(gated_metrics())}"
            )
    design = ab.Design(
        pairs=params["pairs"],
        until=params["until"],
        max_pairs=max(params["max_pairs"], params["pairs"]),
        max_minutes=params["max_minutes"],
        duet=params["duet"],
        seed=params["seed"],
        gate=gates,
        threads=params["threads"],
        pin=params["pin"],
        probe=params["probe"],
        timeout=params["timeout"],
        warmup=params["warmup"],
    )
    design.check()
    # The plan's options are checked now; its architectures once the sides say theirs.
    plan(["?"], **{name: params[name] for name in _PLANNED})
    if params["run_all"] and params["architectures"]:
        raise ConfigError("give architecture names or --all, not both")
    if not (params["run_all"] or params["architectures"]):
        raise ConfigError("name at least one architecture, or use --all")
    stamp = datetime.now().strftime("ab-%Y-%m-%dT%H-%M-%S")
    output = params["output"] or Path("results") / stamp
    db_typed = typed(ctx, "db_path")
    if params["no_db"] and db_typed:
        raise MnistbenchError("give --db URL|PATH or --no-db, not both")
    store = None if params["no_db"] else results_store(params["db_path"], plugins)
    out = console(stderr=True)
    # Whatever can be refused is refused before anything is written: the refs, the data.
    repository = _check_refs(base, head, params["base_python"], params["head_python"])
    mnist = resolve_mnist(params["data_path"])
    sides = _sides(repository, base, head, params["base_python"], params["head_python"])
    made = not output.exists() or not any(output.iterdir())  # nothing of the user's in it
    prepare_output_dir(output, force=params["force"])
    for side in sides.values():
        cached = " (installed earlier)" if side.cached else ""
        out.print(f"{side.describe()}: {side.python}{cached}", soft_wrap=True)
    runners = {
        name: ab.SideRunner(side, mnist.cache_path, output / name / "logs", design.side_threads())
        for name, side in sides.items()
    }
    try:
        architectures = ab.select(
            runners, params["architectures"], params["run_all"], params["backends"]
        )
    except ConfigError:
        # An architecture a side lacks: refused before any run, and the directory made for
        # the runs goes, so that the same command, mended, may use it. (A worker that did
        # not start is another error: its log in the directory is what explains it.)
        if made:
            for path in output.iterdir():
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        raise
    configs = plan(architectures, **{name: params[name] for name in _PLANNED})

    def progress(round_: int, verdicts) -> None:
        watched = ab.gated(verdicts, design)
        shown = [v for v in verdicts if v.metric in watched]
        for verdict in shown:
            ratio = verdict.ratio
            interval = "" if ratio.n < 2 else f" [{ratio.low:.3f}, {ratio.high:.3f}]"
            out.print(
                f"round {round_}: {verdict.label} {verdict.metric} ×{ratio.ratio:.3f}{interval} "
                f"over {ratio.n} pair(s): {ab.verdict_text(verdict)}",
                soft_wrap=True,
            )

    pairs, verdicts, stopped = ab.measure(
        runners,
        configs,
        design,
        output_dir=output,
        mnist=mnist,
        plugins=plugins,
        store=store,
        argv=sys.argv,
        on_round=progress,
        rules=rules,
    )
    out.print(f"stopped: {stopped}", soft_wrap=True)
    digest = ab.digest(verdicts, pairs, sides, stopped, design)
    renderer.ab(digest, Output(console=console() if params["output_format"] == "text" else None))
    for path in (output / "base", output / "head", ab.PAIRS_CSV.of(output), ab.AB_CSV.of(output)):
        click.echo(f"wrote {path}", err=True)
    if digest.failing:
        for line in digest.failing:
            click.echo(f"regression: {line}", err=True)
        sys.exit(EXIT_RUN_FAILED)


def _check_refs(base: str, head: str, base_python, head_python) -> Path | None:
    """The repository whose refs BASE and HEAD name (each checked), or None when the sides
    are existing environments."""
    if (base_python is None) != (head_python is None):
        raise MnistbenchError("give both --base-python and --head-python, or neither")
    if base_python is not None:
        return None
    repository = repository_root(Path.cwd())
    for ref in (base, head):
        resolve(repository, ref)
    return repository


def _sides(repository, base: str, head: str, base_python, head_python) -> dict:
    """The two sides: installed refs of ``repository``, or existing environments."""
    if repository is None:
        return {"base": existing("base", base_python), "head": existing("head", head_python)}
    return {
        "base": install_ref(repository, base, "base"),
        "head": install_ref(repository, head, "head"),
    }
