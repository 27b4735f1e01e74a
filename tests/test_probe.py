"""The speed probe: its figures and normalized metrics (pure), and that it leaves runs alone."""

from __future__ import annotations

import math

import pytest

from mnistbench import contention
from mnistbench.metrics import RUN_COLUMNS, metric
from mnistbench.plan import plan
from mnistbench.probe import NORMALIZED, PROBE_VERSION, measure_probe, probe_columns

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


def test_the_probe_times_a_short_workload():
    seconds = measure_probe()
    assert 0 < seconds < 5


def test_counters_subtract_to_a_phase_and_keep_what_the_system_lacks_empty():
    start = contention.Counters(1.0, 10, 2.0, None)
    end = contention.Counters(3.5, 14, 2.25, None)
    assert end - start == contention.Counters(2.5, 4, 0.25, None)


def test_counters_of_a_busy_phase_count_its_cpu_time():
    import time

    start, wall = contention.now(), time.perf_counter()
    total = sum(i * i for i in range(2_000_000))
    phase, wall = contention.now() - start, time.perf_counter() - wall
    assert total > 0
    # One busy thread: its CPU time is most of the wall time (less only when preempted).
    assert 0.3 * wall < phase.cpu_seconds <= wall + 0.05
    assert isinstance(phase.involuntary_switches, int)


# --- the probe leaves the run alone ---------------------------------------------------------


@pytest.fixture(scope="module")
def with_and_without_probe(sweep_in_process, tmp_path_factory):
    """The same dnn run twice in this process: with the probe, and with it skipped."""
    configs = plan(["dnn"], epochs=1, train_limit=1000, test_limit=200, seed=11)
    rows = {}
    rows["probe"] = sweep_in_process(tmp_path_factory.mktemp("probe"), configs).rows[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mnistbench.worker.probe_machine", lambda *args: None)
        rows["none"] = sweep_in_process(tmp_path_factory.mktemp("none"), configs).rows[0]
    return rows


def test_a_run_learns_exactly_the_same_with_and_without_the_probe(with_and_without_probe):
    probe, none = with_and_without_probe["probe"], with_and_without_probe["none"]
    for column in ("test_accuracy", "test_loss", "epoch_loss", "sample_predictions"):
        assert probe[column] == none[column], column


def test_a_run_records_both_probes_and_its_normalized_times(with_and_without_probe):
    row = with_and_without_probe["probe"]
    assert row["probe_seconds_before"] > 0 and row["probe_seconds_after"] > 0
    assert row["probe_version"] == PROBE_VERSION
    assert row["fit_seconds_normalized"] == pytest.approx(row["fit_seconds"] / row["probe_seconds"])
    assert row["fit_cpu_seconds"] > 0


def test_a_run_without_a_probe_has_empty_normalized_columns(with_and_without_probe):
    row = with_and_without_probe["none"]
    assert row["probe_seconds"] is None and row["fit_seconds_normalized"] is None
    assert row["fit_seconds"] > 0
