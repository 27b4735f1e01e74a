"""Run a list of configurations one after another, each in-process or in a fresh worker process.

Process isolation (the default) gives each run its own peak memory, its own
backend import and its own failure: a worker that crashes, is killed or hangs
past the timeout becomes one failed row while the sweep goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_module
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mnistbench.results import make_row
from mnistbench.runner import ProgressCallback, RunConfig, run_one, utc_now

#: How often the parent checks on a worker that has sent nothing.
POLL_SECONDS = 0.25
#: Matrix size of the peak FLOP/s probe.
PEAK_MATMUL_SIZE = 2048

log = logging.getLogger("mnistbench")


class Interrupted(KeyboardInterrupt):
    """The sweep was stopped by SIGINT (Ctrl-C) or SIGTERM."""

    def __init__(self, signal_number: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


def status_of(error: BaseException) -> str:
    """The ``runs.csv`` status of a run that raised ``error``: NaN/inf loss is "diverged"."""
    return "diverged" if isinstance(error, FloatingPointError) else "failed"


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class _ForwardToQueue(logging.Handler):
    """Sends a worker's mnistbench warnings to the parent, which shows them."""

    def __init__(self, queue) -> None:
        super().__init__(logging.WARNING)
        self.queue = queue

    def emit(self, record: logging.LogRecord) -> None:
        self.queue.put({"event": "warning", "message": record.getMessage()})


def _redirect_output(log_path: str) -> None:
    """Send this process's stdout and stderr (the backend's C++ logs included) to a file.

    TensorFlow prints start-up lines that no environment variable silences; in the
    log file they stay available for diagnosis without burying the progress display.
    """
    import os
    import sys

    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _worker(task: Callable, args: tuple, log_path: str, queue) -> None:
    """Entry point of a worker process: run ``task(*args, on_progress=...)``, send its result."""
    from mnistbench.runner import quiet_backend_logs

    _redirect_output(log_path)
    # Ctrl-C reaches the whole process group; the parent decides what stops and records it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_backend_logs()
    logger = logging.getLogger("mnistbench")
    logger.addHandler(_ForwardToQueue(queue))
    logger.propagate = False
    try:
        result = task(*args, on_progress=queue.put)
        queue.put({"event": "result", "result": result})
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        queue.put({"event": "error", "error": message, "status": status_of(error)})


def _run_task(config: RunConfig, data_path: str, peak, on_progress) -> dict:
    """A worker's run: load the plugins and the data again, then train and measure."""
    from mnistbench.backends import select_backend

    # Before anything imports Keras: each worker imports only its own backend.
    select_backend(config.backend)
    from mnistbench.data import resolve_mnist
    from mnistbench.plugins import load_plugins

    plugins = load_plugins()
    mnist = resolve_mnist(data_path, offline=True)
    return run_one(config, mnist, plugins, on_progress, peak_flops_per_second=peak)


def _peak_task(backend: str, on_progress) -> float:
    from mnistbench.backends import select_backend

    if multiprocessing.parent_process() is not None:  # only a worker may block modules
        select_backend(backend)
    from mnistbench.flops import measure_peak_flops

    on_progress({"event": "phase", "phase": f"measuring peak FLOP/s ({backend})"})
    return measure_peak_flops(PEAK_MATMUL_SIZE)


def call_in_worker(
    task: Callable,
    args: tuple,
    *,
    log_path: Path,
    on_progress: ProgressCallback,
    timeout: float | None = None,
):
    """Run ``task`` in a fresh process: ``(result, None, "ok")`` or ``(None, error, status)``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    process = context.Process(target=_worker, args=(task, args, str(log_path), queue), daemon=True)
    process.start()
    started = time.monotonic()
    try:
        while True:
            # Checked on every pass: a run that keeps reporting progress can still be too slow.
            if timeout is not None and time.monotonic() - started > timeout:
                return None, f"timed out after {timeout:g} s", "failed"
            try:
                event = queue.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                if process.is_alive():
                    continue
                try:  # it may have sent its result just before exiting
                    event = queue.get(timeout=POLL_SECONDS)
                except queue_module.Empty:
                    error = f"worker process {_describe_exit(process.exitcode)}; see {log_path}"
                    return None, error, "failed"
            if event["event"] == "result":
                return event["result"], None, "ok"
            if event["event"] == "error":
                return None, event["error"], event["status"]
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


def _call_in_process(task: Callable, args: tuple, on_progress, *extra):
    try:
        return task(*args, on_progress, *extra), None, "ok"
    except Exception as error:
        return None, f"{type(error).__name__}: {error}", status_of(error)


def measure_peak(
    backends: Sequence[str], *, isolation: str, log_dir: Path, on_progress: ProgressCallback
) -> dict[str, float]:
    """The machine's peak float32 matmul FLOP/s for each backend the runs use."""
    peaks = {}
    for backend in backends:
        if isolation == "none":
            peak, error, _ = _call_in_process(_peak_task, (backend,), on_progress)
        else:
            peak, error, _ = call_in_worker(
                _peak_task,
                (backend,),
                log_path=Path(log_dir) / f"peak-{backend}.log",
                on_progress=on_progress,
            )
        if error:
            log.warning(f"could not measure peak FLOP/s on {backend}: {error}")
        else:
            peaks[backend] = peak
    return peaks


def execute(
    configs: Sequence[RunConfig],
    *,
    mnist,
    plugins,
    log_dir: Path,
    isolation: str = "process",
    timeout: float | None = None,
    peak_flops_per_second: float | dict[str, float] | None = None,
    on_progress: ProgressCallback | None = None,
    on_start: Callable[[RunConfig], None] | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run every configuration in order; returns the rows of ``runs.csv``.

    Each worker's stdout and stderr go to ``log_dir/<run_id>.log``.
    ``on_result`` receives each row as soon as its run ends, so the caller can
    write it before the next run starts. A failed run is a row with status
    "failed" (or "diverged") and its error; the remaining runs still run. On
    Ctrl-C or SIGTERM the run in progress is stopped, handed to ``on_result`` with
    status "interrupted", and the KeyboardInterrupt propagates.
    """
    on_progress = on_progress or (lambda event: None)
    rows = []
    for index, config in enumerate(configs):
        on_progress({"event": "run", "index": index, "total": len(configs), "config": config})
        started_at = utc_now()
        if on_start is not None:
            on_start(config)
        try:
            if isolation == "none":
                measured, error, status = _call_in_process(
                    run_one, (config, mnist, plugins), on_progress, peak_flops_per_second
                )
            else:
                measured, error, status = call_in_worker(
                    _run_task,
                    (config, str(mnist.cache_path), peak_flops_per_second),
                    log_path=Path(log_dir) / f"{config.run_id}.log",
                    on_progress=on_progress,
                    timeout=timeout,
                )
        except KeyboardInterrupt as interruption:
            name = interruption.args[0] if interruption.args else "SIGINT"
            row = make_row(
                config,
                plugins.architectures[config.architecture],
                {},
                status="interrupted",
                error=f"interrupted by {name}",
                started_at=started_at,
                isolation=isolation,
            )
            if on_result is not None:
                on_result(row)
            raise
        row = make_row(
            config,
            plugins.architectures[config.architecture],
            measured or {},
            status=status,
            error=error or "",
            started_at=started_at,
            isolation=isolation,
        )
        rows.append(row)
        on_progress(
            {
                "event": "run_end",
                "index": index,
                "total": len(configs),
                "config": config,
                "status": row["status"],
            }
        )
        if on_result is not None:
            on_result(row)
    return rows
