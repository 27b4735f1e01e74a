"""``mnistbench run``: train, evaluate and time architectures; write CSVs, plots, a report.

The options that make the plan are declared here; the options of where runs execute come
from the registered executors (:func:`executor_options`), so a plugin's executor brings
its own. A sweep file (``--config``) sets any of them (:mod:`mnistbench.cli.sweepfile`).
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from mnistbench import builtins
from mnistbench.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    console,
    data_option,
    db_option,
    declared,
    flag,
    force_option,
    given,
    no_db_option,
    output_option,
    results_store,
    timeout_option,
    typed,
    warn,
)
from mnistbench.cli.display import RunProgress, print_plan, print_summary
from mnistbench.cli.sweepfile import (
    GridOption,
    SweepFile,
    choose_architectures,
    load_sweep_file,
    save_sweep_file,
)
from mnistbench.data import load_given, resolve_mnist
from mnistbench.errors import MnistbenchError
from mnistbench.executors import Interrupted, Option
from mnistbench.outputs import Output
from mnistbench.outputs.digest import sweep_digest
from mnistbench.outputs.text import TextFormat
from mnistbench.plan import JIT_WORDS, ORDERS, Execution, parse_jit, plan, select_architectures
from mnistbench.record import frame, reservation_warning
from mnistbench.stores import Store
from mnistbench.summary import comparison_table
from mnistbench.sweep import (
    Sweep,
    check_output_dir,
    estimate_seconds,
    prepare_output_dir,
    run_sweep,
)

#: Options that shape the plan; a resumed sweep keeps the plan it saved.
PLAN_OPTIONS = (
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
    "order_by",
    "force",
    "config",
)


def _default_output() -> Path:
    return Path("results") / datetime.now().strftime("%Y-%m-%dT%H-%M-%S")


def _int_list(ctx, param, value: str) -> list[int]:
    try:
        numbers = [int(item) for item in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if any(number < 1 for number in numbers):
        raise click.BadParameter(f"{value!r}: every value must be at least 1")
    return numbers


def _jit_list(ctx, param, value: str) -> list[bool | None]:
    try:
        return [parse_jit(item) for item in value.split(",")]
    except MnistbenchError as error:
        raise click.BadParameter(str(error)) from None


def _click_option(option: Option, executor: str) -> click.Option:
    """An option of ``executor`` (an :class:`~mnistbench.executors.Option`) as one of ``run``."""
    kind: Any = option.type
    if option.type is bool:
        return click.Option(
            [option.flag, option.name],
            is_flag=True,
            default=False,
            help=f"With --executor {executor}: {option.help}",
        )
    if option.choices:
        kind = click.Choice(option.choices)
    elif option.type is int:
        kind = click.IntRange(min=option.minimum)
    elif option.type is float:
        kind = click.FloatRange(min=option.minimum)
    text = option.help
    if text[1:2].islower():  # "Run each ..." reads "run each ..." after the colon; "CPUs" stays
        text = text[:1].lower() + text[1:]
    help_text = f"With --executor {executor}: {text}"
    if option.default is not None and "default:" not in help_text:
        help_text += f" [default: {option.default}]"
    return click.Option(
        [option.flag, option.name], type=kind, default=None, help=help_text, metavar=option.metavar
    )


def executor_options() -> list[click.Option]:
    """The options of every registered executor, each once, executors by name."""
    seen: dict[str, click.Option] = {}
    for name, registered in sorted(declared().executors.items()):
        for option in registered.value.options:
            seen.setdefault(option.name, _click_option(option, name))
    return list(seen.values())


def _with_executor_options(command: click.Command) -> click.Command:
    command.params.extend(executor_options())
    return command


@_with_executor_options
@click.command()
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
@output_option("results/<timestamp>")
@force_option
@click.option(
    "--resume",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="DIR",
    help="Continue an interrupted sweep in DIR: keep finished runs, rerun the others.",
)
@data_option
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs per configuration, seeds seed..seed+N-1; medians and spread reported.",
)
@click.option(
    "--order",
    "order_by",
    type=click.Choice(ORDERS),
    default="interleaved",
    show_default=True,
    help="interleaved: round r runs repeat r of every configuration, in a seeded random "
    "order, so drift hits every configuration alike; grouped: each configuration's repeats "
    "one after another.",
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
    metavar="|".join(JIT_WORDS.values()) + "[,...]",
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
    type=click.Choice(sorted(declared().executors)),
    default="local",
    show_default=True,
    help="Where runs execute: "
    + "; ".join(
        f"{name}: {registered.value.description}"
        for name, registered in sorted(declared().executors.items())
    )
    + ".",
)
@click.option("--dry-run", is_flag=True, help="Print the planned runs and an ETA; run nothing.")
@click.option(
    "--probe/--no-probe",
    default=True,
    show_default=True,
    help="Time the speed probe before and after each run, for the *_normalized columns. "
    "--no-probe: each run about a second shorter, those columns empty.",
)
@timeout_option
@db_option
@no_db_option
@click.pass_context
def run(ctx: click.Context, **params: Any) -> None:
    """Train, evaluate and time ARCHITECTURES (or --all); write CSVs and plots."""
    plugins = builtins.load_plugins()
    options = {option.name: params.pop(option.name) for option in executor_options()}
    chosen = given(ctx)
    if params["resume"] is not None:
        sweep = _resumed(ctx, params, options, chosen, plugins)
    else:
        architectures, run_all = choose_architectures(
            ctx, params["architectures"], params["run_all"]
        )
        configs = plan(
            select_architectures(architectures, run_all, list(plugins.architectures)),
            **{name: params[name] for name in PLAN_OPTIONS if name not in ("force", "config")},
        )
        execution = Execution(
            params["executor"],
            params["timeout"],
            {name: value for name, value in options.items() if value not in (None, False)},
            probe=params["probe"],
        )
        sweep = Sweep.new(configs, execution, params["output"] or _default_output(), plugins)
    db_typed = typed(ctx, "db_path")
    if params["no_db"] and db_typed and typed(ctx, "no_db"):
        raise MnistbenchError("give --db URL|PATH or --no-db, not both")
    # Typed options win over the sweep file's: a typed --db over the file's no_db.
    # A store it could never write is refused before any run (and by --dry-run).
    no_db = params["no_db"] and not db_typed
    store = None if no_db else results_store(params["db_path"], plugins)
    if params["dry_run"]:
        # What the run would refuse before its first run, checked writing nothing.
        if sweep.manifest is None:
            check_output_dir(sweep.output_dir, force=params["force"])
        load_given(params["data_path"])  # a path given; the other sources are the run's
        print_plan(console(), sweep.pending, estimate_seconds(sweep.pending, Path("results")))
        return
    _run_sweep(
        sweep,
        plugins,
        params["data_path"],
        force=params["force"] and params["resume"] is None,
        store=store,
        sweep_file=params["config"],
    )


def _resumed(ctx, params: dict, options: dict, chosen: set[str], plugins) -> Sweep:
    """The sweep saved in ``--resume DIR``, with the execution options given replacing the
    saved ones; plan options are an error (the saved plan is kept)."""
    plan_options = sorted(chosen & {*PLAN_OPTIONS, "architectures", "run_all", "output"})
    if plan_options:
        flags = ", ".join(flag(name) for name in plan_options)
        raise MnistbenchError(
            "--resume DIR continues the plan saved in DIR: give no architectures, "
            f"--all, --output or plan options ({flags}) with it"
        )
    return Sweep.resume(
        params["resume"],
        plugins,
        executor=params["executor"] if "executor" in chosen else None,
        timeout=params["timeout"] if "timeout" in chosen else None,
        probe=params["probe"] if "probe" in chosen else None,
        options={name: value for name, value in options.items() if name in chosen},
    )


def _run_sweep(
    sweep: Sweep,
    plugins,
    data_path: Path | None,
    *,
    force: bool,
    store: Store | None,
    sweep_file: SweepFile | None = None,
) -> None:
    """Run ``sweep`` with live progress; print the summary; exit 1 on failed runs, 130/143
    on SIGINT/SIGTERM. A new sweep keeps a copy of its ``sweep_file``."""
    output_dir = sweep.output_dir
    mnist = resolve_mnist(data_path)  # first: missing or corrupt data leaves no directory
    if sweep.manifest is None:
        prepare_output_dir(output_dir, force=force)
        save_sweep_file(output_dir, sweep_file)
    progress_console = console(stderr=True)
    progress_console.print(f"MNIST from {mnist.source}: {mnist.origin}", soft_wrap=True)
    progress_console.print(f"Writing results to {output_dir}", soft_wrap=True)

    def stop(signal_number, frame):
        raise Interrupted(signal_number)

    # SIGTERM stops the sweep the way Ctrl-C does: the run in progress is recorded.
    previous_handler = signal.signal(signal.SIGTERM, stop)
    try:
        with RunProgress(progress_console) as progress:
            result = run_sweep(
                sweep, mnist=mnist, plugins=plugins, on_progress=progress.update, store=store
            )
    except KeyboardInterrupt as interruption:
        code = getattr(interruption, "exit_code", EXIT_INTERRUPTED)
        # soft_wrap: paths stay on one line, whole, so they can be copied.
        progress_console.print(
            f"Interrupted. Finished runs are saved in {output_dir / 'runs.csv'}.\n"
            f"Resume with: mnistbench run --resume {output_dir}",
            soft_wrap=True,
        )
        sys.exit(code)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    if result.skipped:
        left = "" if result.ran else "; nothing was left to run"
        progress_console.print(
            f"Kept {result.skipped} run(s) already finished in {output_dir}{left}.", soft_wrap=True
        )
    if result.ran:  # a table of the runs this command ran, not an empty one
        print_summary(console(), result.ran)
    repeated = sweep_digest(comparison_table(frame(result.runs)), repeated_only=True)
    if repeated.configs:
        TextFormat().sweep(repeated, Output(console=console()))
    warning = reservation_warning(result.runs)
    if warning:
        warn(warning, progress_console)
    for path in result.reports:
        progress_console.print(f"wrote {path}", soft_wrap=True)
    if result.failed:
        names = ", ".join(run.run_id for run in result.failed)
        progress_console.print(f"{len(result.failed)} run(s) failed: {names}")
        sys.exit(EXIT_RUN_FAILED)
