"""Measurement you can trust: isolated workers, repeats, warm-up, time-to-accuracy, FLOPs."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal

import pandas as pd
import pytest

from mnistbench.data import resolve_mnist
from mnistbench.plugins import load_plugins
from mnistbench.runner import RunConfig
from mnistbench.sweep import plan, run_sweep


@pytest.fixture(scope="module")
def mnist(mnist_npz):
    return resolve_mnist(mnist_npz, offline=True)


def sweep(tmp_path, mnist, configs, **options):
    plugins = load_plugins()
    return run_sweep(
        configs,
        mnist=mnist,
        plugins=plugins,
        output_dir=tmp_path,
        argv=["mnistbench", "run"],
        **options,
    )


def test_run_ids_name_configuration_and_repeat():
    configs = plan(["dnn"], repeats=2, steps_per_execution=[1, 32], jit_compile=[False])
    assert [c.run_id for c in configs] == [
        "dnn-jitoff-r0",
        "dnn-jitoff-r1",
        "dnn-spe32-jitoff-r0",
        "dnn-spe32-jitoff-r1",
    ]
    assert [c.run_seed for c in configs] == [0, 1, 0, 1]


def test_default_configuration_id_is_the_architecture():
    assert RunConfig("cnn").config_id == "cnn"


def test_repeats_run_in_workers_with_their_own_seeds(tmp_path, mnist, faulty_plugin):
    configs = plan(["tiny"], epochs=2, train_limit=500, test_limit=100, repeats=3, seed=7)
    result = sweep(tmp_path, mnist, configs)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs["run_id"]) == ["tiny-r0", "tiny-r1", "tiny-r2"]
    assert list(runs["seed"]) == [7, 8, 9]
    assert set(runs["config_id"]) == {"tiny"}
    assert set(runs["isolation"]) == {"process"}
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


def test_first_epoch_is_reported_apart_from_the_steady_state(tmp_path, mnist, faulty_plugin):
    configs = plan(["tiny"], epochs=3, train_limit=500, test_limit=100)
    sweep(tmp_path, mnist, configs, isolation="none")
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    epochs = json.loads(row["epoch_seconds"])
    assert row["first_epoch_seconds"] == pytest.approx(epochs[0], abs=1e-4)
    assert row["steady_epoch_seconds"] == pytest.approx((epochs[1] + epochs[2]) / 2, abs=1e-4)
    assert row["latency_ms"] <= row["latency_p95_ms"] <= row["latency_p99_ms"]


def test_time_to_accuracy_stops_when_the_target_is_reached(tmp_path, mnist, faulty_plugin):
    configs = plan(["tiny"], epochs=10, train_limit=2000, test_limit=200, target_accuracy=0.5)
    sweep(tmp_path, mnist, configs, isolation="none")
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert bool(row["converged"]) is True
    assert row["epochs"] < 10
    assert 0 < row["time_to_accuracy_seconds"] <= row["fit_seconds"]
    assert row["test_accuracy"] >= 0.5


def test_target_never_reached_is_not_converged_not_a_time(tmp_path, mnist, faulty_plugin):
    configs = plan(
        ["tiny"], epochs=2, train_limit=300, test_limit=100, target_accuracy=0.999, eval_every=5
    )
    sweep(tmp_path, mnist, configs, isolation="none")
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert row["status"] == "ok"
    assert bool(row["converged"]) is False
    assert math.isnan(row["time_to_accuracy_seconds"])
    assert row["epochs"] == 2


def test_worker_killed_mid_training_is_one_failed_row(tmp_path, mnist, faulty_plugin):
    configs = plan(["tiny", "tiny"], epochs=3, train_limit=3000, test_limit=100)
    configs = [configs[0], RunConfig("tiny", epochs=1, train_limit=500, test_limit=100, repeat=1)]
    killed = []

    def kill_first_worker_mid_epoch(event):
        if event["event"] == "step" and not killed:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    sweep(tmp_path, mnist, configs, on_progress=kill_first_worker_mid_epoch)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert killed
    assert list(runs["status"]) == ["failed", "ok"]
    assert runs.loc[0, "error"].startswith("worker process killed by SIGKILL; see ")
    assert runs.loc[1, "test_accuracy"] > 0.3


def test_hang_past_the_timeout_is_a_failed_row(tmp_path, mnist, faulty_plugin):
    configs = plan(["sleepy", "tiny"], epochs=1, train_limit=300, test_limit=100)
    sweep(tmp_path, mnist, configs, timeout=8)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs["status"]) == ["failed", "ok"]
    assert runs.loc[0, "error"] == "timed out after 8 s"


def test_nan_loss_is_recorded_as_diverged(tmp_path, mnist, faulty_plugin):
    configs = plan(["nan"], epochs=1, train_limit=200, test_limit=50)
    sweep(tmp_path, mnist, configs, isolation="none")
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert row["status"] == "diverged"
    assert row["error"] == "FloatingPointError: training loss became nan (diverged)"


def test_flops_and_peak_fraction_are_recorded(tmp_path, mnist):
    configs = plan(["dnn"], epochs=2, train_limit=1000, test_limit=200)
    sweep(tmp_path, mnist, configs, isolation="none")
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    environment = json.loads((tmp_path / "environment.json").read_text())
    macs = 784 * 128 + 128 * 128 + 128 * 10
    assert row["inference_flops_per_sample"] >= 2 * macs
    assert row["train_flops_per_sample"] == pytest.approx(3 * row["inference_flops_per_sample"])
    assert row["peak_flops_per_second"] == pytest.approx(
        environment["peak_flops_per_second"]["tensorflow"]
    )
    assert row["train_peak_fraction"] == pytest.approx(
        row["train_flops_per_second"] / row["peak_flops_per_second"]
    )
    assert 0 < row["inference_peak_fraction"] < 1


def test_execution_options_reach_the_compiled_model(tmp_path, mnist):
    configs = plan(
        ["dnn"],
        epochs=1,
        train_limit=640,
        test_limit=100,
        steps_per_execution=[4],
        jit_compile=[False],
    )
    sweep(tmp_path, mnist, configs, isolation="none")
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["steps_per_execution"] == 4
    assert bool(row["jit_compile"]) is False
    assert row["run_id"] == "dnn-spe4-jitoff-r0"
