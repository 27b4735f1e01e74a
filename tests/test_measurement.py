"""Measurement you can trust, end to end: repeats, warm-up, time-to-accuracy, FLOPs and peak."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from mnistbench.plan import plan


@pytest.fixture(scope="module")
def reference_runs(cli_sweep) -> pd.DataFrame:
    """The shared CLI sweep's runs of dnn, cnn and rnn (2 epochs on 2000 images), by name."""
    return pd.read_csv(cli_sweep / "runs.csv").set_index("architecture")


def test_repeats_train_from_their_own_seeds_and_are_summarised(
    tmp_path, sweep_in_process, faulty_plugin
):
    configs = plan(["tiny"], epochs=2, train_limit=500, test_limit=100, repeats=3, seed=7)
    result = sweep_in_process(tmp_path, configs)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs["run_id"]) == ["tiny-r0", "tiny-r1", "tiny-r2"]
    assert list(runs["seed"]) == [7, 8, 9]
    assert set(runs["config_id"]) == {"tiny"}
    assert set(runs["status"]) == {"ok"}
    # Each repeat trained from its own seed: the weights differ, so the losses do.
    assert runs["test_loss"].nunique() == 3
    assert not result.failed
    comparison = pd.read_csv(tmp_path / "comparison.csv").iloc[0]
    fits = runs["fit_seconds"]
    assert comparison["runs"] == 3
    assert comparison["fit_seconds"] == pytest.approx(fits.median())
    assert comparison["fit_seconds_min"] == pytest.approx(fits.min())
    assert comparison["fit_seconds_max"] == pytest.approx(fits.max())
    assert comparison["fit_seconds_stdev"] == pytest.approx(fits.std())
    assert bool(comparison["fit_seconds_noisy"]) == (fits.std() / fits.mean() > 0.10)
    # One machine, one backend, one reservation: the repeats share one peak measurement.
    assert runs["peak_flops_per_second"].nunique() == 1
    assert runs["peak_flops_per_second"].iloc[0] > 0


def test_first_epoch_is_reported_apart_from_the_steady_state(reference_runs):
    for name, row in reference_runs.iterrows():
        epochs = json.loads(row["epoch_seconds"])
        assert row["first_epoch_seconds"] == pytest.approx(epochs[0], abs=1e-4), name
        assert row["steady_epoch_seconds"] == pytest.approx(epochs[1], abs=1e-4), name
        assert row["latency_ms"] <= row["latency_p95_ms"] <= row["latency_p99_ms"], name


def test_time_to_accuracy_stops_when_the_target_is_reached(
    tmp_path, sweep_in_process, faulty_plugin
):
    configs = plan(["tiny"], epochs=10, train_limit=2000, test_limit=200, target_accuracy=0.5)
    sweep_in_process(tmp_path, configs)
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert bool(row["converged"]) is True
    assert row["epochs"] < 10
    assert 0 < row["time_to_accuracy_seconds"] <= row["fit_seconds"]
    assert row["test_accuracy"] >= 0.5


def test_target_never_reached_is_not_converged_not_a_time(
    tmp_path, sweep_in_process, faulty_plugin
):
    configs = plan(
        ["tiny"], epochs=2, train_limit=300, test_limit=100, target_accuracy=0.999, eval_every=5
    )
    sweep_in_process(tmp_path, configs)
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert row["status"] == "ok"
    assert bool(row["converged"]) is False
    assert math.isnan(row["time_to_accuracy_seconds"])
    assert row["epochs"] == 2


def test_flops_and_peak_fraction_are_recorded(reference_runs):
    row = reference_runs.loc["dnn"]
    macs = 784 * 128 + 128 * 128 + 128 * 10
    assert row["inference_flops_per_sample"] >= 2 * macs
    assert row["train_flops_per_sample"] == pytest.approx(3 * row["inference_flops_per_sample"])
    assert row["peak_flops_per_second"] > 0
    assert row["train_peak_fraction"] == pytest.approx(
        row["train_flops_per_second"] / row["peak_flops_per_second"]
    )
    assert 0 < row["inference_peak_fraction"] < 1


def test_runs_on_one_machine_share_its_peak(reference_runs):
    assert reference_runs["peak_flops_per_second"].nunique() == 1


def test_execution_options_reach_the_compiled_model(tmp_path, sweep_in_process, faulty_plugin):
    configs = plan(
        ["tiny"],
        epochs=1,
        train_limit=640,
        test_limit=100,
        steps_per_execution=[4],
        jit_compile=[False],
    )
    sweep_in_process(tmp_path, configs)
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["steps_per_execution"] == 4
    assert bool(row["jit_compile"]) is False
    assert row["run_id"] == "tiny-spe4-jitoff-r0"
