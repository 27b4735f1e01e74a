"""Fault injection through a sweep: hostile plugins, diverging training and a full disk each
fail their own run (or write) alone, and nothing already recorded is lost."""

from __future__ import annotations

import contextlib
import errno
import logging
from pathlib import Path

import pytest
from helpers import Tiny, logistic_regression, quick

import mnistbench
from mnistbench import record
from mnistbench.builtins import load_plugins
from mnistbench.errors import ResultsWriteError
from mnistbench.executors import local
from mnistbench.plugins import load_plugins as load_bare_plugins


def unreported(*plugins):
    """The local executor and ``plugins``, without reporters: sweeps whose reports no test
    reads."""
    return load_bare_plugins(builtins=[local], extra=plugins, entry_points=False)


# A diverging run: its NaN loss is its own status.


def test_nan_loss_is_recorded_as_diverged(tmp_path, sweep_in_process):
    sweep_in_process(tmp_path, [quick("nan"), quick()], unreported(Tiny()))
    assert [(run.status, run.error) for run in record.read(tmp_path)] == [
        ("diverged", "FloatingPointError: training loss became nan (diverged)"),
        ("ok", ""),
    ]


# A full disk: the runs already written stay intact and the user gets one line.


def test_full_disk_keeps_earlier_runs_and_reports_one_line(tmp_path, sweep_in_process, monkeypatch):
    real_writer = record.atomic_writer
    writes = []

    @contextlib.contextmanager
    def fills_up(path, mode="w"):
        # The second write of runs.csv fails halfway, as a full disk does.
        with real_writer(path, mode) as handle:
            if Path(path).name == "runs.csv":
                writes.append(path)
                if len(writes) >= 2:
                    handle.write("format_version,run_id,")
                    raise OSError(errno.ENOSPC, "No space left on device")
            yield handle

    monkeypatch.setattr(record, "atomic_writer", fills_up)
    with pytest.raises(ResultsWriteError) as error:
        sweep_in_process(tmp_path, [quick(), quick(repeat=1)], unreported(Tiny()))
    assert str(error.value) == (
        f"cannot write {tmp_path / 'runs.csv'}: No space left on device; "
        "the runs finished before this one are intact in it"
    )
    assert [run.run_id for run in record.read(tmp_path)] == ["tiny-r0"]
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
        units = 5 if self.behaviour == "wrong output shape" else num_classes
        good = lambda: logistic_regression(input_shape, units)  # noqa: E731
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
        "expected a numpy array with 200 rows",
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
#: A plugin whose prepare_data declines (returns None): the core's default prepares the data.
DECLINES = ("prepare_data", "returns None")


@pytest.fixture(scope="module")
def hostile_sweep(tmp_path_factory, sweep_in_process) -> tuple[dict, list]:
    """One sweep of every hostile case and the declining plugin, each its own plugin and
    architecture, then ``tiny`` from a well-behaved plugin: ``({(hook, behaviour): (plugin,
    victim)}, runs)``. The speed probes, which no case concerns, are left out."""
    kinds = [(hook, behaviour) for hook, behaviour, _ in HOSTILE_CASES] + [DECLINES]
    cases = {
        (hook, behaviour): f"victim-{hook}-{behaviour}".lower().replace(" ", "-").replace("_", "-")
        for hook, behaviour in kinds
    }
    hostile = [Hostile(hook, behaviour, victim) for (hook, behaviour), victim in cases.items()]
    output = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mnistbench.worker.probe_machine", lambda *args: None)
        plugins = unreported(*hostile, Tiny())
        sweep_in_process(output, [quick(victim) for victim in cases.values()] + [quick()], plugins)
    # Extra plugins are named by their class, numbered from the second on.
    names = ["Hostile"] + [f"Hostile-{n}" for n in range(2, len(cases) + 1)]
    named = dict(zip(cases, zip(names, cases.values(), strict=True), strict=True))
    return named, record.read(output)


@pytest.mark.parametrize(
    ("hook", "behaviour", "error"), HOSTILE_CASES, ids=[f"{h}-{b}" for h, b, _ in HOSTILE_CASES]
)
def test_hostile_plugin_fails_its_run_alone(hostile_sweep, hook, behaviour, error):
    cases, runs = hostile_sweep
    plugin, victim = cases[(hook, behaviour)]
    (run,) = [run for run in runs if run.architecture == victim]
    assert (run.status, run.error, run.plugin) == (
        "failed",
        error.format(plugin=plugin, victim=victim),
        plugin,
    )


def test_a_well_behaved_plugin_runs_beside_every_hostile_one(hostile_sweep):
    _, runs = hostile_sweep
    assert [run.status for run in runs] == ["failed"] * len(HOSTILE_CASES) + ["ok", "ok"]
    assert (runs[-1].architecture, runs[-1].plugin) == ("tiny", "Tiny")
    assert runs[-1].test_accuracy > 0


def test_prepare_data_returning_none_falls_back_to_the_core_default(hostile_sweep):
    cases, runs = hostile_sweep
    _, victim = cases[DECLINES]
    (run,) = [run for run in runs if run.architecture == victim]
    assert (run.status, run.error) == ("ok", "")
    # The same model as tiny's, on the data the core prepared for tiny too: it learns the same.
    tiny = runs[-1]
    assert (run.test_loss, run.epoch_loss) == (tiny.test_loss, tiny.epoch_loss)


def test_reporter_that_raises_leaves_the_other_reports(tmp_path, sweep_in_process, caplog):
    class BrokenReporter:
        @mnistbench.hookimpl
        def mnistbench_write_report(self, runs, output_dir):
            raise OSError("disk of the tracker")

    plugins = load_plugins(extra=[Tiny(), BrokenReporter()], entry_points=False)
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        result = sweep_in_process(tmp_path, [quick()], plugins)
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
