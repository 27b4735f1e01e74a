"""What the terminal shows: the summary of a sweep, the plan of a dry run, medians over repeats."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import pandas as pd
from rich.console import Console

from mnistbench.display import RunProgress, print_medians, print_plan, print_summary
from mnistbench.plan import RunConfig, plan
from mnistbench.results import Placement, make_row

ORIGIN = SimpleNamespace(plugin="faulty", version="0.1.0")
HERE = Placement("local", "process", "node-1", 2)
MEASURED = {
    "fit_seconds": 12.345,
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


def row(config: RunConfig, measured: dict, status: str = "ok", error: str = "") -> dict:
    return make_row(
        config, ORIGIN, measured, status=status, error=error, started_at="", placement=HERE
    )


# --- print_summary -------------------------------------------------------------------------


def test_summary_shows_one_line_per_run_with_the_headline_figures():
    assert shown(print_summary, [row(RunConfig("tiny"), MEASURED)]) == [
        "mnistbench results",
        "run       status   fit s   ep1 s   ep2+ s      acc   infer/s   p50 ms   peak MB",
        "───────────────────────────────────────────────────────────────────────────────",
        "tiny-r0   ok        12.3    5.00     3.50   0.9123    41,234     1.23     1,234",
    ]


def test_summary_shows_a_failed_run_without_figures_and_its_error_below():
    rows = [row(RunConfig("tiny", repeat=1), {}, "failed", "RuntimeError: boom")]
    assert shown(print_summary, rows)[3:] == [
        "tiny-r1   failed       -       -        -     -         -        -         -",
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


# --- print_medians -------------------------------------------------------------------------


def comparison(**columns) -> pd.DataFrame:
    base = {
        "config_id": "tiny",
        "architecture": "tiny",
        "backend": "tensorflow",
        "runs": 3,
        "fit_seconds": 10.0,
        "fit_seconds_min": 9.5,
        "fit_seconds_max": 12.3,
        "test_accuracy": 0.9,
        "test_accuracy_min": 0.89,
        "test_accuracy_max": 0.91,
        "noisy_metrics": math.nan,
    }
    return pd.DataFrame([{**base, **columns}])


def test_medians_show_the_range_over_repeats():
    assert shown(print_medians, comparison()) == [
        "medians over repeats",
        "config   runs   fit s (min-max)   acc (min-max)            noisy",
        "────────────────────────────────────────────────────────────────",
        "tiny     3      10.0 (9.5-12.3)   0.9000 (0.8900-0.9100)   -",
    ]


def test_medians_flag_noisy_metrics_and_explain_the_flag():
    lines = shown(print_medians, comparison(noisy_metrics="fit_seconds"))
    assert lines[3].endswith("fit_seconds")
    assert lines[4] == (
        "noisy: coefficient of variation above 10% over the repeats; "
        "see comparison.csv for every metric's spread."
    )


def test_medians_of_runs_without_repeats_show_nothing():
    assert shown(print_medians, comparison(runs=1)) == []


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
