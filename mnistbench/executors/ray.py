"""Run a sweep's configurations as tasks on a Ray cluster: ``mnistbench run --executor ray``.

An :class:`~mnistbench.executors.Executor` like the local one: the driver's
:class:`~mnistbench.executors.Recorder` takes every record and makes every event, and each
task runs :mod:`mnistbench.worker`'s phases, its record made in the task. What differs:

- Runs go in parallel, as many as the cluster has room for at ``cpus_per_run`` CPUs each.
- Each run is a task in a fresh Ray worker process (``max_calls=1``): it imports only its
  own backend, and its peak memory is its own (plus the Ray worker's ~100 MB).
- Each worker's thread pools are sized to its reservation (see
  :func:`mnistbench.backends.thread_limit_env`), so parallel runs do not oversubscribe,
  and its machine measurement is taken under that limit on its own node.
- MNIST goes into the object store once; workers read it from there, never from disk.
- Workers send their events (started, progress, warnings) to an actor beside the driver,
  :class:`EventBox`, and never wait on it. The machine measurement is shared by the runs
  of a node through :class:`~mnistbench.worker.NodePeakFile`, so each (node, backend,
  CPU reservation) is measured once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import site
import sys
import sysconfig
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import mnistbench
from mnistbench import worker
from mnistbench.backends import configured_backend, thread_limit_env
from mnistbench.data import Mnist
from mnistbench.errors import ConfigError, MnistbenchError
from mnistbench.executors import Executor, Option, Recorder
from mnistbench.plan import Execution, RunConfig
from mnistbench.plugins import BLOCK_ENV, PLUGINS_ENV, STRICT_ENV
from mnistbench.record import FAILED, utc_now
from mnistbench.worker import NodePeakFile, Outcome, Placement

#: How often the driver collects the workers' events and finished runs.
POLL_SECONDS = 0.25
#: The plugin-selection variables a worker must see as the driver does.
PLUGIN_VARIABLES = (PLUGINS_ENV, BLOCK_ENV, STRICT_ENV)
#: The most of a run's output (its worker's stdout and stderr) carried back to the driver.
LOG_TAIL_BYTES = 256 * 1024
INSTALL_HINT = "pip install 'mnistbench[ray]'"

log = logging.getLogger("mnistbench")


def _import_ray():
    try:
        import ray  # optional (the ray extra), and slow to import
    except ImportError:
        raise ConfigError(f"the Ray executor needs Ray: {INSTALL_HINT}") from None
    return ray


# --- what runs on the workers ----------------------------------------------------------


class EventBox:
    """A Ray actor beside the driver: the workers' events until the driver collects them.

    Workers send "started" (so timeouts count from the run's start, not from its wait
    in the queue), progress and warnings; the driver drains them between waits.
    """

    def __init__(self) -> None:
        self._events: list[dict] = []

    def put(self, event: dict) -> None:
        self._events.append(event)

    def drain(self) -> list[dict]:
        events, self._events = self._events, []
        return events


def _read_tail(path: str) -> str:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
        return handle.read().decode(errors="replace")


def run_task(
    config: RunConfig,
    x_train,
    y_train,
    x_test,
    y_test,
    provenance: dict,
    cpus: int,
    index: int,
    events,
    peaks,
    probe: bool = True,
) -> dict:
    """A Ray task: one run in its own worker process; returns its outcome, never raises for it.

    Returns ``outcome`` (a :class:`~mnistbench.worker.Outcome`, with the run's record),
    ``node`` and ``log`` (the worker's output). The thread limits and KERAS_BACKEND are
    already in the environment (the driver set them as the task's ``runtime_env``), so
    they are in place before anything imports.
    """
    node = platform.node()
    fd, log_path = tempfile.mkstemp(prefix=f"mnistbench-{config.run_id}-", suffix=".log")
    os.close(fd)
    # The driver's clock for --timeout starts at this event. Sent, never waited for: a task
    # that waits on an actor lends its CPUs to queued tasks, which would then run beside it.
    # The actor runs one caller's calls in order, so it still comes before the progress.
    started_at = utc_now()
    started = {"event": "started", "index": index, "started_at": started_at}
    started.update(node=node, pid=os.getpid(), log_path=log_path)
    events.put.remote(started)

    def send(event: dict) -> None:
        events.put.remote({**event, "index": index})

    # Ray stops its workers itself on Ctrl-C: leave SIGINT as Ray set it.
    worker.start(log_path, send, ignore_sigint=False)

    def load_mnist() -> Mnist:
        return Mnist(
            x_train,
            y_train,
            x_test,
            y_test,
            source=provenance["source"],
            origin=provenance["origin"],
            cache_path=Path(provenance["cache_path"]),
        )

    outcome = worker.run_in_fresh_worker(
        config,
        load_mnist,
        placement=Placement(RayExecutor.name, "process", node, cpus),
        started_at=started_at,
        peaks=peaks,
        on_progress=send,
        limit_threads=True,
        probe=probe,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    output = _read_tail(log_path)
    os.unlink(log_path)
    return {"outcome": outcome, "node": node, "log": output}


# --- the driver ------------------------------------------------------------------------


def forwarded_sys_path() -> list[str]:
    """The driver's ``sys.path`` entries a fresh interpreter of the same Python lacks.

    Plugins installed into the driver's environment must be importable in the workers:
    a directory put on ``sys.path`` at run time (``PYTHONPATH`` at start, a test's
    temporary site) is passed on through the workers' PYTHONPATH. The interpreter's
    own entries (standard library, site-packages) are left out: workers have theirs,
    and on another machine the driver's would be wrong. Ray itself adds the driver's
    working directory and script directory.
    """
    own = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    own.update(site.getsitepackages())
    own.add(site.getusersitepackages())
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    entries: list[str] = []
    for entry in sys.path:
        if not entry:  # the working directory
            continue
        path = os.path.abspath(entry)
        if path in own or any(path == p or path.startswith(p + os.sep) for p in prefixes):
            continue
        if path not in entries:
            entries.append(path)
    return entries


def worker_env(config: RunConfig, cpus: int) -> dict[str, str]:
    """The environment variables of one run's Ray worker, computed in the driver.

    Thread limits for ``cpus``, the Keras backend (the run's, else the driver's
    configured one, so every node runs what was planned), the driver's plugin selection
    and its extra ``sys.path`` entries (see :func:`forwarded_sys_path`).
    """
    env = thread_limit_env(cpus)
    env["KERAS_BACKEND"] = config.backend or configured_backend()
    env.update({name: os.environ[name] for name in PLUGIN_VARIABLES if name in os.environ})
    extra = forwarded_sys_path()
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(extra)
    return env


def _worker_died_errors(ray) -> tuple[type[BaseException], ...]:
    """Ray errors after which a run's row is "failed" while the sweep goes on."""
    ex = ray.exceptions
    return (ex.WorkerCrashedError, ex.OutOfMemoryError, ex.NodeDiedError)


def _lost_cluster_errors(ray) -> tuple[type[BaseException], ...]:
    """Ray errors that mean the driver lost the cluster (the events actor lives on the
    driver's node, so its death counts too): the sweep cannot go on."""
    ex = ray.exceptions
    return (ex.RaySystemError, ex.LocalRayletDiedError, ex.RayActorError, ConnectionError)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def describe_failure(ray, error: BaseException) -> tuple[str, str]:
    """``(status, error)`` of a run whose task ended in ``error``; re-raises a lost cluster.

    The task catches the run's own exceptions, so a RayTaskError here is one raised
    around the run (loading plugins, say); its ``cause`` is the original exception.
    """
    if isinstance(error, _lost_cluster_errors(ray)):
        raise error
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None) or error
        return Outcome.of_error(cause).status, f"{type(cause).__name__}: {_first_line(cause)}"
    if isinstance(error, _worker_died_errors(ray)):
        return "failed", f"ray worker died: {_first_line(error).rstrip('.')}"
    return "failed", f"{type(error).__name__}: {_first_line(error)}"


def _connect(ray, address: str | None, ray_init_kwargs: dict | None) -> bool:
    """Join ``address`` or start a local instance; True if this call connected (and must shut
    down). An already initialized Ray (a test's, a notebook's) is used as it is."""
    if ray.is_initialized():
        return False
    kwargs = {"log_to_driver": False, **(ray_init_kwargs or {})}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(**kwargs)
    except ConnectionError as error:
        where = address or "a new local instance"
        raise MnistbenchError(
            f"cannot connect to the Ray cluster at {where}: {_first_line(error)}"
        ) from None
    return True


def node_cpus(ray) -> list[int]:
    """The CPUs of each alive node of the connected cluster."""
    return [
        int(node.get("Resources", {}).get("CPU", 0)) for node in ray.nodes() if node.get("Alive")
    ]


def _cluster_address(ray) -> str:
    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # an older or client-mode Ray
        return "the local Ray instance"


def _cpus_per_run(ray, requested: int | None) -> int:
    largest = max(node_cpus(ray), default=0)
    if largest < 1:
        raise ConfigError("the Ray cluster has no node with a CPU")
    if requested is None:
        return largest
    if requested > largest:
        raise ConfigError(
            f"--cpus-per-run {requested} is more than the largest Ray node has ({largest}); "
            "no run could start"
        )
    return requested


@dataclass
class _Run:
    """A submitted run, until it ends."""

    index: int
    config: RunConfig
    ref: object
    submitted_at: str
    started: float | None = None  # driver's monotonic clock at the "started" event
    started_at: str | None = None
    node: str = ""
    pid: int | None = None
    log_path: str = ""


class RayExecutor(Executor):
    """Runs as Ray tasks, in parallel, ``cpus_per_run`` CPUs each.

    The option ``ray_address`` joins a running cluster (``ray start --head`` prints it;
    "auto" finds a local one); without it a local Ray instance is started with
    ``ray_init_kwargs`` and shut down at the end. If Ray is already initialized in this
    process, it is used and left running. Each run reserves ``cpus_per_run`` CPUs
    (default: all of the largest node's, so one run per node) and its backend is
    limited to that many threads. ``timeout`` counts from the worker's start. A worker
    that dies is a "failed" row and the rest go on; a lost cluster raises
    :class:`MnistbenchError` (finished rows were already recorded); Ctrl-C cancels the
    tasks, records the started ones "interrupted" and re-raises. Each run's output goes
    to ``log_dir/<run_id>.log``.
    """

    name = "ray"
    description = "runs as tasks on a Ray cluster, in parallel (pip install 'mnistbench[ray]')"
    options = (
        Option(
            "ray_address",
            "The cluster to join [default: start a local Ray instance].",
            metavar="ADDRESS",
        ),
        Option(
            "cpus_per_run",
            "CPUs each run reserves [default: all CPUs of a node].",
            type=int,
            minimum=1,
        ),
    )

    @classmethod
    def check(cls, execution: Execution, backends) -> None:
        # Before the sweep writes anything (and for --dry-run): found, not imported (slow).
        if importlib.util.find_spec("ray") is None:
            raise ConfigError(f"the Ray executor needs Ray: {INSTALL_HINT}")
        cpus = execution.option("cpus_per_run")
        if cpus is not None and cpus < 1:
            raise ConfigError(f"--cpus-per-run must be at least 1, got {cpus}")
        super().check(execution, backends)

    def __init__(
        self,
        execution: Execution,
        *,
        mnist,
        plugins=None,
        log_dir: Path,
        ray_init_kwargs: dict | None = None,
    ) -> None:
        super().__init__(execution, mnist=mnist, plugins=plugins, log_dir=log_dir)
        self.address = execution.option("ray_address")
        self.requested_cpus = execution.option("cpus_per_run")
        self.timeout = execution.timeout
        self.probe = execution.probe
        self.ray_init_kwargs = ray_init_kwargs

    def run(self, recorder: Recorder) -> None:
        ray = _import_ray()
        connected = _connect(ray, self.address, self.ray_init_kwargs)
        try:
            self.cpus = _cpus_per_run(ray, self.requested_cpus)
            self._sweep(ray, recorder)
        finally:
            if connected:
                ray.shutdown()

    def _placement(self, run: _Run) -> Placement:
        return Placement(self.name, "process", run.node, self.cpus)

    def _sweep(self, ray, recorder: Recorder) -> None:
        if not recorder.configs:
            return
        self.ray, self.recorder = ray, recorder
        self.pending: dict[object, _Run] = {}
        self.by_index: dict[int, _Run] = {}
        self.focus: int | None = None  # the run whose progress events are shown
        self.peaks = NodePeakFile(uuid.uuid4().hex)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        where = self.address or _cluster_address(ray)
        self.events = self._make_event_box()
        try:
            try:
                self._submit_all()
                while self.pending:
                    self._poll()
            except _lost_cluster_errors(ray) as error:
                self._cancel_pending()  # what is left of the cluster stops them
                raise MnistbenchError(
                    f"lost the Ray cluster at {where}: {_first_line(error)}; finished "
                    f"runs are saved; resume with: mnistbench run --resume {self.log_dir.parent}"
                ) from error
        except KeyboardInterrupt as interruption:
            self._interrupt(interruption)
            raise
        finally:
            try:
                ray.kill(self.events)
            except Exception:  # the cluster may be gone; nothing to clean up then
                pass
            self.peaks.remove_here()

    def _make_event_box(self):
        ray = self.ray
        options: dict = {"num_cpus": 0, "max_restarts": 0}
        try:  # next to the driver: events survive any other node's loss
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node_id = ray.get_runtime_context().get_node_id()
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=True)
        except Exception:  # client mode: no local node
            pass
        return ray.remote(EventBox).options(**options).remote()

    def _submit_all(self) -> None:
        ray, mnist = self.ray, self.mnist
        arrays = [ray.put(a) for a in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test)]
        provenance = {
            "source": mnist.source,
            "origin": mnist.origin,
            "cache_path": str(mnist.cache_path),
        }
        # A fresh worker per run (max_calls=1): no backend import leaks from one run to the
        # next. No retries: a run that crashed its worker is reported, not silently rerun.
        task = ray.remote(max_calls=1, max_retries=0)(run_task)
        peaks = self.peaks
        for index, config in enumerate(self.recorder.configs):
            ref = task.options(
                num_cpus=self.cpus,
                runtime_env={"env_vars": worker_env(config, self.cpus)},
                name=f"mnistbench:{config.run_id}",
            ).remote(config, *arrays, provenance, self.cpus, index, self.events, peaks, self.probe)
            run = _Run(index, config, ref, submitted_at=utc_now())
            self.pending[ref] = run
            self.by_index[index] = run

    def _poll(self) -> None:
        ray = self.ray
        ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=POLL_SECONDS)
        for event in ray.get(self.events.drain.remote()):
            self._handle_event(event)
        for ref in ready:
            run = self.pending.pop(ref)
            try:
                result = ray.get(ref)
            except (ray.exceptions.RayError, ConnectionError) as error:
                status, message = describe_failure(ray, error)
                if status == FAILED and message.startswith("ray worker died") and run.node:
                    message += f"; its output is on {run.node} in {run.log_path}"
                result = {"outcome": Outcome(status, message), "node": run.node, "log": None}
            self._finish(run, result)
        if self.timeout is not None:
            now = time.monotonic()
            for run in list(self.pending.values()):
                if run.started is not None and now - run.started > self.timeout:
                    ray.cancel(run.ref, force=True)
                    del self.pending[run.ref]
                    outcome = Outcome(FAILED, f"timed out after {self.timeout:g} s")
                    self._finish(run, {"outcome": outcome, "node": run.node, "log": None})

    def _handle_event(self, event: dict) -> None:
        run = self.by_index.get(event.pop("index", None))
        if run is None or run.ref not in self.pending:
            return  # a late event of a run already recorded
        kind = event["event"]
        if kind == "started":
            run.started = time.monotonic()
            run.started_at = event["started_at"]
            run.node, run.pid, run.log_path = event["node"], event["pid"], event["log_path"]
            self._announce(run)
        elif kind == "warning":
            log.warning(f"{run.config.run_id}: {event['message']}")
        elif run.index == self.focus:
            self.recorder.on_progress(event)

    def _announce(self, run: _Run) -> None:
        """The run has started: tell the recorder (once), and show its progress."""
        self.focus = run.index
        self.recorder.started(run.index, node=run.node, pid=run.pid)

    def _finish(self, run: _Run, result: dict) -> None:
        if run.started is None:  # ended before its worker could report (runtime_env failed)
            run.started = time.monotonic()
            self._announce(run)
        run.node = result.get("node") or run.node
        self._write_log(run, result.get("log"))
        if self.focus == run.index:
            self.focus = None
        self.recorder.finished(
            run.index,
            result["outcome"],
            started_at=run.started_at or run.submitted_at,
            placement=self._placement(run),
        )

    def _write_log(self, run: _Run, output: str | None) -> None:
        path = self.log_dir / f"{run.config.run_id}.log"
        if output is None:
            where = f" on {run.node} in {run.log_path}" if run.node else ""
            output = f"the run's Ray worker did not return its output; it may be{where}\n"
        try:
            path.write_text(output)
        except OSError as error:
            log.warning(f"cannot write {path}: {error.strerror or error}")

    def _cancel_pending(self) -> None:
        """Stop every submitted run still going: force kills the workers of started ones."""
        for run in self.pending.values():
            try:
                self.ray.cancel(run.ref, force=True)
            except Exception:  # the cluster may be gone or going down with us
                pass

    def _interrupt(self, interruption: KeyboardInterrupt) -> None:
        self._cancel_pending()
        for run in sorted(self.pending.values(), key=lambda r: r.index):
            if run.started is None:
                continue  # never started: nothing to record, it runs on resume
            self.recorder.interrupted(
                run.index,
                interruption,
                started_at=run.started_at or run.submitted_at,
                placement=self._placement(run),
            )
        self.pending.clear()


@mnistbench.hookimpl
def mnistbench_register_executors(register):
    register(RayExecutor)
