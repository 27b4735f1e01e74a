"""Fault injection through a sweep: hostile plugins, diverging training and a full disk each
fail their own run (or write) alone, and nothing already recorded is lost."""

from __future__ import annotations

import contextlib
import csv
import errno
import logging
from pathlib import Path

import pandas as pd
import pytest

import mnistbench
from mnistbench import results
from mnistbench.errors import ResultsWriteError
from mnistbench.plan import plan
from mnistbench.plugins import load_plugins


def rows_of(directory: Path) -> list[dict]:
    with open(directory / "runs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# A diverging run: its NaN loss is its own status.


def test_nan_loss_is_recorded_as_diverged(tmp_path, sweep_in_process, faulty_plugin):
    configs = plan(["nan", "tiny"], epochs=1, train_limit=200, test_limit=50)
    sweep_in_process(tmp_path, configs)
    rows = rows_of(tmp_path)
    assert [(row["status"], row["error"]) for row in rows] == [
        ("diverged", "FloatingPointError: training loss became nan (diverged)"),
        ("ok", ""),
    ]


# A full disk: the rows already written stay intact and the user gets one line.


def test_full_disk_keeps_earlier_rows_and_reports_one_line(
    tmp_path, sweep_in_process, faulty_plugin, monkeypatch
):
    real_writer = results.atomic_writer
    writes = []

    @contextlib.contextmanager
    def fills_up(path, mode="w"):
        # The second write of runs.csv fails halfway, as a full disk does.
        with real_writer(path, mode) as handle:
            if Path(path).name == "runs.csv":
                writes.append(path)
                if len(writes) >= 2:
                    handle.write("run_id,")
                    raise OSError(errno.ENOSPC, "No space left on device")
            yield handle

    monkeypatch.setattr(results, "atomic_writer", fills_up)
    configs = plan(["tiny"], epochs=1, train_limit=300, test_limit=50, repeats=2)
    with pytest.raises(ResultsWriteError) as error:
        sweep_in_process(tmp_path, configs)
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
def test_hostile_plugin_fails_its_run_alone(
    tmp_path, sweep_in_process, faulty_plugin, hook, behaviour, error
):
    plugins = load_plugins(extra=[Hostile(hook, behaviour)])
    configs = plan(["victim", "tiny"], epochs=1, train_limit=300, test_limit=50)
    sweep_in_process(tmp_path, configs, plugins)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs["status"]) == ["failed", "ok"]
    assert runs.loc[0, "error"] == error
    assert runs.loc[1, "test_accuracy"] > 0


def test_prepare_data_returning_none_falls_back_to_the_core_default(tmp_path, sweep_in_process):
    plugins = load_plugins(entry_points=False, extra=[Hostile("prepare_data", "returns None")])
    configs = plan(["victim"], epochs=1, train_limit=300, test_limit=50)
    sweep_in_process(tmp_path, configs, plugins)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert (runs.loc[0, "status"], runs.loc[0, "test_accuracy"] > 0.1) == ("ok", True)


def test_reporter_that_raises_leaves_the_other_reports(
    tmp_path, sweep_in_process, faulty_plugin, caplog
):
    class BrokenReporter:
        @mnistbench.hookimpl
        def mnistbench_write_report(self, runs, output_dir):
            raise OSError("disk of the tracker")

    plugins = load_plugins(extra=[BrokenReporter()])
    configs = plan(["tiny"], epochs=1, train_limit=300, test_limit=50)
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        result = sweep_in_process(tmp_path, configs, plugins)
    assert (
        "plugin 'BrokenReporter' failed in mnistbench_write_report: OSError: disk of the tracker"
        in caplog.messages
    )
    assert sorted(p.name for p in result.reports) == [
        "comparison.csv",
        "comparison.png",
        "curves.png",
        "predictions.png",
        "pytest-benchmark.json",
    ]
