"""One benchmark sweep, end to end: plan → run each configuration → record → report.

This is the library behind ``mnistbench run``; the CLI only parses and prints. A
:class:`Sweep` is a plan and where it writes, new or resumed from a directory's
manifest (loaded once, keeping the saved plan and execution settings);
:func:`run_sweep` runs it through an executor, writing each row as it finishes, then
the reports.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mnistbench.atomic import atomic_writer
from mnistbench.db import SweepRecorder
from mnistbench.devices import record_devices
from mnistbench.environment import (
    configured_backend,
    describe_environment,
    write_environment,
)
from mnistbench.errors import ConfigError
from mnistbench.executor import Recorder, make_executor
from mnistbench.manifest import Manifest
from mnistbench.plan import Execution, RunConfig, select_architectures
from mnistbench.results import SAMPLE_COUNT, SAMPLES_NPZ, RunsWriter
from mnistbench.runner import ProgressCallback
from mnistbench.runs import OK, is_ok, numeric, read_rows, read_runs

LOG_DIR = "logs"


@dataclass
class Sweep:
    """A sweep's plan, how it executes and where it writes.

    ``kept`` are the rows of runs a resumed sweep already finished: they are kept and
    not run again. A new sweep's manifest is written when it starts.
    """

    output_dir: Path
    configs: list[RunConfig]
    execution: Execution = field(default_factory=Execution)
    manifest: Manifest | None = None
    kept: list[dict] = field(default_factory=list)

    @property
    def pending(self) -> list[RunConfig]:
        """The runs still to run, in plan order."""
        done = {row["run_id"] for row in self.kept}
        return [config for config in self.configs if config.run_id not in done]

    @classmethod
    def new(cls, configs: Sequence[RunConfig], execution: Execution, output_dir: Path) -> Sweep:
        """A sweep of ``configs`` into ``output_dir``; checks the execution settings."""
        execution.check([config.backend for config in configs])
        return cls(Path(output_dir), list(configs), execution)

    @classmethod
    def resume(cls, output_dir: Path, **execution_options) -> Sweep:
        """The sweep saved in ``output_dir``: its plan and execution settings, with each
        ``execution_options`` given (a :class:`Execution` field) replacing the saved one.

        Runs finished with status "ok" are kept; failed, interrupted and missing ones run
        again.
        """
        manifest = Manifest.load(output_dir)
        execution = replace(Execution.from_dict(manifest.options), **execution_options)
        execution.check([config.backend for config in manifest.configs])
        planned = set(manifest.order)
        kept = [
            row
            for row in read_rows(output_dir)
            if row["run_id"] in planned
            and row["status"] == OK
            and manifest.states.get(row["run_id"]) == OK
        ]
        return cls(Path(output_dir), manifest.configs, execution, manifest, kept)

    def check_architectures(self, known: Sequence[str]) -> None:
        """ConfigError when an architecture of the plan is not registered (any more)."""
        select_architectures(sorted({c.architecture for c in self.configs}), False, known)


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
    runs: object = None  # every run of the directory, as the reporters read them

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.rows if row["status"] != OK]


def write_samples(output_dir: Path, mnist, test_samples: int) -> Path:
    """Save the test digits every run predicts, so reports can redraw them without the dataset."""
    count = min(SAMPLE_COUNT, test_samples)
    path = output_dir / SAMPLES_NPZ
    with atomic_writer(path, "wb") as handle:
        np.savez(handle, x=mnist.x_test[:count], y=mnist.y_test[:count])
    return path


def run_sweep(
    sweep: Sweep,
    *,
    mnist,
    plugins,
    on_progress: ProgressCallback | None = None,
    argv: list[str] | None = None,
    db: Path | None = None,
) -> SweepResult:
    """Run the sweep's pending runs, writing each row as it finishes, then the reports.

    ``sweep.output_dir`` must exist (see :func:`prepare_output_dir`). Each run's row is
    written to ``runs.csv`` and its state to the manifest the moment it ends, then to
    the results database ``db`` when one is given (see :mod:`mnistbench.db`; a failure
    to write it is a warning, never the sweep's failure). When the runs end,
    ``environment.json`` gains the devices the workers reported
    (:func:`mnistbench.devices.record_devices`).
    """
    output_dir = sweep.output_dir
    sweep.check_architectures(list(plugins.architectures))
    if sweep.manifest is None:
        sweep.manifest = Manifest.create(output_dir, sweep.configs, sweep.execution.to_dict())
    manifest, to_run = sweep.manifest, sweep.pending
    database = None if db is None else SweepRecorder(db, manifest.sweep_id, output_dir)
    if to_run:
        write_samples(output_dir, mnist, manifest.configs[0].test_samples)
        environment = describe_environment(
            backend=configured_backend(),
            data={
                "source": mnist.source,
                "origin": mnist.origin,
                "cache_path": str(mnist.cache_path),
            },
            plugins=plugins,
            argv=sys.argv if argv is None else argv,
            backends=sorted({config.backend or configured_backend() for config in to_run}),
            executor=sweep.execution.executor,
            sweep_id=manifest.sweep_id,
        )
        write_environment(output_dir, environment)
        if database is not None:
            database.record_sweep(environment, started_at=manifest.created_at)
    writer = RunsWriter(output_dir, manifest.order, sweep.kept)

    def record(row: dict) -> None:
        writer.append(row)
        if database is not None:
            database.record_run(row)
        manifest.set_state(row["run_id"], row["status"])
        plugins.record_run(row, output_dir)

    recorder = Recorder(
        to_run,
        plugins,
        on_progress=on_progress,
        on_start=lambda config: manifest.set_state(config.run_id, "running"),
        on_result=record,
    )
    if to_run:  # a resumed sweep that had finished only redoes the reports
        executor = make_executor(
            sweep.execution, mnist=mnist, plugins=plugins, log_dir=output_dir / LOG_DIR
        )
        try:
            executor.run(recorder)
        finally:
            if database is not None:
                database.close()
    runs = read_runs(output_dir)
    environment = record_devices(output_dir, runs)  # what the workers saw, per node and backend
    if environment is not None and database is not None:
        database.record_sweep(environment, started_at=manifest.created_at)
        database.close()
    reports = plugins.write_report(runs, output_dir)
    return SweepResult(output_dir, recorder.results(), reports, len(sweep.kept), runs)


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
        runs = pd.concat(frames, ignore_index=True)
        fit, samples, epochs = (
            numeric(runs, column) for column in ("fit_seconds", "train_samples", "epochs")
        )
        usable = is_ok(runs) & (fit > 0)
        per_sample_epoch = (fit / (samples * epochs))[usable]
        keys = [runs.loc[usable, "architecture"], runs.loc[usable, "backend"]]
        rate = per_sample_epoch.groupby(keys).median().to_dict()
    default_backend = configured_backend()
    seconds, unknown = 0.0, 0
    for config in configs:
        key = (config.architecture, config.backend or default_backend)
        if key not in rate:
            unknown += 1
            continue
        seconds += rate[key] * config.train_samples * config.epochs + WORKER_START_SECONDS
    return seconds, unknown


_ESTIMATE_COLUMNS = {"architecture", "backend", "status", "fit_seconds", "train_samples", "epochs"}
