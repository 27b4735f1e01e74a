"""environment.json: what the numbers were measured on, recorded with every sweep."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re

import pytest

import mnistbench
from mnistbench.builtins import load_plugins
from mnistbench.environment import describe_environment, read_environment, write_environment


@pytest.fixture(scope="module")
def recorded(cli_sweep) -> dict:
    """The environment.json the shared CLI sweep wrote."""
    return json.loads((cli_sweep / "environment.json").read_text())


def test_a_sweep_records_its_backend_packages_and_plugins(recorded):
    assert recorded["backend"] == "tensorflow"
    assert recorded["backends"] == {"tensorflow": importlib.metadata.version("tensorflow")}
    assert recorded["packages"]["keras"] == importlib.metadata.version("keras")
    assert recorded["packages"]["mnistbench"] == mnistbench.__version__
    assert set(recorded["plugins"]) == {"dnn", "rnn", "cnn"}
    assert recorded["plugins"]["dnn"] == {
        "plugin": "dnn",
        "distribution": "mnistbench",
        "version": mnistbench.__version__,
    }


def test_a_sweep_records_the_machine_and_the_command(recorded, mnist_npz):
    assert recorded["python"] == platform.python_version()
    assert recorded["cpu_count"] >= 1 and recorded["cpu"]
    assert recorded["executor"] == "local"
    assert recorded["data"]["source"] == "path"
    assert recorded["command"].startswith("mnistbench run --all --epochs 2 ")


def test_a_sweep_records_pytest_benchmarks_machine_info(recorded):
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

    now = pytest_benchmark_generate_machine_info()
    stable = ("node", "machine", "system", "release", "python_version", "python_implementation")
    assert {key: recorded["machine_info"][key] for key in stable} == {
        key: now[key] for key in stable
    }


def test_a_sweep_records_pytest_benchmarks_commit_info_of_its_commit(recorded):
    commit = recorded["commit_info"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit["id"])
    assert commit["id"] == recorded["git_commit"]
    assert isinstance(commit["dirty"], bool)


def test_describe_environment_names_the_command_by_its_program(tiny_plugins):
    environment = describe_environment(
        backend="jax",
        data={"source": "path"},
        plugins=tiny_plugins,
        argv=["/usr/local/bin/mnistbench", "run", "dnn"],
        backends=["jax"],
        executor="ray",
    )
    assert (environment["command"], environment["backend"], environment["executor"]) == (
        "mnistbench run dnn",
        "jax",
        "ray",
    )
    assert environment["backends"] == {"jax": importlib.metadata.version("jax")}
    assert environment["plugins"] == {
        name: {"plugin": "Tiny", "distribution": "", "version": ""}
        for name in ("tiny", "broken", "nan")
    }


def test_describe_environment_lists_no_plugins_where_none_registers_an_architecture():
    environment = describe_environment(
        backend="tensorflow",
        data={"source": "path"},
        plugins=load_plugins(entry_points=False),
        argv=["mnistbench"],
    )
    assert environment["plugins"] == {}


def test_environment_json_round_trips(tmp_path):
    environment = {"backend": "tensorflow", "cpu_count": 2, "data": {"source": "path"}}
    path = write_environment(tmp_path, environment)
    assert path == tmp_path / "environment.json"
    assert read_environment(tmp_path) == environment


@pytest.mark.parametrize("content", [None, "{broken"])
def test_a_missing_or_unreadable_environment_is_empty(tmp_path, content):
    if content is not None:
        (tmp_path / "environment.json").write_text(content)
    assert read_environment(tmp_path) == {}


def test_the_machine_is_described_once_per_process_and_each_sweep_gets_its_own_copy(
    monkeypatch,
):
    import pytest_benchmark.plugin

    from mnistbench import environment as module

    calls = []

    def generate():
        calls.append(1)
        return {"cpu": {"brand_raw": "a CPU"}, "node": "here"}

    monkeypatch.setattr(pytest_benchmark.plugin, "pytest_benchmark_generate_machine_info", generate)
    module._benchmark_machine_info.cache_clear()
    try:
        described = [
            describe_environment(
                backend="tensorflow", data={}, plugins=load_plugins(entry_points=False), argv=[]
            )
            for _ in range(2)
        ]
    finally:
        module._benchmark_machine_info.cache_clear()
    assert len(calls) == 1
    described[0]["machine_info"]["cpu"]["brand_raw"] = "changed"
    assert described[1]["machine_info"] == {"cpu": {"brand_raw": "a CPU"}, "node": "here"}
