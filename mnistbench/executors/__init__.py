"""Where runs execute: one small interface, found through the ``mnistbench_register_executors``
hook like any plugin's.

An :class:`Executor` runs a sweep's configurations and tells a :class:`Recorder` when
each starts and how it ended. The recorder is the sweep's side, written once for every
executor: the run events the progress display shows, a run's record (made in its worker,
or here for a run whose worker died), the "interrupted" records on Ctrl-C, and the
machine measurements shared between runs. Executors differ only in how a worker is
started and where: :mod:`mnistbench.executors.local` runs one configuration after
another on this machine, :mod:`mnistbench.executors.ray` runs them as tasks on a Ray
cluster. What a worker does is :mod:`mnistbench.worker`.

Adding an executor is one module: a subclass of :class:`Executor` with its ``name``, its
own command-line ``options`` (each an :class:`Option`, which ``mnistbench run`` offers as
``--<name>`` and a sweep file as ``<name>``) and its ``run``, registered by a
``mnistbench_register_executors`` hook implementation in the same module.
"""

from __future__ import annotations

import logging
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mnistbench.backends import check_backends
from mnistbench.errors import ConfigError
from mnistbench.plan import Execution, RunConfig
from mnistbench.record import INTERRUPTED, Run
from mnistbench.worker import MachineKey, Outcome, Placement, Send, run_record

log = logging.getLogger("mnistbench")


@dataclass(frozen=True)
class Option:
    """One command-line option only an executor takes: ``--<name with dashes>`` of ``run``.

    :param name: the option's name in Python and in sweep files (``cpus_per_run``).
    :param help: one line for ``--help``.
    :param type: ``int``, ``float``, ``str``, or ``bool`` for a flag.
    :param choices: the values a ``str`` option takes, () for any.
    :param minimum: the smallest value a number may take, None for any.
    :param default: the value the executor uses when the option is not given, for
        ``--help`` ("" when there is none to show).
    :param metavar: how ``--help`` names the value.
    """

    name: str
    help: str
    type: type = str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    default: Any = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        """``--cpus-per-run``."""
        return "--" + self.name.replace("_", "-")


class Executor(ABC):
    """Runs a sweep's configurations, telling a :class:`Recorder` as each starts and ends.

    A run that raises, crashes its worker or times out is a "failed" (or "diverged")
    record and the rest go on. On Ctrl-C (or SIGTERM, raised as :class:`Interrupted`)
    the runs that started are stopped and recorded "interrupted", and the
    KeyboardInterrupt propagates.

    Subclasses set :attr:`name`, :attr:`description` and :attr:`options`, and take the
    sweep's :class:`~mnistbench.plan.Execution` (their options in ``execution.options``),
    the data, the plugins and the directory for the workers' logs.
    """

    #: ``--executor NAME``.
    name: ClassVar[str]
    #: One line for ``--help`` and ``mnistbench plugins``.
    description: ClassVar[str] = ""
    #: The options only this executor takes.
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, execution: Execution, *, mnist, plugins, log_dir: Path) -> None:
        self.execution = execution
        self.mnist = mnist
        self.plugins = plugins
        self.log_dir = Path(log_dir)

    @classmethod
    def check(cls, execution: Execution, backends: Sequence[str | None]) -> None:
        """Raise :class:`ConfigError` for settings this executor cannot run; the planned
        runs' ``backends`` (None: the configured one) must be installed here."""
        named = [name for name in backends if name]
        if named:
            check_backends(named)

    @abstractmethod
    def run(self, recorder: Recorder) -> None:
        """Run every configuration of ``recorder.configs``."""


def check_execution(
    execution: Execution, executors: dict[str, Any], backends: Sequence[str | None]
) -> type[Executor]:
    """The executor class ``execution`` names, once its settings are checked: a known
    executor, only its own options, a positive timeout, and its own :meth:`Executor.check`.

    :param executors: the registered executors (``Plugins.executors``).
    """
    if execution.executor not in executors:
        known = ", ".join(sorted(executors)) or "none"
        raise ConfigError(f"unknown executor {execution.executor!r} (known: {known})")
    executor = executors[execution.executor].value
    own = {option.name for option in executor.options}
    for name, value in execution.options.items():
        if name in own or value is None or value is False:
            continue
        owners = [n for n, r in executors.items() if name in {o.name for o in r.value.options}]
        flag = "--" + name.replace("_", "-")
        needs = f"--executor {' or '.join(owners)}" if owners else "an executor that takes it"
        raise ConfigError(f"{flag} needs {needs}")
    if execution.timeout is not None and execution.timeout <= 0:
        raise ConfigError(f"--timeout must be above 0 seconds, got {execution.timeout:g}")
    executor.check(execution, backends)
    return executor


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
    """The sweep's side of an executor: run events, records and shared machine measurements.

    ``on_start(config)`` comes when a run's worker starts, ``on_result(run)`` as soon
    as a run ends (so the sweep writes it before the next ends); ``on_progress`` gets
    the events of :class:`mnistbench.cli.display.RunProgress`.
    """

    def __init__(
        self,
        configs: Sequence[RunConfig],
        plugins,
        *,
        on_progress: Send | None = None,
        on_start: Callable[[RunConfig], None] | None = None,
        on_result: Callable[[Run], None] | None = None,
    ) -> None:
        self.configs = list(configs)
        self.plugins = plugins
        self.on_progress = on_progress or _ignore
        self.on_start = on_start
        self.on_result = on_result
        self.runs: list[Run | None] = [None] * len(self.configs)
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
    ) -> Run:
        """Run ``index`` ended: its record (the worker's, or one made here for a run whose
        worker could not make it), handed to ``on_result``; the "run_end" event."""
        if outcome.machine is not None and outcome.peak_flops_per_second is not None:
            self.peaks.setdefault(outcome.machine, outcome.peak_flops_per_second)
        config = self.configs[index]
        run = outcome.record(self._maker(config, started_at, placement))
        self.runs[index] = run
        event = {"event": "run_end", "index": index, "total": len(self.configs)}
        self.on_progress({**event, "config": config, "status": run.status})
        if self.on_result is not None:
            self.on_result(run)
        return run

    def interrupted(
        self, index: int, interruption: KeyboardInterrupt, *, started_at: str, placement: Placement
    ) -> None:
        """Run ``index`` was stopped by Ctrl-C or SIGTERM: an "interrupted" record."""
        name = interruption.args[0] if interruption.args else "SIGINT"
        run = self._maker(self.configs[index], started_at, placement)(
            status=INTERRUPTED, error=f"interrupted by {name}"
        )
        if self.on_result is not None:
            self.on_result(run)

    def _maker(self, config: RunConfig, started_at: str, placement: Placement):
        architecture = self.plugins.architectures.get(config.architecture)

        def make(*, status: str, error: str) -> Run:
            return run_record(
                config, architecture, placement, status=status, error=error, started_at=started_at
            )

        return make

    def results(self) -> list[Run]:
        """The records of the runs that ended, in plan order."""
        return [run for run in self.runs if run is not None]
