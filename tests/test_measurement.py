"""Measurement you can trust, end to end: repeats, warm-up, time-to-accuracy, FLOPs and peak."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import Tiny, quick

from mnistbench import record
from mnistbench.executors import local
from mnistbench.plan import plan
from mnistbench.plugins import load_plugins


@pytest.fixture(scope="module")
def reference_runs(cli_sweep) -> dict[str, record.Run]:
    """The shared CLI sweep's runs of dnn, cnn and rnn (2 epochs on 2000 images), by name."""
    return {run.architecture: run for run in record.read(cli_sweep)}


@pytest.fixture(scope="module")
def unreported():
    """The local executor and the tiny plugin, without reporters: for the sweeps whose
    reports no test here reads."""
    return load_plugins(builtins=[local], extra=[Tiny()], entry_points=False)


def test_repeats_train_from_their_own_seeds_and_are_summarised(
    tmp_path, sweep_in_process, tiny_plugins
):
    configs = plan(["tiny"], epochs=1, train_limit=200, test_limit=50, repeats=3, seed=7)
    result = sweep_in_process(tmp_path, configs, tiny_plugins)
    runs = record.read(tmp_path)
    assert [run.run_id for run in runs] == ["tiny-r0", "tiny-r1", "tiny-r2"]
    assert [run.seed for run in runs] == [7, 8, 9]
    assert {run.config_id for run in runs} == {"tiny"}
    assert {run.status for run in runs} == {"ok"}
    # Each repeat trained from its own seed: the weights differ, so the losses do.
    assert len({run.test_loss for run in runs}) == 3
    assert not result.failed
    comparison = pd.read_csv(tmp_path / "comparison.csv").iloc[0]
    fits = pd.Series([run.fit_seconds for run in runs])
    assert comparison["runs"] == 3
    assert comparison["fit_seconds"] == pytest.approx(fits.median())
    assert comparison["fit_seconds_min"] == pytest.approx(fits.min())
    assert comparison["fit_seconds_max"] == pytest.approx(fits.max())
    assert comparison["fit_seconds_stdev"] == pytest.approx(fits.std())
    assert bool(comparison["fit_seconds_noisy"]) == (fits.std() / fits.mean() > 0.10)
    # One machine, one backend, one reservation: the repeats share one peak measurement.
    assert len({run.peak_flops_per_second for run in runs}) == 1
    assert runs[0].peak_flops_per_second > 0


def test_first_epoch_is_reported_apart_from_the_steady_state(reference_runs):
    for name, run in reference_runs.items():
        first, second = run.epoch_seconds
        assert run.first_epoch_seconds == pytest.approx(first, abs=1e-4), name
        assert run.steady_epoch_seconds == pytest.approx(second, abs=1e-4), name
        assert run.latency_ms <= run.latency_p95_ms <= run.latency_p99_ms, name


def test_time_to_accuracy_stops_when_the_target_is_reached(tmp_path, sweep_in_process, unreported):
    config = quick(epochs=10, train_limit=2000, test_limit=200, target_accuracy=0.5)
    (run,) = sweep_in_process(tmp_path, [config], unreported).ran
    assert run.converged is True
    assert run.epochs < 10
    assert 0 < run.time_to_accuracy_seconds <= run.fit_seconds
    assert run.test_accuracy >= 0.5
    assert record.read(tmp_path) == [run]


def test_target_never_reached_is_not_converged_not_a_time(tmp_path, sweep_in_process, unreported):
    config = quick(epochs=2, target_accuracy=0.999, eval_every=5)
    (run,) = sweep_in_process(tmp_path, [config], unreported).ran
    assert run.status == "ok"
    assert run.converged is False
    assert run.time_to_accuracy_seconds is None
    assert run.epochs == 2
    assert record.read(tmp_path) == [run]


def test_flops_and_peak_fraction_are_recorded(reference_runs):
    run = reference_runs["dnn"]
    macs = 784 * 128 + 128 * 128 + 128 * 10
    assert run.inference_flops_per_sample >= 2 * macs
    assert run.train_flops_per_sample == pytest.approx(3 * run.inference_flops_per_sample)
    assert run.peak_flops_per_second > 0
    assert run.train_peak_fraction == pytest.approx(
        run.train_flops_per_second / run.peak_flops_per_second
    )
    assert 0 < run.inference_peak_fraction < 1


def test_runs_on_one_machine_share_its_peak(reference_runs):
    assert len({run.peak_flops_per_second for run in reference_runs.values()}) == 1


def test_execution_options_reach_the_compiled_model(tmp_path, sweep_in_process, unreported):
    config = quick(steps_per_execution=4, jit_compile=False)
    (run,) = sweep_in_process(tmp_path, [config], unreported).ran
    assert run.status == "ok", run.error
    assert run.steps_per_execution == 4
    assert run.jit_compile is False
    assert run.run_id == "tiny-spe4-jitoff-r0"
