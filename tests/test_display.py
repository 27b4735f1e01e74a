"""What the terminal shows besides the output formats (mnistbench.cli.display): the summary
of a sweep, the plan of a dry run, the progress of a sweep without a terminal, and the
changes history found. (The medians over repeats are the text format's,
tests/test_outputs.py.)"""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from mnistbench.cli.display import RunProgress, print_changes, print_plan, print_summary
from mnistbench.history import Change
from mnistbench.plan import RunConfig, plan
from mnistbench.record import Run
from mnistbench.worker import Placement, run_record

ORIGIN = SimpleNamespace(plugin="faulty", version="0.1.0")
HERE = Placement("local", "process", "node-1", 2)
MEASURED = {
    "fit_seconds": 12.345,
    "steady_step_ms": 4.567,
    "first_epoch_seconds": 5.0,
    "steady_epoch_seconds": 3.5,
    "test_accuracy": 0.91234,
    "inference_samples_per_second": 41234.5,
    "latency_ms": 1.234,
    "peak_memory_mb": 1234.5,
}


def shown(print_to, *args) -> list[str]:
    """The lines ``print_to(console, *args)`` shows on a 120-column terminal, stripped."""
    console = Console(record=True, file=io.StringIO(), width=120)
    print_to(console, *args)
    return [line.strip() for line in console.export_text().splitlines() if line.strip()]


def row(config: RunConfig, measured: dict, status: str = "ok", error: str = "") -> Run:
    """The record a worker makes of a run of ``config`` that measured ``measured``."""
    return run_record(
        config, ORIGIN, HERE, status=status, started_at="", error=error, measured=measured
    )


# --- print_summary -------------------------------------------------------------------------


def test_summary_shows_one_line_per_run_with_the_headline_figures():
    assert shown(print_summary, [row(RunConfig("tiny"), MEASURED)]) == [
        "mnistbench results",
        "run       status   fit s   step ms   ep1 s      acc   infer/s   p50 ms   peak MB",
        "────────────────────────────────────────────────────────────────────────────────",
        "tiny-r0   ok        12.3      4.57    5.00   0.9123    41,234     1.23     1,234",
    ]


def test_summary_shows_a_failed_run_without_figures_and_its_error_below():
    rows = [row(RunConfig("tiny", repeat=1), {}, "failed", "RuntimeError: boom")]
    assert shown(print_summary, rows)[3:] == [
        "tiny-r1   failed       -         -       -     -         -        -         -",
        "tiny-r1: RuntimeError: boom",
    ]


def test_summary_widens_the_run_column_to_the_longest_run_id():
    config = RunConfig("tiny", steps_per_execution=32, jit_compile=False, backend="jax")
    lines = shown(print_summary, [row(config, MEASURED)])
    assert lines[3].startswith("tiny-spe32-jitoff-jax-r0   ok        12.3")


# --- print_plan ----------------------------------------------------------------------------


def test_plan_lists_each_run_and_the_estimate_of_the_known_ones():
    configs = plan(["tiny"], repeats=2, epochs=3, train_limit=500, target_accuracy=0.9)
    assert shown(print_plan, configs, (90.0, 1)) == [
        "mnistbench plan: 2 run(s)",
        "run       backend   epochs   batch   train   spe   jit    target",
        "────────────────────────────────────────────────────────────────",
        "tiny-r0   default   3        32      500     1     auto   0.9",
        "tiny-r1   default   3        32      500     1     auto   0.9",
        "ETA: about 1.5 min for 1 run(s), from earlier results on this machine "
        "(results/*/runs.csv).",
        "1 run(s) have no earlier measurement of their architecture and backend here: "
        "not in the estimate.",
    ]


def test_plan_without_earlier_results_gives_no_eta():
    configs = [RunConfig("tiny", jit_compile=True, backend="jax")]
    lines = shown(print_plan, configs, (0.0, 1))
    assert lines[3] == "tiny-jiton-jax-r0   jax       5        32      60000   1     on    -"
    assert [line for line in lines if line.startswith("ETA")] == []


# --- RunProgress without a terminal --------------------------------------------------------


def test_progress_without_a_terminal_prints_milestones():
    output = io.StringIO()
    console = Console(file=output, width=120, force_terminal=False)
    config = RunConfig("tiny")
    with RunProgress(console) as progress:
        progress.update({"event": "run", "index": 0, "total": 2, "config": config})
        progress.update({"event": "epoch", "epoch": 1, "epochs": 5, "steps": 10})
        progress.update({"event": "step", "step": 3, "steps": 10})
        progress.update(
            {"event": "run_end", "index": 0, "total": 2, "config": config, "status": "ok"}
        )
    # The milestones, then the bars' final state as the progress display closes.
    assert output.getvalue().splitlines()[:3] == [
        "[1/2] tiny-r0: started",
        "[1/2] tiny-r0: epoch 1/5",
        "[1/2] tiny-r0: ok",
    ]


# --- print_changes -------------------------------------------------------------------------


def test_changes_are_counted_then_listed_regressions_first_with_their_size():
    changes = [
        Change("b2", "cnn", "test_accuracy", 4, "c3", "c4", 0.95, 0.96, 0.96 / 0.95,
               "improvement", None),
        Change("a1", "dnn", "fit_seconds", 6, "c5", "c6", 10.1, 14.1, 14.1 / 10.1,
               "regression", False, low=1.31, high=1.49),
    ]  # fmt: skip
    lines = shown(print_changes, changes)
    assert lines[0] == "2 change(s) detected: 1 regression(s), 1 improvement(s)."
    assert [line.split()[:4] for line in lines[4:6]] == [
        ["regression", "dnn", "fit_seconds", "c5..c6"],
        ["improvement", "cnn", "test_accuracy", "c3..c4"],
    ]
    # The size's 95% interval beside it; "—" where there is none.
    assert lines[4].split()[4:] == [
        "10.1", "s", "14.1", "s", "1.40×", "(+40%)", "[×1.31,", "×1.49]", "gone",
    ]  # fmt: skip
    assert lines[5].split()[-4:] == ["1.01×", "(+1%)", "—", "—"]
    assert lines[-2].startswith("normalized: whether the change also shows")


def test_no_change_is_one_line():
    assert shown(print_changes, []) == ["0 change(s) detected: 0 regression(s), 0 improvement(s)."]
