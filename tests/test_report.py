"""The built-in reporter: comparison.csv, comparison.png, curves.png and predictions.png."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mnistbench import report
from mnistbench.plugins import load_plugins
from mnistbench.report import (
    HEADLINE_METRICS,
    comparison_table,
    mnistbench_write_report,
    plot_predictions,
)
from mnistbench.results import RUN_COLUMNS, SAMPLE_COUNT, RunsWriter, read_runs

# The first 16 MNIST test labels.
LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5]
WRONG_RGB = (0xC6, 0x28, 0x28)  # report.WRONG_COLOR


def run_row(
    architecture: str,
    seed: int = 0,
    *,
    config_id: str = "",
    steps_per_execution: int = 1,
    fit_seconds: float = 30.0,
    test_accuracy: float = 0.97,
    inference_samples_per_second: float = 20000.0,
    params: int = 100_000,
    epoch_accuracy: tuple[float, ...] = (0.91, 0.95),
    predictions: list[int] | None = None,
    backend: str = "tensorflow",
    error: str = "",
    status: str = "",
    target_accuracy: float | None = None,
    time_to_accuracy_seconds: float | None = None,
    converged: bool | None = None,
) -> dict:
    """One runs.csv row as the core writes it: 600 train / 100 test samples, 2 epochs.

    Without ``config_id`` the row is grouped by its architecture, as in an older runs.csv.
    """
    row = dict.fromkeys(RUN_COLUMNS)
    suffix = "" if backend == "tensorflow" else f"-{backend}"
    row.update(
        run_id=f"{config_id or architecture}-r{seed}{suffix}",
        config_id=config_id or None,
        architecture=architecture,
        plugin=f"mnistbench_{architecture}",
        plugin_version="0.1.0",
        epochs=len(epoch_accuracy),
        batch_size=32,
        steps_per_execution=steps_per_execution,
        train_samples=600,
        test_samples=100,
        seed=seed,
        repeat=seed,
        target_accuracy=target_accuracy,
        started_at="2025-01-01T00:00:00+00:00",
        status=status or ("failed" if error else "ok"),
        error=error,
    )
    if error:
        return row  # a failed run keeps its configuration only, like results.make_row
    epochs = len(epoch_accuracy)
    row.update(
        backend=backend,
        jit_compile=True,
        fit_seconds=fit_seconds,
        seconds_per_epoch=fit_seconds / epochs,
        epoch_seconds=json.dumps([fit_seconds / epochs] * epochs),
        epoch_accuracy=json.dumps(list(epoch_accuracy)),
        epoch_loss=json.dumps([0.3 / (e + 1) for e in range(epochs)]),
        time_to_accuracy_seconds=time_to_accuracy_seconds,
        converged=converged,
        train_samples_per_second=600 * epochs / fit_seconds,
        test_accuracy=test_accuracy,
        test_loss=0.1,
        inference_samples_per_second=inference_samples_per_second,
        latency_ms=1.5,
        sample_predictions=json.dumps(LABELS if predictions is None else predictions),
        params=params,
        peak_memory_mb=900.0,
    )
    return row


def with_wrong(index: int, label: int) -> list[int]:
    predicted = list(LABELS)
    predicted[index] = label
    return predicted


def sweep_rows() -> list[dict]:
    """dnn twice (seeds 0 and 1), rnn, cnn, and an lstm that failed."""
    return [
        run_row("dnn", 0, fit_seconds=30.0, test_accuracy=0.970,
                inference_samples_per_second=48000.0, params=118_282,
                predictions=with_wrong(8, 6)),
        run_row("dnn", 1, fit_seconds=34.0, test_accuracy=0.974,
                inference_samples_per_second=50000.0, params=118_282),
        run_row("rnn", fit_seconds=196.0, test_accuracy=0.980,
                inference_samples_per_second=9000.0, params=68_106),
        run_row("cnn", fit_seconds=64.0, test_accuracy=0.982,
                inference_samples_per_second=21000.0, params=225_034),
        run_row("lstm", error="ValueError: expected ndim=3, found ndim=2"),
    ]  # fmt: skip


def as_read(rows: list[dict], output_dir: Path) -> pd.DataFrame:
    """The rows written by the core's RunsWriter and read back as the report hook gets them."""
    writer = RunsWriter(output_dir, [row["run_id"] for row in rows])
    for row in rows:
        writer.append(row)
    return read_runs(output_dir)


def write_samples(output_dir: Path, count: int = SAMPLE_COUNT) -> Path:
    rng = np.random.default_rng(0)
    path = output_dir / "samples.npz"
    np.savez(
        path,
        x=rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8),
        y=np.array((LABELS * 2)[:count], dtype=np.uint8),
    )
    return path


@pytest.fixture
def runs(tmp_path) -> pd.DataFrame:
    return as_read(sweep_rows(), tmp_path)


def png(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


def colour_count(image: Image.Image) -> int:
    rgb = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(np.uint32)
    return len(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]))


def wrong_pixels(image: Image.Image) -> int:
    pixels = np.asarray(image.convert("RGB")).astype(int)
    return int((np.abs(pixels - WRONG_RGB).sum(axis=-1) < 10).sum())


# comparison.csv


def test_comparison_table_columns_are_counts_medians_ratios_and_error(runs):
    ratios = [f"{metric}_ratio_to_best" for metric in HEADLINE_METRICS]
    assert list(comparison_table(runs).columns) == [
        "architecture", "backend", "status", "runs", "failed",
        "fit_seconds", "seconds_per_epoch", "train_samples_per_second", "test_accuracy",
        "test_loss", "inference_samples_per_second", "latency_ms", "params", "peak_memory_mb",
        *ratios, "error",
    ]  # fmt: skip


def test_comparison_table_has_one_row_per_architecture_in_run_order_with_counts(runs):
    table = comparison_table(runs)
    assert table["architecture"].tolist() == ["dnn", "rnn", "cnn", "lstm"]
    assert table["runs"].tolist() == [2, 1, 1, 0]
    assert table["failed"].tolist() == [0, 0, 0, 1]
    assert table["status"].tolist() == ["ok", "ok", "ok", "failed"]


def test_comparison_table_holds_medians_over_successful_runs(runs):
    dnn = comparison_table(runs).set_index("architecture").loc["dnn"]
    assert dnn["fit_seconds"] == pytest.approx(32.0)
    assert dnn["seconds_per_epoch"] == pytest.approx(16.0)
    assert dnn["test_accuracy"] == pytest.approx(0.972)
    assert dnn["inference_samples_per_second"] == pytest.approx(49000.0)
    assert dnn["params"] == 118_282


def test_ratio_to_best_is_one_for_the_best_and_value_over_best_for_the_others(runs):
    table = comparison_table(runs).set_index("architecture")
    # fit_seconds: lower is better, the best is dnn's 32 s.
    assert table.loc[["dnn", "rnn", "cnn"], "fit_seconds_ratio_to_best"].tolist() == [
        1.0, 6.125, 2.0,
    ]  # fmt: skip
    # test_accuracy and throughput: higher is better, so the others are below 1.
    assert table.loc["cnn", "test_accuracy_ratio_to_best"] == 1.0
    assert table.loc["dnn", "test_accuracy_ratio_to_best"] == round(0.972 / 0.982, 4)
    assert table.loc["dnn", "inference_samples_per_second_ratio_to_best"] == 1.0
    assert table.loc["rnn", "inference_samples_per_second_ratio_to_best"] == round(9 / 49, 4)


def test_failed_architecture_has_its_error_and_no_metrics(runs):
    lstm = comparison_table(runs).set_index("architecture").loc["lstm"]
    assert lstm["error"] == "ValueError: expected ndim=3, found ndim=2"
    assert math.isnan(lstm["fit_seconds"])
    assert math.isnan(lstm["fit_seconds_ratio_to_best"])


def test_failed_repeat_is_counted_but_not_in_the_median(tmp_path):
    rows = [*sweep_rows(), run_row("dnn", 2, error="TimeoutError: stopped after 600 s")]
    dnn = comparison_table(as_read(rows, tmp_path)).set_index("architecture").loc["dnn"]
    assert (dnn["status"], dnn["runs"], dnn["failed"]) == ("partial", 2, 1)
    assert dnn["fit_seconds"] == pytest.approx(32.0)


def test_runs_are_grouped_by_backend_when_several_backends_ran(tmp_path):
    rows = [
        run_row("dnn", fit_seconds=30.0),
        run_row("dnn", fit_seconds=20.0, backend="jax"),
        run_row("cnn", fit_seconds=60.0),
    ]
    table = comparison_table(as_read(rows, tmp_path))
    assert list(zip(table["architecture"], table["backend"], strict=True)) == [
        ("dnn", "tensorflow"),
        ("dnn", "jax"),
        ("cnn", "tensorflow"),
    ]
    assert table["fit_seconds_ratio_to_best"].tolist() == [1.5, 1.0, 3.0]


def test_comparison_csv_is_the_comparison_table(runs, tmp_path):
    mnistbench_write_report(runs, tmp_path)
    written = pd.read_csv(tmp_path / "comparison.csv", keep_default_na=False, na_values=[""])
    expected = comparison_table(runs)
    assert list(written.columns) == list(expected.columns)
    assert written["architecture"].tolist() == ["dnn", "rnn", "cnn", "lstm"]
    assert written["fit_seconds_ratio_to_best"].tolist()[:3] == [1.0, 6.125, 2.0]
    assert written["error"].tolist()[-1] == "ValueError: expected ndim=3, found ndim=2"


# The hook and its files


def test_write_report_writes_csv_and_three_plots_and_returns_their_paths(runs, tmp_path):
    write_samples(tmp_path)
    written = mnistbench_write_report(runs, tmp_path)
    names = ["comparison.csv", "comparison.png", "curves.png", "predictions.png"]
    assert written == [tmp_path / name for name in names]
    assert all(path.is_file() for path in written)


def test_write_report_leaves_no_temporary_files(runs, tmp_path):
    write_samples(tmp_path)
    mnistbench_write_report(runs, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "comparison.csv", "comparison.png", "curves.png", "predictions.png", "runs.csv",
        "samples.npz",
    ]  # fmt: skip


def test_plots_are_pngs_of_the_documented_pixel_size(runs, tmp_path):
    write_samples(tmp_path)
    mnistbench_write_report(runs, tmp_path)
    # comparison 13 x 4.8 in and curves 12 x 4.6 in at 120 dpi; predictions: 8 digits
    # of 1.2 in per row, 2 rows of 3 architectures' lines under each digit.
    sizes = {name: png(tmp_path / name) for name in ("comparison.png", "curves.png")}
    sizes["predictions.png"] = png(tmp_path / "predictions.png")
    assert {name: (image.format, image.size) for name, image in sizes.items()} == {
        "comparison.png": ("PNG", (1560, 576)),
        "curves.png": ("PNG", (1440, 552)),
        "predictions.png": ("PNG", (1200, 624)),
    }


def test_plots_are_drawn_not_blank(runs, tmp_path):
    write_samples(tmp_path)
    for path in mnistbench_write_report(runs, tmp_path)[1:]:
        # Bars, lines, text and digits: far more than a background and a frame.
        assert colour_count(png(path)) > 50, path.name


def test_write_report_is_the_hook_the_plugin_manager_calls(runs, tmp_path):
    written = load_plugins(entry_points=False).write_report(runs, tmp_path)
    assert [path.name for path in written] == ["comparison.csv", "comparison.png", "curves.png"]


def test_predictions_png_needs_samples_npz(runs, tmp_path):
    written = mnistbench_write_report(runs, tmp_path)
    assert not (tmp_path / "predictions.png").exists()
    assert tmp_path / "predictions.png" not in written


# predictions.png


def test_wrong_predictions_are_drawn_in_red(runs, tmp_path):
    path = plot_predictions(runs, write_samples(tmp_path), tmp_path / "predictions.png")
    assert wrong_pixels(png(path)) > 100


def test_all_right_predictions_have_no_red(tmp_path):
    runs = as_read([run_row("dnn"), run_row("cnn")], tmp_path)
    path = plot_predictions(runs, write_samples(tmp_path), tmp_path / "predictions.png")
    assert wrong_pixels(png(path)) == 0


def test_predictions_grid_fits_any_number_of_digits(runs, tmp_path):
    path = plot_predictions(runs, write_samples(tmp_path, 5), tmp_path / "predictions.png")
    # One row of five digits: 1.1 in header + 1.95 in row + 0.2 in margin high; the
    # width never drops below the title's 6.5 in.
    assert png(path).size == (780, 390)


# Edge cases


def test_single_architecture_with_one_epoch_writes_every_file(tmp_path):
    runs = as_read([run_row("dnn", epoch_accuracy=(0.91,))], tmp_path)
    write_samples(tmp_path)
    written = mnistbench_write_report(runs, tmp_path)
    assert [path.name for path in written] == [
        "comparison.csv", "comparison.png", "curves.png", "predictions.png",
    ]  # fmt: skip
    assert comparison_table(runs)["fit_seconds_ratio_to_best"].tolist() == [1.0]
    assert colour_count(png(tmp_path / "curves.png")) > 50


def test_all_runs_failed_writes_the_csv_and_notices_but_no_predictions(tmp_path):
    rows = [run_row("dnn", error="MemoryError"), run_row("cnn", error="TimeoutError")]
    runs = as_read(rows, tmp_path)
    write_samples(tmp_path)
    written = mnistbench_write_report(runs, tmp_path)
    assert [path.name for path in written] == ["comparison.csv", "comparison.png", "curves.png"]
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert table[["architecture", "status", "runs", "failed"]].values.tolist() == [
        ["dnn", "failed", 0, 1],
        ["cnn", "failed", 0, 1],
    ]
    # A notice (9 x 3 in) replaces each plot, so no stale plot outlives the new CSV.
    assert png(tmp_path / "comparison.png").size == (1080, 360)
    assert png(tmp_path / "curves.png").size == (1080, 360)


# Imports


def _python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_importing_the_reporter_loads_neither_pandas_nor_matplotlib():
    loaded = _python(
        "import sys, mnistbench.report; "
        "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_writing_the_report_never_imports_pyplot(tmp_path):
    rows_json = json.dumps(sweep_rows())
    code = (
        "import json, sys, pathlib, pandas as pd; "
        "from mnistbench.report import mnistbench_write_report; "
        f"runs = pd.DataFrame(json.loads({rows_json!r})); "
        f"mnistbench_write_report(runs, pathlib.Path({str(tmp_path)!r})); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    assert _python(code) == "False"
    assert (tmp_path / "comparison.png").is_file()


def test_report_exposes_only_its_hook_to_pluggy():
    # pluggy scans every mnistbench_* attribute of a registered module.
    assert [name for name in dir(report) if name.startswith("mnistbench_")] == [
        "mnistbench_write_report"
    ]
