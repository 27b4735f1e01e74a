"""The run record: a typed, checked, immutable ``Run`` per run, and runs.csv, its one reader
and writer (every format it ever had), plus the typed table the analyses take."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from mnistbench import record
from mnistbench.columns import BOOL, COLUMNS, FLOAT, FORMAT_COLUMN, INT, LIST, RUN_COLUMNS, TEXT
from mnistbench.errors import MnistbenchError, ResultsWriteError
from mnistbench.record import (
    FORMAT_VERSION,
    RecordError,
    Run,
    RunsWriter,
    in_order,
    label,
    labels,
    new_run,
    reservation_warning,
    several_backends,
    utc_now,
)


def run(run_id: str = "tiny-r0", **fields) -> Run:
    """A record with the three fields every record needs, and ``fields``."""
    return new_run(**{"run_id": run_id, "architecture": "tiny", "status": "ok", **fields})


# --- making a record: every field checked where it is made ----------------------------------


def test_a_record_has_one_field_per_column_in_file_order():
    assert list(run().values()) == RUN_COLUMNS
    assert [field.name for field in dataclasses.fields(Run)] == RUN_COLUMNS


def test_an_unknown_field_is_an_error_naming_it():
    with pytest.raises(RecordError) as error:
        run(gpu_temperature=71.0, fit_secs=2.0)
    assert str(error.value) == "run record: unknown field(s) fit_secs, gpu_temperature"


def test_an_unknown_field_given_to_the_class_itself_is_an_error_too():
    with pytest.raises(TypeError, match="gpu_temperature"):
        Run(run_id="tiny-r0", architecture="tiny", status="ok", gpu_temperature=71.0)


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("fit_seconds", "2.5", "float"),
        ("fit_seconds", True, "float"),
        ("epochs", 2.5, "int"),
        ("epochs", "2", "int"),
        ("epochs", True, "int"),
        ("converged", "True", "bool"),
        ("converged", 1, "bool"),
        ("epoch_loss", "[0.5]", "list"),
        ("backend", 3, "text"),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_the_field(field, value, kind):
    with pytest.raises(RecordError) as error:
        run(**{field: value})
    assert str(error.value) == (
        f"run record field {field!r} holds {kind} values, not {type(value).__name__} ({value!r})"
    )


def test_a_record_without_its_id_architecture_or_status_is_refused():
    with pytest.raises(RecordError) as error:
        new_run(run_id="tiny-r0", architecture="tiny")
    assert str(error.value) == "a run record needs a run_id, an architecture and a status"


def test_nan_is_not_measured_none():
    made = run(steady_epoch_seconds=math.nan, fit_seconds=2.0, epochs=np.float64("nan"))
    assert (made.steady_epoch_seconds, made.fit_seconds, made.epochs) == (None, 2.0, None)


def test_each_kind_holds_one_python_type_whatever_it_was_given():
    made = run(
        epochs=np.int64(3),
        batch_size=32.0,  # a whole float is the int it holds
        fit_seconds=np.float32(1.5),
        params=7850,
        test_accuracy=1,  # an int is a float of that value
        converged=np.bool_(True),
        epoch_loss=[0.5, 0.25],
        sample_predictions=np.array([7, 2]).tolist(),
    )
    assert (made.epochs, type(made.epochs)) == (3, int)
    assert (made.batch_size, type(made.batch_size)) == (32, int)
    assert (made.fit_seconds, type(made.fit_seconds)) == (1.5, float)
    assert (made.test_accuracy, type(made.test_accuracy)) == (1.0, float)
    assert made.converged is True
    assert made.epoch_loss == (0.5, 0.25) and made.sample_predictions == (7, 2)


def test_empty_fields_are_empty_of_their_kind():
    made = run(error=None, backend=None, fit_seconds=None, devices=None)
    empty = {TEXT: "", INT: None, FLOAT: None, BOOL: None, LIST: ()}
    for column in COLUMNS:
        if column.name not in ("run_id", "config_id", "architecture", "status"):
            assert getattr(made, column.name) == empty[column.kind], column.name
    assert (made.error, made.backend, made.devices) == ("", "", ())


def test_a_record_is_immutable_and_a_changed_copy_is_checked_again():
    made = run(fit_seconds=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.fit_seconds = 3.0
    assert made.replace(fit_seconds=3.0).fit_seconds == 3.0 and made.fit_seconds == 2.0
    with pytest.raises(RecordError):
        made.replace(fit_seconds="fast")


def test_only_an_ok_record_is_ok():
    statuses = [record.OK, record.FAILED, record.DIVERGED, record.INTERRUPTED]
    assert [run(status=status).ok for status in statuses] == [True, False, False, False]


def test_a_record_travels_between_processes_unchanged():
    made = run(fit_seconds=2.0, devices=[{"kind": "cpu", "name": "x", "memory_mb": 1.0}])
    assert pickle.loads(pickle.dumps(made)) == made


def test_utc_now_is_iso_8601_to_the_second_in_utc():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", utc_now())


# --- runs.csv: the current format round-trips every kind ------------------------------------

EVERY_KIND = dict(
    config_id="tiny-spe4",
    backend="tensorflow",
    error="",
    epochs=3,
    cpus_reserved=2,
    fit_seconds=0.1 + 0.2,  # a float that str() would round: repr keeps every digit
    test_accuracy=0.97,
    steady_epoch_seconds=None,
    jit_compile=False,
    machine_changed=True,
    converged=None,
    epoch_loss=[0.5, 0.25],
    sample_predictions=[7, 2, 1],
    devices=[{"kind": "cpu", "name": 'Xeon, "v4"', "memory_mb": None}],
    inference_curve=[],
    started_at="2025-01-02T03:04:05+00:00",
)


def test_every_kind_round_trips_through_runs_csv(tmp_path):
    runs = [
        run("tiny-spe4-r0", **EVERY_KIND),
        run("tiny-r1", config_id="tiny", status="failed", error='ValueError: bad, "quoted"'),
    ]
    record.write(tmp_path / "runs.csv", runs)
    assert record.read(tmp_path) == runs


def test_runs_csv_leads_with_its_format_and_writes_cells_by_kind(tmp_path):
    record.write(tmp_path / "runs.csv", [run("tiny-spe4-r0", **EVERY_KIND)])
    with open(tmp_path / "runs.csv", newline="") as handle:
        (cells,) = list(csv.DictReader(handle))
    assert list(cells) == [FORMAT_COLUMN, *RUN_COLUMNS]
    assert {
        name: cells[name]
        for name in (
            FORMAT_COLUMN,
            "epochs",
            "fit_seconds",
            "steady_epoch_seconds",
            "jit_compile",
            "machine_changed",
            "converged",
            "epoch_loss",
            "inference_curve",
            "error",
        )
    } == {
        FORMAT_COLUMN: str(FORMAT_VERSION),
        "epochs": "3",
        "fit_seconds": repr(0.1 + 0.2),
        "steady_epoch_seconds": "",  # not measured: an empty cell, never "nan"
        "jit_compile": "False",
        "machine_changed": "True",
        "converged": "",
        "epoch_loss": "[0.5,0.25]",
        "inference_curve": "",
        "error": "",
    }


# --- runs.csv: older formats still read, newer ones are refused --------------------------------

#: A runs.csv as mnistbench wrote it before the format had a version: no format_version
#: column, no config_id yet (runs keyed by architecture), flags as True/False, lists as
#: JSON with spaces, counts that pandas had written as floats, a column since dropped, and
#: a failed run's empty cells.
FORMAT_1 = (
    "run_id,architecture,plugin,backend,epochs,batch_size,jit_compile,fit_seconds,"
    "epoch_seconds,sample_predictions,test_accuracy,converged,retired_column,status,error\n"
    'dnn-r0,dnn,dnn,tensorflow,2.0,32,True,30.5,"[15.25, 15.25]","[7, 2, 1]",0.97,false,x,ok,\n'
    'cnn-r0,cnn,cnn,,,32,,,,,,,,failed,"ValueError: expected ndim=3, found ndim=2"\n'
)


def test_a_format_1_file_written_by_the_old_code_still_reads(tmp_path):
    (tmp_path / "runs.csv").write_text(FORMAT_1)
    ok, failed = record.read(tmp_path)
    assert ok == run(
        "dnn-r0",
        config_id="dnn",  # no config_id column: keyed by its architecture
        architecture="dnn",
        plugin="dnn",
        backend="tensorflow",
        epochs=2,
        batch_size=32,
        jit_compile=True,
        fit_seconds=30.5,
        epoch_seconds=[15.25, 15.25],
        sample_predictions=[7, 2, 1],
        test_accuracy=0.97,
        converged=False,
    )
    assert failed == run(
        "cnn-r0",
        config_id="cnn",
        architecture="cnn",
        plugin="cnn",
        batch_size=32,
        status="failed",
        error="ValueError: expected ndim=3, found ndim=2",
    )


def test_a_format_1_row_with_an_empty_config_id_is_keyed_by_its_architecture(tmp_path):
    (tmp_path / "runs.csv").write_text("run_id,config_id,architecture,status\ndnn-r0,,dnn,ok\n")
    assert [r.config_id for r in record.read(tmp_path)] == ["dnn"]


@pytest.mark.parametrize(
    ("cell", "value"),
    [("True", True), ("false", False), ("1", True), ("0.0", False), ("yes", True), ("", None)],
)
def test_a_flag_reads_every_spelling_of_true_and_false(tmp_path, cell, value):
    (tmp_path / "runs.csv").write_text(f"run_id,architecture,status,converged\nx,dnn,ok,{cell}\n")
    assert record.read(tmp_path)[0].converged is value


def test_text_cells_are_read_stripped(tmp_path):
    (tmp_path / "runs.csv").write_text("run_id,architecture,status\ndnn-r0 , dnn, ok \n")
    (read,) = record.read(tmp_path)
    assert (read.run_id, read.architecture, read.status, read.ok) == ("dnn-r0", "dnn", "ok", True)


def test_a_newer_format_is_refused_in_one_line(tmp_path):
    (tmp_path / "runs.csv").write_text(f"{FORMAT_COLUMN},run_id,architecture,status\n3,x,dnn,ok\n")
    with pytest.raises(RecordError) as error:
        record.read(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'runs.csv'}: runs.csv format 3, newer than this mnistbench reads "
        f"({FORMAT_VERSION}): upgrade mnistbench"
    )


def test_the_current_format_and_format_1_read_alike(tmp_path):
    (tmp_path / "runs.csv").write_text(f"{FORMAT_COLUMN},run_id,architecture,status\n1,x,dnn,ok\n")
    assert record.read(tmp_path) == [run("x", config_id="dnn", architecture="dnn")]


# --- runs.csv: what cannot be read is one line naming the file ------------------------------


def test_a_directory_without_runs_names_the_file(tmp_path):
    with pytest.raises(MnistbenchError) as error:
        record.read(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'runs.csv'}: not found; is {tmp_path} an mnistbench output directory?"
    )


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "runs.csv").write_text("")
    with pytest.raises(MnistbenchError) as error:
        record.read(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'runs.csv'}: empty; is {tmp_path} an mnistbench output directory?"
    )


def test_a_file_without_the_required_columns_names_them(tmp_path):
    (tmp_path / "runs.csv").write_text("architecture,fit_seconds\ndnn,1.0\n")
    with pytest.raises(MnistbenchError) as error:
        record.read(tmp_path)
    assert str(error.value) == f"{tmp_path / 'runs.csv'}: missing column(s) run_id, status"


def test_a_file_that_is_not_text_is_refused(tmp_path):
    (tmp_path / "runs.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MnistbenchError) as error:
        record.read(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'runs.csv'}: cannot be read as CSV: ")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("column", "cell", "why"),
    [
        ("fit_seconds", "fast", "could not convert string to float: 'fast'"),
        ("epochs", "2.5", "'2.5' is not a whole number"),
        ("converged", "maybe", "'maybe' is not True or False"),
        ("epoch_loss", '{"a": 1}', "'{\"a\": 1}' is not a JSON list"),
    ],
)
def test_a_cell_that_cannot_be_read_names_its_row_and_column(tmp_path, column, cell, why):
    with open(tmp_path / "runs.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["run_id", "architecture", "status", column]])
        csv.writer(handle).writerows([["x", "dnn", "ok", cell]])
    with pytest.raises(RecordError) as error:
        record.read(tmp_path)
    assert str(error.value) == f"{tmp_path / 'runs.csv'} row 2: column {column}: {why}"


def test_a_row_without_an_id_is_refused_naming_it(tmp_path):
    (tmp_path / "runs.csv").write_text("run_id,architecture,status\ndnn-r0,dnn,ok\n,dnn,ok\n")
    with pytest.raises(RecordError) as error:
        record.read(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'runs.csv'} row 3: a row without a run_id, architecture or status"
    )


def test_read_if_present_of_a_directory_without_runs_is_empty(tmp_path):
    assert record.read_if_present(tmp_path) == []


# --- RunsWriter: rewritten whole, atomically, after each run ---------------------------------


def lines(directory: Path) -> list[str]:
    return (directory / "runs.csv").read_text().splitlines()


def test_runs_are_written_in_plan_order_whatever_order_they_finish(tmp_path):
    writer = RunsWriter(tmp_path, ["tiny-r0", "tiny-r1", "tiny-r2"])
    for repeat in (2, 0, 1):
        writer.append(run(f"tiny-r{repeat}"))
    assert [r.run_id for r in record.read(tmp_path)] == ["tiny-r0", "tiny-r1", "tiny-r2"]


def test_the_file_after_each_run_holds_the_header_and_every_finished_run(tmp_path):
    writer = RunsWriter(tmp_path, ["tiny-r0", "tiny-r1"])
    writer.append(run("tiny-r1", config_id="tiny", plugin="faulty", plugin_version="0.1.0"))
    assert lines(tmp_path)[0] == ",".join([FORMAT_COLUMN, *RUN_COLUMNS])
    assert len(lines(tmp_path)) == 2
    assert lines(tmp_path)[1].startswith(f"{FORMAT_VERSION},tiny-r1,tiny,tiny,faulty,0.1.0,")


def test_a_rerun_replaces_the_earlier_record_of_its_run(tmp_path):
    writer = RunsWriter(tmp_path, ["tiny-r0"], [run(status="failed", error="boom")])
    writer.append(run())
    assert [(r.run_id, r.status) for r in record.read(tmp_path)] == [("tiny-r0", "ok")]


def test_kept_records_are_written_with_the_new_ones(tmp_path):
    writer = RunsWriter(tmp_path, ["tiny-r0", "tiny-r1"], [run("tiny-r0")])
    writer.append(run("tiny-r1"))
    assert [r.run_id for r in record.read(tmp_path)] == ["tiny-r0", "tiny-r1"]


def test_a_failed_write_keeps_the_earlier_file_and_names_it(tmp_path, monkeypatch):
    writer = RunsWriter(tmp_path, ["tiny-r0", "tiny-r1"])
    writer.append(run("tiny-r0"))
    before = (tmp_path / "runs.csv").read_text()
    monkeypatch.setattr(record, "atomic_writer", fills_up(record.atomic_writer))
    with pytest.raises(ResultsWriteError) as error:
        writer.append(run("tiny-r1"))
    assert str(error.value) == (
        f"cannot write {tmp_path / 'runs.csv'}: No space left on device; "
        "the runs finished before this one are intact in it"
    )
    assert (tmp_path / "runs.csv").read_text() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["runs.csv"]


def fills_up(real_writer):
    """An atomic writer whose disk fills up halfway through the write."""

    @contextlib.contextmanager
    def writer(path, mode="w"):
        with real_writer(path, mode) as handle:
            handle.write("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
            yield handle  # pragma: no cover

    return writer


# --- the typed table ---------------------------------------------------------------------------


def test_the_table_types_each_column_as_its_kind():
    runs = [run("tiny-r0", **EVERY_KIND), run("tiny-r1", status="failed", error="boom")]
    table = record.frame(runs)
    assert list(table.columns) == RUN_COLUMNS
    for column in COLUMNS:
        dtype = table[column.name].dtype
        assert dtype == (float if column.kind in (INT, FLOAT) else object), column.name
    assert list(table["backend"]) == ["tensorflow", ""]  # text: str, "" when empty
    assert table["epochs"].iloc[0] == 3.0 and math.isnan(table["epochs"].iloc[1])
    assert math.isnan(table["steady_epoch_seconds"].iloc[0])  # not measured: NaN
    assert list(table["machine_changed"]) == [True, None]  # flags: True, False or None
    assert list(table["jit_compile"]) == [False, None]
    assert list(table["epoch_loss"]) == [(0.5, 0.25), ()]  # lists: tuples
    assert list(record.ok(table)) == [True, False]


def test_a_table_of_no_runs_has_every_column():
    assert list(record.frame([]).columns) == RUN_COLUMNS


def test_the_table_takes_more_columns_per_run():
    table = record.frame([run("a"), run("b")], extra=[{"sweep": "s1"}, {"sweep": "s2"}])
    assert list(table["sweep"]) == ["s1", "s2"]


# --- configurations and labels -----------------------------------------------------------------


def test_label_is_the_config_id_alone_with_one_backend():
    assert label("dnn-spe32", "jax", several_backends=False) == "dnn-spe32"


def test_label_names_the_backend_beside_other_backends():
    assert label("dnn", "jax", several_backends=True) == "dnn (jax)"


def test_label_of_a_run_that_failed_before_its_backend_was_known_is_bare():
    assert label("dnn", "", several_backends=True) == "dnn"


def test_several_backends_ignores_empty_ones():
    assert several_backends(["jax", "", math.nan, "jax"]) is False
    assert several_backends(["jax", "torch"]) is True


def test_labels_of_one_backend_are_the_config_ids():
    runs = [run(config_id="dnn", backend="tensorflow"), run(config_id="dnn-spe4", backend="")]
    assert list(labels(record.frame(runs))) == ["dnn", "dnn-spe4"]


def test_labels_of_several_backends_name_each():
    runs = [run("a", config_id="dnn", backend="jax"), run("b", config_id="dnn", backend="torch")]
    assert list(labels(record.frame(runs))) == ["dnn (jax)", "dnn (torch)"]


def test_labels_keep_the_tables_index():
    table = record.frame([run("a"), run("b")]).iloc[[1]]
    assert list(labels(table).index) == [1]


def test_older_runs_without_config_id_are_labelled_by_architecture(tmp_path):
    (tmp_path / "runs.csv").write_text("run_id,architecture,status\ncnn-r0,cnn,ok\ndnn-r0,dnn,ok\n")
    assert list(labels(record.frame(record.read(tmp_path)))) == ["cnn", "dnn"]


def test_in_order_keeps_first_appearances():
    assert in_order(["dnn", "cnn", "dnn", "rnn"]) == ["dnn", "cnn", "rnn"]


# --- reservations --------------------------------------------------------------------------


def test_one_reservation_gives_no_warning():
    runs = [
        run("a", executor="local", cpus_reserved=2),
        run("b", executor="local", cpus_reserved=2),
    ]
    assert reservation_warning(runs) is None


def test_different_reservations_are_named_in_the_warning():
    runs = [run("a", executor="local", cpus_reserved=2), run("b", executor="ray", cpus_reserved=1)]
    assert reservation_warning(runs) == (
        "these runs were measured under different reservations (executor/CPUs: local/2, ray/1): "
        "their times are not comparable with each other"
    )


def test_runs_without_placement_give_no_warning():
    assert reservation_warning([run("a"), run("b", executor="local", cpus_reserved=2)]) is None
