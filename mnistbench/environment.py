"""What the numbers were measured on: ``environment.json``."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from mnistbench import layout
from mnistbench.atomic import atomic_writer
from mnistbench.backends import backend_version

#: The entry of ``environment.json`` that records the sweep file of ``run --config``.
SWEEP_FILE = "sweep_file"
PACKAGES = ("mnistbench", "keras", "tensorflow", "jax", "torch", "numpy", "pandas", "pluggy")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name where the platform tells it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> int | None:
    """The machine's physical memory in whole GiB, where the platform tells it."""
    try:
        return round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30)
    except (ValueError, OSError, AttributeError):
        return None


def accelerator() -> str:
    """The machine's NVIDIA GPUs as the driver names them (``2 x NVIDIA H200``), read from
    ``/proc`` so that describing a machine never imports a backend; "" for none."""
    names = []
    for information in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            for line in information.read_text().splitlines():
                if line.startswith("Model:"):
                    names.append(line.split(":", 1)[1].strip())
        except OSError:
            continue
    if not names:
        return ""
    kinds = sorted(set(names))
    return ", ".join(
        f"{names.count(kind)} x {kind}" if names.count(kind) > 1 else kind for kind in kinds
    )


#: The variable that names this machine in histories, in place of its description: the
#: same label on two runners puts them on one line of every history series.
MACHINE_VARIABLE = "MNISTBENCH_MACHINE"


def describe_machine(environ: Mapping[str, str] | None = None) -> dict:
    """What the machine a sweep ran on is, for ``environment.json``'s ``machine`` entry:
    its :data:`MACHINE_VARIABLE` label (empty when unset), CPU model, cores, memory, OS and
    accelerator. Only what stays the same from one sweep to the next on one machine:
    no host name (CI runners get a new one per job), no kernel release."""
    environ = os.environ if environ is None else environ
    return {
        "label": environ.get(MACHINE_VARIABLE, "").strip(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "os": f"{platform.system()} {platform.machine()}".strip(),
        "accelerator": accelerator(),
    }


def machine_identity(environment: Mapping) -> str:
    """The machine a sweep ran on, as history keeps series apart by it: its label when
    :data:`MACHINE_VARIABLE` was set, else its description (``Intel Xeon ... , 2 cores,
    24 GB, Linux x86_64``, then the accelerator). Sweeps recorded before
    ``environment.json`` described the machine are described from what they did record
    (CPU, cores, OS: no memory), so they form series of their own until labelled."""
    machine = environment.get("machine") or {}
    variables = environment.get("environment_variables") or {}
    label = (machine.get("label") or variables.get(MACHINE_VARIABLE) or "").strip()
    if label:
        return label
    if not machine:
        info = environment.get("machine_info") or {}
        machine = {
            "cpu": environment.get("cpu"),
            "cores": environment.get("cpu_count"),
            "os": " ".join(filter(None, (info.get("system"), info.get("machine")))),
        }
    cores, memory = machine.get("cores"), machine.get("memory_gb")
    parts = [
        machine.get("cpu") or "unknown CPU",
        f"{cores} cores" if cores else "",
        f"{memory} GB" if memory else "",
        machine.get("os") or "",
        machine.get("accelerator") or "",
    ]
    return ", ".join(part for part in parts if part)


def git_commit(cwd: Path | None = None) -> str | None:
    """HEAD of the git repository the command runs in, if any."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


#: The prefix of mnistbench's own environment variables (``MNISTBENCH_DATA``, ...).
VARIABLE_PREFIX = "MNISTBENCH_"
#: Other variables that change what a sweep measures, recorded with mnistbench's own.
VARIABLES = ("KERAS_BACKEND",)


def recorded_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``MNISTBENCH_*`` and ``KERAS_BACKEND`` variables set in ``environ`` (default:
    this process's environment), sorted by name: what a sweep's command needs to be
    repeated as it ran. Nothing else of the environment is ever recorded."""
    environ = os.environ if environ is None else environ
    return {
        name: environ[name]
        for name in sorted(environ)
        if name.startswith(VARIABLE_PREFIX) or name in VARIABLES
    }


@cache
def _benchmark_machine_info() -> dict:
    """pytest-benchmark's description of this machine, taken once per process: its CPU
    part runs CPUID in a subprocess (about 0.2 s), and the machine does not change while a
    process runs (a warm worker or a test process makes many sweeps)."""
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

    return pytest_benchmark_generate_machine_info()


def describe_environment(
    *,
    backend: str,
    data: dict,
    plugins,
    argv: list[str],
    backends: list[str] = (),
    executor: str = "local",
    sweep_id: str = "",
) -> dict:
    """Versions, hardware, data source, plugins and command line of a sweep, as plain values.

    Versions come from package metadata, so describing the environment never imports a
    backend. ``machine_info`` and ``commit_info`` are pytest-benchmark's own description
    of the machine and of the git repository the command runs in, taken now, so that
    ``pytest-benchmark.json`` written later (``mnistbench report``) still says where and
    at which commit the runs were measured. ``sweep_id`` is the manifest's: it names
    the sweep in the results database. ``environment_variables`` holds the
    :func:`recorded_variables` set when the sweep started, so the command can be repeated.
    """
    from pytest_benchmark.utils import get_commit_info

    return {
        "sweep_id": sweep_id,
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "plugins": {
            arch.name: {
                "plugin": arch.plugin,
                "distribution": arch.distribution,
                "version": arch.version,
            }
            for arch in plugins.architectures.values()
        },
        "backend": backend,
        "backends": {name: backend_version(name) for name in backends},
        "executor": executor,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "machine": describe_machine(),
        "data": data,
        # The command as a user types it, however it was started (the console script,
        # python -m mnistbench.cli, a test).
        "command": shlex.join(["mnistbench", *argv[1:]]) if argv else "",
        # Only MNISTBENCH_* and KERAS_BACKEND: the rest of the environment stays private.
        "environment_variables": recorded_variables(),
        "git_commit": git_commit(),
        "executable": sys.executable,
        "machine_info": copy.deepcopy(_benchmark_machine_info()),
        "commit_info": get_commit_info(),
    }


def write_environment(output_dir: Path, environment: dict) -> Path:
    """Write ``environment.json`` into ``output_dir``.

    The ``sweep_file`` entry already in the directory's file is kept when
    ``environment`` has none: it is recorded once, when a sweep planned from a sweep
    file starts (:func:`record_sweep_file`), and the sweep rewrites the file then and
    on each resume.
    """
    saved = read_environment(output_dir).get(SWEEP_FILE)
    if saved is not None and SWEEP_FILE not in environment:
        environment = {**environment, SWEEP_FILE: saved}
    return _write(output_dir, environment)


def _write(output_dir: Path, environment: dict) -> Path:
    path = layout.ENVIRONMENT_JSON.of(output_dir)
    with atomic_writer(path, "w") as handle:
        json.dump(environment, handle, indent=2)
        handle.write("\n")
    return path


def record_sweep_file(output_dir: Path, record: dict | None) -> None:
    """Set the ``sweep_file`` entry of ``output_dir``'s ``environment.json``: the sweep
    file the sweep was planned from (``{"path": ..., "content": ...}``); None drops an
    earlier entry (a directory reused with ``--force`` for a sweep without a file)."""
    environment = read_environment(output_dir)
    if record is None:
        if SWEEP_FILE not in environment:
            return
        del environment[SWEEP_FILE]
    else:
        environment[SWEEP_FILE] = record
    _write(output_dir, environment)


def read_environment(output_dir: Path) -> dict:
    """The ``environment.json`` of an output directory, or {} if it is missing or unreadable."""
    try:
        return json.loads(layout.ENVIRONMENT_JSON.of(output_dir).read_text())
    except (OSError, ValueError):
        return {}
