"""Runs as pytest-benchmark JSON (``mnistbench.outputs.benchmark_json``): the document, where
its machine and commit come from, the same file after ``mnistbench run`` and ``mnistbench
report``, and pytest-benchmark's own CLI reading it."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from synthetic_runs import invoke, write_older

from mnistbench import layout, record
from mnistbench.columns import WORK, with_role
from mnistbench.environment import write_environment
from mnistbench.outputs.benchmark_json import (
    PARAM_COLUMNS,
    to_pytest_benchmark,
    write_pytest_benchmark,
)
from mnistbench.record import Run

PYTEST_BENCHMARK_JSON = str(layout.PYTEST_BENCHMARK_JSON)

NAN = math.nan

#: An environment.json as ``mnistbench run`` records it: pytest-benchmark's description of
#: the machine and the commit, taken when the runs were measured, on a host that is not this.
RECORDED = {
    "python": "3.11.7",
    "cpu_count": 16,
    "git_commit": "0123abcd",
    "machine_info": {
        "node": "bench-host-01",
        "processor": "x86_64",
        "machine": "x86_64",
        "python_compiler": "GCC 12.2.0",
        "python_implementation": "CPython",
        "python_implementation_version": "3.11.7",
        "python_version": "3.11.7",
        "python_build": ["main", "Dec  4 2023 18:10:26"],
        "release": "6.1.0-18-amd64",
        "system": "Linux",
        "cpu": {"brand_raw": "Bench CPU @ 3.00GHz", "count": 16},
    },
    "commit_info": {
        "id": "0123abcd",
        "time": "2026-01-01T00:00:00+00:00",
        "author_time": "2026-01-01T00:00:00+00:00",
        "dirty": False,
        "project": "mnistbench",
        "branch": "main",
    },
}


def make_records(fit_scale: float = 1.0) -> list[Run]:
    """Two configurations of three repeats each, plus one failed run of the second."""
    common = dict(backend="tensorflow", batch_size=32, test_samples=1000, train_samples=5000)
    dnn = [
        record.new_run(
            **common,
            run_id=f"dnn-r{repeat}",
            config_id="dnn",
            architecture="dnn",
            epochs=3,
            steps_per_execution=1,
            jit_compile=True,
            status="ok",
            fit_seconds=fit * fit_scale,
            steady_epoch_seconds=steady,
            inference_samples_per_second=samples_per_second,
            latency_ms=latency,
            test_accuracy=accuracy,
            test_loss=loss,
            peak_memory_mb=memory,
            params=101_770,
            started_at=f"2026-01-01T00:0{repeat}:00+00:00",
        )
        for repeat, (fit, steady, samples_per_second, latency, accuracy, loss, memory) in enumerate(
            [
                (10.0, 2.0, 2000.0, 2.0, 0.97, 0.10, 500.0),
                (12.0, 2.5, 1000.0, 4.0, 0.95, 0.30, 520.0),
                (11.0, 3.0, 4000.0, 3.0, 0.96, 0.20, 510.0),
            ]
        )
    ]
    cnn = [
        record.new_run(
            **common,
            run_id=f"cnn-spe8-r{repeat}",
            config_id="cnn-spe8",
            architecture="cnn",
            epochs=1,
            steps_per_execution=8,
            jit_compile=False,
            status="ok",
            fit_seconds=fit * fit_scale,
            # One epoch: no steady epochs.
            steady_epoch_seconds=NAN,
            inference_samples_per_second=500.0,
            latency_ms=5.0,
            test_accuracy=0.98,
            test_loss=0.05,
            peak_memory_mb=700.0,
            params=34_826,
            started_at=f"2026-01-01T01:0{repeat}:00+00:00",
        )
        for repeat, fit in enumerate([20.0, 22.0, 24.0])
    ]
    # A failed run whose numbers would show if it were counted.
    failed = record.new_run(
        **common,
        run_id="cnn-spe8-r3",
        config_id="cnn-spe8",
        architecture="cnn",
        status="failed",
        fit_seconds=1.0,
        latency_ms=0.1,
        test_accuracy=0.1,
        started_at="2025-01-01T00:00:00+00:00",
    )
    return [*dnn, *cnn, failed]


def make_runs(fit_scale: float = 1.0) -> pd.DataFrame:
    """:func:`make_records` as the report hook gets them: their typed table."""
    return record.frame(make_records(fit_scale))


def benchmark(document: dict, name: str) -> dict:
    (found,) = [b for b in document["benchmarks"] if b["name"] == name]
    return found


@pytest.fixture(scope="module")
def document() -> dict:
    return to_pytest_benchmark(make_runs(), environment=RECORDED)


def test_document_has_the_top_level_keys_pytest_benchmark_writes(document):
    assert list(document) == ["machine_info", "commit_info", "benchmarks", "datetime", "version"]


def test_each_benchmark_has_the_fields_of_a_benchmark_json_entry(document):
    from pytest_benchmark.stats import Stats

    for entry in document["benchmarks"]:
        assert list(entry) == [
            "group",
            "name",
            "fullname",
            "params",
            "param",
            "extra_info",
            "options",
            "stats",
        ]
        assert set(entry["stats"]) == {*Stats.fields, "data", "iterations"}


def test_each_configuration_gets_one_benchmark_per_group_with_data(document):
    assert [(b["group"], b["name"], b["fullname"]) for b in document["benchmarks"]] == [
        ("fit", "fit[dnn]", "mnistbench::fit[dnn]"),
        ("steady_epoch", "steady_epoch[dnn]", "mnistbench::steady_epoch[dnn]"),
        ("inference", "inference[dnn]", "mnistbench::inference[dnn]"),
        ("latency", "latency[dnn]", "mnistbench::latency[dnn]"),
        ("fit", "fit[cnn-spe8]", "mnistbench::fit[cnn-spe8]"),
        ("inference", "inference[cnn-spe8]", "mnistbench::inference[cnn-spe8]"),
        ("latency", "latency[cnn-spe8]", "mnistbench::latency[cnn-spe8]"),
    ]


def test_fit_stats_are_computed_from_the_repeats(document):
    stats = benchmark(document, "fit[dnn]")["stats"]
    assert stats["data"] == [10.0, 12.0, 11.0]
    assert (stats["min"], stats["max"], stats["median"], stats["mean"]) == (10.0, 12.0, 11.0, 11.0)
    assert (stats["rounds"], stats["iterations"], stats["total"]) == (3, 1, 33.0)
    assert stats["stddev"] == 1.0


def test_steady_epoch_stats_come_from_steady_epoch_seconds(document):
    stats = benchmark(document, "steady_epoch[dnn]")["stats"]
    assert stats["data"] == [2.0, 2.5, 3.0]
    assert (stats["min"], stats["max"], stats["median"], stats["mean"]) == (2.0, 3.0, 2.5, 2.5)


def test_inference_rounds_are_seconds_per_predict_over_the_test_set(document):
    stats = benchmark(document, "inference[dnn]")["stats"]
    assert stats["data"] == [0.5, 1.0, 0.25]
    assert (stats["min"], stats["max"], stats["median"]) == (0.25, 1.0, 0.5)
    assert stats["mean"] == pytest.approx(1.75 / 3)


def test_latency_rounds_are_the_median_latency_in_seconds(document):
    stats = benchmark(document, "latency[dnn]")["stats"]
    assert stats["data"] == pytest.approx([0.002, 0.004, 0.003])
    assert stats["median"] == pytest.approx(0.003)
    assert stats["rounds"] == 3


def test_failed_runs_are_left_out(document):
    fit = benchmark(document, "fit[cnn-spe8]")
    assert fit["stats"]["data"] == [20.0, 22.0, 24.0]
    assert (fit["stats"]["min"], fit["stats"]["rounds"]) == (20.0, 3)
    assert fit["extra_info"]["repeats"] == 3
    assert benchmark(document, "latency[cnn-spe8]")["stats"]["min"] == 0.005


def test_params_are_the_work_the_configuration_did_and_param_is_its_id(document):
    assert PARAM_COLUMNS == tuple(column.name for column in with_role(WORK))
    fit = benchmark(document, "fit[cnn-spe8]")
    assert fit["param"] == "cnn-spe8"
    assert fit["params"] == {
        "architecture": "cnn",
        "backend": "tensorflow",
        "epochs": 1,
        "batch_size": 32,
        "steps_per_execution": 8,
        "jit_compile": False,
        "train_samples": 5000,
        "test_samples": 1000,
        "target_accuracy": None,
        "eval_every": None,
    }


def test_extra_info_holds_medians_the_models_size_and_repeats(document):
    # The medians of the extra_info metrics that were measured (no speed probe here).
    assert benchmark(document, "inference[dnn]")["extra_info"] == {
        "test_accuracy": 0.96,
        "test_loss": 0.2,
        "peak_memory_mb": 510.0,
        "params": 101_770,
        "repeats": 3,
    }


def test_options_record_the_rounds_and_the_timer(document):
    assert benchmark(document, "fit[dnn]")["options"] == {
        "disable_gc": False,
        "timer": "perf_counter",
        "min_rounds": 3,
        "max_time": None,
        "min_time": None,
        "precision": None,
        "confidence": None,
        "warmup": False,
    }
    assert benchmark(document, "inference[dnn]")["options"]["warmup"] is True


def test_machine_info_is_the_recorded_one_plus_the_whole_environment(document):
    assert document["machine_info"] == {**RECORDED["machine_info"], "mnistbench": RECORDED}


def test_commit_info_is_the_recorded_one(document):
    assert document["commit_info"] == RECORDED["commit_info"]


def test_an_older_environment_without_machine_info_stands_in_for_it():
    older = {
        "python": "3.11.2",
        "cpu": "Old CPU",
        "cpu_count": 8,
        "platform": "Linux-5.10-x86_64",
        "git_commit": "fedcba98",
    }
    document = to_pytest_benchmark(make_runs(), environment=older)
    assert document["machine_info"] == {
        "python_version": "3.11.2",
        "cpu": {"brand_raw": "Old CPU", "count": 8},
        "platform": "Linux-5.10-x86_64",
        "mnistbench": older,
    }
    assert document["commit_info"] == {"id": "fedcba98"}


def test_without_a_recorded_environment_nothing_of_this_host_is_reported():
    document = to_pytest_benchmark(make_runs(), environment={})
    assert document["machine_info"] == {"mnistbench": {}}
    assert document["commit_info"] == {}


def test_the_file_takes_machine_and_commit_from_the_directorys_environment_json(tmp_path):
    write_environment(tmp_path, RECORDED)
    written = json.loads(write_pytest_benchmark(make_runs(), tmp_path).read_text())
    assert written["machine_info"] == {**RECORDED["machine_info"], "mnistbench": RECORDED}
    assert written["commit_info"] == RECORDED["commit_info"]


def test_version_is_the_installed_pytest_benchmark(document):
    import pytest_benchmark

    assert document["version"] == pytest_benchmark.__version__


def test_datetime_is_when_the_earliest_ok_run_started(document):
    assert document["datetime"] == "2026-01-01T00:00:00+00:00"


def names_of(runs: pd.DataFrame) -> list[str]:
    return [b["name"] for b in to_pytest_benchmark(runs, environment={})["benchmarks"]]


def older(tmp_path: Path, lacking: list[str]) -> pd.DataFrame:
    """:func:`make_records` read back from an older runs.csv that lacks the columns
    ``lacking``."""
    write_older(make_records(), tmp_path, lacking=lacking)
    return record.frame(record.read(tmp_path))


def test_a_group_whose_column_an_older_runs_csv_lacks_is_left_out(tmp_path):
    runs = older(tmp_path, ["latency_ms", "steady_epoch_seconds", "started_at"])
    names = names_of(runs)
    assert names == ["fit[dnn]", "inference[dnn]", "fit[cnn-spe8]", "inference[cnn-spe8]"]


def test_runs_without_config_id_are_grouped_by_architecture(tmp_path):
    names = names_of(older(tmp_path, ["config_id"]))
    assert names[0] == "fit[dnn]" and "fit[cnn]" in names


def test_a_param_the_repeats_disagree_on_is_none():
    records = make_records()
    records[1] = records[1].replace(epochs=2)  # a time-to-accuracy target stopped it early
    document = to_pytest_benchmark(record.frame(records), environment={})
    params = benchmark(document, "fit[dnn]")["params"]
    assert params["epochs"] is None
    assert params["batch_size"] == 32


def test_runs_on_several_backends_are_named_with_the_configurations_one_label():
    records = make_records()
    records[2] = records[2].replace(backend="jax")
    assert [name for name in names_of(record.frame(records)) if name.startswith("fit[")] == [
        "fit[dnn (tensorflow)]",
        "fit[dnn (jax)]",
        "fit[cnn-spe8 (tensorflow)]",
    ]


def test_no_ok_runs_give_no_benchmarks():
    failed = [run.replace(status="failed") for run in make_records()]
    assert names_of(record.frame(failed)) == []


def test_the_file_is_strict_json_even_with_nan_in_the_environment(tmp_path):
    write_environment(tmp_path, {"peak": NAN})
    path = write_pytest_benchmark(make_runs(), tmp_path)

    def reject(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    assert path == tmp_path / PYTEST_BENCHMARK_JSON
    written = json.loads(path.read_text(), parse_constant=reject)
    assert written["machine_info"]["mnistbench"] == {"peak": None}
    assert benchmark(written, "fit[dnn]")["stats"]["data"] == [10.0, 12.0, 11.0]


@pytest.fixture
def compare(monkeypatch, capsys):
    """``compare(*args, cwd=...)``: pytest-benchmark's own ``compare`` command, as
    ``pytest-benchmark compare ARGS`` runs it, in this process: (exit code, stdout, stderr)."""
    from pytest_benchmark.cli import main

    def run(*args: str, cwd: Path) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["pytest-benchmark", "compare", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def baseline_and_candidate(tmp_path) -> tuple[Path, Path]:
    for name in ("baseline", "candidate"):
        (tmp_path / name).mkdir()
        write_environment(tmp_path / name, RECORDED)
    baseline = write_pytest_benchmark(make_runs(), tmp_path / "baseline")
    candidate = write_pytest_benchmark(make_runs(fit_scale=1.5), tmp_path / "candidate")
    return baseline, candidate


def test_pytest_benchmark_compare_reads_baseline_and_candidate(
    tmp_path, baseline_and_candidate, compare
):
    code, stdout, stderr = compare(*map(str, baseline_and_candidate), cwd=tmp_path)
    assert code == 0, stderr
    # compare only warns about a file it cannot load; the table must hold both files' rows.
    assert "Failed to load" not in stdout + stderr
    fit_rows = [line for line in stdout.splitlines() if line.startswith("fit[dnn]")]
    assert len(fit_rows) == 2
    # Baseline's fastest fit is 10 s, the candidate's 10 * 1.5.
    assert sorted(row.split()[2] for row in fit_rows) == ["10.0000", "15.0000"]


def test_pytest_benchmark_compare_groups_by_group(tmp_path, baseline_and_candidate, compare):
    code, stdout, stderr = compare(
        "--group-by=group", *map(str, baseline_and_candidate), cwd=tmp_path
    )
    assert code == 0, stderr
    for group, count in [("fit", 4), ("steady_epoch", 2), ("inference", 4), ("latency", 4)]:
        assert f"benchmark '{group}': {count} tests" in stdout


def test_pytest_benchmark_compare_groups_by_a_param(tmp_path, baseline_and_candidate, compare):
    code, stdout, stderr = compare(
        "--group-by=param:architecture", *map(str, baseline_and_candidate), cwd=tmp_path
    )
    assert code == 0, stderr
    assert "benchmark 'architecture=dnn': 8 tests" in stdout
    assert "benchmark 'architecture=cnn': 6 tests" in stdout


def test_runs_read_back_from_csv_give_the_same_document(tmp_path):
    # The failed row's empty cells make integer columns floats in the typed table.
    record.write(layout.RUNS_CSV.of(tmp_path), make_records())
    from_csv = to_pytest_benchmark(record.frame(record.read(tmp_path)), environment=RECORDED)
    in_memory = to_pytest_benchmark(make_runs(), environment=RECORDED)
    # As JSON text, so that 3.0 does not pass for 3.
    assert json.dumps(from_csv["benchmarks"]) == json.dumps(in_memory["benchmarks"])


# --- the same file after `mnistbench run` and `mnistbench report` ---------------------------


def test_report_rewrites_the_file_the_run_wrote_whatever_the_host_and_directory(
    cli_sweep, tmp_path, monkeypatch
):
    # `report` may run anywhere: here from a directory that is no git repository. What it
    # writes must still describe the machine and the commit the runs were measured on.
    written_by_run = json.loads((cli_sweep / PYTEST_BENCHMARK_JSON).read_text())
    recorded = json.loads((cli_sweep / "environment.json").read_text())
    copy = shutil.copytree(cli_sweep, tmp_path / "sweep")
    (copy / PYTEST_BENCHMARK_JSON).unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = invoke("report", str(copy))

    assert result.exit_code == 0, result.output
    assert f"wrote {copy / PYTEST_BENCHMARK_JSON}" in result.stderr.splitlines()
    written_by_report = json.loads((copy / PYTEST_BENCHMARK_JSON).read_text())
    assert written_by_report["machine_info"]["mnistbench"] == recorded
    assert written_by_report["commit_info"] == recorded["commit_info"]
    # Both take `datetime` from the earliest run's start, so nothing may differ at all.
    assert written_by_report == written_by_run
