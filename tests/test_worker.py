"""A worker's life: the outcome of a run, the machine measurement, and one run performed."""

from __future__ import annotations

import logging
import pickle
import platform
import tempfile
import uuid
from pathlib import Path

import mnistbench
from mnistbench import flops
from mnistbench.plan import RunConfig
from mnistbench.plugins import load_plugins
from mnistbench.worker import (
    PEAK_MATMUL_SIZE,
    MachineKey,
    NodePeakFile,
    Outcome,
    known_peak,
    measure_machine,
    perform,
)

# --- Outcome.of_error ----------------------------------------------------------------------


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
    assert outcome.measured == {}


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
    monkeypatch.setattr(flops, "measure_peak_flops", lambda size: sizes.append(size) or 7e9)
    events = []
    assert measure_machine("jax", events.append) == 7e9
    assert sizes == [PEAK_MATMUL_SIZE]
    assert events == [{"event": "phase", "phase": "measuring peak FLOP/s (jax)"}]


def test_a_peak_that_cannot_be_measured_is_unknown_with_a_warning(monkeypatch, caplog):
    def fails(size):
        raise RuntimeError("no BLAS")

    monkeypatch.setattr(flops, "measure_peak_flops", fails)
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        assert measure_machine("tensorflow", lambda event: None) is None
    assert caplog.messages == ["could not measure peak FLOP/s on tensorflow: RuntimeError: no BLAS"]


# --- perform -------------------------------------------------------------------------------


class Unbuildable:
    """Registers 'victim', whose model cannot be built."""

    @mnistbench.hookimpl
    def mnistbench_register_architectures(self, register):
        register("victim")

    @mnistbench.hookimpl
    def mnistbench_build_model(self, architecture):
        raise RuntimeError("cannot build this one")


def test_perform_returns_a_failed_outcome_for_a_raising_plugin(mnist):
    import keras

    plugins = load_plugins(entry_points=False, extra=[Unbuildable()])
    config = RunConfig("victim", epochs=1, train_limit=100, test_limit=50)
    outcome = perform(
        config, mnist, plugins, cpus=2, peaks=known_peak(4e9), on_progress=lambda e: None
    )
    assert outcome == Outcome(
        "failed",
        "PluginError: plugin 'Unbuildable' failed in mnistbench_build_model: "
        "RuntimeError: cannot build this one",
        {},
        MachineKey(platform.node(), keras.backend.backend(), 2),
        4e9,
    )


def test_perform_returns_the_measured_columns_of_a_run_that_succeeds(mnist, faulty_plugin):
    import keras

    config = RunConfig("tiny", epochs=1, train_limit=100, test_limit=50)
    outcome = perform(
        config, mnist, load_plugins(), cpus=2, peaks=known_peak(4e9), on_progress=lambda e: None
    )
    assert (outcome.status, outcome.error) == ("ok", "")
    assert outcome.machine == MachineKey(platform.node(), keras.backend.backend(), 2)
    assert outcome.peak_flops_per_second == 4e9
    assert outcome.measured["peak_flops_per_second"] == 4e9
    assert outcome.measured["train_samples"] == 100


def test_perform_of_a_diverging_run_is_diverged(mnist, faulty_plugin):
    config = RunConfig("nan", epochs=1, train_limit=100, test_limit=50)
    outcome = perform(
        config, mnist, load_plugins(), cpus=2, peaks=known_peak(4e9), on_progress=lambda e: None
    )
    assert (outcome.status, outcome.error) == (
        "diverged",
        "FloatingPointError: training loss became nan (diverged)",
    )


def test_a_process_measures_each_machine_key_once_across_sweeps(mnist, monkeypatch):
    from mnistbench import worker

    monkeypatch.setattr(worker, "_MEASURED_HERE", {})
    sizes = []
    monkeypatch.setattr(flops, "measure_peak_flops", lambda size: sizes.append(size) or 7e9)
    plugins = load_plugins(entry_points=False, extra=[Unbuildable()])
    config = RunConfig("victim", epochs=1, train_limit=100, test_limit=50)
    for cpus in (2, 2, 1):  # a new sweep's source knows nothing; this process does
        outcome = perform(
            config, mnist, plugins, cpus=cpus, peaks=known_peak(None), on_progress=lambda e: None
        )
        assert outcome.peak_flops_per_second == 7e9
    assert sizes == [PEAK_MATMUL_SIZE, PEAK_MATMUL_SIZE]  # cpus 2 once, cpus 1 once
