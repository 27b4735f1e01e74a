"""A sweep records every run as it finishes, failed ones included, and the others still run."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from conftest import sweep_in_process

import mnistbench
from mnistbench.data import resolve_mnist
from mnistbench.errors import ConfigError
from mnistbench.plugins import load_plugins
from mnistbench.results import RUN_COLUMNS
from mnistbench.sweep import plan, prepare_output_dir, select_architectures


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


class Recorder:
    def __init__(self) -> None:
        self.rows_on_disk: list[int] = []

    @mnistbench.hookimpl
    def mnistbench_record_run(self, row, output_dir):
        # What is on disk when a reporter hears of a run: the run is already there.
        with open(output_dir / "runs.csv") as handle:
            self.rows_on_disk.append(len(list(csv.DictReader(handle))))


@pytest.fixture
def mnist(mnist_npz):
    return resolve_mnist(mnist_npz, offline=True)


def test_failed_architecture_is_recorded_and_the_others_still_run(tmp_path, mnist):
    recorder = Recorder()
    plugins = load_plugins(entry_points=False, extra=[Tiny(), recorder])
    configs = plan(["broken", "tiny"], epochs=1, train_limit=1000, test_limit=100)
    result = sweep_in_process(tmp_path, mnist, plugins, configs)
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
    assert recorder.rows_on_disk == [1, 2]


def test_select_all_runs_every_registered_architecture_sorted():
    assert select_architectures([], True, ["rnn", "cnn", "dnn"]) == ["cnn", "dnn", "rnn"]


def test_select_keeps_the_given_order_without_duplicates():
    assert select_architectures(["rnn", "dnn", "rnn"], False, ["cnn", "dnn", "rnn"]) == [
        "rnn",
        "dnn",
    ]


def test_unknown_architecture_without_close_match_lists_the_known_ones():
    with pytest.raises(ConfigError) as error:
        select_architectures(["transformer"], False, ["cnn", "dnn"])
    assert str(error.value) == "unknown architecture 'transformer' (known: cnn, dnn)"


def test_output_directory_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        prepare_output_dir(target)


def test_force_allows_a_non_empty_output_directory(tmp_path):
    (tmp_path / "old.txt").write_text("")
    assert prepare_output_dir(tmp_path, force=True) == tmp_path
