"""One benchmark sweep, end to end: plan → run each configuration → record → report.

This is the library function behind ``mnistbench run``; the CLI only parses,
validates and shows progress.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistbench.environment import (
    configured_backend,
    describe_environment,
    read_environment,
    write_environment,
)
from mnistbench.errors import ConfigError
from mnistbench.executor import execute, measure_peak
from mnistbench.interchange import write_pytest_benchmark
from mnistbench.manifest import Manifest
from mnistbench.atomic import atomic_writer
from mnistbench.data import TEST_SAMPLES, TRAIN_SAMPLES
from mnistbench.results import SAMPLE_COUNT, SAMPLES_NPZ, RunsWriter
from mnistbench.runs import read_rows, read_runs
from mnistbench.runner import ProgressCallback, RunConfig, backend_version

TRAIN_SIZE = TRAIN_SAMPLES
TEST_SIZE = TEST_SAMPLES
LOG_DIR = "logs"


def select_architectures(
    requested: Sequence[str], run_all: bool, known: Sequence[str]
) -> list[str]:
    """The architectures to run, in the order given (``--all``: every registered one, sorted)."""
    if run_all:
        if not known:
            raise ConfigError("no architectures are registered; see `mnistbench plugins`")
        return sorted(known)
    if not requested:
        raise ConfigError("name at least one architecture, or use --all")
    for name in requested:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            listing = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"unknown architecture {name!r} (known: {listing}){suggestion}")
    return list(dict.fromkeys(requested))


def plan(
    architectures: Sequence[str],
    *,
    epochs: int = 5,
    batch_size: int = 32,
    train_limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
    repeats: int = 1,
    steps_per_execution: Sequence[int] = (1,),
    jit_compile: Sequence[bool | None] = (None,),
    target_accuracy: float | None = None,
    eval_every: int | None = None,
    backends: Sequence[str | None] = (None,),
) -> list[RunConfig]:
    """Every run of a sweep: architectures × backends × steps-per-execution × jit × repeats.

    Checks the limits against the dataset's size and the option combinations.
    """
    if train_limit is not None and not 1 <= train_limit <= TRAIN_SIZE:
        raise ConfigError(f"--train-limit must be between 1 and {TRAIN_SIZE}, got {train_limit}")
    if test_limit is not None and not 1 <= test_limit <= TEST_SIZE:
        raise ConfigError(f"--test-limit must be between 1 and {TEST_SIZE}, got {test_limit}")
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ConfigError(f"--target-accuracy must be in (0, 1], got {target_accuracy}")
    if eval_every is not None and target_accuracy is None:
        raise ConfigError("--eval-every needs --target-accuracy")
    return [
        RunConfig(
            architecture=name,
            epochs=epochs,
            batch_size=batch_size,
            train_limit=train_limit,
            test_limit=test_limit,
            seed=seed,
            repeat=repeat,
            steps_per_execution=spe,
            jit_compile=jit,
            target_accuracy=target_accuracy,
            eval_every=eval_every,
            backend=backend,
        )
        for name in architectures
        for backend in dict.fromkeys(backends)
        for spe in dict.fromkeys(steps_per_execution)
        for jit in dict.fromkeys(jit_compile)
        for repeat in range(repeats)
    ]


def prepare_output_dir(output_dir: Path, *, force: bool = False) -> Path:
    """Create ``output_dir``; refuse a non-empty one unless ``force`` (results would mix)."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"output {output_dir} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not force:
        raise ConfigError(
            f"output directory {output_dir} is not empty; choose another --output or pass --force"
        )
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / ".mnistbench-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"cannot write to output directory {output_dir}: {error.strerror}"
        ) from None
    return output_dir


@dataclass
class SweepResult:
    output_dir: Path
    rows: list[dict]
    reports: list[Path] = field(default_factory=list)
    skipped: int = 0  # runs kept from an earlier, interrupted sweep

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.rows if row["status"] != "ok"]


def write_samples(output_dir: Path, mnist, test_limit: int | None) -> Path:
    """Save the test digits every run predicts, so reports can redraw them without the dataset."""
    count = min(SAMPLE_COUNT, test_limit or TEST_SIZE)
    path = output_dir / SAMPLES_NPZ
    with atomic_writer(path, "wb") as handle:
        np.savez(handle, x=mnist.x_test[:count], y=mnist.y_test[:count])
    return path


def run_sweep(
    configs: Sequence[RunConfig],
    *,
    mnist,
    plugins,
    output_dir: Path,
    isolation: str = "process",
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
    argv: list[str] | None = None,
    resume: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    cpus_per_run: int | None = None,
) -> SweepResult:
    """Run every configuration, writing each row as it finishes, then the reports.

    ``output_dir`` must exist (see :func:`prepare_output_dir`). With ``resume``,
    ``configs`` come from the directory's manifest (:func:`resumable`); runs already
    finished with status "ok" are kept and skipped, the others run again.
    """
    output_dir = Path(output_dir)
    on_progress = on_progress or (lambda event: None)
    # Saved so that --resume continues with the same execution settings.
    options = {
        "isolation": isolation,
        "timeout": timeout,
        "executor": executor,
        "ray_address": ray_address,
        "cpus_per_run": cpus_per_run,
    }
    if resume:
        manifest = Manifest.load(output_dir)
        planned = set(manifest.order)
        kept = [
            row
            for row in read_rows(output_dir)
            if row["run_id"] in planned
            and row["status"] == "ok"
            and manifest.states.get(row["run_id"]) == "ok"
        ]
    else:
        manifest = Manifest.create(output_dir, list(configs), options)
        kept = []
    done = {row["run_id"] for row in kept}
    to_run = [config for config in manifest.configs if config.run_id not in done]

    log_dir = output_dir / LOG_DIR
    if to_run:
        write_samples(output_dir, mnist, manifest.configs[0].test_limit)
        environment = describe_environment(
            backend=configured_backend(),
            data={
                "source": mnist.source,
                "origin": mnist.origin,
                "cache_path": str(mnist.cache_path),
            },
            plugins=plugins,
            argv=sys.argv if argv is None else argv,
        )
        backends = sorted({config.backend or environment["backend"] for config in to_run})
        peak = measure_peak(backends, isolation=isolation, log_dir=log_dir, on_progress=on_progress)
        environment["peak_flops_per_second"] = peak
        environment["backends"] = {name: backend_version(name) for name in backends}
        environment["executor"] = executor
        write_environment(output_dir, environment)
    else:  # resuming a finished sweep: only the reports are redone
        environment, peak = read_environment(output_dir), None
    writer = RunsWriter(output_dir, manifest.order, kept)

    def record(row: dict) -> None:
        writer.append(row)
        manifest.set_state(row["run_id"], row["status"])
        plugins.record_run(row, output_dir)

    common = dict(
        mnist=mnist,
        plugins=plugins,
        log_dir=log_dir,
        timeout=timeout,
        peak_flops_per_second=peak,
        on_progress=on_progress,
        on_start=lambda config: manifest.set_state(config.run_id, "running"),
        on_result=record,
    )
    if executor == "ray":
        from mnistbench.ray_executor import execute_on_ray

        rows = execute_on_ray(to_run, address=ray_address, cpus_per_run=cpus_per_run, **common)
    else:
        rows = execute(to_run, isolation=isolation, **common)
    runs = read_runs(output_dir)
    reports = plugins.write_report(runs, output_dir)
    reports.append(write_pytest_benchmark(runs, output_dir, environment))
    return SweepResult(output_dir, rows, reports, skipped=len(kept))


#: A worker's start-up (interpreter, backend import, data load), added to each estimate.
WORKER_START_SECONDS = 5.0


def estimate_seconds(
    configs: Sequence[RunConfig], results_root: Path, *, newest: int = 20
) -> tuple[float, int]:
    """Estimate a sweep's duration from earlier results: ``(seconds, runs without data)``.

    Uses the median fit time per training sample and epoch of each architecture and
    backend in the ``newest`` result directories under ``results_root``, so the
    estimate is for this machine; runs with no earlier measurement are counted
    apart rather than guessed.
    """
    import pandas as pd

    from mnistbench.environment import configured_backend

    frames = []
    for path in sorted(Path(results_root).glob("*/runs.csv"), reverse=True)[:newest]:
        try:
            frame = pd.read_csv(path, usecols=lambda c: c in _ESTIMATE_COLUMNS)
        except (OSError, ValueError, pd.errors.ParserError):
            continue  # an unreadable old directory only costs precision
        if set(frame.columns) == _ESTIMATE_COLUMNS:  # older or foreign files lack some
            frames.append(frame)
    rate = {}
    if frames:
        runs = pd.concat(frames)
        for column in ("fit_seconds", "train_samples", "epochs"):
            runs[column] = pd.to_numeric(runs[column], errors="coerce")
        runs = runs[(runs["status"] == "ok") & (runs["fit_seconds"] > 0)]
        per_sample_epoch = runs["fit_seconds"] / (runs["train_samples"] * runs["epochs"])
        rate = per_sample_epoch.groupby([runs["architecture"], runs["backend"]]).median().to_dict()
    default_backend = configured_backend()
    seconds, unknown = 0.0, 0
    for config in configs:
        key = (config.architecture, config.backend or default_backend)
        if key not in rate:
            unknown += 1
            continue
        samples = config.train_limit or TRAIN_SIZE
        seconds += rate[key] * samples * config.epochs + WORKER_START_SECONDS
    return seconds, unknown


_ESTIMATE_COLUMNS = {"architecture", "backend", "status", "fit_seconds", "train_samples", "epochs"}
