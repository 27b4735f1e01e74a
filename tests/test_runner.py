"""One run: the measured fields derived from raw timings (pure), and one real run on a slice."""

from __future__ import annotations

import importlib.metadata
import math
from dataclasses import replace

import pytest
from helpers import quick

from mnistbench.columns import RUN_COLUMNS
from mnistbench.contention import Counters
from mnistbench.plan import RunConfig
from mnistbench.runner import RawRun, derive_metrics, run_one
from mnistbench.worker import Placement, run_record

#: Latencies of 1, 2, ..., 100 ms: their percentiles are known exactly.
LATENCIES = [ms / 1000 for ms in range(1, 101)]

RAW = RawRun(
    backend="tensorflow",
    jit_compile=False,
    params=7850,
    train_samples=1000,
    test_samples=100,
    seed=3,
    fit_seconds=10.0,
    epoch_seconds=[4.0, 2.0, 3.0],
    epoch_accuracy=[0.5, 0.7, 0.8],
    epoch_loss=[1.5, 0.9, 0.6],
    target_set=False,
    time_to_accuracy_seconds=None,
    test_accuracy=0.85,
    test_loss=0.55,
    predict_seconds=0.5,
    latency_seconds=LATENCIES,
    sample_predictions=[7, 2, 1],
    inference_flops_per_sample=100.0,
    train_flops_per_sample=300.0,
    peak_flops_per_second=1e6,
    peak_memory_mb=512.0,
    fit_counters=Counters(9.5, 40, 0.25, None),
    inference_counters=Counters(0.75, 3, 0.0, None),
)


# --- derive_metrics: pure, no Keras --------------------------------------------------------


def test_every_derived_metric_is_a_runs_csv_column():
    assert set(derive_metrics(RAW)) <= set(RUN_COLUMNS)


@pytest.mark.parametrize(
    "raw",
    [RAW, replace(RAW, epoch_seconds=[4.0], peak_flops_per_second=None, target_set=True)],
    ids=["measured", "not-measured"],
)
def test_the_derived_metrics_make_a_record_with_every_value_kept(raw):
    """Every value is of its field's kind (the record checks each): nothing is dropped, and
    what was not measured (NaN) becomes None."""
    metrics = derive_metrics(raw)
    made = run_record(
        RunConfig("tiny"),
        None,
        Placement("local", "none", "node-1", 2),
        status="ok",
        started_at="",
        measured=metrics,
    )
    for name, value in metrics.items():
        kept = getattr(made, name)
        if isinstance(value, float) and math.isnan(value):
            assert kept is None, name
        elif isinstance(value, list):
            assert kept == tuple(value), name
        else:
            assert kept == value, name


def test_first_epoch_is_reported_apart_from_the_steady_state():
    metrics = derive_metrics(RAW)
    assert metrics["first_epoch_seconds"] == 4.0
    assert metrics["steady_epoch_seconds"] == 2.5  # mean of epochs 2..n
    assert metrics["seconds_per_epoch"] == 3.0  # mean of all epochs
    assert metrics["epochs"] == 3


def test_steady_epoch_of_a_single_epoch_run_is_not_measured():
    metrics = derive_metrics(replace(RAW, epoch_seconds=[4.0], epoch_accuracy=[0.5]))
    assert math.isnan(metrics["steady_epoch_seconds"])
    assert metrics["first_epoch_seconds"] == 4.0


def test_train_flops_per_second_come_from_the_steady_epochs():
    # 300 FLOPs x 1000 samples per epoch, over the 2.5 s steady epoch.
    assert derive_metrics(RAW)["train_flops_per_second"] == 120_000.0


def test_train_flops_per_second_of_a_single_epoch_run_come_from_that_epoch():
    metrics = derive_metrics(replace(RAW, epoch_seconds=[4.0]))
    assert metrics["train_flops_per_second"] == 75_000.0


def test_train_samples_per_second_count_every_epoch_over_the_fit_time():
    assert derive_metrics(RAW)["train_samples_per_second"] == 300.0  # 1000 x 3 / 10 s


def test_inference_rates_come_from_one_predict_over_the_test_set():
    metrics = derive_metrics(RAW)
    assert metrics["inference_samples_per_second"] == 200.0  # 100 / 0.5 s
    assert metrics["inference_flops_per_second"] == 20_000.0


def test_latency_percentiles_are_in_milliseconds():
    metrics = derive_metrics(RAW)
    assert metrics["latency_ms"] == pytest.approx(50.5)
    assert metrics["latency_p95_ms"] == pytest.approx(95.05)
    assert metrics["latency_p99_ms"] == pytest.approx(99.01)


def test_peak_fractions_are_achieved_over_peak():
    metrics = derive_metrics(RAW)
    assert metrics["peak_flops_per_second"] == 1e6
    assert metrics["train_peak_fraction"] == pytest.approx(0.12)
    assert metrics["inference_peak_fraction"] == pytest.approx(0.02)


def test_peak_fractions_are_not_measured_when_the_peak_is_unknown():
    metrics = derive_metrics(replace(RAW, peak_flops_per_second=None))
    assert math.isnan(metrics["peak_flops_per_second"])
    assert math.isnan(metrics["train_peak_fraction"])
    assert math.isnan(metrics["inference_peak_fraction"])


def test_converged_is_empty_without_a_target():
    assert derive_metrics(RAW)["converged"] is None


def test_converged_when_the_target_was_reached():
    metrics = derive_metrics(replace(RAW, target_set=True, time_to_accuracy_seconds=6.5))
    assert (metrics["converged"], metrics["time_to_accuracy_seconds"]) == (True, 6.5)


def test_not_converged_when_the_target_was_missed():
    metrics = derive_metrics(replace(RAW, target_set=True))
    assert (metrics["converged"], metrics["time_to_accuracy_seconds"]) == (False, None)


def test_per_epoch_lists_are_rounded_lists():
    raw = replace(RAW, epoch_seconds=[1.234567, 2.0], epoch_loss=[0.12345678, 0.5])
    metrics = derive_metrics(raw)
    assert metrics["epoch_seconds"] == [1.2346, 2.0]
    assert metrics["epoch_loss"] == [0.123457, 0.5]
    assert metrics["epoch_accuracy"] == [0.5, 0.7, 0.8]
    assert metrics["sample_predictions"] == [7, 2, 1]
    assert metrics["inference_curve"] == []  # no --inference-batch-sizes: no curve


def test_the_machine_counters_of_fit_and_inference_pass_through():
    metrics = derive_metrics(RAW)
    assert {
        key: metrics[key]
        for key in (
            "fit_cpu_seconds",
            "inference_cpu_seconds",
            "fit_involuntary_switches",
            "fit_cpu_pressure_seconds",
            "fit_steal_seconds",
        )
    } == {
        "fit_cpu_seconds": 9.5,
        "inference_cpu_seconds": 0.75,
        "fit_involuntary_switches": 40,
        "fit_cpu_pressure_seconds": 0.25,
        "fit_steal_seconds": None,  # not offered by the system: empty, not zero
    }


def test_backend_version_is_the_installed_package_version():
    assert derive_metrics(RAW)["backend_version"] == importlib.metadata.version("tensorflow")


def test_raw_counts_pass_through_unchanged():
    metrics = derive_metrics(RAW)
    assert {
        key: metrics[key]
        for key in ("backend", "jit_compile", "params", "train_samples", "test_samples", "seed")
    } == {
        "backend": "tensorflow",
        "jit_compile": False,
        "params": 7850,
        "train_samples": 1000,
        "test_samples": 100,
        "seed": 3,
    }
    assert (metrics["test_accuracy"], metrics["test_loss"], metrics["peak_memory_mb"]) == (
        0.85,
        0.55,
        512.0,
    )


# --- run_one: one real run on a tiny slice -------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(mnist, tiny_plugins):
    """One real run_one of ``tiny`` (logistic regression), in-process, 2 epochs."""
    events = []
    config = quick(epochs=2, train_limit=300, seed=4, repeat=1)
    measured = run_one(config, mnist, tiny_plugins, events.append, peak_flops_per_second=1e9)
    return measured, events


def test_run_one_measures_the_configured_slice(tiny_run):
    measured, _ = tiny_run
    assert (measured["epochs"], measured["train_samples"], measured["test_samples"]) == (
        2,
        300,
        50,
    )
    assert measured["seed"] == 5
    assert measured["params"] == 28 * 28 * 10 + 10
    assert len(measured["epoch_seconds"]) == 2
    assert len(measured["sample_predictions"]) == 16


def test_run_one_learns_better_than_chance(tiny_run):
    assert tiny_run[0]["test_accuracy"] > 0.3


def test_run_one_uses_the_peak_it_is_given(tiny_run):
    measured, _ = tiny_run
    assert measured["peak_flops_per_second"] == 1e9
    assert measured["train_peak_fraction"] == pytest.approx(
        measured["train_flops_per_second"] / 1e9
    )


def test_run_one_counts_train_flops_as_three_times_inference(tiny_run):
    measured, _ = tiny_run
    assert measured["train_flops_per_sample"] == 3 * measured["inference_flops_per_sample"]


def test_run_one_reports_its_phases_in_order(tiny_run):
    _, events = tiny_run
    milestones = [
        event.get("phase") or f"epoch {event['epoch']}/{event['epochs']}"
        for event in events
        if event["event"] in ("phase", "epoch")
    ]
    assert milestones == [
        "preparing data",
        "building model",
        "epoch 1/2",
        "epoch 2/2",
        "evaluating",
        "timing inference",
    ]
