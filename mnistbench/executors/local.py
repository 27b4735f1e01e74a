"""The local executor: one run after another on this machine, ``mnistbench run``'s default.

Each run gets a fresh worker process (``--isolation process``, the default) or runs in
the ``mnistbench`` process itself (``--isolation none``, for debugging). Process
isolation gives each run its own peak memory, its own backend import and its own
failure: a worker that crashes, is killed or hangs past the timeout becomes one failed
record while the sweep goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_module
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import mnistbench
from mnistbench.backends import configured_backend
from mnistbench.data import resolve_mnist
from mnistbench.errors import ConfigError
from mnistbench.executors import Executor, Option, Recorder
from mnistbench.plan import Execution, RunConfig
from mnistbench.record import FAILED, utc_now
from mnistbench.worker import (
    MachineKey,
    Outcome,
    Placement,
    Send,
    known_peak,
    perform,
    run_in_fresh_worker,
    start,
)

#: How often the parent checks on a worker that has sent nothing.
POLL_SECONDS = 0.25
ISOLATIONS = ("process", "none")

log = logging.getLogger("mnistbench")


class LocalExecutor(Executor):
    """One run after another on this machine, each with all of its CPUs."""

    name = "local"
    description = "one run after another on this machine (the default)"
    options = (
        Option(
            "isolation",
            "Run each architecture in a fresh worker process, or in this one (debugging).",
            choices=ISOLATIONS,
            default="process",
        ),
    )

    @classmethod
    def check(cls, execution: Execution, backends: Sequence[str | None]) -> None:
        isolation = execution.option("isolation", "process")
        if isolation not in ISOLATIONS:
            raise ConfigError(f"unknown isolation {isolation!r} (known: process, none)")
        if execution.timeout is not None and isolation == "none":
            raise ConfigError("--timeout needs --isolation process")
        super().check(execution, backends)
        named = {name for name in backends if name}
        if isolation == "none" and named and named != {configured_backend()}:
            raise ConfigError("--backend other than the configured one needs --isolation process")

    def __init__(self, execution: Execution, *, mnist, plugins, log_dir: Path) -> None:
        super().__init__(execution, mnist=mnist, plugins=plugins, log_dir=log_dir)
        self.isolation = execution.option("isolation", "process")
        self.placement = Placement.here(self.name, self.isolation)

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
                        placement=self.placement,
                        started_at=started_at,
                        peaks=known_peak(known),
                        on_progress=recorder.on_progress,
                    )
                else:
                    outcome = self._in_worker(config, started_at, known, recorder.on_progress)
            except KeyboardInterrupt as interruption:
                recorder.interrupted(
                    index, interruption, started_at=started_at, placement=self.placement
                )
                raise
            recorder.finished(index, outcome, started_at=started_at, placement=self.placement)

    def _in_worker(
        self, config: RunConfig, started_at: str, known: float | None, on_progress: Send
    ) -> Outcome:
        result, error = call_in_worker(
            _run_in_process,
            (config, str(self.mnist.cache_path), self.placement, started_at, known),
            log_path=self.log_dir / f"{config.run_id}.log",
            on_progress=on_progress,
            timeout=self.execution.timeout,
        )
        return result if error is None else Outcome(FAILED, error)


def _run_in_process(
    config: RunConfig,
    data_path: str,
    placement: Placement,
    started_at: str,
    known: float | None,
    on_progress: Send,
) -> Outcome:
    """A local worker process's run: the data comes from the validated cache on disk."""
    return run_in_fresh_worker(
        config,
        lambda: resolve_mnist(data_path, offline=True),
        placement=placement,
        started_at=started_at,
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


@mnistbench.hookimpl
def mnistbench_register_executors(register):
    register(LocalExecutor)
