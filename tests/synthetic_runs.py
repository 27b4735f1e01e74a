"""Synthetic run records for the tests of the reporters, figures and comparisons: no
training needed.

Each run is a :class:`mnistbench.record.Run` made as the core makes one (the typed
record, every field checked), with known values, so tests can assert exact tables and
figure data. :func:`run_row` makes one run of a sweep, :func:`repeats` the repeats of one
configuration for the comparisons. :func:`as_read` writes runs as a ``runs.csv`` and
reads them back, as the report hook gets them; :func:`older_runs` writes them as a
runs.csv of format 1 that predates the newer columns; :func:`write_dir` makes an output
directory of them for the command line, which :func:`invoke` runs in this process.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mnistbench import layout, record
from mnistbench.data import SAMPLE_COUNT
from mnistbench.record import Run

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
    predictions: Sequence[int] | None = None,
    backend: str = "tensorflow",
    error: str = "",
    status: str = "",
    target_accuracy: float | None = None,
    time_to_accuracy_seconds: float | None = None,
    converged: bool | None = None,
    **fields,
) -> Run:
    """One run's record as the core makes it: 600 train / 100 test samples, 2 epochs.

    Without ``config_id`` the run is keyed by its architecture, as the runs of a runs.csv
    older than configuration ids are. ``fields``: any other field of the record.
    """
    suffix = "" if backend == "tensorflow" else f"-{backend}"
    values = dict(
        run_id=f"{config_id or architecture}-r{seed}{suffix}",
        config_id=config_id or architecture,
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
    if not error:
        epochs = len(epoch_accuracy)
        values.update(
            backend=backend,
            jit_compile=True,
            fit_seconds=fit_seconds,
            seconds_per_epoch=fit_seconds / epochs,
            epoch_seconds=[fit_seconds / epochs] * epochs,
            epoch_accuracy=list(epoch_accuracy),
            epoch_loss=[0.3 / (e + 1) for e in range(epochs)],
            time_to_accuracy_seconds=time_to_accuracy_seconds,
            converged=converged,
            train_samples_per_second=600 * epochs / fit_seconds,
            test_accuracy=test_accuracy,
            test_loss=0.1,
            inference_samples_per_second=inference_samples_per_second,
            latency_ms=1.5,
            sample_predictions=list(LABELS if predictions is None else predictions),
            params=params,
            peak_memory_mb=900.0,
        )
    # A failed run keeps its configuration only, as worker.run_record makes it.
    values.update(fields)
    return record.new_run(**values)


def with_wrong(index: int, label: int) -> list[int]:
    predicted = list(LABELS)
    predicted[index] = label
    return predicted


def sweep_rows() -> list[Run]:
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
) -> list[Run]:
    """Repeats of one dnn configuration, one per fit time, seeds 0, 1, 2."""
    return [
        run_row(
            "dnn", seed, config_id=config_id, fit_seconds=fit, test_accuracy=accuracy, **options
        )
        for seed, (fit, accuracy) in enumerate(zip(fit_seconds, accuracies, strict=True))
    ]


def target_rows() -> list[Run]:
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


# --- the repeats of a comparison -----------------------------------------------------------

#: The work of a full sweep: ``mnistbench run`` with its defaults.
FULL = {
    "epochs": 5,
    "batch_size": 32,
    "train_samples": 60000,
    "test_samples": 10000,
    "target_accuracy": None,
    "eval_every": None,
}
#: A smoke sweep: ``--epochs 1 --train-limit 3000``.
SMOKE = {**FULL, "epochs": 1, "train_samples": 3000}

FAST = [9.8, 9.9, 10.0, 10.1, 10.2]  # median 10.0
SLOW = [11.8, 11.9, 12.0, 12.1, 12.2]  # median 12.0: 20 % slower, no overlap
PROBE = [0.02] * 5  # the speed probe of an unchanged machine, in seconds


def repeats(
    config_id: str,
    backend: str = "tensorflow",
    status: str = "ok",
    work: dict | None = None,
    **metrics: list,
) -> list[Run]:
    """One record per repeat of ``config_id``: as many repeats as the metric lists are long.

    ``work`` replaces the :data:`FULL` work fields; a list value gives one per repeat.
    """
    count = len(next(iter(metrics.values())))
    work = {**FULL, **(work or {})}
    return [
        record.new_run(
            run_id=f"{config_id}-r{repeat}",
            config_id=config_id,
            architecture=config_id.split("-")[0],
            backend=backend,
            **{k: v[repeat] if isinstance(v, list) else v for k, v in work.items()},
            seed=42 + repeat,
            repeat=repeat,
            **{name: values[repeat] for name, values in metrics.items()},
            status=status,
            error="" if status == "ok" else "RuntimeError: out of memory",
        )
        for repeat in range(count)
    ]


def probed(config_id: str, fit: list[float], probe: list[float] = PROBE, **extra) -> list[Run]:
    """Repeats with a fit time, their speed probe and the fit time normalized by it, on
    TensorFlow ``backend_version`` (2.20.0 unless given)."""
    return repeats(
        config_id,
        fit_seconds=fit,
        probe_seconds=probe,
        probe_version=[1] * len(fit),
        backend_version=[extra.pop("backend_version", "2.20.0")] * len(fit),
        fit_seconds_normalized=[f / p for f, p in zip(fit, probe, strict=True)],
        **extra,
    )


#: Test accuracies of five repeats: median 0.972.
ACCURACY = [0.97, 0.971, 0.972, 0.973, 0.974]


def write_pair(directory: Path) -> tuple[Path, Path]:
    """A baseline and a candidate directory in ``directory``: dnn 20 % slower on the same
    machine, cnn 20 % faster; accuracies unchanged."""
    base = write_dir(
        directory / "base",
        probed("dnn", FAST, test_accuracy=ACCURACY) + probed("cnn", SLOW, test_accuracy=ACCURACY),
    )
    cand = write_dir(
        directory / "cand",
        probed("dnn", SLOW, test_accuracy=ACCURACY) + probed("cnn", FAST, test_accuracy=ACCURACY),
    )
    return base, cand


def write_dir(directory: Path, runs: Sequence[Run]) -> Path:
    """An output directory holding only a runs.csv of ``runs``."""
    directory.mkdir(parents=True)
    record.write(layout.RUNS_CSV.of(directory), runs)
    return directory


def invoke(*args: str, env: dict | None = None):
    """``mnistbench ARGS`` in this process (click's runner); stdout and stderr apart."""
    from click.testing import CliRunner

    from mnistbench.cli import cli

    return CliRunner().invoke(cli, list(args), env=env)


# --- tables and files ------------------------------------------------------------------------


def frame(runs: Sequence[Run]) -> pd.DataFrame:
    """The runs' typed table, as every analysis takes it (:func:`mnistbench.record.frame`)."""
    return record.frame(runs)


def write_older(
    runs: Sequence[Run], output_dir: Path, lacking: Sequence[str] = tuple(NEWER_COLUMNS)
) -> Path:
    """Write ``runs`` as an older mnistbench wrote runs.csv: format 1 (no
    ``format_version`` column), without the columns ``lacking`` (by default the
    :data:`NEWER_COLUMNS`); returns the file."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = layout.RUNS_CSV.of(output_dir)
    kept = [name for name in record.RUN_COLUMNS if name not in lacking]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, kept, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for run in runs:
            writer.writerow(run.cells())
    return path


def older_runs(runs: Sequence[Run], output_dir: Path) -> pd.DataFrame:
    """``runs`` as they read back from an older runs.csv (:func:`write_older`): the newer
    columns empty, each run keyed by its architecture."""
    write_older(runs, output_dir)
    return record.frame(record.read(output_dir))


def as_read(runs: Sequence[Run], output_dir: Path) -> pd.DataFrame:
    """The runs written by the core's RunsWriter and read back, as the report hook gets
    them: their typed table."""
    output_dir.mkdir(parents=True, exist_ok=True)
    writer = record.RunsWriter(output_dir, [run.run_id for run in runs])
    for run in runs:
        writer.append(run)
    return record.frame(record.read(output_dir))


def write_samples(output_dir: Path, count: int = SAMPLE_COUNT) -> Path:
    rng = np.random.default_rng(0)
    path = layout.SAMPLES_NPZ.of(output_dir)
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


def blank(image: Image.Image) -> bool:
    """Whether ``image`` holds one colour only (a figure that drew nothing)."""
    return len(image.convert("RGB").getcolors(maxcolors=1 << 24)) <= 1
