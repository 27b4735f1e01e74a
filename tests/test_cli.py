"""The command line end to end on real MNIST slices, and its one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
from click.testing import CliRunner

from mnistbench import record
from mnistbench.cli import cli
from mnistbench.columns import FORMAT_COLUMN, RUN_COLUMNS

PARAMS = {"dnn": 118_282, "rnn": 216_426, "cnn": 542_230}
# Better than chance (0.1) by a wide margin after 2 epochs on 2000 images; measured
# here: dnn ≈ 0.87, cnn ≈ 0.88, rnn ≈ 0.6.
MIN_ACCURACY = {"dnn": 0.75, "cnn": 0.75, "rnn": 0.3}


@pytest.fixture
def sweep_dir(cli_sweep) -> Path:
    """The shared ``mnistbench run --all --epochs 2 --train-limit 2000 --test-limit 300``."""
    return cli_sweep


def test_run_all_writes_one_complete_row_per_architecture(sweep_dir):
    runs = pd.read_csv(sweep_dir / "runs.csv")
    assert list(runs.columns) == [FORMAT_COLUMN, *RUN_COLUMNS]
    assert set(runs[FORMAT_COLUMN]) == {record.FORMAT_VERSION}
    assert sorted(runs["architecture"]) == ["cnn", "dnn", "rnn"]
    assert set(runs["status"]) == {"ok"}
    assert runs["error"].isna().all()
    assert set(runs["train_samples"]) == {2000}
    assert set(runs["test_samples"]) == {300}
    assert set(runs["epochs"]) == {2}
    assert set(runs["batch_size"]) == {32}
    assert set(runs["backend"]) == {"tensorflow"}


def test_run_all_measures_every_figure_in_range(sweep_dir):
    for run in record.read(sweep_dir):
        name = run.architecture
        assert run.params == PARAMS[name]
        assert MIN_ACCURACY[name] <= run.test_accuracy <= 1.0, name
        assert run.test_loss > 0
        assert len(run.epoch_seconds) == 2 and all(s > 0 for s in run.epoch_seconds)
        assert sum(run.epoch_seconds) <= run.fit_seconds
        assert run.seconds_per_epoch == pytest.approx(sum(run.epoch_seconds) / 2, rel=1e-3)
        assert run.train_samples_per_second == pytest.approx(4000 / run.fit_seconds)
        assert len(run.epoch_accuracy) == 2
        assert len(run.epoch_loss) == 2
        assert run.inference_samples_per_second > 0
        assert run.latency_ms > 0
        assert len(run.sample_predictions) == 16
        assert run.peak_memory_mb > 100  # a worker with a backend loaded


def test_run_all_writes_comparison_with_ratios_to_best(sweep_dir):
    comparison = pd.read_csv(sweep_dir / "comparison.csv")
    assert sorted(comparison["architecture"]) == ["cnn", "dnn", "rnn"]
    assert comparison["fit_seconds_ratio_to_best"].min() == pytest.approx(1.0)
    assert comparison["test_accuracy_ratio_to_best"].max() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["comparison.png", "curves.png", "predictions.png"])
def test_run_all_writes_readable_plots(sweep_dir, name):
    image = matplotlib.image.imread(sweep_dir / name)
    height, width = image.shape[:2]
    assert width >= 800 and height >= 400
    assert image.std() > 0.05  # not a blank canvas


REPORTS = ("comparison.csv", "comparison.png", "curves.png", "predictions.png")


def test_report_regenerates_the_reports_without_training(sweep_dir, tmp_path, cli):
    copy = shutil.copytree(sweep_dir, tmp_path / "out")
    for name in (*REPORTS, "pytest-benchmark.json", "report.html"):
        (copy / name).unlink()
    result = cli("report", str(copy))
    assert result.returncode == 0, result.stderr
    # report.html last: it links every other file.
    assert result.stderr.splitlines() == [
        f"wrote {copy / name}" for name in ("pytest-benchmark.json", *REPORTS, "report.html")
    ]
    # stdout is the headline table, as its --format (text by default) prints it.
    assert "medians over repeats" in result.stdout
    assert {"dnn", "cnn", "rnn"} <= {
        line.split()[0] for line in result.stdout.splitlines() if line.strip()
    }
    # The same runs give the same comparison and the same interchange file as `run` wrote.
    assert (copy / "comparison.csv").read_text() == (sweep_dir / "comparison.csv").read_text()
    assert json.loads((copy / "pytest-benchmark.json").read_text()) == json.loads(
        (sweep_dir / "pytest-benchmark.json").read_text()
    )
    for name in REPORTS[1:]:
        assert (copy / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_help_answers_without_importing_a_backend():
    code = (
        "import sys; from click.testing import CliRunner; from mnistbench.cli import cli;"
        "r = CliRunner().invoke(cli, ['run', '--help']); assert r.exit_code == 0;"
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_plugins_lists_each_architecture_with_its_parameter_count():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    for name, params in PARAMS.items():
        line = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert "mnistbench" in line and f"{params:,}" in line


# One-line errors with exit code 2, never a traceback.


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and message in line


def test_unknown_architecture_suggests_the_close_match(tmp_path):
    result = invoke("run", "dnm", "--output", str(tmp_path / "o"))
    assert_one_line_error(
        result, "Error: unknown architecture 'dnm' (known: cnn, dnn, rnn); did you mean 'dnn'?"
    )


def test_run_without_architectures_asks_for_one(tmp_path):
    result = invoke("run", "--output", str(tmp_path / "o"))
    assert_one_line_error(result, "Error: name at least one architecture, or use --all")


def test_names_and_all_together_are_refused(tmp_path):
    result = invoke("run", "dnn", "--all", "--output", str(tmp_path / "o"))
    assert_one_line_error(result, "Error: give architecture names or --all, not both")


def test_train_limit_beyond_the_dataset_is_refused(tmp_path):
    result = invoke("run", "dnn", "--train-limit", "60001", "--output", str(tmp_path / "o"))
    assert_one_line_error(result, "Error: --train-limit must be between 1 and 60000, got 60001")


def test_non_positive_epochs_are_refused():
    result = invoke("run", "dnn", "--epochs", "0")
    assert_one_line_error(result, "Invalid value for '--epochs': 0 is not in the range x>=1.")


def test_missing_data_path_is_named_and_leaves_no_output_directory(tmp_path):
    missing = tmp_path / "nowhere" / "mnist.npz"
    result = invoke("run", "dnn", "--data", str(missing), "--output", str(tmp_path / "o"))
    assert_one_line_error(result, str(missing))
    assert not (tmp_path / "o").exists()  # the data is resolved before anything is written


def test_a_dry_run_refuses_what_the_run_would_and_writes_nothing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    corrupt = tmp_path / "mnist.npz"
    corrupt.write_text("not an npz")
    refused = {
        ("--output", str(blocker / "out")): "cannot write to output directory",
        ("--output", str(tmp_path / "full")): "is not empty; choose another --output",
        ("--data", str(corrupt)): f"{corrupt} is truncated or corrupt",
        ("--db", str(blocker / "x.sqlite")): f"cannot create {blocker / 'x.sqlite'}",
    }
    before = sorted(tmp_path.rglob("*"))
    for options, message in refused.items():
        output = () if "--output" in options else ("--output", str(tmp_path / "new"))
        result = invoke("run", "dnn", "--dry-run", *output, *options)
        assert_one_line_error(result, message)
    fine = invoke("run", "dnn", "--dry-run", "--output", str(tmp_path / "new" / "out"))
    assert fine.exit_code == 0, fine.output
    assert sorted(tmp_path.rglob("*")) == before  # nothing made, nothing left


def test_the_ray_executor_without_ray_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as where Ray is not installed
    for dry_run in ((), ("--dry-run",)):
        output = tmp_path / f"o{len(dry_run)}"
        result = invoke("run", "dnn", "--executor", "ray", "--output", str(output), *dry_run)
        assert_one_line_error(result, "the Ray executor needs Ray: pip install 'mnistbench[ray]'")
        assert not output.exists()


def test_non_empty_output_directory_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = invoke("run", "dnn", "--output", str(tmp_path))
    assert_one_line_error(
        result,
        f"Error: output directory {tmp_path} is not empty; choose another --output or pass --force",
    )


def test_report_of_a_directory_without_runs_is_refused(tmp_path):
    result = invoke("report", str(tmp_path))
    assert_one_line_error(result, f"{tmp_path / 'runs.csv'}: not found")


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    result = invoke("--debug", "report", str(tmp_path))
    assert result.exit_code == 2
    assert "Traceback" in result.output
    assert f"Error: {tmp_path / 'runs.csv'}: not found" in result.output


def test_unwritable_output_directory_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = invoke("run", "dnn", "--output", str(blocker / "out"))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: cannot write to output directory {blocker / 'out'}: Not a directory\n"
    )


def test_timeout_with_isolation_none_is_refused(tmp_path):
    result = invoke("run", "dnn", "--isolation", "none", "--timeout", "5")
    assert_one_line_error(result, "Error: --timeout needs a worker: --isolation process or warm")


# --resume continues a saved plan: the CLI refuses what would change it.


def test_resume_of_a_directory_without_manifest_is_refused(tmp_path):
    result = invoke("run", "--resume", str(tmp_path))
    assert_one_line_error(result, f"Error: {tmp_path / 'manifest.json'}: not found")


def test_resume_of_an_incompatible_results_format_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format": 99, "mnistbench": "9.0", "runs": []})
    )
    result = invoke("run", "--resume", str(tmp_path))
    assert_one_line_error(result, "written by mnistbench 9.0 in results format 99")


def test_resume_with_new_architectures_is_refused(tmp_path):
    result = invoke("run", "dnn", "--resume", str(tmp_path))
    assert_one_line_error(result, "Error: --resume DIR continues the plan saved in DIR")


def test_resume_with_plan_options_is_refused_naming_them(tmp_path):
    result = invoke("run", "--resume", str(tmp_path), "--epochs", "7", "--seed", "3")
    assert_one_line_error(result, "plan options (--epochs, --seed) with it")


def test_data_info_names_the_source(mnist_npz):
    result = invoke("data", "info", "--data", str(mnist_npz))
    assert result.exit_code == 0, result.output
    assert "source: path" in result.output


# compare: exit codes of the gate, and the reservation warning.


def write_runs(directory: Path, fit_seconds: list[float], **fields) -> Path:
    directory.mkdir()
    runs = [
        record.new_run(
            **{
                "run_id": f"dnn-r{i}",
                "config_id": "dnn",
                "architecture": "dnn",
                "backend": "tensorflow",
                "status": "ok",
                "fit_seconds": fit,
                "test_accuracy": 0.97,
                "peak_memory_mb": 700.0,
                "executor": "local",
                "cpus_reserved": 2,
                **fields,
            }
        )
        for i, fit in enumerate(fit_seconds)
    ]
    record.write(directory / "runs.csv", runs)
    return directory


def test_compare_fails_on_a_significant_regression_naming_it(tmp_path):
    # No ties, so the Mann-Whitney p-value is exact: 2/252 for fully separated 5 vs 5.
    base = write_runs(tmp_path / "base", [9.8, 9.9, 10.0, 10.1, 10.2])
    cand = write_runs(tmp_path / "cand", [11.8, 11.9, 12.0, 12.1, 12.2])
    result = invoke("compare", str(base), str(cand), "--fail", "fit_seconds:10%")
    assert result.exit_code == 1, result.output
    assert "regression: dnn fit_seconds: 10.0 s → 12.0 s (+20.0%, p=0.0079) exceeds 10%" in (
        result.output
    )
    assert (cand / "compare.csv").is_file()
    assert matplotlib.image.imread(cand / "compare.png").std() > 0.05  # a drawn figure


def test_compare_passes_when_the_change_is_within_the_threshold(tmp_path):
    base = write_runs(tmp_path / "base", [10.0, 10.1, 9.9, 10.2, 10.0])
    cand = write_runs(tmp_path / "cand", [10.3, 10.4, 10.2, 10.5, 10.3])
    result = invoke("compare", str(base), str(cand), "--fail", "fit_seconds:10%")
    assert result.exit_code == 0, result.output
    assert "regression:" not in result.output


def test_compare_warns_when_reservations_differ(tmp_path):
    base = write_runs(tmp_path / "base", [10.0, 10.1, 9.9])
    cand = write_runs(tmp_path / "cand", [10.0, 10.1, 9.9], executor="ray", cpus_reserved=1)
    result = invoke("compare", str(base), str(cand))
    assert result.exit_code == 0, result.output
    assert (
        "warning: these runs were measured under different reservations "
        "(executor/CPUs: local/2, ray/1): their times are not comparable with each other"
    ) in result.output


def test_malformed_fail_rule_is_one_line_and_exit_2(tmp_path):
    base = write_runs(tmp_path / "base", [10.0])
    result = invoke("compare", str(base), str(base), "--fail", "fit_seconds")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
