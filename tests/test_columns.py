"""The column registry: every runs.csv column declared once, documented, with its kind, role,
unit and better direction; and what derives from the roles."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from mnistbench import columns
from mnistbench.columns import (
    BOOKKEEPING,
    COLUMNS,
    COMPARED,
    CONFIG_KEY,
    EXTRA_INFO,
    FORMAT_COLUMN,
    HEADLINE,
    HIGHER,
    KINDS,
    LOWER,
    MACHINE,
    MEASUREMENT,
    ROLES,
    RUN_COLUMNS,
    SETTING,
    WORK,
    Column,
    columns_markdown,
    in_view,
    metric,
    metrics,
    normalized,
    series_key,
    with_role,
    work_options,
)

ROOT = Path(__file__).resolve().parent.parent
UNITS = {"s", "ms", "samples/s", "MB", "FLOP/s", "FLOPs", ""}
#: A unit in a column's name, as convention 6 asks (``fit_seconds``, ``peak_memory_mb``).
UNIT_SUFFIXES = {
    "_seconds": "s",
    "seconds_per_epoch": "s",
    "_ms": "ms",
    "_mb": "MB",
    "samples_per_second": "samples/s",
    "flops_per_second": "FLOP/s",
    "flops_per_sample": "FLOPs",
}


def test_the_registry_is_the_header_a_real_sweep_writes(cli_sweep):
    with open(cli_sweep / "runs.csv", newline="") as handle:
        header = next(csv.reader(handle))
    # Every column a real sweep writes is in the registry, in its order, after the format.
    assert header == [FORMAT_COLUMN, *RUN_COLUMNS]


def test_column_names_are_unique():
    assert len(RUN_COLUMNS) == len(set(RUN_COLUMNS))
    assert FORMAT_COLUMN not in RUN_COLUMNS


def test_docs_columns_md_is_generated_from_the_registry():
    # Regenerate with: python -m mnistbench.columns > docs/columns.md
    path = ROOT / "docs" / "columns.md"
    assert path.is_file(), "docs/columns.md is missing: python -m mnistbench.columns > it"
    assert path.read_text() == columns_markdown()


def test_the_column_reference_has_one_row_per_column_with_its_kind_and_role():
    rows = [line for line in columns_markdown().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [FORMAT_COLUMN, *RUN_COLUMNS]
    cells = {row.split("`")[1]: [c.strip() for c in row.split(" | ")] for row in rows}
    fit = cells["fit_seconds"]
    assert fit[2:6] == ["float", "measurement", "s", "lower"]
    assert fit[6].rstrip(" |") == "headline, compared"
    assert cells["backend"][2:4] == ["text", "work"]


def test_readme_links_the_column_reference():
    assert "](docs/columns.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    "column",
    [c for c in COLUMNS if HEADLINE in c.views or COMPARED in c.views],
    ids=lambda column: column.name,
)
def test_every_headline_or_compared_metric_has_a_direction_and_a_known_unit(column):
    assert column.better in (LOWER, HIGHER)
    assert column.unit in UNITS
    assert column.kind in ("int", "float")  # a metric is a number


def test_every_column_has_a_known_kind_and_role_and_a_description():
    for column in COLUMNS:
        assert column.kind in KINDS, column
        assert column.role in ROLES, column
        assert column.description, column


def test_a_column_of_an_unknown_kind_or_role_is_refused():
    with pytest.raises(ValueError, match="column x: kind 'number', role 'work'"):
        Column("x", "number", WORK, "x")
    with pytest.raises(ValueError, match="role 'result'"):
        Column("x", "float", "result", "x")


def test_every_column_a_unit_in_its_name_declares_it():
    for column in COLUMNS:
        named = [unit for suffix, unit in UNIT_SUFFIXES.items() if column.name.endswith(suffix)]
        if named:
            assert column.unit == named[0], column.name
        elif column.is_metric:  # a metric without a unit in its name is dimensionless
            assert column.unit == "", column.name


def test_extra_info_metrics_are_headline_metrics_too():
    assert {c.name for c in in_view(EXTRA_INFO)} <= {c.name for c in in_view(HEADLINE)}


def test_summary_columns_are_in_runs_csv_order():
    assert [c.summary for c in COLUMNS if c.summary] == [
        "run",
        "fit s",
        "step ms",
        "ep1 s",
        "acc",
        "infer/s",
        "p50 ms",
        "peak MB",
        "status",
    ]


def test_metric_looks_a_column_up_by_name():
    assert metric("fit_seconds").unit == "s"
    with pytest.raises(KeyError):
        metric("fit_time")


def test_metrics_are_the_columns_with_a_direction_in_file_order():
    names = [c.name for c in metrics()]
    assert names == [c.name for c in COLUMNS if c.better is not None]
    assert names[:3] == ["fit_seconds", "steady_step_ms", "first_epoch_seconds"]
    assert "epochs" not in names and "probe_seconds" in names


# --- what derives from the roles -------------------------------------------------------------


def test_roles_sort_the_columns_into_work_settings_measurements_machine_and_bookkeeping():
    assert [c.name for c in with_role(WORK)] == [
        "architecture", "backend", "epochs", "batch_size", "steps_per_execution",
        "jit_compile", "train_samples", "test_samples", "target_accuracy", "eval_every",
    ]  # fmt: skip
    assert [c.name for c in with_role(SETTING)] == [
        "isolation",
        "executor",
        "cpus_reserved",
        "pinned_cpus",
    ]
    assert {"run_id", "config_id", "seed", "repeat", "round", "position", "status"} <= {
        c.name for c in with_role(BOOKKEEPING)
    }
    assert {"node", "device", "probe_seconds", "backend_version"} <= {
        c.name for c in with_role(MACHINE)
    }
    assert all(c.role == MEASUREMENT for c in metrics() if c.name.startswith("fit_seconds"))
    # Every column has exactly one role.
    assert sum(len(with_role(role)) for role in ROLES) == len(COLUMNS)


def test_work_options_are_the_work_columns_but_the_configurations_key():
    assert CONFIG_KEY == ("architecture", "backend")
    assert work_options() == [
        "epochs", "batch_size", "steps_per_execution", "jit_compile", "train_samples",
        "test_samples", "target_accuracy", "eval_every",
    ]  # fmt: skip


def test_a_series_is_keyed_by_the_work_and_the_settings():
    assert series_key() == [c.name for c in COLUMNS if c.role in (WORK, SETTING)]
    settings = {"isolation", "executor", "cpus_reserved", "pinned_cpus"}
    assert set(work_options()) | set(CONFIG_KEY) | settings == set(series_key())


def test_normalized_names_the_normalized_column_where_there_is_one():
    assert normalized("fit_seconds") == "fit_seconds_normalized"
    assert normalized("latency_ms") == "latency_ms_normalized"
    assert normalized("test_accuracy") is None
    assert all(metric(normalized(c.name)).is_metric for c in metrics() if normalized(c.name))


# --- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "signed", "text"),
    [
        ("fit_seconds", 1.234, False, "1.23 s"),
        ("fit_seconds", 12.34, False, "12.3 s"),
        ("fit_seconds", 123.4, False, "123 s"),
        ("fit_seconds", 1.5, True, "+1.50 s"),
        ("train_samples_per_second", 41200.4, False, "41,200 samples/s"),
        ("latency_ms", 1.23456, False, "1.23 ms"),
        ("peak_memory_mb", 1234.56, False, "1,234.6 MB"),
        ("train_flops_per_second", 1.5e9, False, "1.5e+09 FLOP/s"),
        ("test_accuracy", 0.98123, False, "0.9812"),
        ("params", 7850.0, False, "7,850"),
        ("test_accuracy", float("nan"), False, "-"),
        ("test_accuracy", None, False, "-"),
    ],
)
def test_a_value_is_formatted_with_its_unit(name, value, signed, text):
    assert metric(name).format(value, signed=signed) == text


def test_python_dash_m_prints_the_column_reference():
    result = subprocess.run(
        [sys.executable, "-m", columns.__name__], capture_output=True, text=True, check=True
    )
    assert result.stdout == columns_markdown()
