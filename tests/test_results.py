"""Writing run records: a runs.csv row with its placement, written atomically in plan order."""

from __future__ import annotations

import csv
import errno
import math
import os
import platform
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from mnistbench import results
from mnistbench.errors import ResultsWriteError
from mnistbench.metrics import RUN_COLUMNS
from mnistbench.plan import RunConfig
from mnistbench.results import Placement, RunsWriter, make_row, utc_now

ORIGIN = SimpleNamespace(plugin="faulty", version="0.1.0")
RAY = Placement("ray", "process", "worker-3", 2)


TINY = RunConfig("tiny")


def row_of(config=TINY, measured=None, **options):
    options = {"status": "ok", "error": "", "started_at": "2025-01-02T03:04:05+00:00", **options}
    return make_row(
        config, ORIGIN, measured or {}, placement=options.pop("placement", RAY), **options
    )


# --- make_row ------------------------------------------------------------------------------


def test_a_row_has_every_runs_csv_column_in_order():
    assert list(row_of()) == RUN_COLUMNS


def test_a_row_records_where_the_run_ran():
    row = row_of()
    assert {key: row[key] for key in ("executor", "isolation", "node", "cpus_reserved")} == {
        "executor": "ray",
        "isolation": "process",
        "node": "worker-3",
        "cpus_reserved": 2,
    }


def test_a_row_records_the_configuration_and_the_plugin_behind_it():
    config = RunConfig(
        "tiny", epochs=3, batch_size=64, train_limit=500, seed=5, repeat=2, steps_per_execution=4
    )
    row = row_of(config)
    assert {
        key: row[key]
        for key in (
            "run_id",
            "config_id",
            "architecture",
            "plugin",
            "plugin_version",
            "epochs",
            "batch_size",
            "steps_per_execution",
            "seed",
            "repeat",
            "train_samples",
            "test_samples",
            "started_at",
            "status",
        )
    } == {
        "run_id": "tiny-bs64-spe4-r2",
        "config_id": "tiny-bs64-spe4",
        "architecture": "tiny",
        "plugin": "faulty",
        "plugin_version": "0.1.0",
        "epochs": 3,
        "batch_size": 64,
        "steps_per_execution": 4,
        "seed": 7,
        "repeat": 2,
        "train_samples": 500,
        "test_samples": 10_000,
        "started_at": "2025-01-02T03:04:05+00:00",
        "status": "ok",
    }


def test_measured_values_replace_the_configured_ones():
    # A target can stop training early: the epochs trained are what the row says.
    row = row_of(RunConfig("tiny", epochs=10), {"epochs": 4, "fit_seconds": 1.5})
    assert (row["epochs"], row["fit_seconds"]) == (4, 1.5)


def test_measured_values_that_are_not_columns_are_left_out():
    assert "gpu_temperature" not in row_of(measured={"gpu_temperature": 71.0})


def test_not_measured_is_an_empty_cell_not_nan():
    row = row_of(measured={"steady_epoch_seconds": math.nan, "fit_seconds": 2.0})
    assert (row["steady_epoch_seconds"], row["fit_seconds"]) == (None, 2.0)


def test_a_failed_row_keeps_its_configuration_and_placement_and_no_measurement():
    row = row_of(status="failed", error="RuntimeError: boom")
    assert (row["status"], row["error"], row["architecture"], row["node"]) == (
        "failed",
        "RuntimeError: boom",
        "tiny",
        "worker-3",
    )
    assert row["fit_seconds"] is None and row["test_accuracy"] is None


def test_a_multi_line_error_becomes_one_line():
    row = row_of(status="failed", error="Traceback:\n  line 1\n\tValueError:  bad ")
    assert row["error"] == "Traceback: line 1 ValueError: bad"


def test_placement_here_is_a_local_run_with_every_cpu():
    assert Placement.here("none") == Placement("local", "none", platform.node(), os.cpu_count())


def test_utc_now_is_iso_8601_to_the_second_in_utc():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", utc_now())


# --- RunsWriter ----------------------------------------------------------------------------


def written(directory: Path) -> list[dict]:
    with open(directory / "runs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_rows_are_written_in_plan_order_whatever_order_runs_finish(tmp_path):
    writer = RunsWriter(tmp_path, ["tiny-r0", "tiny-r1", "tiny-r2"])
    for repeat in (2, 0, 1):
        writer.append(row_of(RunConfig("tiny", repeat=repeat)))
    assert [row["run_id"] for row in written(tmp_path)] == ["tiny-r0", "tiny-r1", "tiny-r2"]


def test_the_file_after_each_run_holds_the_header_and_every_finished_run(tmp_path):
    writer = RunsWriter(tmp_path, ["tiny-r0", "tiny-r1"])
    writer.append(row_of(RunConfig("tiny", repeat=1)))
    lines = (tmp_path / "runs.csv").read_text().splitlines()
    assert lines[0] == ",".join(RUN_COLUMNS)
    assert len(lines) == 2 and lines[1].startswith("tiny-r1,tiny,tiny,faulty,0.1.0,")


def test_a_rerun_replaces_the_earlier_row_of_its_run(tmp_path):
    writer = RunsWriter(tmp_path, ["tiny-r0"], [row_of(status="failed", error="boom")])
    writer.append(row_of())
    assert [(row["run_id"], row["status"]) for row in written(tmp_path)] == [("tiny-r0", "ok")]


def test_kept_rows_are_written_with_the_new_ones(tmp_path):
    writer = RunsWriter(tmp_path, ["tiny-r0", "tiny-r1"], [row_of()])
    writer.append(row_of(RunConfig("tiny", repeat=1)))
    assert [row["run_id"] for row in written(tmp_path)] == ["tiny-r0", "tiny-r1"]


def test_a_failed_write_keeps_the_earlier_file_and_names_it(tmp_path, monkeypatch):
    writer = RunsWriter(tmp_path, ["tiny-r0", "tiny-r1"])
    writer.append(row_of())
    before = (tmp_path / "runs.csv").read_text()
    real_writer = results.atomic_writer

    monkeypatch.setattr(results, "atomic_writer", _raising_writer(real_writer))
    with pytest.raises(ResultsWriteError) as error:
        writer.append(row_of(RunConfig("tiny", repeat=1)))
    assert str(error.value) == (
        f"cannot write {tmp_path / 'runs.csv'}: No space left on device; "
        "the runs finished before this one are intact in it"
    )
    assert (tmp_path / "runs.csv").read_text() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["runs.csv"]


def _raising_writer(real_writer):
    """An atomic writer whose disk fills up halfway through the write."""
    import contextlib

    @contextlib.contextmanager
    def fills_up(path, mode="w"):
        with real_writer(path, mode) as handle:
            handle.write("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
            yield handle  # pragma: no cover

    return fills_up
