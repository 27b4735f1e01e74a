"""The built-in reporter (mnistbench.report): the hook that writes comparison.csv, the figures
as PNG and report.html with the same drawings as SVG. (The table is tests/test_summary.py's,
the figures' data tests/test_figures.py's, the page tests/test_report_html.py's.)"""

from __future__ import annotations

import html
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from synthetic_runs import (
    as_read,
    blank,
    older_runs,
    png,
    repeat_rows,
    run_row,
    sweep_rows,
    write_samples,
)

from mnistbench import layout, record, report
from mnistbench.builtins import load_plugins
from mnistbench.report import mnistbench_write_report
from mnistbench.summary import comparison_table

EVERY_FILE = ["comparison.csv", "comparison.png", "curves.png", "predictions.png", "report.html"]


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, pd.DataFrame, list[Path]]:
    """A synthetic sweep (dnn twice, rnn, cnn, a failed lstm) with its samples, reported
    once: ``(directory, runs, written)``. Read only: copy it to change anything."""
    directory = tmp_path_factory.mktemp("reported")
    runs = as_read(sweep_rows(), directory)
    write_samples(directory)
    return directory, runs, mnistbench_write_report(runs, directory)


def test_write_report_writes_the_csv_the_figures_and_the_page_and_returns_their_paths(reported):
    directory, _, written = reported
    assert written == [directory / name for name in EVERY_FILE]
    # Nothing else is left behind, no temporary file in particular.
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [*EVERY_FILE, "runs.csv", "samples.npz"]
    )


def test_comparison_csv_is_the_comparison_table(reported):
    directory, runs, _ = reported
    written = pd.read_csv(directory / "comparison.csv", keep_default_na=False, na_values=[""])
    # An empty cell reads back as NaN, whether it was "", None or NaN.
    table = comparison_table(runs).astype(object)
    expected = table.where(table.notna() & table.ne(""), math.nan).infer_objects()
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)


def test_each_figure_is_a_drawn_png_and_the_same_drawing_in_report_html(reported):
    directory, _, _ = reported
    sizes = {"comparison.png": (1560, 576), "curves.png": (1440, 552)}
    for name in ("comparison.png", "curves.png", "predictions.png"):
        image = png(directory / name)
        assert image.format == "PNG" and not blank(image), name
        if name in sizes:
            assert image.size == sizes[name], name
    page = (directory / "report.html").read_text()
    # One inline SVG per figure, titled by what its PNG holds; no image file is loaded.
    for name in ("comparison.png", "curves.png", "predictions.png"):
        label = html.escape(layout.FILES[name].description, quote=True)
        assert f'aria-label="{label}"' in page, name
    assert page.count("<svg ") == 3 and "<img" not in page
    # The bars carry their values for the hover: the same text in both forms of the drawing.
    assert 'data-tip="dnn: 32.0 s (median of 2 runs, 30.0–34.0 s)"' in page


def test_report_regenerated_from_runs_csv_rewrites_the_same_files(reported, tmp_path):
    directory, _, _ = reported
    copy = shutil.copytree(directory, tmp_path / "copy")
    # What `mnistbench report DIR` does: read runs.csv again and write over the report.
    mnistbench_write_report(record.frame(record.read(copy)), copy)
    for name in ("comparison.csv", "report.html"):
        assert (copy / name).read_text() == (directory / name).read_text(), name
    first = pd.read_csv(copy / "comparison.csv")
    assert first["config_id"].tolist() == ["dnn", "rnn", "cnn", "lstm"]


def test_comparison_csv_writes_flags_as_true_false_or_empty(tmp_path):
    rows = [*repeat_rows(target_accuracy=0.97, converged=True), run_row("cnn", config_id="cnn")]
    mnistbench_write_report(as_read(rows, tmp_path), tmp_path)
    written = pd.read_csv(tmp_path / "comparison.csv", dtype=str, keep_default_na=False)
    columns = ["config_id", "fit_seconds_noisy", "test_accuracy_noisy", "converged"]
    assert written[columns].values.tolist() == [
        ["dnn", "True", "False", "3/3"],
        ["cnn", "", "", ""],
    ]
    assert written["noisy_metrics"].tolist() == [
        "fit_seconds seconds_per_epoch train_samples_per_second",
        "",
    ]


def test_the_plugin_manager_calls_it_last_and_predictions_need_samples_npz(tmp_path):
    runs = sweep_rows()
    as_read(runs, tmp_path)  # no samples.npz
    written = load_plugins(entry_points=False).write_report(runs, tmp_path)
    # The other core reporter (pytest-benchmark.json) comes first, so that report.html,
    # written last, links it.
    assert [path.name for path in written] == [
        "pytest-benchmark.json", "comparison.csv", "comparison.png", "curves.png",
        "report.html",
    ]  # fmt: skip
    assert not (tmp_path / "predictions.png").exists()
    assert "predictions" not in (tmp_path / "report.html").read_text()


# Edge cases


def test_report_of_an_older_runs_csv_writes_every_file(tmp_path):
    write_samples(tmp_path)
    written = mnistbench_write_report(older_runs(sweep_rows(), tmp_path), tmp_path)
    assert [path.name for path in written] == EVERY_FILE
    assert png(tmp_path / "comparison.png").size == (1560, 576)


def test_single_architecture_with_one_epoch_writes_every_file(tmp_path):
    runs = as_read([run_row("dnn", epoch_accuracy=(0.91,))], tmp_path)
    write_samples(tmp_path)
    written = mnistbench_write_report(runs, tmp_path)
    assert [path.name for path in written] == EVERY_FILE
    assert comparison_table(runs)["fit_seconds_ratio_to_best"].tolist() == [1.0]
    assert not blank(png(tmp_path / "curves.png"))


def test_all_runs_failed_writes_the_csv_and_notices_but_no_predictions(tmp_path):
    rows = [run_row("dnn", error="MemoryError"), run_row("cnn", error="TimeoutError")]
    runs = as_read(rows, tmp_path)
    write_samples(tmp_path)
    written = mnistbench_write_report(runs, tmp_path)
    assert [path.name for path in written] == [
        "comparison.csv", "comparison.png", "curves.png", "report.html",
    ]  # fmt: skip
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert table[["architecture", "status", "runs", "failed"]].values.tolist() == [
        ["dnn", "failed", 0, 1],
        ["cnn", "failed", 0, 1],
    ]
    # A notice (9 x 3 in) replaces each plot, so no stale plot outlives the new CSV.
    for name in ("comparison.png", "curves.png"):
        image = png(tmp_path / name)
        assert image.size == (1080, 360) and not blank(image), name


# Imports


def test_the_reporter_imports_light_and_never_pyplot(tmp_path):
    as_read(sweep_rows(), tmp_path)
    code = (
        "import sys, pathlib; import mnistbench.report as report; "
        "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules)); "
        "from mnistbench import record; "
        f"directory = pathlib.Path({str(tmp_path)!r}); "
        "report.mnistbench_write_report(record.frame(record.read(directory)), directory); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    # Importing it loads neither pandas nor matplotlib; writing the report never pyplot.
    assert result.stdout.splitlines() == ["[]", "False"]
    assert not blank(png(tmp_path / "comparison.png"))


def test_report_exposes_only_its_hook_to_pluggy():
    # pluggy scans every mnistbench_* attribute of a registered module.
    assert [name for name in dir(report) if name.startswith("mnistbench_")] == [
        "mnistbench_write_report"
    ]
