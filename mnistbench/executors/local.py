"""The local executor: one run after another on this machine, ``mnistbench run``'s default.

Each run gets a fresh worker process (``--isolation process``, the default), or runs in a
warm worker kept for the runs that follow (``--isolation warm``, :mod:`mnistbench.serve`:
the backend is imported once per sweep and backend instead of once per run), or in the
``mnistbench`` process itself (``--isolation none``, for debugging). A worker gives each
run its own failure: one that crashes, is killed or hangs past the timeout becomes one
failed record while the sweep goes on (a warm worker is replaced for the next run).

``--threads N`` limits each run's thread pools (intra-op, inter-op, BLAS) to N, and
``--pin`` binds its worker to the first N of the CPUs this process may use, so runs are
measured on the same cores; what a pinned single-thread run cannot see is a regression in
how the code scales over cores (docs/running.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue as queue_module
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import mnistbench
from mnistbench.backends import configured_backend, limit_threads, thread_limit_env
from mnistbench.data import resolve_mnist
from mnistbench.errors import ConfigError
from mnistbench.executors import Executor, Option, Recorder
from mnistbench.plan import Execution, RunConfig
from mnistbench.record import FAILED, utc_now
from mnistbench.serve import Spawn, WarmWorker, record_of
from mnistbench.worker import (
    MachineKey,
    Outcome,
    Placement,
    Send,
    known_peak,
    perform,
    run_in_fresh_worker,
    run_record,
    start,
)

#: How often the parent checks on a worker that has sent nothing.
POLL_SECONDS = 0.25
ISOLATIONS = ("process", "warm", "none")

log = logging.getLogger("mnistbench")


def cpus_here() -> list[int]:
    """The CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


class LocalExecutor(Executor):
    """One run after another on this machine, each with all of its CPUs (or ``threads``)."""

    name = "local"
    description = "one run after another on this machine (the default)"
    options = (
        Option(
            "isolation",
            "Run each architecture in a fresh worker process, in a warm worker kept for the "
            "runs that follow (the backend imported once), or in this process (debugging).",
            choices=ISOLATIONS,
            default="process",
        ),
        Option(
            "threads",
            "Each run's thread pools (intra-op, inter-op, BLAS) [default: all CPUs].",
            type=int,
            minimum=1,
        ),
        Option(
            "pin",
            "Bind each run's worker to as many CPUs as it has threads (the first of those "
            "this process may use).",
            type=bool,
        ),
    )

    @classmethod
    def check(cls, execution: Execution, backends: Sequence[str | None]) -> None:
        isolation = execution.option("isolation", "process")
        if isolation not in ISOLATIONS:
            raise ConfigError(f"unknown isolation {isolation!r} (known: {', '.join(ISOLATIONS)})")
        if execution.timeout is not None and isolation == "none":
            raise ConfigError("--timeout needs a worker: --isolation process or warm")
        threads = execution.option("threads")
        if isolation == "none" and (threads or execution.option("pin")):
            raise ConfigError("--threads and --pin need a worker: --isolation process or warm")
        if threads is not None and not 1 <= threads <= len(cpus_here()):
            raise ConfigError(
                f"--threads must be between 1 and the {len(cpus_here())} CPUs here, got {threads}"
            )
        super().check(execution, backends)
        named = {name for name in backends if name}
        if isolation == "none" and named and named != {configured_backend()}:
            raise ConfigError(
                "--backend other than the configured one needs a worker: --isolation process "
                "or warm"
            )

    def __init__(self, execution: Execution, *, mnist, plugins, log_dir: Path) -> None:
        super().__init__(execution, mnist=mnist, plugins=plugins, log_dir=log_dir)
        self.isolation = execution.option("isolation", "process")
        self.threads = execution.option("threads")
        cpus = cpus_here()
        self.pinned = (
            frozenset(cpus[: self.threads or len(cpus)]) if execution.option("pin") else None
        )
        pinned = ",".join(map(str, sorted(self.pinned))) if self.pinned else ""
        self.placement = Placement.here(self.name, self.isolation, self.threads, pinned)
        self.warm: dict[str, WarmWorker] = {}

    def run(self, recorder: Recorder) -> None:
        cpus = self.placement.cpus_reserved
        try:
            for index, config in enumerate(recorder.configs):
                started_at = utc_now()
                recorder.started(index)
                known = recorder.peaks.get(MachineKey.here(config.backend, cpus))
                try:
                    outcome = self._run(config, started_at, known, recorder)
                except KeyboardInterrupt as interruption:
                    recorder.interrupted(
                        index, interruption, started_at=started_at, placement=self.placement
                    )
                    raise
                recorder.finished(index, outcome, started_at=started_at, placement=self.placement)
        finally:
            for worker in self.warm.values():
                worker.stop()

    def _run(self, config: RunConfig, started_at: str, known: float | None, recorder) -> Outcome:
        if self.isolation == "none":
            return perform(
                config,
                self.mnist,
                self.plugins,
                placement=self.placement,
                started_at=started_at,
                peaks=known_peak(known),
                on_progress=recorder.on_progress,
                probe=self.execution.probe,
            )
        if self.isolation == "warm":
            return self._in_warm_worker(config, started_at, known, recorder)
        result, error = call_in_worker(
            _run_in_process,
            (
                config,
                str(self.mnist.cache_path),
                self.placement,
                started_at,
                known,
                self.threads,
                self.pinned,
                time.time(),
                self.execution.probe,
            ),
            log_path=self.log_dir / f"{config.run_id}.log",
            on_progress=recorder.on_progress,
            timeout=self.execution.timeout,
        )
        return result if error is None else Outcome(FAILED, error)

    def _in_warm_worker(self, config: RunConfig, started_at: str, known, recorder) -> Outcome:
        backend = config.backend or configured_backend()
        if backend not in self.warm:
            env = {**os.environ, **(thread_limit_env(self.threads) if self.threads else {})}
            spawn = Spawn(env=env, cpus=self.pinned, backend=backend)
            self.warm[backend] = WarmWorker(spawn, self.mnist.cache_path, self.log_dir)
        outcome, cells = self.warm[backend].run(
            config,
            self.placement,
            started_at=started_at,
            log_path=self.log_dir / f"{config.run_id}.log",
            peak=known,
            timeout=self.execution.timeout,
            on_progress=recorder.on_progress,
            probe=self.execution.probe,
        )
        architecture = self.plugins.architectures.get(config.architecture)

        def make(*, status: str, error: str):
            return run_record(
                config,
                architecture,
                self.placement,
                status=status,
                error=error,
                started_at=started_at,
            )

        return Outcome(
            outcome.status,
            outcome.error,
            record_of(cells, outcome, make),
            outcome.machine,
            outcome.peak_flops_per_second,
        )


def prepare_worker(threads: int | None, pinned: frozenset[int] | None) -> None:
    """In a new worker, before the backend is imported: its thread pools limited to
    ``threads`` and the process bound to the CPUs ``pinned``, where given."""
    if threads:
        limit_threads(threads)
    if pinned:
        os.sched_setaffinity(0, pinned)


def _run_in_process(
    config: RunConfig,
    data_path: str,
    placement: Placement,
    started_at: str,
    known: float | None,
    threads: int | None,
    pinned: frozenset[int] | None,
    launched: float,
    probe: bool,
    on_progress: Send,
) -> Outcome:
    """A local worker process's run: its thread limits and CPUs set before anything imports
    the backend; the data comes from the validated cache on disk."""
    prepare_worker(threads, pinned)
    return run_in_fresh_worker(
        config,
        lambda: resolve_mnist(data_path, offline=True),
        placement=placement,
        started_at=started_at,
        peaks=known_peak(known),
        on_progress=on_progress,
        limit_threads=bool(threads),
        launched=launched,
        probe=probe,
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


@mnistbench.hookimpl
def mnistbench_register_executors(register):
    register(LocalExecutor)
