"""A worker's life: start-up, the machine measurement, one run, and its outcome.

Every executor runs a run through these functions, whatever starts the worker: a
local process (:mod:`mnistbench.executors.local`), a Ray task (:mod:`mnistbench.executors.ray`)
or the ``mnistbench`` process itself (``--isolation none``). What differs between them
is only how the worker is started and how its events reach the driver (``send``).

A run's worker goes through these phases:

1. start-up (:func:`start`): its output to the run's log, warnings forwarded to the
   driver, the backend chosen before Keras is imported (:func:`run_in_fresh_worker`);
2. the machine measurement (:func:`measure_machine`): the peak FLOP/s available to
   the run, measured under the run's own thread limit on the run's backend, once per
   :class:`MachineKey` (node, backend, CPU reservation): a :data:`PeakSource` gives
   the runs that follow the figure the first one measured;
3. the speed probe (:func:`probe_machine`, :mod:`mnistbench.probe`), before the run;
4. the run itself (:func:`mnistbench.runner.run_one`), seeded after the measurements;
   it ends with the inference curve and the devices its backend sees, asked of the
   backend here, never in the driver (:mod:`mnistbench.devices`);
5. the speed probe again, after the run: a machine that changed speed during the run
   shows as two probes that differ;
6. its :class:`Outcome`, which never raises for the run's own errors, holding the run's
   record (:func:`run_record`), made here in the worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnistbench.backends import (
    apply_torch_threads,
    configured_backend,
    quiet_backend_logs,
    select_backend,
)
from mnistbench.data import TEST_SAMPLES, TRAIN_SAMPLES
from mnistbench.flops import measure_peak_flops
from mnistbench.plan import RunConfig
from mnistbench.plugins import Architecture, load_plugins
from mnistbench.probe import measure_probe, probe_columns
from mnistbench.record import DIVERGED, FAILED, OK, Run, new_run
from mnistbench.runner import run_one

#: Matrix size of the peak FLOP/s measurement.
PEAK_MATMUL_SIZE = 2048

Send = Callable[[dict], None]

log = logging.getLogger("mnistbench")


@dataclass(frozen=True)
class MachineKey:
    """What a machine measurement holds for: one node, one backend, one CPU reservation."""

    node: str
    backend: str
    cpus: int

    @classmethod
    def here(cls, backend: str | None, cpus: int) -> MachineKey:
        """This process's node, with ``backend`` (None: the configured one)."""
        return cls(platform.node(), backend or configured_backend(), cpus)


@dataclass(frozen=True)
class Placement:
    """Where a run ran: the record's fields that the executor, not the run, knows."""

    executor: str  # the executor's registered name: "local", "ray", ...
    isolation: str  # "process", "warm" or "none"
    node: str  # host name
    cpus_reserved: int  # CPUs the run's thread pools are limited to
    pinned_cpus: str = ""  # the CPUs its worker is bound to, "0,1"; "" when not bound

    @classmethod
    def here(
        cls, executor: str, isolation: str, cpus: int | None = None, pinned: str = ""
    ) -> Placement:
        """A run on this machine, with ``cpus`` of its CPUs (default: all of them)."""
        return cls(executor, isolation, platform.node(), cpus or os.cpu_count() or 1, pinned)


def run_record(
    config: RunConfig,
    architecture: Architecture | None,
    placement: Placement,
    *,
    status: str,
    started_at: str,
    error: str = "",
    measured: dict | None = None,
) -> Run:
    """The record of one run: its configuration, its architecture's origin, where it ran, what
    it measured (its worker's measured fields, none for a run that did not succeed) and how
    it ended.

    A run that did not succeed keeps its configuration, placement and error. Its backend is
    the one it was to run on (``--backend``, else the configured one), so it keys like the
    runs that succeeded. RecordError for a measured field no column declares.
    """
    fields = dict(
        run_id=config.run_id,
        config_id=config.config_id,
        architecture=config.architecture,
        plugin=architecture.plugin if architecture else "",
        plugin_version=architecture.version if architecture else "",
        backend=config.backend or configured_backend(),
        epochs=config.epochs,
        batch_size=config.batch_size,
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
        seed=config.run_seed,
        repeat=config.repeat,
        target_accuracy=config.target_accuracy,
        eval_every=config.eval_every,
        train_samples=config.train_limit or TRAIN_SAMPLES,
        test_samples=config.test_limit or TEST_SAMPLES,
        started_at=started_at,
        executor=placement.executor,
        isolation=placement.isolation,
        node=placement.node,
        cpus_reserved=placement.cpus_reserved,
        pinned_cpus=placement.pinned_cpus,
        round=config.round,
        position=config.position,
    )
    fields.update(measured or {})
    # One line, so the CSV stays one row per run and the summary table stays readable.
    fields.update(status=status, error=" ".join(error.split()))
    return new_run(**fields)


@dataclass(frozen=True)
class Outcome:
    """How a run ended: its ``run`` record (None when its worker could not make one: the
    driver makes it from ``status`` and ``error``), and the machine measurement it used."""

    status: str
    error: str = ""
    run: Run | None = None
    machine: MachineKey | None = None
    peak_flops_per_second: float | None = None

    @classmethod
    def of_error(cls, error: BaseException, **machine) -> Outcome:
        """The outcome of a run that raised ``error``: a NaN/inf loss is "diverged"."""
        status = DIVERGED if isinstance(error, FloatingPointError) else FAILED
        return cls(status, f"{type(error).__name__}: {error}", **machine)

    def record(self, run: Callable[..., Run]) -> Run:
        """This outcome's record: the worker's, else ``run(status=..., error=...)``."""
        return self.run if self.run is not None else run(status=self.status, error=self.error)


class ForwardWarnings(logging.Handler):
    """Sends a worker's mnistbench warnings to the driver, which shows them."""

    def __init__(self, send: Send) -> None:
        super().__init__(logging.WARNING)
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        self.send({"event": "warning", "message": record.getMessage()})


def output_to(path: str) -> None:
    """Send this process's stdout and stderr (the backend's own lines) to ``path``, appended."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def start(log_path: str, send: Send, *, ignore_sigint: bool = True) -> None:
    """Start-up of a worker process: output to ``log_path``, warnings to the driver.

    TensorFlow prints start-up lines that no environment variable silences; in the log
    file they stay available for diagnosis without burying the driver's progress display.
    ``ignore_sigint``: Ctrl-C reaches the whole process group; the driver decides what
    stops and records it.
    """
    output_to(log_path)
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_backend_logs()
    logger = logging.getLogger("mnistbench")
    logger.addHandler(ForwardWarnings(send))
    logger.propagate = False


PeakSource = Callable[[MachineKey, Callable[[], "float | None"]], "float | None"]
"""Where a run's peak comes from: ``source(key, measure)`` returns the peak already measured
for ``key``, or calls ``measure()`` (and keeps its result for the runs that follow)."""


def known_peak(peak: float | None) -> PeakSource:
    """A peak source with the one figure the driver already has for this run's machine key
    (None: the run measures it)."""
    return lambda key, measure: peak if peak is not None else measure()


class NodePeakFile:
    """A peak source shared by the runs of one sweep on one node: a small file per machine
    key in the node's temporary directory, under a lock.

    The first run of a key measures while the others wait for its figure, so each (node,
    backend, CPU reservation) is measured once even when runs overlap, and without asking
    the driver: a Ray task that waits on another task or actor lends its CPUs to queued
    tasks, which would put more runs on a node than it has room for. Picklable: the
    driver creates one per sweep and ships it with each task.
    """

    def __init__(self, sweep_id: str) -> None:
        self.sweep_id = sweep_id

    def _prefix(self) -> Path:
        return Path(tempfile.gettempdir()) / f"mnistbench-peak-{self.sweep_id}"

    def __call__(self, key: MachineKey, measure: Callable[[], float | None]) -> float | None:
        import fcntl

        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        path = Path(f"{self._prefix()}-{digest}.json")
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if path.is_file():
                return json.loads(path.read_text())["peak_flops_per_second"]
            peak = measure()
            if peak is not None:
                path.write_text(json.dumps({"peak_flops_per_second": peak}))
            return peak

    def remove_here(self) -> None:
        """Delete this sweep's files on this node (other nodes' stay in their temp dirs)."""
        for path in self._prefix().parent.glob(f"{self._prefix().name}-*"):
            path.unlink(missing_ok=True)


def measure_machine(backend: str, on_progress: Send) -> float | None:
    """The machine measurement phase: the peak float32 matmul FLOP/s available to this run.

    Runs in the run's own process, under its thread limit, on its backend, before the
    run's seed is set. None (and a warning) when it cannot be measured.
    """
    on_progress({"event": "phase", "phase": f"measuring peak FLOP/s ({backend})"})
    try:
        return measure_peak_flops(PEAK_MATMUL_SIZE)
    except Exception as error:  # a run without a peak still measures everything else
        log.warning(f"could not measure peak FLOP/s on {backend}: {type(error).__name__}: {error}")
        return None


#: Peaks measured in this process, by machine key: a process that runs several sweeps (a
#: notebook, a test session) measures each key once, as a sweep does.
_MEASURED_HERE: dict[MachineKey, float] = {}


def _measure_once_here(key: MachineKey, on_progress: Send) -> float | None:
    if key not in _MEASURED_HERE:
        peak = measure_machine(key.backend, on_progress)
        if peak is None:
            return None
        _MEASURED_HERE[key] = peak
    return _MEASURED_HERE[key]


def probe_machine(backend: str, on_progress: Send, when: str) -> float | None:
    """The speed probe (:mod:`mnistbench.probe`) in this worker; None (and a warning) when
    it cannot run: the run's other figures stand without it."""
    on_progress({"event": "phase", "phase": f"speed probe {when} ({backend})"})
    try:
        return measure_probe()
    except Exception as error:
        log.warning(f"speed probe failed on {backend}: {type(error).__name__}: {error}")
        return None


def perform(
    config: RunConfig,
    mnist,
    plugins,
    *,
    placement: Placement,
    started_at: str,
    peaks: PeakSource,
    on_progress: Send,
    launched: float | None = None,
    probe: bool = True,
) -> Outcome:
    """The machine measurement (the peak from ``peaks``, the speed probe), the run, and the
    probe again, and the run's record; the run's own errors become the outcome. Without
    ``probe`` the speed probes are left out and the probe's columns stay empty (``mnistbench
    ab``: a pair's ratio cancels the machine's speed, and the probes would only put time
    between its two runs).

    The run sets its seed after the probes and the peak, so neither changes what it learns.
    ``launched`` is when the run's worker was started (``time.time()``; a warm worker: when
    it was sent the run): the record's ``startup_seconds`` is the time since; None (a run
    in the ``mnistbench`` process) counts none.
    """
    begun = time.time()
    timing = {"startup_seconds": 0.0 if launched is None else max(0.0, begun - launched)}
    key, peak = None, None
    architecture = plugins.architectures.get(config.architecture)
    try:
        import keras

        key = MachineKey.here(keras.backend.backend(), placement.cpus_reserved)
        peak = peaks(key, lambda: _measure_once_here(key, on_progress))
        before = probe_machine(key.backend, on_progress, "before the run") if probe else None
        measured = run_one(config, mnist, plugins, on_progress, peak_flops_per_second=peak)
        after = probe_machine(key.backend, on_progress, "after the run") if probe else None
    except Exception as error:
        failed = Outcome.of_error(error, machine=key, peak_flops_per_second=peak)
        run = run_record(
            config,
            architecture,
            placement,
            status=failed.status,
            error=failed.error,
            started_at=started_at,
        )
        return Outcome(failed.status, failed.error, run, key, peak)
    if probe:
        measured.update(probe_columns(measured, before, after))
    measured.update(timing, run_seconds=time.time() - begun)
    run = run_record(
        config, architecture, placement, status=OK, started_at=started_at, measured=measured
    )
    return Outcome(OK, "", run, key, peak)


def run_in_fresh_worker(
    config: RunConfig,
    load_mnist: Callable,
    *,
    placement: Placement,
    started_at: str,
    peaks: PeakSource,
    on_progress: Send,
    limit_threads: bool = False,
    launched: float | None = None,
    probe: bool = True,
) -> Outcome:
    """A run in a new worker process: choose its backend before Keras is imported (each
    worker imports only its own), load the plugins and the data, then :func:`perform`.

    ``limit_threads``: the run reserved ``placement.cpus_reserved`` of a larger machine, and
    the thread-limit variables are already in its environment; torch's pool is set here too.
    ``probe``: as :func:`perform` takes it.
    """
    try:
        select_backend(config.backend)
        import keras  # noqa: F401  (imports the backend, so torch's threads can be set)

        if limit_threads:
            apply_torch_threads(placement.cpus_reserved)
        plugins = load_plugins()
        mnist = load_mnist()
    except Exception as error:
        return Outcome.of_error(error)
    return perform(
        config,
        mnist,
        plugins,
        placement=placement,
        started_at=started_at,
        peaks=peaks,
        on_progress=on_progress,
        launched=launched,
        probe=probe,
    )
