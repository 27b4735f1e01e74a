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
    """Registers one architecture (``victim`` by default) and misbehaves in one hook in one
    way."""

    def __init__(self, hook: str, behaviour: str, victim: str = "victim") -> None:
        self.hook, self.behaviour, self.victim = hook, behaviour, victim

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
        register(self.victim)

    @mnistbench.hookimpl
    def mnistbench_prepare_data(self, architecture, x):
        if architecture != self.victim:
            return None
        good = lambda: x.astype("float32") / 255  # noqa: E731
        return self._misbehave(good) if self.hook == "prepare_data" else good()

    @mnistbench.hookimpl
    def mnistbench_build_model(self, architecture, input_shape, num_classes):
        if architecture != self.victim:
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
        if self.hook == "model_flops" and architecture == self.victim:
            return self._misbehave(lambda: None)
        return None


HOSTILE_CASES = [
    (
        "prepare_data",
        "raises",
        "PluginError: plugin '{plugin}' failed in mnistbench_prepare_data: RuntimeError: hostile",
    ),
    (
        "prepare_data",
        "wrong type",
        "PluginError: plugin '{plugin}' returned str from mnistbench_prepare_data for '{victim}': "
        "expected a numpy array with 300 rows",
    ),
    (
        "build_model",
        "raises",
        "PluginError: plugin '{plugin}' failed in mnistbench_build_model: RuntimeError: hostile",
    ),
    (
        "build_model",
        "returns None",
        "PluginError: no plugin built a model for architecture '{victim}' "
        "(every mnistbench_build_model returned None)",
    ),
    (
        "build_model",
        "wrong type",
        "PluginError: plugin '{plugin}' returned str from mnistbench_build_model for '{victim}': "
        "expected a compiled keras.Model",
    ),
    (
        "build_model",
        "wrong output shape",
        "PluginError: plugin '{plugin}' returned a model from mnistbench_build_model for "
        "'{victim}' whose output shape is (None, 5), expected (None, 10)",
    ),
    (
        "model_flops",
        "raises",
        "PluginError: plugin '{plugin}' failed in mnistbench_model_flops: RuntimeError: hostile",
    ),
    (
        "model_flops",
        "wrong type",
        "PluginError: plugin '{plugin}' returned 'not what you wanted' from "
        "mnistbench_model_flops: expected (inference_flops_per_sample, train_flops_per_sample)",
    ),
]


@pytest.fixture(scope="module")
def hostile_sweep(tmp_path_factory, sweep_in_process, faulty_site) -> tuple[dict, pd.DataFrame]:
    """One sweep of every hostile case, each its own plugin and architecture, and ``tiny``
    from a well-behaved plugin: ``({(hook, behaviour): (plugin, victim)}, runs)``."""
    cases = {
        (hook, behaviour): f"victim-{hook}-{behaviour}".lower().replace(" ", "-").replace("_", "-")
        for hook, behaviour, _ in HOSTILE_CASES
    }
    hostile = [Hostile(hook, behaviour, victim) for (hook, behaviour), victim in cases.items()]
    output = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(faulty_site))
        plugins = load_plugins(extra=hostile)
        configs = plan([*cases.values(), "tiny"], epochs=1, train_limit=300, test_limit=50)
        sweep_in_process(output, configs, plugins)
    # Extra plugins are named by their class, numbered from the second on.
    names = ["Hostile"] + [f"Hostile-{n}" for n in range(2, len(cases) + 1)]
    return dict(zip(cases, zip(names, cases.values(), strict=True), strict=True)), pd.read_csv(
        output / "runs.csv"
    )


@pytest.mark.parametrize(
    ("hook", "behaviour", "error"), HOSTILE_CASES, ids=[f"{h}-{b}" for h, b, _ in HOSTILE_CASES]
)
def test_hostile_plugin_fails_its_run_alone(hostile_sweep, hook, behaviour, error):
    cases, runs = hostile_sweep
    plugin, victim = cases[(hook, behaviour)]
    row = runs[runs["architecture"] == victim].iloc[0]
    assert (row["status"], row["error"]) == ("failed", error.format(plugin=plugin, victim=victim))


def test_a_well_behaved_plugin_runs_beside_every_hostile_one(hostile_sweep):
    _, runs = hostile_sweep
    assert list(runs["status"]) == ["failed"] * len(HOSTILE_CASES) + ["ok"]
    assert runs.iloc[-1]["test_accuracy"] > 0


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
        "report.html",
    ]
