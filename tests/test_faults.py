"""Fault injection: interrupted sweeps resume, hostile plugins fail alone, nothing is lost."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import sweep_in_process

import mnistbench
from mnistbench import results
from mnistbench.cli import cli
from mnistbench.data import resolve_mnist
from mnistbench.errors import ResultsWriteError
from mnistbench.plugins import load_plugins
from mnistbench.sweep import plan, run_sweep


@pytest.fixture(scope="module")
def mnist(mnist_npz):
    return resolve_mnist(mnist_npz, offline=True)


def rows_of(directory: Path) -> list[dict]:
    with open(directory / "runs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def states_of(directory: Path) -> dict[str, str]:
    manifest = json.loads((directory / "manifest.json").read_text())
    return {run["run_id"]: run["state"] for run in manifest["runs"]}


# Interrupting the parent, then resuming.


def start_sweep(output: Path, data: Path, faulty_site: Path, epochs: int = 30) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(faulty_site), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnistbench.cli",
            "run",
            "tiny",
            "--repeats",
            "3",
            "--epochs",
            str(epochs),
            "--train-limit",
            "2000",
            "--test-limit",
            "100",
            "--output",
            str(output),
            "--data",
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_rows(output: Path, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if (output / "runs.csv").exists() and len(rows_of(output)) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    raise AssertionError("the sweep wrote no row in time")


@pytest.mark.parametrize(
    ("signal_number", "exit_code", "name"),
    [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_signal_mid_sweep_keeps_finished_runs_and_records_the_interrupted_one(
    tmp_path, mnist_npz, faulty_plugin, signal_number, exit_code, name
):
    output = tmp_path / "out"
    process = start_sweep(output, mnist_npz, faulty_plugin)
    wait_for_rows(output, 1, process)
    time.sleep(3)  # the second run is training now
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code
    assert f"Resume with: mnistbench run --resume {output}" in stderr
    assert "Traceback" not in stderr
    rows = rows_of(output)
    assert [(r["run_id"], r["status"]) for r in rows] == [
        ("tiny-r0", "ok"),
        ("tiny-r1", "interrupted"),
    ]
    assert rows[1]["error"] == f"interrupted by {name}"
    assert states_of(output) == {"tiny-r0": "ok", "tiny-r1": "interrupted", "tiny-r2": "planned"}


def test_resume_completes_an_interrupted_sweep_like_an_uninterrupted_one(
    tmp_path, mnist_npz, faulty_plugin, mnist
):
    output = tmp_path / "out"
    process = start_sweep(output, mnist_npz, faulty_plugin, epochs=5)
    wait_for_rows(output, 1, process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    first = rows_of(output)[0]

    result = CliRunner().invoke(cli, ["run", "--resume", str(output), "--data", str(mnist_npz)])
    assert result.exit_code == 0, result.output
    rows = rows_of(output)
    assert [(r["run_id"], r["status"]) for r in rows] == [
        ("tiny-r0", "ok"),
        ("tiny-r1", "ok"),
        ("tiny-r2", "ok"),
    ]
    assert rows[0] == first  # the finished run was kept, not rerun
    assert set(states_of(output).values()) == {"ok"}
    comparison = pd.read_csv(output / "comparison.csv")
    assert comparison.loc[0, "runs"] == 3
    for name in ("comparison.png", "curves.png", "predictions.png"):
        assert (output / name).stat().st_size > 0


def test_resume_of_a_directory_without_manifest_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'manifest.json'}: not found" in result.output


def test_resume_of_an_incompatible_results_format_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format": 99, "mnistbench": "9.0", "runs": []})
    )
    result = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    assert "results format 99" in result.output and "Traceback" not in result.output


def test_resume_with_new_architectures_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["run", "dnn", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    assert "--resume DIR continues the plan saved in DIR" in result.output


# A full disk: the rows already written stay intact and the user gets one line.


def test_full_disk_keeps_earlier_rows_and_reports_one_line(
    tmp_path, mnist, faulty_plugin, monkeypatch
):
    real_writer = results.atomic_writer
    writes = []

    def fills_up(path, mode="w"):
        if Path(path).name == "runs.csv":
            writes.append(path)
            if len(writes) >= 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_writer(path, mode)

    monkeypatch.setattr(results, "atomic_writer", fills_up)
    configs = plan(["tiny"], epochs=1, train_limit=300, test_limit=50, repeats=2)
    with pytest.raises(ResultsWriteError) as error:
        run_sweep(
            configs,
            mnist=mnist,
            plugins=load_plugins(),
            output_dir=tmp_path,
            isolation="none",
            argv=["mnistbench"],
        )
    assert str(error.value) == (
        f"cannot write {tmp_path / 'runs.csv'}: No space left on device; "
        "the runs finished before this one are intact in it"
    )
    assert [r["run_id"] for r in rows_of(tmp_path)] == ["tiny-r0"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# Hostile plugins: each hook, each way of misbehaving.


class Hostile:
    """Registers 'victim' and misbehaves in one hook in one way."""

    def __init__(self, hook: str, behaviour: str) -> None:
        self.hook, self.behaviour = hook, behaviour

    def _misbehave(self, good):
        if self.behaviour == "raises":
            raise RuntimeError("hostile")
        if self.behaviour == "returns None":
            return None
        if self.behaviour == "wrong type":
            return "not what you wanted"
        return good()

    @mnistbench.hookimpl
    def mnistbench_register_architectures(self, register):
        register("victim")

    @mnistbench.hookimpl
    def mnistbench_prepare_data(self, architecture, x):
        if architecture != "victim":
            return None
        good = lambda: x.astype("float32") / 255  # noqa: E731
        return self._misbehave(good) if self.hook == "prepare_data" else good()

    @mnistbench.hookimpl
    def mnistbench_build_model(self, architecture, input_shape, num_classes):
        if architecture != "victim":
            return None
        import keras

        units = 5 if self.behaviour == "wrong output shape" else num_classes

        def good():
            model = keras.Sequential(
                [
                    keras.Input(input_shape),
                    keras.layers.Flatten(),
                    keras.layers.Dense(units, activation="softmax"),
                ]
            )
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            return model

        return self._misbehave(good) if self.hook == "build_model" else good()

    @mnistbench.hookimpl
    def mnistbench_model_flops(self, architecture, model):
        if self.hook == "model_flops" and architecture == "victim":
            return self._misbehave(lambda: None)
        return None


HOSTILE_CASES = [
    (
        "prepare_data",
        "raises",
        "PluginError: plugin 'Hostile' failed in mnistbench_prepare_data: RuntimeError: hostile",
    ),
    (
        "prepare_data",
        "wrong type",
        "PluginError: plugin 'Hostile' returned str from mnistbench_prepare_data for 'victim': "
        "expected a numpy array with 300 rows",
    ),
    (
        "build_model",
        "raises",
        "PluginError: plugin 'Hostile' failed in mnistbench_build_model: RuntimeError: hostile",
    ),
    (
        "build_model",
        "returns None",
        "PluginError: no plugin built a model for architecture 'victim' "
        "(every mnistbench_build_model returned None)",
    ),
    (
        "build_model",
        "wrong type",
        "PluginError: plugin 'Hostile' returned str from mnistbench_build_model for 'victim': "
        "expected a compiled keras.Model",
    ),
    (
        "build_model",
        "wrong output shape",
        "PluginError: plugin 'Hostile' returned a model from mnistbench_build_model for 'victim' "
        "whose output shape is (None, 5), expected (None, 10)",
    ),
    (
        "model_flops",
        "raises",
        "PluginError: plugin 'Hostile' failed in mnistbench_model_flops: RuntimeError: hostile",
    ),
    (
        "model_flops",
        "wrong type",
        "PluginError: plugin 'Hostile' returned 'not what you wanted' from mnistbench_model_flops: "
        "expected (inference_flops_per_sample, train_flops_per_sample)",
    ),
]


@pytest.mark.parametrize(
    ("hook", "behaviour", "error"), HOSTILE_CASES, ids=[f"{h}-{b}" for h, b, _ in HOSTILE_CASES]
)
def test_hostile_plugin_fails_its_run_alone(tmp_path, mnist, hook, behaviour, error):
    plugins = load_plugins(extra=[Hostile(hook, behaviour)])
    configs = plan(["victim", "dnn"], epochs=1, train_limit=300, test_limit=50)
    sweep_in_process(tmp_path, mnist, plugins, configs)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs["status"]) == ["failed", "ok"]
    assert runs.loc[0, "error"] == error
    assert runs.loc[1, "test_accuracy"] > 0


def test_prepare_data_returning_none_falls_back_to_the_core_default(tmp_path, mnist):
    plugins = load_plugins(entry_points=False, extra=[Hostile("prepare_data", "returns None")])
    configs = plan(["victim"], epochs=1, train_limit=300, test_limit=50)
    sweep_in_process(tmp_path, mnist, plugins, configs)
    assert pd.read_csv(tmp_path / "runs.csv").loc[0, "status"] == "ok"


def test_reporter_that_raises_leaves_the_other_reports(tmp_path, mnist, caplog):
    class BrokenReporter:
        @mnistbench.hookimpl
        def mnistbench_write_report(self, runs, output_dir):
            raise OSError("disk of the tracker")

    plugins = load_plugins(extra=[BrokenReporter()])
    configs = plan(["dnn"], epochs=1, train_limit=300, test_limit=50)
    result = sweep_in_process(tmp_path, mnist, plugins, configs)
    assert "plugin 'BrokenReporter' failed in mnistbench_write_report" in caplog.text
    assert {p.name for p in result.reports} >= {"comparison.csv", "comparison.png"}


# Damaged data files are detected, named, and never used.


def test_bit_flipped_npz_is_detected_and_named(tmp_path, mnist_npz):
    damaged = tmp_path / "mnist.npz"
    data = bytearray(mnist_npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    result = CliRunner().invoke(cli, ["data", "info", "--data", str(damaged)])
    assert result.exit_code == 2
    assert str(damaged) in result.output and "Traceback" not in result.output


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "report", str(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" in result.output


def test_unwritable_output_directory_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["run", "dnn", "--output", str(blocker / "out")])
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: cannot write to output directory {blocker / 'out'}")
    assert "Traceback" not in result.output


def test_resume_of_a_finished_sweep_only_redoes_the_reports(tmp_path, mnist_npz, faulty_plugin):
    output = tmp_path / "out"
    runner = CliRunner()
    first = runner.invoke(
        cli,
        [
            "run",
            "tiny",
            "--epochs",
            "1",
            "--train-limit",
            "300",
            "--test-limit",
            "50",
            "--output",
            str(output),
            "--data",
            str(mnist_npz),
        ],
    )
    assert first.exit_code == 0, first.output
    environment = (output / "environment.json").read_text()
    rows = rows_of(output)
    again = runner.invoke(cli, ["run", "--resume", str(output), "--data", str(mnist_npz)])
    assert again.exit_code == 0, again.output
    assert "Kept 1 run(s) already finished" in again.output
    assert (output / "environment.json").read_text() == environment
    assert rows_of(output) == rows


def test_resume_dry_run_lists_the_unfinished_runs_and_runs_nothing(tmp_path, faulty_plugin):
    configs = plan(["tiny"], repeats=3)
    from mnistbench.manifest import Manifest

    manifest = Manifest.create(tmp_path, configs, {"isolation": "process"})
    manifest.set_state("tiny-r0", "ok")
    manifest.set_state("tiny-r1", "interrupted")
    before = (tmp_path / "manifest.json").read_text()
    result = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "tiny-r1" in result.output and "tiny-r2" in result.output
    assert "tiny-r0" not in result.output
    assert (tmp_path / "manifest.json").read_text() == before
    assert not (tmp_path / "runs.csv").exists()


def test_resume_with_plan_options_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path), "--epochs", "7"])
    assert result.exit_code == 2
    assert "plan options (--epochs)" in result.output


def test_timeout_stops_a_run_that_keeps_reporting_progress(tmp_path, mnist, faulty_plugin):
    configs = plan(["tiny"], epochs=200, train_limit=2000, test_limit=50)
    started = time.monotonic()
    run_sweep(
        configs,
        mnist=mnist,
        plugins=load_plugins(),
        output_dir=tmp_path,
        timeout=8,
        argv=["mnistbench"],
    )
    row = rows_of(tmp_path)[0]
    assert (row["status"], row["error"]) == ("failed", "timed out after 8 s")
    assert time.monotonic() - started < 60
