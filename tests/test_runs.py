"""Reading runs.csv: typed columns, configuration keys and their one label, reservations."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mnistbench.errors import MnistbenchError
from mnistbench.runs import (
    config_keys,
    flags,
    in_order,
    is_ok,
    json_list,
    label,
    labels,
    numeric,
    read_rows,
    read_runs,
    reservation_warning,
    several_backends,
    text,
)

# --- read_runs, read_rows ------------------------------------------------------------------


def test_read_runs_of_a_directory_without_runs_names_the_file(tmp_path):
    with pytest.raises(MnistbenchError) as error:
        read_runs(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'runs.csv'}: not found; is {tmp_path} an mnistbench output directory?"
    )


def test_read_runs_without_the_status_column_names_it(tmp_path):
    (tmp_path / "runs.csv").write_text("architecture,fit_seconds\ndnn,1.0\n")
    with pytest.raises(MnistbenchError) as error:
        read_runs(tmp_path)
    assert str(error.value) == f"{tmp_path / 'runs.csv'}: missing column(s) status"


def test_read_runs_of_an_empty_file_is_refused(tmp_path):
    (tmp_path / "runs.csv").write_text("")
    with pytest.raises(MnistbenchError) as error:
        read_runs(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'runs.csv'}: cannot be read as CSV: ")


def test_read_runs_returns_every_row(tmp_path):
    (tmp_path / "runs.csv").write_text("architecture,status,fit_seconds\ndnn,ok,1.5\ncnn,failed,\n")
    runs = read_runs(tmp_path)
    assert list(runs["architecture"]) == ["dnn", "cnn"]
    assert runs.loc[0, "fit_seconds"] == 1.5 and math.isnan(runs.loc[1, "fit_seconds"])


def test_read_rows_returns_the_cells_as_written(tmp_path):
    (tmp_path / "runs.csv").write_text("run_id,status,fit_seconds\ndnn-r0,ok,1.50\n")
    assert read_rows(tmp_path) == [{"run_id": "dnn-r0", "status": "ok", "fit_seconds": "1.50"}]


def test_read_rows_without_a_file_is_empty(tmp_path):
    assert read_rows(tmp_path) == []


# --- typed columns -------------------------------------------------------------------------


def test_only_ok_runs_are_ok():
    runs = pd.DataFrame({"status": ["ok", "failed", "diverged", "interrupted", None, " ok "]})
    assert list(is_ok(runs)) == [True, False, False, False, False, True]


def test_text_of_a_missing_or_empty_column_is_empty_strings():
    runs = pd.DataFrame({"error": [math.nan, math.nan]})
    assert list(text(runs, "error")) == ["", ""]
    assert list(text(runs, "backend")) == ["", ""]


def test_numeric_makes_unparsable_cells_nan():
    values = numeric(pd.DataFrame({"fit_seconds": ["1.5", "x", None]}), "fit_seconds")
    assert values.iloc[0] == 1.5 and values.iloc[1:].isna().all()


def test_numeric_of_a_missing_column_is_nan():
    assert numeric(pd.DataFrame({"a": [1]}), "fit_seconds").isna().all()


def test_flags_read_every_spelling_of_true_and_false():
    runs = pd.DataFrame({"converged": ["True", "false", "1", "0.0", "", "maybe", True]})
    assert list(flags(runs, "converged")) == [True, False, True, False, None, None, True]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("[1, 2]", [1, 2]), ([3], [3]), ("", []), (math.nan, []), ("{not json", []), ('{"a": 1}', [])],
)
def test_json_list_cells(cell, expected):
    assert json_list(cell) == expected


# --- configurations and labels -------------------------------------------------------------


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
    runs = pd.DataFrame({"architecture": ["dnn", "dnn"], "config_id": ["dnn", "dnn-spe4"]})
    runs["backend"] = "tensorflow"
    assert list(labels(runs)) == ["dnn", "dnn-spe4"]


def test_labels_of_several_backends_name_each():
    runs = pd.DataFrame(
        {"architecture": ["dnn", "dnn"], "config_id": ["dnn", "dnn"], "backend": ["jax", "torch"]}
    )
    assert list(labels(runs)) == ["dnn (jax)", "dnn (torch)"]


def test_older_runs_without_config_id_are_keyed_by_architecture():
    runs = pd.DataFrame({"architecture": ["cnn", "dnn"], "status": ["ok", "ok"]})
    assert list(config_keys(runs)) == ["cnn", "dnn"]


def test_in_order_keeps_first_appearances():
    assert in_order(["dnn", "cnn", "dnn", "rnn"]) == ["dnn", "cnn", "rnn"]


# --- reservations --------------------------------------------------------------------------


def test_one_reservation_gives_no_warning():
    runs = pd.DataFrame({"executor": ["local", "local"], "cpus_reserved": [2, 2]})
    assert reservation_warning(runs) is None


def test_different_reservations_are_named_in_the_warning():
    runs = pd.DataFrame({"executor": ["local", "ray"], "cpus_reserved": [2, 1]})
    assert reservation_warning(runs) == (
        "these runs were measured under different reservations (executor/CPUs: local/2, ray/1): "
        "their times are not comparable with each other"
    )


def test_runs_without_placement_columns_give_no_warning():
    assert reservation_warning(pd.DataFrame({"architecture": ["dnn"]})) is None
