"""One benchmark sweep, end to end: plan → run each configuration → record → report.

This is the library behind ``mnistbench run``; the CLI only parses and prints. A
:class:`Sweep` is a plan and where it writes, new or resumed from a directory's
manifest (loaded once, keeping the saved plan and execution settings);
:func:`run_sweep` runs it through the executor its settings name, writing each run's
record as it finishes, then the reports. :func:`merge_directories` makes one side of a
comparison from sweeps run in halves; :func:`estimate_seconds` the ``--dry-run`` ETA.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mnistbench import layout, record
from mnistbench.atomic import atomic_writer, check_creatable
from mnistbench.backends import configured_backend
from mnistbench.data import SAMPLE_COUNT
from mnistbench.devices import record_devices
from mnistbench.environment import describe_environment, read_environment, write_environment
from mnistbench.errors import ConfigError
from mnistbench.executors import Recorder, check_execution
from mnistbench.manifest import Manifest
from mnistbench.plan import Execution, RunConfig, select_architectures
from mnistbench.record import OK, Run, RunsWriter
from mnistbench.stores import Store
from mnistbench.stores.recorder import SweepRecorder
from mnistbench.worker import Send


@dataclass
class Sweep:
    """A sweep's plan, how it executes and where it writes.

    ``kept`` are the records of runs a resumed sweep already finished: they are kept and
    not run again. A new sweep's manifest is written when it starts.
    """

    output_dir: Path
    configs: list[RunConfig]
    execution: Execution = field(default_factory=Execution)
    manifest: Manifest | None = None
    kept: list[Run] = field(default_factory=list)

    @property
    def pending(self) -> list[RunConfig]:
        """The runs still to run, in plan order."""
        done = {run.run_id for run in self.kept}
        return [config for config in self.configs if config.run_id not in done]

    @classmethod
    def new(
        cls, configs: Sequence[RunConfig], execution: Execution, output_dir: Path, plugins
    ) -> Sweep:
        """A sweep of ``configs`` into ``output_dir``; checks the execution settings against
        the executors ``plugins`` registered."""
        check_execution(execution, plugins.executors, [config.backend for config in configs])
        return cls(Path(output_dir), list(configs), execution)

    @classmethod
    def resume(
        cls,
        output_dir: Path,
        plugins,
        *,
        executor: str | None = None,
        timeout: float | None = None,
        probe: bool | None = None,
        options: dict[str, Any] | None = None,
    ) -> Sweep:
        """The sweep saved in ``output_dir``: its plan and execution settings, with the
        ``executor``, ``timeout``, ``probe`` and executor ``options`` given replacing the
        saved ones (another executor drops the saved executor's options).

        Runs finished with status "ok" are kept; failed, interrupted and missing ones run
        again.
        """
        manifest = Manifest.load(output_dir)
        execution = Execution.from_dict(manifest.options)
        if executor is not None and executor != execution.executor:
            execution = Execution(executor, execution.timeout, probe=execution.probe)
        if timeout is not None:
            execution = replace(execution, timeout=timeout)
        if probe is not None:
            execution = replace(execution, probe=probe)
        if options:
            execution = replace(execution, options={**execution.options, **options})
        check_execution(execution, plugins.executors, [c.backend for c in manifest.configs])
        planned = set(manifest.order)
        kept = [
            run
            for run in record.read_if_present(output_dir)
            if run.run_id in planned and run.ok and manifest.states.get(run.run_id) == OK
        ]
        return cls(Path(output_dir), manifest.configs, execution, manifest, kept)

    def check_architectures(self, known: Sequence[str]) -> None:
        """ConfigError when an architecture of the plan is not registered (any more)."""
        select_architectures(sorted({c.architecture for c in self.configs}), False, known)


def check_output_dir(output_dir: Path, *, force: bool = False) -> Path:
    """Refuse what :func:`prepare_output_dir` would refuse, creating nothing (``--dry-run``):
    a file, a non-empty directory without ``force``, a place that takes no new file."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"output {output_dir} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not force:
        raise ConfigError(
            f"output directory {output_dir} is not empty; choose another --output or pass --force"
        )
    try:
        check_creatable(output_dir)
    except OSError as error:
        raise ConfigError(
            f"cannot write to output directory {output_dir}: {error.strerror or error}"
        ) from None
    return output_dir


def prepare_output_dir(output_dir: Path, *, force: bool = False) -> Path:
    """Create ``output_dir``; refuse a non-empty one unless ``force`` (results would mix)."""
    output_dir = check_output_dir(output_dir, force=force)  # it tried a new file there
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot write to output directory {output_dir}: {error.strerror}"
        ) from None
    return output_dir


@dataclass
class SweepResult:
    """What a sweep did: the records of the runs it ran (in plan order), every record of its
    directory (``runs``, as the reporters read them), the reports written, and how many
    runs an earlier, interrupted sweep had finished (``skipped``)."""

    output_dir: Path
    ran: list[Run]
    runs: list[Run]
    reports: list[Path] = field(default_factory=list)
    skipped: int = 0

    @property
    def failed(self) -> list[Run]:
        return [run for run in self.ran if not run.ok]


def write_samples(output_dir: Path, mnist, test_samples: int) -> Path:
    """Save the test digits every run predicts, so reports can redraw them without the dataset."""
    count = min(SAMPLE_COUNT, test_samples)
    path = layout.SAMPLES_NPZ.of(output_dir)
    with atomic_writer(path, "wb") as handle:
        np.savez(handle, x=mnist.x_test[:count], y=mnist.y_test[:count])
    return path


def describe_sweep(
    mnist, plugins, configs: Sequence[RunConfig], *, argv, executor: str, sweep_id: str
) -> dict:
    """The ``environment.json`` of a sweep of ``configs`` (:func:`describe_environment`):
    the data it reads, the backends its runs use, its command, executor and id."""
    return describe_environment(
        backend=configured_backend(),
        data={"source": mnist.source, "origin": mnist.origin, "cache_path": str(mnist.cache_path)},
        plugins=plugins,
        argv=list(argv),
        backends=sorted({config.backend or configured_backend() for config in configs}),
        executor=executor,
        sweep_id=sweep_id,
    )


def run_sweep(
    sweep: Sweep,
    *,
    mnist,
    plugins,
    on_progress: Send | None = None,
    argv: list[str] | None = None,
    store: Store | None = None,
) -> SweepResult:
    """Run the sweep's pending runs, writing each record as it finishes, then the reports.

    ``sweep.output_dir`` must exist (see :func:`prepare_output_dir`). Each run's record is
    written to ``runs.csv`` and its state to the manifest the moment it ends, then to
    the results store ``store`` when one is given (see :mod:`mnistbench.stores`; a
    failure to write it is a warning, never the sweep's failure). When the runs end,
    ``environment.json`` gains the devices the workers reported
    (:func:`mnistbench.devices.record_devices`).
    """
    output_dir = sweep.output_dir
    sweep.check_architectures(list(plugins.architectures))
    executor_class = check_execution(
        sweep.execution, plugins.executors, [config.backend for config in sweep.configs]
    )
    if sweep.manifest is None:
        sweep.manifest = Manifest.create(output_dir, sweep.configs, sweep.execution.to_dict())
    manifest, to_run = sweep.manifest, sweep.pending
    database = None if store is None else SweepRecorder(store, manifest.sweep_id, output_dir)
    if to_run:
        write_samples(output_dir, mnist, manifest.configs[0].test_samples)
        environment = describe_sweep(
            mnist,
            plugins,
            to_run,
            argv=sys.argv if argv is None else argv,
            executor=sweep.execution.executor,
            sweep_id=manifest.sweep_id,
        )
        write_environment(output_dir, environment)
        if database is not None:
            database.record_sweep(environment, started_at=manifest.created_at)
    writer = RunsWriter(output_dir, manifest.order, sweep.kept)

    def finished(run: Run) -> None:
        writer.append(run)
        if database is not None:
            database.record_run(run)
        manifest.set_state(run.run_id, run.status)
        plugins.record_run(run, output_dir)

    recorder = Recorder(
        to_run,
        plugins,
        on_progress=on_progress,
        on_start=lambda config: manifest.set_state(config.run_id, "running"),
        on_result=finished,
    )
    if to_run:  # a resumed sweep that had finished only redoes the reports
        executor = executor_class(
            sweep.execution,
            mnist=mnist,
            plugins=plugins,
            log_dir=output_dir / layout.LOG_DIR,
        )
        try:
            executor.run(recorder)
        finally:
            if database is not None:
                database.close()
    runs = record.read(output_dir)
    environment = record_devices(output_dir, runs)  # what the workers saw, per node and backend
    if environment is not None and database is not None:
        database.record_sweep(environment, started_at=manifest.created_at)
        database.close()
    reports = plugins.write_report(runs, output_dir)
    return SweepResult(output_dir, recorder.results(), runs, reports, len(sweep.kept))


# --- several sweeps of one side ------------------------------------------------------------


def merged_runs(directories: Sequence[Path]) -> list[Run]:
    """Every run of the directories' ``runs.csv``, in order, for :func:`merge_directories`;
    reads and checks them all, writing nothing.

    A run id already taken by an earlier directory gets ``-m<k>`` (``k``: its directory's
    place, from 1).

    :raises ConfigError: two directories hold the same run, every field alike (a sweep
        given twice, or a copy of one), which would count twice.
    """
    read = [record.read(directory, require_runs=True) for directory in directories]
    seen: dict[str, int] = {}  # a run's every field, its times included: the same run
    for place, directory_runs in enumerate(read):
        for run in directory_runs:
            earlier = seen.setdefault(repr(run), place)
            if earlier != place:
                raise ConfigError(
                    f"{directories[place]} holds runs that {directories[earlier]} holds too "
                    f"({run.run_id}, started "
                    f"{run.started_at}): merge each sweep once, or its runs count twice"
                )
    runs: list[Run] = []
    taken: set[str] = set()
    for place, directory_runs in enumerate(read, start=1):
        for run in directory_runs:
            if run.run_id in taken:
                run = run.replace(run_id=f"{run.run_id}-m{place}")
            taken.add(run.run_id)
            runs.append(run)
    return runs


def merge_directories(
    directories: Sequence[Path], output_dir: Path, runs: Sequence[Run] | None = None
) -> Path:
    """One result directory from several sweeps of one side: every run of their
    ``runs.csv``, in order (:func:`merged_runs`, or ``runs`` where the caller read them),
    as ``output_dir/runs.csv``; returns ``output_dir``.

    This is how a side is measured in halves that alternate with the other side's (base,
    head, base, head on one CI runner), so that drift hits both sides alike.
    ``environment.json`` is the first directory's, with ``merged_from`` listing the
    directories; a field that differs between them (the CPU model, the commit) holds
    their values joined by `` / ``, so ``compare`` sees that the sides did not run on one
    machine. ``samples.npz`` is the first one's. ``output_dir`` must exist; every
    directory is read (and checked) before anything is written.
    """
    runs = merged_runs(directories) if runs is None else runs
    output_dir = Path(output_dir)
    record.write(layout.RUNS_CSV.of(output_dir), runs)
    environments = [read_environment(directory) for directory in directories]
    merged = dict(environments[0])
    for key, value in environments[0].items():
        values = [json.dumps(env.get(key), sort_keys=True) for env in environments]
        if isinstance(value, str) and len(set(values)) > 1:
            merged[key] = " / ".join(dict.fromkeys(str(env.get(key)) for env in environments))
    merged["merged_from"] = [str(Path(directory).resolve()) for directory in directories]
    write_environment(output_dir, merged)
    # The merged directory is no sweep: a manifest left by --force would lend it a sweep id.
    layout.MANIFEST_JSON.of(output_dir).unlink(missing_ok=True)
    samples = layout.SAMPLES_NPZ.of(directories[0])
    if samples.is_file():
        shutil.copyfile(samples, layout.SAMPLES_NPZ.of(output_dir))
    return output_dir


# --- how long a sweep will take ------------------------------------------------------------

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
    rates: dict[tuple[str, str], list[float]] = {}
    for path in sorted(Path(results_root).glob(f"*/{layout.RUNS_CSV}"), reverse=True)[:newest]:
        try:
            earlier = record.read(path.parent)
        except record.RecordError:
            continue  # an unreadable old directory only costs precision
        for run in earlier:
            if run.ok and run.fit_seconds and run.train_samples and run.epochs:
                rate = run.fit_seconds / (run.train_samples * run.epochs)
                rates.setdefault((run.architecture, run.backend), []).append(rate)
    default_backend = configured_backend()
    seconds, unknown = 0.0, 0
    for config in configs:
        key = (config.architecture, config.backend or default_backend)
        if key not in rates:
            unknown += 1
            continue
        rate = statistics.median(rates[key])
        seconds += rate * config.train_samples * config.epochs + WORKER_START_SECONDS
    return seconds, unknown
