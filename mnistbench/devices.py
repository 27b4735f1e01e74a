"""Which devices a run's backend sees, which one it trained on, and its peak accelerator memory.

Asked in the run's worker, of the backend Keras already imported there; the driver never
imports a backend. A run records three ``runs.csv`` columns (:func:`device_columns`):

- ``device``: the device its model's weights lived on, ``cpu`` or ``<kind>:<index> <name>``
  (``gpu:0 NVIDIA H200``);
- ``devices``: a JSON list of what the backend sees, accelerators first, one
  ``{"kind": "gpu", "name": "NVIDIA H200", "memory_mb": 143771.0}`` each (``memory_mb`` is
  null where the backend does not say; the CPU entry is named by the CPU model and
  holds the machine's physical memory);
- ``peak_accelerator_memory_mb``: the peak memory the backend allocated on that
  accelerator during the run (TensorFlow's memory info, JAX's memory stats,
  ``torch.cuda.max_memory_allocated``); empty on a CPU.

Each backend has its own function taking the backend's module, so tests hand in a fake
one to exercise the GPU branches on a machine without a GPU. When the sweep ends,
:func:`record_devices` lists in ``environment.json`` what the workers reported, per node
and backend.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mnistbench.environment import cpu_model, read_environment, write_environment
from mnistbench.record import Run

log = logging.getLogger("mnistbench")

#: The ``environment.json`` entry of the devices the workers reported.
DEVICES_ENTRY = "devices"
CPU = "cpu"
GPU = "gpu"
_MB = 1024 * 1024


@dataclass(frozen=True)
class Device:
    """One device a backend sees: its ``kind`` (``cpu``, ``gpu``, ``tpu``), its name, and its
    memory in MB where known (None otherwise)."""

    kind: str
    name: str
    memory_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Placement:
    """Where the model's weights live: a device ``kind`` and its index among that kind."""

    kind: str
    index: int = 0


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value / _MB, 1)


def host_cpu() -> Device:
    """The machine's CPU as a device: its model name, and the physical memory in MB."""
    try:
        memory = _mb(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # no sysconf names here (macOS, Windows)
        memory = None
    return Device(CPU, cpu_model(), memory)


# --- per backend ------------------------------------------------------------------------


def tensorflow_devices(tf: ModuleType | None = None) -> list[Device]:
    """The physical devices TensorFlow sees (``tf.config.list_physical_devices``), named by
    ``get_device_details``; accelerators first, then the CPU. TensorFlow tells no GPU's total
    memory, so theirs is None."""
    if tf is None:
        import tensorflow as tf
    accelerators = []
    for physical in tf.config.list_physical_devices():
        kind = physical.device_type.lower()
        if kind == CPU:
            continue
        details = tf.config.experimental.get_device_details(physical) or {}
        accelerators.append(Device(kind, str(details.get("device_name") or physical.name)))
    return [*accelerators, host_cpu()]


def jax_devices(jax: ModuleType | None = None) -> list[Device]:
    """The devices of JAX's default backend (``jax.devices()``), with the memory its allocator
    may use (``memory_stats()["bytes_limit"]``) where it reports one; then the CPU."""
    if jax is None:
        import jax
    accelerators = []
    for device in jax.devices():
        if device.platform == CPU:
            continue
        stats = device.memory_stats() or {}
        memory = _mb(stats.get("bytes_limit"))
        accelerators.append(Device(device.platform, device.device_kind, memory))
    return [*accelerators, host_cpu()]


def torch_devices(torch: ModuleType | None = None) -> list[Device]:
    """The CUDA devices torch sees (``torch.cuda.device_count``, ``get_device_name``,
    ``get_device_properties(i).total_memory``); then the CPU."""
    if torch is None:
        import torch
    accelerators = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            memory = torch.cuda.get_device_properties(index).total_memory
            accelerators.append(Device(GPU, torch.cuda.get_device_name(index), _mb(memory)))
    return [*accelerators, host_cpu()]


_TF_DEVICE = re.compile(r"device:([A-Za-z_]+):(\d+)")


def placement_of(backend: str, value: Any) -> Placement:
    """The device a backend tensor lives on: ``value`` is a Keras variable's ``.value`` (a
    ``tf.Variable``, a ``jax.Array``, a ``torch`` tensor)."""
    if backend == "tensorflow":
        match = _TF_DEVICE.search(str(value.device))
        return Placement(match.group(1).lower(), int(match.group(2))) if match else Placement(CPU)
    if backend == "jax":
        device = sorted(value.devices(), key=lambda d: d.id)[0]
        return Placement(device.platform, int(device.id))
    if backend == "torch":
        kind = value.device.type
        return Placement(GPU if kind == "cuda" else kind, value.device.index or 0)
    return Placement(CPU)


def device_name(placement: Placement, devices: list[Device]) -> str:
    """``cpu``, or ``<kind>:<index> <name>`` with the name of the device of that kind and index
    among ``devices`` (``gpu:0 NVIDIA H200``); ``gpu:3`` when it is not among them."""
    if placement.kind == CPU:
        return CPU
    same_kind = [device for device in devices if device.kind == placement.kind]
    where = f"{placement.kind}:{placement.index}"
    if placement.index < len(same_kind):
        return f"{where} {same_kind[placement.index].name}"
    return where


def _tensorflow_peak(placement: Placement, tf: ModuleType | None = None) -> float | None:
    if tf is None:
        import tensorflow as tf
    info = tf.config.experimental.get_memory_info(f"GPU:{placement.index}")
    return _mb(info["peak"])


def _jax_peak(placement: Placement, jax: ModuleType | None = None) -> float | None:
    if jax is None:
        import jax
    device = next(d for d in jax.devices() if int(d.id) == placement.index)
    stats = device.memory_stats() or {}
    return _mb(stats.get("peak_bytes_in_use"))


def _torch_peak(placement: Placement, torch: ModuleType | None = None) -> float | None:
    if torch is None:
        import torch
    return _mb(torch.cuda.max_memory_allocated(placement.index))


_LISTERS = {"tensorflow": tensorflow_devices, "jax": jax_devices, "torch": torch_devices}
_PEAKS = {"tensorflow": _tensorflow_peak, "jax": _jax_peak, "torch": _torch_peak}


def backend_devices(backend: str, module: ModuleType | None = None) -> list[Device]:
    """What ``backend`` sees, asked of ``module`` (the backend's own module, imported when
    None); just the CPU for a backend mnistbench does not know (``numpy``)."""
    lister = _LISTERS.get(backend)
    return lister(module) if lister else [host_cpu()]


def peak_accelerator_memory_mb(
    backend: str, placement: Placement, module: ModuleType | None = None
) -> float | None:
    """The peak memory, in MB, ``backend`` allocated on the accelerator at ``placement`` in
    this process (None on a CPU, or where the backend does not say)."""
    if placement.kind == CPU or backend not in _PEAKS:
        return None
    if backend == "tensorflow" and placement.kind != GPU:
        return None  # TensorFlow's memory info is for GPUs
    return _PEAKS[backend](placement, module)


def reset_peak_accelerator_memory(backend: str, module: ModuleType | None = None) -> None:
    """Start the peak over, where the backend can (TensorFlow, torch), so it is the run's own
    and not an earlier run's in the same process. JAX keeps a process-wide peak: with
    ``--isolation process`` (the default) every run has its own process anyway."""
    try:
        if backend == "tensorflow":
            tf = module
            if tf is None:
                import tensorflow as tf
            for index, _ in enumerate(tf.config.list_physical_devices("GPU")):
                tf.config.experimental.reset_memory_stats(f"GPU:{index}")
        elif backend == "torch":
            torch = module
            if torch is None:
                import torch
            if torch.cuda.is_available():
                for index in range(torch.cuda.device_count()):
                    torch.cuda.reset_peak_memory_stats(index)
    except Exception as error:  # the peak is a bonus; the run goes on without a reset
        log.warning(f"could not reset the peak accelerator memory: {type(error).__name__}: {error}")


def device_columns(
    backend: str, weight: Any | None, module: ModuleType | None = None
) -> dict[str, Any]:
    """The ``device``, ``devices`` and ``peak_accelerator_memory_mb`` columns of a run.

    :param weight: the ``.value`` of one of the trained model's variables, which says where
        it trained; None (a model without weights) takes the backend's first device.
    :param module: the backend's module (imported when None); tests pass a fake.

    A backend that cannot answer leaves the columns empty, with a warning: the run's
    other figures stand without them.
    """
    try:
        devices = backend_devices(backend, module)
        if weight is not None:
            placement = placement_of(backend, weight)
        else:
            placement = Placement(devices[0].kind)
        return {
            "device": device_name(placement, devices),
            "devices": [device.to_dict() for device in devices],
            "peak_accelerator_memory_mb": peak_accelerator_memory_mb(backend, placement, module),
        }
    except Exception as error:
        log.warning(f"could not list the devices of {backend}: {type(error).__name__}: {error}")
        return {"device": None, "devices": None, "peak_accelerator_memory_mb": None}


# --- what the workers reported ----------------------------------------------------------


def reported_devices(runs: Sequence[Run]) -> dict[str, dict[str, list[dict]]]:
    """``{node: {backend: devices}}`` from the runs that recorded their devices: what each
    node's workers saw, per backend (the last run's list, runs in file order)."""
    reported: dict[str, dict[str, list[dict]]] = {}
    for run in runs:
        if run.devices and run.backend:
            reported.setdefault(run.node, {})[run.backend] = list(run.devices)
    return reported


def record_devices(output_dir: Path, runs: Sequence[Run]) -> dict | None:
    """Set the ``devices`` entry of ``output_dir``'s ``environment.json`` to what the runs
    reported (:func:`reported_devices`) and return the new environment; None (and nothing
    written) when there is no ``environment.json`` or no run reported devices."""
    environment = read_environment(output_dir)
    reported = reported_devices(runs)
    if not environment or not reported:
        return None
    environment = {**environment, DEVICES_ENTRY: reported}
    write_environment(output_dir, environment)
    return environment
