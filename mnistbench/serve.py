"""A warm worker: one process that runs one run after another, and the driver's handle on it.

A fresh worker per run pays for its start every time: the interpreter, the backend's
import (seconds for TensorFlow), the plugins, the data, the speed probe's tracing. A warm
worker pays once and then runs each run it is sent, in the same phases as a fresh one
(:func:`mnistbench.worker.perform`: the probes, the run, its record), with what would leak
from one run into the next reset in between: Keras' session, the seeds (set by each run),
and the peak resident memory the run records (Linux's ``clear_refs``), so a run's figures
are its own. A run that kills its worker, or outlives its timeout, is a failed run; the
next run gets a new worker.

The driver (:class:`WarmWorker`) talks to the worker (``python -m mnistbench.serve``) in
JSON lines over a pair of pipes, never through stdout, where the backend writes its
start-up lines (those go to each run's log). The protocol is versioned
(:data:`PROTOCOL`) and carries records as ``runs.csv`` cells, so a worker may run another
version of mnistbench than its driver: ``mnistbench ab`` starts one per side, each in its
side's environment (:mod:`mnistbench.checkouts`).

The worker says hello (``{"hello": PROTOCOL, "architectures": [...], "ready": false}``) as
soon as its plugins are loaded, then imports the backend and says ``{"ready": true}``: a
driver that only needs the architectures (``ab`` refusing a name one side lacks) has them
in about a second, not after TensorFlow's import. A hello without ``ready`` (a worker of
an earlier version) is ready as it is sent.

Request ``{"op": "run", "config": {...}, "placement": {...}, "started_at": ..., "peak":
float|null, "log": path}``: the worker answers with progress events ``{"event": ...}`` and
then ``{"result": {"status", "error", "cells", "machine", "peak"}}``. ``{"op": "stop"}``
ends it; so does the end of its input.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from mnistbench import __version__, layout
from mnistbench.backends import quiet_backend_logs, select_backend
from mnistbench.data import resolve_mnist
from mnistbench.plan import RunConfig
from mnistbench.plugins import load_plugins
from mnistbench.record import FAILED, Run, from_cells
from mnistbench.worker import (
    ForwardWarnings,
    MachineKey,
    Outcome,
    Placement,
    known_peak,
    output_to,
    perform,
)

#: The version of the conversation; a driver refuses a worker that speaks another.
PROTOCOL = 1
#: Seconds a new worker may take to be ready (its backend imported), from its launch.
START_TIMEOUT = 300.0
#: How often the driver checks on a worker that has sent nothing.
POLL_SECONDS = 0.25
#: Linux: writing this to /proc/self/clear_refs resets the peak resident memory (VmHWM).
_CLEAR_REFS = Path("/proc/self/clear_refs")

log = logging.getLogger("mnistbench")


class WorkerGone(Exception):
    """The worker died, stopped answering, or spoke out of turn."""


# --- the worker ------------------------------------------------------------------------------


def reset_peak_memory() -> bool:
    """Reset this process's peak resident memory, where Linux allows it; True if it did."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def serve(requests: IO[str], answers: IO[str], backend: str | None, data: str) -> None:
    """The worker's loop: the backend chosen and imported, plugins and data loaded once, then
    one run per request until ``stop`` or the end of ``requests``."""

    def send(message: dict) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    chosen = select_backend(backend)
    quiet_backend_logs()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what stops
    logger = logging.getLogger("mnistbench")
    logger.addHandler(ForwardWarnings(send))
    logger.propagate = False
    plugins = load_plugins()
    send(
        {
            "hello": PROTOCOL,
            "mnistbench": __version__,
            "backend": chosen,
            "pid": os.getpid(),
            "architectures": sorted(plugins.architectures),
            "ready": False,
        }
    )
    import keras  # the worker's whole point: imported once, for every run it serves

    mnist = resolve_mnist(data, offline=True)
    send({"ready": True})
    for line in requests:
        request = json.loads(line)
        if request.get("op") != "run":
            break
        output_to(request["log"])
        keras.backend.clear_session()
        gc.collect()
        reset_peak_memory()
        outcome = perform(
            RunConfig(**request["config"]),
            mnist,
            plugins,
            placement=Placement(**request["placement"]),
            started_at=request["started_at"],
            peaks=known_peak(request.get("peak")),
            on_progress=send,
            launched=request.get("launched"),
            probe=request.get("probe", True),
        )
        send(
            {
                "result": {
                    "status": outcome.status,
                    "error": outcome.error,
                    "cells": outcome.run.cells() if outcome.run is not None else None,
                    "machine": asdict(outcome.machine) if outcome.machine else None,
                    "peak": outcome.peak_flops_per_second,
                }
            }
        )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mnistbench.serve --requests FD --answers FD --data PATH [--backend B]``."""
    parser = argparse.ArgumentParser(prog="python -m mnistbench.serve")
    parser.add_argument("--requests", type=int, required=True, help="fd to read requests from")
    parser.add_argument("--answers", type=int, required=True, help="fd to write answers to")
    parser.add_argument("--data", required=True, help="the validated MNIST cache")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--log", required=True, help="where output goes before the first run")
    args = parser.parse_args(argv)
    output_to(args.log)
    with os.fdopen(args.requests, "r") as requests, os.fdopen(args.answers, "w") as answers:
        serve(requests, answers, args.backend, args.data)


# --- the driver's handle -----------------------------------------------------------------------


@dataclass(frozen=True)
class Spawn:
    """How to start a worker: the interpreter, its environment, the CPUs it may use (None:
    all), its backend (None: the configured one), and its working directory (None: this
    process's). ``python -m`` puts the working directory first on the worker's path, so a
    side of ``ab`` starts elsewhere: in the repository it would import the working tree's
    modules instead of its own version's."""

    python: str = sys.executable
    env: dict[str, str] | None = None
    cpus: frozenset[int] | None = None
    backend: str | None = None
    cwd: Path | None = None


class WarmWorker:
    """A worker process serving runs until stopped; started on first use, started again
    after it dies. Use as a context manager, or call :meth:`stop`."""

    def __init__(self, spawn: Spawn, data: Path, log_dir: Path) -> None:
        self.spawn = spawn
        # Absolute: the worker runs in its own directory (``Spawn.cwd``), so a path relative
        # to this process's would name another file there.
        self.data = Path(data).absolute()
        self.log_dir = Path(log_dir).absolute()
        self.process: subprocess.Popen | None = None
        self._requests: IO[str] | None = None
        self._answers: int | None = None
        self._buffer = b""
        self.hello: dict = {}
        #: Whether the worker has imported its backend and waits for runs.
        self.ready = False
        #: How many workers this handle started (a dead one is replaced).
        self.starts = 0
        #: When the worker now running was launched, until its first run counts it.
        self._launched: float | None = None

    def __enter__(self) -> WarmWorker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the worker and wait for its hello; WorkerGone when it never says it."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the worker process without waiting for it (:meth:`wait_ready` does): a
        driver with several workers launches them all, and their imports overlap."""
        self.stop()
        self.hello = {}
        self.ready = False
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._launched = time.time()
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        cpus = self.spawn.cpus
        command = [
            self.spawn.python,
            "-m",
            "mnistbench.serve",
            "--requests",
            str(request_read),
            "--answers",
            str(answer_write),
            "--data",
            str(self.data),
            "--log",
            str(self.log_dir / layout.WORKER_START_LOG),
        ]
        if self.spawn.backend:
            command += ["--backend", self.spawn.backend]
        self.process = subprocess.Popen(
            command,
            pass_fds=(request_read, answer_write),
            stdin=subprocess.DEVNULL,
            env=self.spawn.env,
            cwd=self.spawn.cwd,
            # Pinned before the interpreter starts, so every thread it makes inherits it.
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            start_new_session=True,  # Ctrl-C reaches the driver only; it stops the worker
        )
        os.close(request_read)
        os.close(answer_write)
        self._requests = os.fdopen(request_write, "w")
        self._answers = answer_read
        self._buffer = b""
        self.starts += 1

    def wait_hello(self) -> dict:
        """Wait for the launched worker's hello (its plugins loaded, its backend perhaps
        still importing) and return it; WorkerGone when it never says it."""
        if not self.hello:
            hello = self._start_message()
            if hello.get("hello") != PROTOCOL:
                self.stop()
                raise WorkerGone(f"it speaks protocol {hello.get('hello')}, not {PROTOCOL}")
            self.hello = hello
            self.ready = hello.get("ready", True)  # an earlier version's hello: ready
        return self.hello

    def wait_ready(self) -> None:
        """Wait for the launched worker's hello, then until it is ready for runs;
        WorkerGone when it never is."""
        self.wait_hello()
        if not self.ready:
            message = self._start_message()
            if message.get("ready") is not True:
                self.stop()
                raise WorkerGone(f"it said {message!r} before it was ready")
            self.ready = True

    def _start_message(self) -> dict:
        """The starting worker's next message other than a warning (a plugin that failed
        to load, say: logged here, as a run's are)."""
        while True:
            left = START_TIMEOUT - (time.time() - (self._launched or time.time()))
            message = self._receive(max(left, 0.0))
            if message.get("timeout"):
                self.stop()
                raise WorkerGone(f"it did not start within {START_TIMEOUT:g} s")
            if not _logged_warning(message):
                return message

    def run(
        self,
        config: RunConfig,
        placement: Placement,
        *,
        started_at: str,
        log_path: Path,
        peak: float | None = None,
        timeout: float | None = None,
        on_progress: Callable[[dict], None] | None = None,
        probe: bool = True,
    ) -> tuple[Outcome, dict[str, str] | None]:
        """Run ``config`` in the worker: ``(outcome, cells)``, the record's ``runs.csv``
        cells as the worker made them (None when it made none); ``probe=False`` leaves the
        speed probes out (:func:`mnistbench.worker.perform`). A worker that dies or
        outlives ``timeout`` seconds is stopped and its run failed; the next run starts a
        new one."""
        if not self.alive or not self.ready:
            try:
                if self.alive:  # launched, still starting
                    self.wait_ready()
                else:
                    self.start()
            except WorkerGone as error:
                return Outcome(FAILED, f"the worker did not start: {error}"), None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # The first run of a worker counts its start-up; the others, from their request.
        launched, self._launched = self._launched or time.time(), None
        request = {
            "op": "run",
            "launched": launched,
            "config": config.to_dict(),
            "placement": asdict(placement),
            "started_at": started_at,
            "peak": peak,
            "log": str(Path(log_path).absolute()),
            "probe": probe,
        }
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._send(request)
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self.stop(hung=True)
                    return Outcome(FAILED, f"timed out after {timeout:g} s"), None
                message = self._receive(left)
                if "result" in message:
                    return self._outcome(message["result"])
                if _logged_warning(message):
                    continue
                if on_progress is not None and "event" in message:
                    on_progress(message)
        except WorkerGone as error:
            code = self.process.poll() if self.process else None
            self.stop()
            how = f"exited with code {code}" if code is not None and code >= 0 else "died"
            if code is not None and code < 0:
                with contextlib.suppress(ValueError):
                    how = f"killed by {signal.Signals(-code).name}"
            return Outcome(FAILED, f"worker process {how} ({error}); see {log_path}"), None

    def pin(self, cpus: frozenset[int]) -> None:
        """Bind the running worker, every thread it has, to ``cpus`` (threads it makes later
        inherit it): a duet moves each side's worker to its half of the CPUs for a pair."""
        if not self.alive:
            return
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(task.name), cpus)

    @staticmethod
    def _outcome(result: dict[str, Any]) -> tuple[Outcome, dict[str, str] | None]:
        machine = result.get("machine")
        outcome = Outcome(
            result["status"],
            result.get("error") or "",
            None,
            MachineKey(**machine) if machine else None,
            result.get("peak"),
        )
        return outcome, result.get("cells")

    def stop(self, hung: bool = False) -> None:
        """Stop the worker (asked, then terminated, then killed); nothing when none runs.
        One still starting, or ``hung`` in a run past its timeout, is terminated at once:
        it would not read the request to stop."""
        process, self.process = self.process, None
        at_once = hung or not self.ready
        self.ready = False
        if self._requests is not None:
            with contextlib.suppress(OSError, ValueError):
                if process is not None and process.poll() is None:
                    self._requests.write(json.dumps({"op": "stop"}) + "\n")
                    self._requests.flush()
                self._requests.close()
            self._requests = None
        if self._answers is not None:
            with contextlib.suppress(OSError):
                os.close(self._answers)
            self._answers = None
        if process is None:
            return
        if at_once and process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _send(self, message: dict) -> None:
        try:
            self._requests.write(json.dumps(message) + "\n")
            self._requests.flush()
        except (OSError, ValueError) as error:
            raise WorkerGone(f"cannot write to the worker: {error}") from None

    def _receive(self, timeout: float | None) -> dict:
        """The worker's next message; WorkerGone at the end of its output or past
        ``timeout`` seconds before the hello (a run's timeout is the caller's)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = POLL_SECONDS
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            ready, _, _ = select.select([self._answers], [], [], wait)
            if ready:
                chunk = os.read(self._answers, 65536)
                if not chunk:
                    raise WorkerGone("its output ended")
                self._buffer += chunk
                continue
            if self.process is not None and self.process.poll() is not None:
                raise WorkerGone("it exited")
            if deadline is not None and time.monotonic() >= deadline:
                return {"timeout": True}
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise WorkerGone(f"it wrote {line[:80]!r}, not a message") from None


def _logged_warning(message: dict) -> bool:
    """Log ``message`` here if it is a worker's warning (as its driver shows them); whether
    it was."""
    if message.get("event") != "warning":
        return False
    log.warning(message["message"])
    return True


def record_of(cells: dict[str, str] | None, outcome: Outcome, make: Callable[..., Run]) -> Run:
    """The run's record from the worker's cells, or one the driver makes (``make(status=,
    error=)``) for a run whose worker made none."""
    if cells is not None:
        return from_cells(cells, where=f"the worker's record of {cells.get('run_id', '?')}")
    return make(status=outcome.status, error=outcome.error)


if __name__ == "__main__":
    main()
