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


# --- merging the sweeps of one side ----------------------------------------------------------


def half(directory: Path, fit_seconds: tuple[float, ...], cpu: str = "CPU A") -> Path:
    """A result directory of dnn repeats (run ids dnn-r0, dnn-r1, ...) and its environment."""
    import json

    from synthetic_runs import as_read, repeat_rows

    directory.mkdir()
    rows = repeat_rows(fit_seconds=fit_seconds, accuracies=(0.97,) * len(fit_seconds))
    as_read(rows, directory)
    (directory / "environment.json").write_text(json.dumps({"cpu": cpu, "python": "3.11"}))
    return directory


def test_merged_halves_hold_every_run_with_unique_ids(tmp_path):
    from mnistbench.runs import read_runs

    first, second = half(tmp_path / "a", (10.0, 11.0)), half(tmp_path / "b", (12.0, 13.0))
    (tmp_path / "side").mkdir()
    results.merge_directories([first, second], tmp_path / "side")
    runs = read_runs(tmp_path / "side")
    assert list(runs["run_id"]) == ["dnn-r0", "dnn-r1", "dnn-r0-m2", "dnn-r1-m2"]
    assert list(runs["fit_seconds"]) == [10.0, 11.0, 12.0, 13.0]


def test_merged_environment_names_its_sources_and_joins_what_differs(tmp_path):
    import json

    first = half(tmp_path / "a", (10.0,), cpu="CPU A")
    second = half(tmp_path / "b", (12.0,), cpu="CPU B")
    (tmp_path / "side").mkdir()
    results.merge_directories([first, second], tmp_path / "side")
    environment = json.loads((tmp_path / "side" / "environment.json").read_text())
    assert environment["cpu"] == "CPU A / CPU B"
    assert environment["python"] == "3.11"
    assert environment["merged_from"] == [str(first.resolve()), str(second.resolve())]


def test_cli_compares_sides_merged_from_alternating_halves(tmp_path, cli):
    for name, fits in (("base-1", (10.0, 10.1)), ("head-1", (12.0, 12.1)),
                       ("base-2", (9.9, 10.2)), ("head-2", (11.9, 12.2))):  # fmt: skip
        half(tmp_path / name, fits)
    for side in ("base", "head"):
        merged = cli(
            "merge", str(tmp_path / side), *(str(tmp_path / f"{side}-{i}") for i in (1, 2))
        )
        assert merged.returncode == 0, merged.stderr
    result = cli(
        "compare", str(tmp_path / "base"), str(tmp_path / "head"), "--fail", "fit_seconds:10%"
    )
    assert result.returncode == 1  # 4 a side: the 20% slowdown is significant
    assert "regression: dnn fit_seconds: 10.1 s → 12.1 s (+19.9%, p=0.029) exceeds 10%" in (
        result.stderr
    )


def test_cli_merge_of_a_directory_without_runs_is_one_line(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    result = cli("merge", str(tmp_path / "side"), str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'empty' / 'runs.csv'}: not found or empty; is "
        f"{tmp_path / 'empty'} an mnistbench output directory?"
    ]


def test_cli_merge_of_a_file_that_is_no_runs_csv_is_one_line_and_leaves_no_output(tmp_path, cli):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "runs.csv").write_text("a,b\n1,2\n")
    result = cli("merge", str(tmp_path / "side"), str(tmp_path / "other"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'other' / 'runs.csv'}: missing column(s) run_id, architecture, status"
    ]
    assert not (tmp_path / "side").exists()
