"""A sweep: new or resumed from its manifest, each run recorded as it finishes, then reports."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import mnistbench
from mnistbench.errors import ConfigError
from mnistbench.manifest import Manifest
from mnistbench.metrics import RUN_COLUMNS
from mnistbench.plan import Execution, RunConfig, plan
from mnistbench.plugins import load_plugins
from mnistbench.runs import read_rows
from mnistbench.sweep import (
    WORKER_START_SECONDS,
    Sweep,
    estimate_seconds,
    prepare_output_dir,
    run_sweep,
)


class Tiny:
    """A fast logistic-regression architecture and one whose build always fails."""

    @mnistbench.hookimpl
    def mnistbench_register_architectures(self, register):
        register("tiny")
        register("broken")

    @mnistbench.hookimpl
    def mnistbench_build_model(self, architecture, input_shape, num_classes):
        if architecture == "broken":
            raise RuntimeError("cannot build this one")
        import keras

        model = keras.Sequential(
            [
                keras.Input(input_shape),
                keras.layers.Flatten(),
                keras.layers.Dense(num_classes, "softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


class RowsOnDisk:
    """Counts the rows of runs.csv on disk each time a reporter hears of a run."""

    def __init__(self) -> None:
        self.rows_on_disk: list[int] = []

    @mnistbench.hookimpl
    def mnistbench_record_run(self, row, output_dir):
        with open(output_dir / "runs.csv") as handle:
            self.rows_on_disk.append(len(list(csv.DictReader(handle))))


def states_of(directory) -> dict[str, str]:
    return Manifest.load(directory).states


@pytest.fixture(scope="module")
def finished(tmp_path_factory, sweep_in_process, faulty_site):
    """One finished in-process sweep of two tiny repeats: its directory, read-only."""
    output = tmp_path_factory.mktemp("finished") / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(faulty_site))
        configs = plan(["tiny"], epochs=1, train_limit=300, test_limit=20, repeats=2)
        sweep_in_process(output, configs)
    return output


@pytest.fixture
def copy_of_finished(finished, tmp_path):
    return shutil.copytree(finished, tmp_path / "out")


# --- a new sweep ---------------------------------------------------------------------------


def test_failed_architecture_is_recorded_and_the_others_still_run(tmp_path, sweep_in_process):
    reporter = RowsOnDisk()
    plugins = load_plugins(entry_points=False, extra=[Tiny(), reporter])
    configs = plan(["broken", "tiny"], epochs=1, train_limit=1000, test_limit=100)
    result = sweep_in_process(tmp_path, configs, plugins)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs.columns) == RUN_COLUMNS
    assert list(runs["architecture"]) == ["broken", "tiny"]
    assert list(runs["status"]) == ["failed", "ok"]
    assert runs.loc[0, "error"] == (
        "PluginError: plugin 'Tiny' failed in mnistbench_build_model: "
        "RuntimeError: cannot build this one"
    )
    assert pd.isna(runs.loc[0, "fit_seconds"])
    assert runs.loc[1, "test_accuracy"] > 0.5
    assert [row["architecture"] for row in result.failed] == ["broken"]
    # A reporter hears of a run once its row is on disk.
    assert reporter.rows_on_disk == [1, 2]


def test_a_finished_sweep_leaves_every_run_ok_in_its_manifest(finished):
    assert states_of(finished) == {"tiny-r0": "ok", "tiny-r1": "ok"}
    assert Manifest.load(finished).options == Execution(isolation="none").to_dict()


def test_a_sweep_saves_the_digits_every_run_predicts(finished, mnist):
    with np.load(finished / "samples.npz") as samples:
        assert np.array_equal(samples["x"], mnist.x_test[:16])
        assert np.array_equal(samples["y"], mnist.y_test[:16])


def test_a_sweep_writes_the_core_reports(finished):
    assert sorted(path.name for path in finished.iterdir()) == [
        "comparison.csv",
        "comparison.png",
        "curves.png",
        "environment.json",
        "manifest.json",
        "predictions.png",
        "pytest-benchmark.json",
        "report.html",
        "runs.csv",
        "samples.npz",
    ]


def test_a_sweep_records_its_command_line(finished):
    assert json.loads((finished / "environment.json").read_text())["command"] == "mnistbench"


def test_a_new_sweep_checks_its_execution_settings(tmp_path):
    with pytest.raises(ConfigError) as error:
        Sweep.new([RunConfig("tiny")], Execution(isolation="none", timeout=5), tmp_path)
    assert str(error.value) == "--timeout needs --isolation process"


def test_a_new_sweep_has_every_run_pending(tmp_path):
    configs = plan(["tiny"], repeats=2)
    sweep = Sweep.new(configs, Execution(), tmp_path)
    assert (sweep.pending, sweep.kept, sweep.manifest) == (configs, [], None)


def test_a_plan_with_an_unregistered_architecture_is_refused(tmp_path, mnist):
    sweep = Sweep.new([RunConfig("gone")], Execution(isolation="none"), tmp_path)
    with pytest.raises(ConfigError) as error:
        run_sweep(sweep, mnist=mnist, plugins=load_plugins(entry_points=False))
    assert str(error.value) == "unknown architecture 'gone' (known: none)"
    assert list(tmp_path.iterdir()) == []


# --- a resumed sweep -----------------------------------------------------------------------


def test_resume_keeps_ok_runs_and_reruns_failed_interrupted_and_missing_ones(tmp_path):
    configs = plan(["tiny"], epochs=1, repeats=4)
    manifest = Manifest.create(tmp_path, configs, Execution(isolation="none").to_dict())
    rows = "run_id,architecture,status\ntiny-r0,tiny,ok\ntiny-r1,tiny,failed\ntiny-r2,tiny,ok\n"
    (tmp_path / "runs.csv").write_text(rows)
    manifest.set_state("tiny-r0", "ok")
    manifest.set_state("tiny-r1", "failed")
    manifest.set_state("tiny-r2", "interrupted")  # its row says ok: the manifest decides
    sweep = Sweep.resume(tmp_path)
    assert [row["run_id"] for row in sweep.kept] == ["tiny-r0"]
    assert [config.run_id for config in sweep.pending] == ["tiny-r1", "tiny-r2", "tiny-r3"]
    assert sweep.configs == configs


def test_resume_keeps_the_saved_execution_settings(tmp_path):
    saved = Execution(isolation="process", timeout=30.0)
    Manifest.create(tmp_path, [RunConfig("tiny")], saved.to_dict())
    assert Sweep.resume(tmp_path).execution == saved


def test_resume_replaces_the_execution_settings_given(tmp_path):
    Manifest.create(tmp_path, [RunConfig("tiny")], Execution(timeout=30.0).to_dict())
    assert Sweep.resume(tmp_path, timeout=90.0).execution == Execution(timeout=90.0)


def test_resume_checks_the_settings_it_ends_up_with(tmp_path):
    Manifest.create(tmp_path, [RunConfig("tiny")], Execution(timeout=30.0).to_dict())
    with pytest.raises(ConfigError) as error:
        Sweep.resume(tmp_path, isolation="none")
    assert str(error.value) == "--timeout needs --isolation process"


def test_resume_refuses_a_plan_whose_architecture_is_no_longer_registered(tmp_path):
    Manifest.create(tmp_path, [RunConfig("gone")], Execution().to_dict())
    with pytest.raises(ConfigError) as error:
        Sweep.resume(tmp_path).check_architectures(["dnn"])
    assert str(error.value) == "unknown architecture 'gone' (known: dnn)"


def test_resume_of_a_finished_sweep_only_redoes_the_reports(copy_of_finished, mnist, faulty_plugin):
    environment = (copy_of_finished / "environment.json").read_text()
    rows = read_rows(copy_of_finished)
    (copy_of_finished / "comparison.csv").unlink()
    sweep = Sweep.resume(copy_of_finished)
    assert sweep.pending == []
    result = run_sweep(sweep, mnist=mnist, plugins=load_plugins(), argv=["mnistbench"])
    assert (result.skipped, result.rows) == (2, [])
    assert (copy_of_finished / "environment.json").read_text() == environment
    assert read_rows(copy_of_finished) == rows
    assert (copy_of_finished / "comparison.csv") in result.reports
    assert list(pd.read_csv(copy_of_finished / "comparison.csv")["runs"]) == [2]


def test_resume_reruns_a_failed_run_and_keeps_the_finished_one(
    copy_of_finished, mnist, faulty_plugin
):
    manifest = Manifest.load(copy_of_finished)
    manifest.set_state("tiny-r1", "failed")
    kept = read_rows(copy_of_finished)[0]
    result = run_sweep(
        Sweep.resume(copy_of_finished), mnist=mnist, plugins=load_plugins(), argv=["mnistbench"]
    )
    assert [row["run_id"] for row in result.rows] == ["tiny-r1"]
    rows = read_rows(copy_of_finished)
    assert [(row["run_id"], row["status"]) for row in rows] == [
        ("tiny-r0", "ok"),
        ("tiny-r1", "ok"),
    ]
    assert rows[0] == kept
    assert states_of(copy_of_finished) == {"tiny-r0": "ok", "tiny-r1": "ok"}


# --- the output directory ------------------------------------------------------------------


def test_output_directory_is_created_with_its_parents(tmp_path):
    assert prepare_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list((tmp_path / "a" / "b").iterdir()) == []


def test_output_directory_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(ConfigError) as error:
        prepare_output_dir(target)
    assert str(error.value) == f"output {target} exists and is not a directory"


def test_non_empty_output_directory_is_refused(tmp_path):
    (tmp_path / "old.txt").write_text("")
    with pytest.raises(ConfigError) as error:
        prepare_output_dir(tmp_path)
    assert str(error.value) == (
        f"output directory {tmp_path} is not empty; choose another --output or pass --force"
    )


def test_force_allows_a_non_empty_output_directory(tmp_path):
    (tmp_path / "old.txt").write_text("")
    assert prepare_output_dir(tmp_path, force=True) == tmp_path


def test_output_directory_under_a_file_is_refused_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as error:
        prepare_output_dir(blocker / "out")
    assert (
        str(error.value) == f"cannot write to output directory {blocker / 'out'}: Not a directory"
    )


# --- estimate_seconds ----------------------------------------------------------------------


def write_result(root, name: str, rows: list[dict]) -> None:
    (root / name).mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / name / "runs.csv", index=False)


def measured(architecture="tiny", fit_seconds=2.0, status="ok", **columns) -> dict:
    return {
        "architecture": architecture,
        "backend": "tensorflow",
        "status": status,
        "fit_seconds": fit_seconds,
        "train_samples": 1000,
        "epochs": 2,
        **columns,
    }


def test_estimate_scales_the_median_rate_per_sample_and_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    # 2 s, 4 s and 3 s for 1000 samples x 2 epochs: a median of 1.5 ms per sample-epoch.
    write_result(tmp_path, "a", [measured(fit_seconds=2.0), measured(fit_seconds=4.0)])
    write_result(tmp_path, "b", [measured(fit_seconds=3.0), measured(status="failed")])
    seconds, unknown = estimate_seconds([RunConfig("tiny", epochs=4, train_limit=500)], tmp_path)
    assert (seconds, unknown) == (pytest.approx(0.0015 * 2000 + WORKER_START_SECONDS), 0)


def test_estimate_counts_runs_without_earlier_measurements_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    write_result(tmp_path, "a", [measured()])
    configs = [RunConfig("cnn"), RunConfig("tiny", backend="jax"), RunConfig("tiny", epochs=1)]
    seconds, unknown = estimate_seconds(configs, tmp_path)
    assert (seconds, unknown) == (pytest.approx(0.001 * 60_000 + WORKER_START_SECONDS), 2)


def test_estimate_skips_foreign_and_unreadable_result_files(tmp_path):
    write_result(tmp_path, "foreign", [{"architecture": "tiny", "seconds": 1.0}])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "runs.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert estimate_seconds([RunConfig("tiny")], tmp_path) == (0.0, 1)
