"""The speed probe: its figures and normalized metrics (pure), and that it leaves runs alone."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest
from helpers import Tiny, quick

from mnistbench import contention, probe
from mnistbench.columns import RUN_COLUMNS, metric
from mnistbench.executors import local
from mnistbench.plugins import load_plugins
from mnistbench.probe import (
    NORMALIZED,
    PROBE_STEPS,
    PROBE_TIMINGS,
    PROBE_VERSION,
    measure_probe,
    probe_columns,
)

MEASURED = {
    "fit_seconds": 30.0,
    "steady_epoch_seconds": 3.0,
    "inference_samples_per_second": 20_000.0,
    "latency_ms": 1.5,
}


def test_every_probe_column_is_a_runs_csv_column():
    assert set(probe_columns(MEASURED, 0.2, 0.2)) <= set(RUN_COLUMNS)


def test_times_are_divided_by_the_mean_probe_and_rates_multiplied():
    columns = probe_columns(MEASURED, 0.19, 0.21)
    assert columns["probe_seconds"] == pytest.approx(0.2)
    assert columns["fit_seconds_normalized"] == pytest.approx(150.0)
    assert columns["steady_epoch_seconds_normalized"] == pytest.approx(15.0)
    assert columns["latency_ms_normalized"] == pytest.approx(7.5)
    assert columns["inference_samples_per_second_normalized"] == pytest.approx(4_000.0)
    assert columns["probe_version"] == PROBE_VERSION


def test_a_machine_twice_as_slow_gives_the_same_normalized_figures():
    rates = {"inference_samples_per_second"}
    slow = {name: value * (0.5 if name in rates else 2) for name, value in MEASURED.items()}
    fast_columns, slow_columns = probe_columns(MEASURED, 0.2, 0.2), probe_columns(slow, 0.4, 0.4)
    for name in NORMALIZED:
        assert slow_columns[f"{name}_normalized"] == pytest.approx(
            fast_columns[f"{name}_normalized"]
        )


def test_fit_steady_epoch_inference_and_latency_have_normalized_forms():
    assert NORMALIZED == list(MEASURED)


def test_every_normalized_metric_is_in_the_registry_with_the_same_direction():
    for name in NORMALIZED:
        assert metric(f"{name}_normalized").better == metric(name).better


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [(0.2, 0.2, False), (0.2, 0.219, False), (0.2, 0.23, True), (0.23, 0.2, True)],
)
def test_probes_more_than_10_percent_apart_flag_the_machine_changed(before, after, changed):
    assert probe_columns(MEASURED, before, after)["machine_changed"] is changed


def test_one_probe_alone_still_normalizes_but_cannot_flag_a_change():
    columns = probe_columns(MEASURED, 0.25, None)
    assert columns["probe_seconds"] == 0.25
    assert columns["machine_changed"] is None
    assert columns["fit_seconds_normalized"] == pytest.approx(120.0)


def test_without_a_probe_nothing_is_normalized():
    columns = probe_columns(MEASURED, None, None)
    assert math.isnan(columns["probe_seconds"])
    assert all(math.isnan(columns[f"{name}_normalized"]) for name in NORMALIZED)


def test_a_metric_that_was_not_measured_has_no_normalized_value():
    columns = probe_columns({"fit_seconds": 30.0, "steady_epoch_seconds": math.nan}, 0.2, 0.2)
    assert math.isnan(columns["steady_epoch_seconds_normalized"])
    assert math.isnan(columns["latency_ms_normalized"])


class Workload:
    """The probe's model, on a clock of its own: each training step takes the next of
    ``step_seconds`` (cycled)."""

    def __init__(self, step_seconds: list[float]) -> None:
        self.step_seconds, self.steps, self.clock = step_seconds, 0, 0.0

    def train_on_batch(self, x, y) -> None:
        self.clock += self.step_seconds[self.steps % len(self.step_seconds)]
        self.steps += 1

    def perf_counter(self) -> float:
        return self.clock


def test_the_probe_is_the_median_timing_of_its_steps(monkeypatch):
    # The steps of the five timings take 1, 10, 2, 3 and 4 ms each: the median is 3 ms a step
    # (neither the mean, 4 ms, nor the fastest, 1 ms).
    per_timing = [0.001, 0.010, 0.002, 0.003, 0.004]
    assert len(per_timing) == PROBE_TIMINGS
    workload = Workload([seconds for seconds in per_timing for _ in range(PROBE_STEPS)])
    monkeypatch.setattr(probe, "_workload", lambda: (workload, None, None))
    monkeypatch.setattr(probe, "time", SimpleNamespace(perf_counter=workload.perf_counter))
    assert measure_probe() == pytest.approx(PROBE_STEPS * 0.003)
    assert workload.steps == PROBE_TIMINGS * PROBE_STEPS


def test_counters_subtract_to_a_phase_and_keep_what_the_system_lacks_empty():
    start = contention.Counters(1.0, 10, 2.0, None)
    end = contention.Counters(3.5, 14, 2.25, None)
    assert end - start == contention.Counters(2.5, 4, 0.25, None)


def test_counters_of_a_phase_count_its_cpu_time_and_not_its_waits():
    """Whatever the machine's load: the phase spins until this process has used 0.2 s of
    CPU (by its own clock), then sleeps 0.4 s. Its CPU time is at least the spin's and at
    most the process's CPU time around it, well below the phase's wall time."""
    outer, wall = time.process_time(), time.perf_counter()
    start = contention.now()
    spun = time.process_time()
    while time.process_time() - spun < 0.2:
        pass
    spun = time.process_time() - spun
    time.sleep(0.4)
    phase = contention.now() - start
    outer, wall = time.process_time() - outer, time.perf_counter() - wall
    tick = 0.02  # rusage and the process clock round differently
    assert spun - tick <= phase.cpu_seconds <= outer + tick
    assert phase.cpu_seconds < wall - 0.2  # the sleep is no CPU time
    assert isinstance(phase.involuntary_switches, int) and phase.involuntary_switches >= 0


# --- the probe leaves the run alone ---------------------------------------------------------


@pytest.fixture(scope="module")
def with_and_without_probe(sweep_in_process, tmp_path_factory):
    """The same tiny run twice in this process: with the probe, and with it skipped."""
    plugins = load_plugins(builtins=[local], extra=[Tiny()], entry_points=False)
    configs = [quick(seed=11)]
    runs = {}
    runs["probe"] = sweep_in_process(
        tmp_path_factory.mktemp("probe"), configs, plugins, probe=True
    ).ran[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mnistbench.worker.probe_machine", lambda *args: None)
        runs["none"] = sweep_in_process(
            tmp_path_factory.mktemp("none"), configs, plugins, probe=True
        ).ran[0]
    return runs


def test_a_run_learns_exactly_the_same_with_and_without_the_probe(with_and_without_probe):
    probed, unprobed = with_and_without_probe["probe"], with_and_without_probe["none"]
    for field in ("test_accuracy", "test_loss", "epoch_loss", "sample_predictions"):
        assert getattr(probed, field) == getattr(unprobed, field), field


def test_a_run_records_both_probes_and_its_normalized_times(with_and_without_probe):
    run = with_and_without_probe["probe"]
    assert run.probe_seconds_before > 0 and run.probe_seconds_after > 0
    assert run.probe_seconds == pytest.approx(
        (run.probe_seconds_before + run.probe_seconds_after) / 2
    )
    assert run.probe_version == PROBE_VERSION
    assert run.fit_seconds_normalized == pytest.approx(run.fit_seconds / run.probe_seconds)
    assert run.fit_cpu_seconds > 0


def test_a_run_without_a_probe_has_empty_normalized_columns(with_and_without_probe):
    run = with_and_without_probe["none"]
    assert run.probe_seconds is None and run.fit_seconds_normalized is None
    assert run.fit_seconds > 0
