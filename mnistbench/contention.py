"""What the run's process got from the machine during a phase: CPU time, involuntary
context switches, the time its threads waited for a CPU, and machine-wide CPU pressure
and steal time.

The speed probe (:mod:`mnistbench.probe`) is taken only before and after a run; these
counters cover the phase itself, so load that came and went during ``fit`` still shows:
CPU time that stays put while wall time grows, more involuntary switches, more pressure.
Each counter is None where the system does not offer it (no ``resource`` module, no
Linux PSI, no ``/proc/stat``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PRESSURE = Path("/proc/pressure/cpu")
STAT = Path("/proc/stat")
TASKS = Path("/proc/self/task")


@dataclass(frozen=True)
class Counters:
    """Cumulative counters at one instant; subtract two to get a phase's share."""

    cpu_seconds: float | None  # user + system time of this process, all threads
    involuntary_switches: int | None
    pressure_seconds: float | None  # PSI "some": time at least one task waited for a CPU
    steal_seconds: float | None  # summed over CPUs
    run_queue_seconds: float | None = None  # this process's threads, runnable but waiting

    def __sub__(self, start: Counters) -> Counters:
        def delta(end, begin):
            return None if end is None or begin is None else end - begin

        return Counters(
            *(delta(getattr(self, f), getattr(start, f)) for f in self.__dataclass_fields__)
        )


def _pressure_seconds() -> float | None:
    try:
        for line in PRESSURE.read_text().splitlines():
            if line.startswith("some "):
                total = dict(item.split("=") for item in line.split()[1:])["total"]
                return int(total) / 1e6  # microseconds
    except (OSError, KeyError, ValueError):
        pass
    return None


def _steal_seconds() -> float | None:
    try:
        fields = STAT.read_text().splitlines()[0].split()
        # "cpu user nice system idle iowait irq softirq steal ...", in clock ticks
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _run_queue_seconds() -> float | None:
    """The time this process's threads have waited on a run queue (schedstat's second
    field, in ns), summed over its live threads."""
    try:
        tasks = list(TASKS.iterdir())
    except OSError:
        return None
    total, seen = 0, False
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
            seen = True
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            continue
    return total / 1e9 if seen else None


def now() -> Counters:
    """The counters at this instant."""
    try:
        import resource
    except ImportError:  # Windows
        cpu, switches = None, None
    else:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu, switches = usage.ru_utime + usage.ru_stime, usage.ru_nivcsw
    return Counters(cpu, switches, _pressure_seconds(), _steal_seconds(), _run_queue_seconds())
