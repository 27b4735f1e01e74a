"""Devices: what each run's backend saw, the device it trained on and its peak accelerator
memory, in runs.csv and environment.json. The CPU case for real; each backend's GPU branch
with a fake backend module."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from helpers import Tiny, quick

from mnistbench import record
from mnistbench.devices import (
    DEVICES_ENTRY,
    Device,
    Placement,
    backend_devices,
    device_columns,
    host_cpu,
    jax_devices,
    placement_of,
    record_devices,
    reported_devices,
    reset_peak_accelerator_memory,
)
from mnistbench.environment import cpu_model, read_environment, write_environment
from mnistbench.executors import local
from mnistbench.plugins import load_plugins

MB = 1024 * 1024
H200_BYTES = 143_771 * MB


def cpu_entry() -> dict:
    return host_cpu().to_dict()


# --- fake backends: the GPU branches ----------------------------------------------------------


class FakeTensorFlow:
    """tf with one CPU and two GPUs; the peak of GPU:1 is 1536 MB."""

    def __init__(self) -> None:
        self.resets: list[str] = []
        devices = [
            SimpleNamespace(name="/physical_device:CPU:0", device_type="CPU"),
            SimpleNamespace(name="/physical_device:GPU:0", device_type="GPU"),
            SimpleNamespace(name="/physical_device:GPU:1", device_type="GPU"),
        ]
        names = {"GPU:0": "NVIDIA H200", "GPU:1": "NVIDIA A100-SXM4-80GB"}
        self.config = SimpleNamespace(
            list_physical_devices=lambda kind=None: [
                d for d in devices if kind is None or d.device_type == kind
            ],
            experimental=SimpleNamespace(
                get_device_details=lambda d: (
                    {} if d.device_type == "CPU" else {"device_name": names[d.name[-5:]]}
                ),
                get_memory_info=lambda name: {"current": 0, "peak": 1536 * MB * int(name[-1])},
                reset_memory_stats=self.resets.append,
            ),
        )


def tf_variable(device: str) -> SimpleNamespace:
    return SimpleNamespace(device=f"/job:localhost/replica:0/task:0/device:{device}")


def test_tensorflow_on_a_gpu():
    columns = device_columns("tensorflow", tf_variable("GPU:1"), FakeTensorFlow())
    assert columns["device"] == "gpu:1 NVIDIA A100-SXM4-80GB"
    assert columns["devices"] == [
        {"kind": "gpu", "name": "NVIDIA H200", "memory_mb": None},
        {"kind": "gpu", "name": "NVIDIA A100-SXM4-80GB", "memory_mb": None},
        cpu_entry(),
    ]
    assert columns["peak_accelerator_memory_mb"] == 1536.0


def test_tensorflow_on_the_cpu_of_a_gpu_machine_has_no_accelerator_peak():
    columns = device_columns("tensorflow", tf_variable("CPU:0"), FakeTensorFlow())
    assert columns["device"] == "cpu"
    assert columns["peak_accelerator_memory_mb"] is None


def test_tensorflow_resets_every_gpus_peak_when_a_run_starts():
    tf = FakeTensorFlow()
    reset_peak_accelerator_memory("tensorflow", tf)
    assert tf.resets == ["GPU:0", "GPU:1"]


class FakeJaxDevice:
    def __init__(self, id: int, platform: str, kind: str, stats: dict | None) -> None:
        self.id, self.platform, self.device_kind, self._stats = id, platform, kind, stats

    def memory_stats(self) -> dict | None:
        return self._stats


def fake_jax(*devices: FakeJaxDevice) -> SimpleNamespace:
    return SimpleNamespace(devices=lambda: list(devices))


GPUS = (
    FakeJaxDevice(0, "gpu", "NVIDIA H200", {"bytes_limit": H200_BYTES, "peak_bytes_in_use": 0}),
    FakeJaxDevice(1, "gpu", "NVIDIA H200", {"bytes_limit": H200_BYTES, "peak_bytes_in_use": MB}),
)


def test_jax_on_a_gpu():
    weight = SimpleNamespace(devices=lambda: {GPUS[1]})
    columns = device_columns("jax", weight, fake_jax(*GPUS))
    assert columns["device"] == "gpu:1 NVIDIA H200"
    assert columns["devices"] == [
        {"kind": "gpu", "name": "NVIDIA H200", "memory_mb": 143771.0},
        {"kind": "gpu", "name": "NVIDIA H200", "memory_mb": 143771.0},
        cpu_entry(),
    ]
    assert columns["peak_accelerator_memory_mb"] == 1.0


def test_jax_on_a_gpu_without_memory_stats_leaves_memory_unknown():
    gpu = FakeJaxDevice(0, "gpu", "NVIDIA H200", None)
    columns = device_columns("jax", SimpleNamespace(devices=lambda: {gpu}), fake_jax(gpu))
    assert columns["devices"][0]["memory_mb"] is None
    assert columns["peak_accelerator_memory_mb"] is None


class FakeCuda:
    def __init__(self, count: int) -> None:
        self.count, self.resets = count, []

    def is_available(self) -> bool:
        return self.count > 0

    def device_count(self) -> int:
        return self.count

    def get_device_name(self, index: int) -> str:
        return f"NVIDIA H200 #{index}"

    def get_device_properties(self, index: int) -> SimpleNamespace:
        return SimpleNamespace(total_memory=H200_BYTES)

    def max_memory_allocated(self, index: int) -> int:
        return (index + 1) * 512 * MB

    def reset_peak_memory_stats(self, index: int) -> None:
        self.resets.append(index)


def torch_tensor(kind: str, index: int | None) -> SimpleNamespace:
    return SimpleNamespace(device=SimpleNamespace(type=kind, index=index))


def test_torch_on_a_gpu():
    torch = SimpleNamespace(cuda=FakeCuda(2))
    columns = device_columns("torch", torch_tensor("cuda", 1), torch)
    assert columns["device"] == "gpu:1 NVIDIA H200 #1"
    assert columns["devices"] == [
        {"kind": "gpu", "name": "NVIDIA H200 #0", "memory_mb": 143771.0},
        {"kind": "gpu", "name": "NVIDIA H200 #1", "memory_mb": 143771.0},
        cpu_entry(),
    ]
    assert columns["peak_accelerator_memory_mb"] == 1024.0


def test_torch_resets_every_gpus_peak_when_a_run_starts():
    torch = SimpleNamespace(cuda=FakeCuda(2))
    reset_peak_accelerator_memory("torch", torch)
    assert torch.cuda.resets == [0, 1]


def test_torch_without_cuda_sees_the_cpu_only():
    columns = device_columns("torch", torch_tensor("cpu", None), SimpleNamespace(cuda=FakeCuda(0)))
    assert columns == {
        "device": "cpu",
        "devices": [cpu_entry()],
        "peak_accelerator_memory_mb": None,
    }


def test_a_model_without_weights_takes_the_backends_first_device():
    columns = device_columns("torch", None, SimpleNamespace(cuda=FakeCuda(1)))
    assert columns["device"] == "gpu:0 NVIDIA H200 #0"


def test_a_backend_that_cannot_answer_leaves_the_columns_empty(caplog):
    broken = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: 1 / 0))
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        columns = device_columns("torch", None, broken)
    assert columns == {"device": None, "devices": None, "peak_accelerator_memory_mb": None}
    assert caplog.messages == [
        "could not list the devices of torch: ZeroDivisionError: division by zero"
    ]


# --- the CPU case, for real -------------------------------------------------------------------


def test_the_cpu_is_named_by_its_model_with_the_machines_memory():
    cpu = host_cpu()
    assert (cpu.kind, cpu.name) == ("cpu", cpu_model())
    assert cpu.memory_mb > 0


def test_real_jax_on_this_machine_sees_its_cpu():
    import jax.numpy as jnp

    assert jax_devices() == [host_cpu()]
    assert placement_of("jax", jnp.zeros(3)) == Placement("cpu", 0)


def test_real_tensorflow_on_this_machine_sees_its_cpu():
    import tensorflow as tf

    assert backend_devices("tensorflow") == [host_cpu()]
    assert placement_of("tensorflow", tf.Variable([1.0])) == Placement("cpu", 0)


@pytest.fixture(scope="module")
def device_sweep(tmp_path_factory, sweep_in_process):
    """One tiny run in this process (no reports: no test here reads them)."""
    output = tmp_path_factory.mktemp("devices")
    plugins = load_plugins(builtins=[local], extra=[Tiny()], entry_points=False)
    return sweep_in_process(output, [quick()], plugins)


def test_a_run_records_the_device_it_trained_on_and_what_its_backend_saw(device_sweep):
    (run,) = record.read(device_sweep.output_dir)
    assert run.device == "cpu"
    assert run.devices == (cpu_entry(),)
    assert run.peak_accelerator_memory_mb is None  # no accelerator: not measured


def test_environment_json_lists_what_the_workers_reported(device_sweep):
    (run,) = record.read(device_sweep.output_dir)
    environment = read_environment(device_sweep.output_dir)
    assert environment[DEVICES_ENTRY] == {run.node: {"tensorflow": [cpu_entry()]}}
    assert environment["sweep_id"]  # the rest of the file is kept


# --- what the workers reported, per node and backend ----------------------------------------


GPU = Device("gpu", "NVIDIA H200", 143771.0).to_dict()


def reported_runs() -> list[record.Run]:
    def run(node: str, backend: str, devices) -> record.Run:
        return record.new_run(
            run_id=f"tiny-{backend}-r0-{node}",
            architecture="tiny",
            status="ok" if devices else "failed",
            node=node,
            backend=backend,
            devices=devices,
        )

    return [
        run("a", "jax", [GPU, cpu_entry()]),
        run("a", "tensorflow", [cpu_entry()]),
        run("b", "jax", [cpu_entry()]),
        run("b", "torch", None),  # failed before it knew
    ]


def test_the_devices_are_listed_per_node_and_backend():
    assert reported_devices(reported_runs()) == {
        "a": {"jax": [GPU, cpu_entry()], "tensorflow": [cpu_entry()]},
        "b": {"jax": [cpu_entry()]},
    }


def test_the_last_run_of_a_node_and_backend_tells_its_devices():
    runs = reported_runs()
    runs.append(runs[0].replace(run_id="again", devices=[cpu_entry()]))
    assert reported_devices(runs)["a"]["jax"] == [cpu_entry()]


def test_record_devices_adds_the_entry_and_keeps_the_others(tmp_path):
    write_environment(tmp_path, {"python": "3.11", DEVICES_ENTRY: {"old": {}}})
    assert record_devices(tmp_path, reported_runs()) == read_environment(tmp_path)
    environment = read_environment(tmp_path)
    assert environment["python"] == "3.11"
    assert environment[DEVICES_ENTRY] == reported_devices(reported_runs())


def test_record_devices_writes_nothing_without_environment_json(tmp_path):
    assert record_devices(tmp_path, reported_runs()) is None
    assert list(tmp_path.iterdir()) == []


def test_record_devices_writes_nothing_when_no_run_reported_devices(tmp_path):
    write_environment(tmp_path, {"python": "3.11"})
    before = (tmp_path / "environment.json").read_text()
    assert record_devices(tmp_path, reported_runs()[3:]) is None
    assert (tmp_path / "environment.json").read_text() == before
