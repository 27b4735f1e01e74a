"""The metric registry: every runs.csv column declared once, documented, with unit and direction."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from mnistbench import metrics
from mnistbench.metrics import (
    COLUMNS,
    COMPARED,
    EXTRA_INFO,
    HEADLINE,
    HIGHER,
    LOWER,
    RUN_COLUMNS,
    columns_markdown,
    in_view,
    metric,
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


def test_every_column_a_real_sweep_writes_is_in_the_registry(cli_sweep):
    with open(cli_sweep / "runs.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert [column for column in header if column not in RUN_COLUMNS] == []


def test_the_registry_is_the_header_a_real_sweep_writes(cli_sweep):
    with open(cli_sweep / "runs.csv", newline="") as handle:
        assert next(csv.reader(handle)) == RUN_COLUMNS


def test_column_names_are_unique():
    assert len(RUN_COLUMNS) == len(set(RUN_COLUMNS))


def test_docs_columns_md_is_generated_from_the_registry():
    # Regenerate with: python -m mnistbench.metrics > docs/columns.md
    path = ROOT / "docs" / "columns.md"
    assert path.is_file(), "docs/columns.md is missing: python -m mnistbench.metrics > it"
    assert path.read_text() == columns_markdown()


def test_the_column_reference_has_one_row_per_column():
    rows = [line for line in columns_markdown().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == RUN_COLUMNS


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


@pytest.mark.parametrize("column", COLUMNS, ids=lambda column: column.name)
def test_a_unit_in_a_column_name_is_its_declared_unit(column):
    named = [unit for suffix, unit in UNIT_SUFFIXES.items() if column.name.endswith(suffix)]
    if named:
        assert column.unit == named[0]
    elif column.is_metric:  # a metric without a unit in its name is dimensionless
        assert column.unit == ""


def test_extra_info_metrics_are_headline_metrics_too():
    assert {c.name for c in in_view(EXTRA_INFO)} <= {c.name for c in in_view(HEADLINE)}


def test_summary_columns_are_in_runs_csv_order():
    assert [c.summary for c in COLUMNS if c.summary] == [
        "run",
        "fit s",
        "ep1 s",
        "ep2+ s",
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
        ("test_accuracy", float("nan"), False, "-"),
        ("test_accuracy", None, False, "-"),
    ],
)
def test_a_value_is_formatted_with_its_unit(name, value, signed, text):
    assert metric(name).format(value, signed=signed) == text


def test_python_dash_m_prints_the_column_reference():
    result = subprocess.run(
        [sys.executable, "-m", metrics.__name__], capture_output=True, text=True, check=True
    )
    assert result.stdout == columns_markdown()
