"""Where runs execute: one small interface, and the local executor.

An :class:`Executor` runs a sweep's configurations and tells a :class:`Recorder` when
each starts and how it ended. The recorder is the sweep's side, written once for every
executor: the run events the progress display shows, a run's row (with its
:class:`~mnistbench.results.Placement`), the "interrupted" rows on Ctrl-C, and the
machine measurements shared between runs. Executors differ only in how a worker is
started and where: :class:`LocalExecutor` runs one configuration after another,
each in a fresh process (the default) or in this one; the Ray executor
(:mod:`mnistbench.ray_executor`) runs them as tasks on a cluster. What a worker does
is :mod:`mnistbench.worker`.

Process isolation gives each run its own peak memory, its own backend import and its
own failure: a worker that crashes, is killed or hangs past the timeout becomes one
failed row while the sweep goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_module
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from mnistbench.plan import Execution, RunConfig
from mnistbench.results import Placement, make_row, utc_now
from mnistbench.runs import FAILED, INTERRUPTED
from mnistbench.worker import (
    MachineKey,
    Outcome,
    Send,
    known_peak,
    perform,
    run_in_fresh_worker,
    start,
)

#: How often the parent checks on a worker that has sent nothing.
POLL_SECONDS = 0.25

log = logging.getLogger("mnistbench")


class Interrupted(KeyboardInterrupt):
    """The sweep was stopped by SIGINT (Ctrl-C) or SIGTERM."""

    def __init__(self, signal_number: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


def _ignore(event: dict) -> None:
    pass


class Recorder:
    """The sweep's side of an executor: run events, rows and shared machine measurements.

    ``on_start(config)`` comes when a run's worker starts, ``on_result(row)`` as soon
    as a run ends (so the sweep writes it before the next ends); ``on_progress`` gets
    the events of :class:`mnistbench.display.RunProgress`.
    """

    def __init__(
        self,
        configs: Sequence[RunConfig],
        plugins,
        *,
        on_progress: Send | None = None,
        on_start: Callable[[RunConfig], None] | None = None,
        on_result: Callable[[dict], None] | None = None,
    ) -> None:
        self.configs = list(configs)
        self.plugins = plugins
        self.on_progress = on_progress or _ignore
        self.on_start = on_start
        self.on_result = on_result
        self.rows: list[dict | None] = [None] * len(self.configs)
        #: The peak FLOP/s measured per machine key, shared by the runs that follow.
        self.peaks: dict[MachineKey, float] = {}

    def started(self, index: int, **where) -> None:
        """Run ``index`` has started (``where``: its ``node`` and ``pid``, where known)."""
        config = self.configs[index]
        if self.on_start is not None:
            self.on_start(config)
        event = {"event": "run", "index": index, "total": len(self.configs), "config": config}
        self.on_progress({**event, **where})

    def finished(
        self, index: int, outcome: Outcome, *, started_at: str, placement: Placement
    ) -> dict:
        """Run ``index`` ended: its row, handed to ``on_result``; the "run_end" event."""
        if outcome.machine is not None and outcome.peak_flops_per_second is not None:
            self.peaks.setdefault(outcome.machine, outcome.peak_flops_per_second)
        config = self.configs[index]
        row = self._row(config, outcome, started_at, placement)
        self.rows[index] = row
        event = {"event": "run_end", "index": index, "total": len(self.configs)}
        self.on_progress({**event, "config": config, "status": row["status"]})
        if self.on_result is not None:
            self.on_result(row)
        return row

    def interrupted(
        self, index: int, interruption: KeyboardInterrupt, *, started_at: str, placement: Placement
    ) -> None:
        """Run ``index`` was stopped by Ctrl-C or SIGTERM: an "interrupted" row."""
        name = interruption.args[0] if interruption.args else "SIGINT"
        outcome = Outcome(INTERRUPTED, f"interrupted by {name}")
        row = self._row(self.configs[index], outcome, started_at, placement)
        if self.on_result is not None:
            self.on_result(row)

    def _row(self, config, outcome: Outcome, started_at: str, placement: Placement) -> dict:
        return make_row(
            config,
            self.plugins.architectures[config.architecture],
            outcome.measured,
            status=outcome.status,
            error=outcome.error,
            started_at=started_at,
            placement=placement,
        )

    def results(self) -> list[dict]:
        """The rows of the runs that ended, in plan order."""
        return [row for row in self.rows if row is not None]


class Executor(ABC):
    """Runs a sweep's configurations, telling a :class:`Recorder` as each starts and ends.

    A run that raises, crashes its worker or times out is a "failed" (or "diverged")
    outcome and the rest go on. On Ctrl-C (or SIGTERM, raised as :class:`Interrupted`)
    the runs that started are stopped and recorded "interrupted", and the
    KeyboardInterrupt propagates.
    """

    @abstractmethod
    def run(self, recorder: Recorder) -> None:
        """Run every configuration of ``recorder.configs``."""


def make_executor(execution: Execution, *, mnist, plugins, log_dir: Path) -> Executor:
    """The executor ``execution`` names, for a sweep writing worker logs to ``log_dir``."""
    if execution.executor == "ray":
        from mnistbench.ray_executor import RayExecutor

        return RayExecutor(execution, mnist=mnist, log_dir=log_dir)
    return LocalExecutor(execution, mnist=mnist, plugins=plugins, log_dir=log_dir)


class LocalExecutor(Executor):
    """One run after another on this machine, each with all of its CPUs."""

    def __init__(self, execution: Execution, *, mnist, plugins, log_dir: Path) -> None:
        self.isolation = execution.isolation
        self.timeout = execution.timeout
        self.mnist = mnist
        self.plugins = plugins
        self.log_dir = Path(log_dir)
        self.placement = Placement.here(self.isolation)

    def run(self, recorder: Recorder) -> None:
        cpus = self.placement.cpus_reserved
        for index, config in enumerate(recorder.configs):
            started_at = utc_now()
            recorder.started(index)
            known = recorder.peaks.get(MachineKey.here(config.backend, cpus))
            try:
                if self.isolation == "none":
                    outcome = perform(
                        config,
                        self.mnist,
                        self.plugins,
                        cpus=cpus,
                        peaks=known_peak(known),
                        on_progress=recorder.on_progress,
                    )
                else:
                    outcome = self._in_worker(config, cpus, known, recorder.on_progress)
            except KeyboardInterrupt as interruption:
                recorder.interrupted(
                    index, interruption, started_at=started_at, placement=self.placement
                )
                raise
            recorder.finished(index, outcome, started_at=started_at, placement=self.placement)

    def _in_worker(self, config: RunConfig, cpus: int, known: float | None, on_progress) -> Outcome:
        result, error = call_in_worker(
            _run_in_process,
            (config, str(self.mnist.cache_path), cpus, known),
            log_path=self.log_dir / f"{config.run_id}.log",
            on_progress=on_progress,
            timeout=self.timeout,
        )
        return result if error is None else Outcome(FAILED, error)


def _run_in_process(
    config: RunConfig, data_path: str, cpus: int, known: float | None, on_progress: Send
) -> Outcome:
    """A local worker process's run: the data comes from the validated cache on disk."""
    from mnistbench.data import resolve_mnist

    return run_in_fresh_worker(
        config,
        lambda: resolve_mnist(data_path, offline=True),
        cpus=cpus,
        peaks=known_peak(known),
        on_progress=on_progress,
    )


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _child(task: Callable, args: tuple, log_path: str, queue) -> None:
    """Entry point of a worker process: start up, run ``task(*args, on_progress=...)``,
    send its result (or its error, for a task that raises)."""
    start(log_path, queue.put)
    try:
        queue.put({"event": "result", "result": task(*args, on_progress=queue.put)})
    except Exception as error:
        queue.put({"event": "error", "error": f"{type(error).__name__}: {error}"})


def call_in_worker(
    task: Callable,
    args: tuple,
    *,
    log_path: Path,
    on_progress: Send,
    timeout: float | None = None,
):
    """Run ``task`` in a fresh process: ``(result, None)``, or ``(None, error)`` when the task
    raised, its process died or it ran past ``timeout`` seconds.

    The task gets an ``on_progress`` keyword; its events reach ``on_progress`` here, and
    the warnings it logs are logged here. Its stdout and stderr go to ``log_path``.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    process = context.Process(target=_child, args=(task, args, str(log_path), queue), daemon=True)
    process.start()
    started = time.monotonic()
    try:
        while True:
            # Checked on every pass: a run that keeps reporting progress can still be too slow.
            if timeout is not None and time.monotonic() - started > timeout:
                return None, f"timed out after {timeout:g} s"
            try:
                event = queue.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                if process.is_alive():
                    continue
                try:  # it may have sent its result just before exiting
                    event = queue.get(timeout=POLL_SECONDS)
                except queue_module.Empty:
                    return (
                        None,
                        f"worker process {_describe_exit(process.exitcode)}; see {log_path}",
                    )
            if event["event"] == "result":
                return event["result"], None
            if event["event"] == "error":
                return None, event["error"]
            if event["event"] == "warning":
                log.warning(event["message"])
            else:
                on_progress(event)
    finally:
        if process.is_alive():
            process.terminate()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
        queue.close()
