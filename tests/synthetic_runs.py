"""Synthetic runs.csv rows for the tests of the reporters and figures: no training needed.

Shaped like the rows the core writes (every column of ``RUN_COLUMNS``), with known values,
so tests can assert exact tables and figure data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mnistbench.results import RUN_COLUMNS, SAMPLE_COUNT, RunsWriter
from mnistbench.runs import read_runs

# The first 16 MNIST test labels.
LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5]

# Columns an older runs.csv lacks: it predates configurations, repeats and these measurements.
NEWER_COLUMNS = [
    "config_id", "repeat", "steps_per_execution", "jit_compile", "target_accuracy",
    "eval_every", "first_epoch_seconds", "steady_epoch_seconds", "time_to_accuracy_seconds",
    "converged", "latency_p95_ms", "latency_p99_ms", "inference_flops_per_sample",
    "train_flops_per_sample", "train_flops_per_second", "inference_flops_per_second",
    "peak_flops_per_second", "train_peak_fraction", "inference_peak_fraction",
    "probe_version", "probe_seconds_before", "probe_seconds_after", "probe_seconds",
    "machine_changed", "fit_seconds_normalized", "steady_epoch_seconds_normalized",
    "inference_samples_per_second_normalized", "latency_ms_normalized", "fit_cpu_seconds",
    "inference_cpu_seconds", "fit_involuntary_switches", "fit_cpu_pressure_seconds",
    "fit_steal_seconds",
]  # fmt: skip


def run_row(
    architecture: str,
    seed: int = 0,
    *,
    config_id: str = "",
    steps_per_execution: int = 1,
    fit_seconds: float = 30.0,
    test_accuracy: float = 0.97,
    inference_samples_per_second: float = 20000.0,
    params: int = 100_000,
    epoch_accuracy: tuple[float, ...] = (0.91, 0.95),
    predictions: list[int] | None = None,
    backend: str = "tensorflow",
    error: str = "",
    status: str = "",
    target_accuracy: float | None = None,
    time_to_accuracy_seconds: float | None = None,
    converged: bool | None = None,
) -> dict:
    """One runs.csv row as the core writes it: 600 train / 100 test samples, 2 epochs.

    Without ``config_id`` the row is grouped by its architecture, as in an older runs.csv.
    """
    row = dict.fromkeys(RUN_COLUMNS)
    suffix = "" if backend == "tensorflow" else f"-{backend}"
    row.update(
        run_id=f"{config_id or architecture}-r{seed}{suffix}",
        config_id=config_id or None,
        architecture=architecture,
        plugin=f"mnistbench_{architecture}",
        plugin_version="0.1.0",
        epochs=len(epoch_accuracy),
        batch_size=32,
        steps_per_execution=steps_per_execution,
        train_samples=600,
        test_samples=100,
        seed=seed,
        repeat=seed,
        target_accuracy=target_accuracy,
        started_at="2025-01-01T00:00:00+00:00",
        status=status or ("failed" if error else "ok"),
        error=error,
    )
    if error:
        return row  # a failed run keeps its configuration only, like results.make_row
    epochs = len(epoch_accuracy)
    row.update(
        backend=backend,
        jit_compile=True,
        fit_seconds=fit_seconds,
        seconds_per_epoch=fit_seconds / epochs,
        epoch_seconds=json.dumps([fit_seconds / epochs] * epochs),
        epoch_accuracy=json.dumps(list(epoch_accuracy)),
        epoch_loss=json.dumps([0.3 / (e + 1) for e in range(epochs)]),
        time_to_accuracy_seconds=time_to_accuracy_seconds,
        converged=converged,
        train_samples_per_second=600 * epochs / fit_seconds,
        test_accuracy=test_accuracy,
        test_loss=0.1,
        inference_samples_per_second=inference_samples_per_second,
        latency_ms=1.5,
        sample_predictions=json.dumps(LABELS if predictions is None else predictions),
        params=params,
        peak_memory_mb=900.0,
    )
    return row


def with_wrong(index: int, label: int) -> list[int]:
    predicted = list(LABELS)
    predicted[index] = label
    return predicted


def sweep_rows() -> list[dict]:
    """dnn twice (seeds 0 and 1), rnn, cnn, and an lstm that failed."""
    return [
        run_row("dnn", 0, fit_seconds=30.0, test_accuracy=0.970,
                inference_samples_per_second=48000.0, params=118_282,
                predictions=with_wrong(8, 6)),
        run_row("dnn", 1, fit_seconds=34.0, test_accuracy=0.974,
                inference_samples_per_second=50000.0, params=118_282),
        run_row("rnn", fit_seconds=196.0, test_accuracy=0.980,
                inference_samples_per_second=9000.0, params=68_106),
        run_row("cnn", fit_seconds=64.0, test_accuracy=0.982,
                inference_samples_per_second=21000.0, params=225_034),
        run_row("lstm", error="ValueError: expected ndim=3, found ndim=2"),
    ]  # fmt: skip


# Three repeats: fit times that disagree (cv 0.13) and accuracies that agree (cv 0.005).
NOISY_FIT_SECONDS = (30.0, 33.0, 39.0)
TIGHT_FIT_SECONDS = (30.0, 31.0, 32.0)
TIGHT_ACCURACIES = (0.970, 0.980, 0.975)


def repeat_rows(
    config_id: str = "dnn",
    fit_seconds: tuple[float, ...] = NOISY_FIT_SECONDS,
    accuracies: tuple[float, ...] = TIGHT_ACCURACIES,
    **options,
) -> list[dict]:
    """Repeats of one dnn configuration, one per fit time, seeds 0, 1, 2."""
    return [
        run_row(
            "dnn", seed, config_id=config_id, fit_seconds=fit, test_accuracy=accuracy, **options
        )
        for seed, (fit, accuracy) in enumerate(zip(fit_seconds, accuracies, strict=True))
    ]


def target_rows() -> list[dict]:
    """A sweep with a 97% target: dnn always reaches it, dnn-spe32 in 2 of 3 runs, cnn never."""
    target = {"target_accuracy": 0.97}
    return [
        *(run_row("dnn", seed, config_id="dnn", time_to_accuracy_seconds=t, converged=True,
                  **target) for seed, t in enumerate((20.0, 21.0, 22.0))),
        *(run_row("dnn", seed, config_id="dnn-spe32", steps_per_execution=32,
                  time_to_accuracy_seconds=t, converged=t is not None, **target)
          for seed, t in enumerate((9.0, None, 11.0))),
        *(run_row("cnn", seed, config_id="cnn", converged=False, **target) for seed in range(3)),
    ]  # fmt: skip


def older_runs(rows: list[dict]) -> pd.DataFrame:
    """The rows as an older runs.csv holds them, without the newer columns."""
    return pd.DataFrame(rows).drop(columns=NEWER_COLUMNS)


def as_read(rows: list[dict], output_dir: Path) -> pd.DataFrame:
    """The rows written by the core's RunsWriter and read back as the report hook gets them."""
    writer = RunsWriter(output_dir, [row["run_id"] for row in rows])
    for row in rows:
        writer.append(row)
    return read_runs(output_dir)


def write_samples(output_dir: Path, count: int = SAMPLE_COUNT) -> Path:
    rng = np.random.default_rng(0)
    path = output_dir / "samples.npz"
    np.savez(
        path,
        x=rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8),
        y=np.array((LABELS * 2)[:count], dtype=np.uint8),
    )
    return path


def png(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image
