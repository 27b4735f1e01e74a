"""A worker's life: the run's record, the outcome of a run, the machine measurement, and one
run performed."""

from __future__ import annotations

import logging
import math
import os
import pickle
import platform
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import quick

from mnistbench import worker
from mnistbench.plan import RunConfig
from mnistbench.record import RecordError, Run
from mnistbench.worker import (
    PEAK_MATMUL_SIZE,
    MachineKey,
    NodePeakFile,
    Outcome,
    Placement,
    known_peak,
    measure_machine,
    perform,
    run_record,
)

ORIGIN = SimpleNamespace(plugin="faulty", version="0.1.0")
RAY = Placement("ray", "process", "worker-3", 2)
STARTED = "2025-01-02T03:04:05+00:00"


TINY = RunConfig("tiny")


def record_of(config=TINY, measured=None, **options) -> Run:
    options = {"status": "ok", "started_at": STARTED, **options}
    return run_record(config, ORIGIN, options.pop("placement", RAY), measured=measured, **options)


# --- run_record: the record a worker makes -------------------------------------------------


def test_a_record_holds_where_the_run_ran():
    made = record_of()
    assert (made.executor, made.isolation, made.node, made.cpus_reserved) == (
        "ray",
        "process",
        "worker-3",
        2,
    )


def test_a_record_holds_the_configuration_and_the_plugin_behind_it():
    config = RunConfig(
        "tiny", epochs=3, batch_size=64, train_limit=500, seed=5, repeat=2, steps_per_execution=4
    )
    made = record_of(config)
    assert {
        key: getattr(made, key)
        for key in (
            "run_id",
            "config_id",
            "architecture",
            "plugin",
            "plugin_version",
            "epochs",
            "batch_size",
            "steps_per_execution",
            "seed",
            "repeat",
            "train_samples",
            "test_samples",
            "started_at",
            "status",
            "error",
        )
    } == {
        "run_id": "tiny-bs64-spe4-r2",
        "config_id": "tiny-bs64-spe4",
        "architecture": "tiny",
        "plugin": "faulty",
        "plugin_version": "0.1.0",
        "epochs": 3,
        "batch_size": 64,
        "steps_per_execution": 4,
        "seed": 7,
        "repeat": 2,
        "train_samples": 500,
        "test_samples": 10_000,
        "started_at": STARTED,
        "status": "ok",
        "error": "",
    }


def test_a_record_names_the_backend_it_was_to_run_on(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert record_of().backend == "torch"  # the configured one
    assert record_of(RunConfig("tiny", backend="jax")).backend == "jax"


def test_measured_values_replace_the_configured_ones():
    # A target can stop training early: the epochs trained are what the record says.
    made = record_of(RunConfig("tiny", epochs=10), {"epochs": 4, "fit_seconds": 1.5})
    assert (made.epochs, made.fit_seconds) == (4, 1.5)


def test_a_measured_value_that_is_no_column_is_an_error_where_it_is_made():
    with pytest.raises(RecordError) as error:
        record_of(measured={"gpu_temperature": 71.0})
    assert str(error.value) == "run record: unknown field(s) gpu_temperature"


def test_not_measured_is_none_not_nan():
    made = record_of(measured={"steady_epoch_seconds": math.nan, "fit_seconds": 2.0})
    assert (made.steady_epoch_seconds, made.fit_seconds) == (None, 2.0)


def test_a_failed_record_keeps_its_configuration_and_placement_and_no_measurement():
    made = record_of(status="failed", error="RuntimeError: boom")
    assert (made.status, made.error, made.architecture, made.node, made.epochs) == (
        "failed",
        "RuntimeError: boom",
        "tiny",
        "worker-3",
        5,
    )
    assert made.fit_seconds is None and made.test_accuracy is None


def test_a_record_of_an_unregistered_architecture_names_no_plugin():
    made = run_record(RunConfig("gone"), None, RAY, status="failed", started_at=STARTED)
    assert (made.plugin, made.plugin_version, made.architecture) == ("", "", "gone")


def test_a_multi_line_error_becomes_one_line():
    made = record_of(status="failed", error="Traceback:\n  line 1\n\tValueError:  bad ")
    assert made.error == "Traceback: line 1 ValueError: bad"


def test_placement_here_is_this_machine_with_every_cpu_unless_told():
    node = platform.node()
    assert Placement.here("local", "none") == Placement("local", "none", node, os.cpu_count())
    assert Placement.here("ray", "process", 3) == Placement("ray", "process", node, 3)


# --- Outcome -------------------------------------------------------------------------------


def test_a_floating_point_error_is_a_diverged_run():
    outcome = Outcome.of_error(FloatingPointError("training loss became nan (diverged)"))
    assert outcome == Outcome("diverged", "FloatingPointError: training loss became nan (diverged)")


def test_any_other_error_is_a_failed_run():
    outcome = Outcome.of_error(RuntimeError("out of memory"))
    assert outcome == Outcome("failed", "RuntimeError: out of memory")


def test_an_error_keeps_the_machine_measurement_it_used():
    key = MachineKey("node-1", "tensorflow", 4)
    outcome = Outcome.of_error(ValueError("bad"), machine=key, peak_flops_per_second=2e9)
    assert (outcome.status, outcome.machine, outcome.peak_flops_per_second) == ("failed", key, 2e9)
    assert outcome.run is None


def test_an_outcome_without_a_record_has_the_driver_make_one():
    made = []

    def make(*, status, error):
        made.append((status, error))
        return record_of(status=status, error=error)

    assert Outcome("failed", "worker died").record(make).error == "worker died"
    own = record_of()
    assert Outcome("ok", run=own).record(make) is own
    assert made == [("failed", "worker died")]


# --- MachineKey ----------------------------------------------------------------------------


def test_machine_key_here_is_this_node_with_the_named_backend():
    assert MachineKey.here("jax", 3) == MachineKey(platform.node(), "jax", 3)


def test_machine_key_here_without_a_backend_is_the_configured_one(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert MachineKey.here(None, 1) == MachineKey(platform.node(), "torch", 1)


# --- measure_machine -----------------------------------------------------------------------


def test_a_known_peak_is_the_source_and_nothing_is_measured():
    def must_not_measure():
        raise AssertionError("measured again")

    key = MachineKey("node-1", "tensorflow", 2)
    assert known_peak(3.5e9)(key, must_not_measure) == 3.5e9


def test_without_a_known_peak_the_source_measures():
    key = MachineKey("node-1", "tensorflow", 2)
    assert known_peak(None)(key, lambda: 7e9) == 7e9


def test_a_node_peak_file_measures_each_key_once_and_shares_the_figure():
    peaks = NodePeakFile(uuid.uuid4().hex)
    calls = []

    def measure(value):
        return lambda: calls.append(value) or value

    a, b = MachineKey("node-1", "tensorflow", 1), MachineKey("node-1", "jax", 1)
    try:
        assert peaks(a, measure(5e9)) == 5e9
        # Another run with the same key, even in another process, reads the first figure.
        assert pickle.loads(pickle.dumps(peaks))(a, measure(9e9)) == 5e9
        assert peaks(b, measure(8e9)) == 8e9
        assert calls == [5e9, 8e9]
    finally:
        peaks.remove_here()
    assert not list(Path(tempfile.gettempdir()).glob(f"mnistbench-peak-{peaks.sweep_id}-*"))


def test_a_node_peak_file_keeps_no_unknown_peak():
    peaks = NodePeakFile(uuid.uuid4().hex)
    key = MachineKey("node-1", "tensorflow", 1)
    try:
        assert peaks(key, lambda: None) is None
        assert peaks(key, lambda: 6e9) == 6e9
    finally:
        peaks.remove_here()


def test_an_unknown_peak_is_measured_with_the_peak_matmul(monkeypatch):
    sizes = []
    monkeypatch.setattr(worker, "measure_peak_flops", lambda size: sizes.append(size) or 7e9)
    events = []
    assert measure_machine("jax", events.append) == 7e9
    assert sizes == [PEAK_MATMUL_SIZE]
    assert events == [{"event": "phase", "phase": "measuring peak FLOP/s (jax)"}]


def test_a_peak_that_cannot_be_measured_is_unknown_with_a_warning(monkeypatch, caplog):
    def fails(size):
        raise RuntimeError("no BLAS")

    monkeypatch.setattr(worker, "measure_peak_flops", fails)
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        assert measure_machine("tensorflow", lambda event: None) is None
    assert caplog.messages == ["could not measure peak FLOP/s on tensorflow: RuntimeError: no BLAS"]


# --- perform -------------------------------------------------------------------------------

HERE = Placement("local", "none", "node-1", 2)


def performed(config, mnist, plugins, peak=4e9):
    return perform(
        config,
        mnist,
        plugins,
        placement=HERE,
        started_at=STARTED,
        peaks=known_peak(peak),
        on_progress=lambda e: None,
    )


def test_perform_of_a_raising_plugin_is_a_failed_outcome_with_its_record(mnist, tiny_plugins):
    import keras

    outcome = performed(quick("broken"), mnist, tiny_plugins)
    error = (
        "PluginError: plugin 'Tiny' failed in mnistbench_build_model: "
        "RuntimeError: cannot build this one"
    )
    key = MachineKey(platform.node(), keras.backend.backend(), 2)
    assert (outcome.status, outcome.error, outcome.machine, outcome.peak_flops_per_second) == (
        "failed",
        error,
        key,
        4e9,
    )
    assert outcome.run == run_record(
        quick("broken"),
        tiny_plugins.architectures["broken"],
        HERE,
        status="failed",
        error=error,
        started_at=STARTED,
    )


def test_perform_of_a_run_that_succeeds_is_its_measured_record(mnist, tiny_plugins):
    import keras

    outcome = performed(quick(), mnist, tiny_plugins)
    assert (outcome.status, outcome.error) == ("ok", "")
    assert outcome.machine == MachineKey(platform.node(), keras.backend.backend(), 2)
    assert outcome.peak_flops_per_second == 4e9
    run = outcome.run
    assert (run.run_id, run.status, run.plugin, run.started_at) == (
        "tiny-r0",
        "ok",
        "Tiny",
        STARTED,
    )
    assert (run.executor, run.isolation, run.node, run.cpus_reserved) == (
        "local",
        "none",
        "node-1",
        2,
    )
    assert (run.peak_flops_per_second, run.train_samples, run.test_samples) == (4e9, 200, 50)
    assert run.fit_seconds > 0 and len(run.epoch_seconds) == 1
    # The speed probes ran before and after the run.
    assert run.probe_seconds_before > 0 and run.probe_seconds_after > 0


def test_perform_of_a_diverging_run_is_diverged(mnist, tiny_plugins):
    outcome = performed(quick("nan"), mnist, tiny_plugins)
    assert (outcome.status, outcome.error) == (
        "diverged",
        "FloatingPointError: training loss became nan (diverged)",
    )
    assert (outcome.run.status, outcome.run.error) == (outcome.status, outcome.error)


def test_a_process_measures_each_machine_key_once_across_sweeps(mnist, tiny_plugins, monkeypatch):
    monkeypatch.setattr(worker, "_MEASURED_HERE", {})
    monkeypatch.setattr(worker, "probe_machine", lambda *args: None)  # not what this is about
    sizes = []
    monkeypatch.setattr(worker, "measure_peak_flops", lambda size: sizes.append(size) or 7e9)
    for cpus in (2, 2, 1):  # a new sweep's source knows nothing; this process does
        outcome = perform(
            quick("broken"),
            mnist,
            tiny_plugins,
            placement=Placement("local", "none", "node-1", cpus),
            started_at=STARTED,
            peaks=known_peak(None),
            on_progress=lambda e: None,
        )
        assert outcome.peak_flops_per_second == 7e9
    assert sizes == [PEAK_MATMUL_SIZE, PEAK_MATMUL_SIZE]  # cpus 2 once, cpus 1 once
