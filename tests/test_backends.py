"""Keras backends: checking they are installed, one per worker, threads within the budget,
their versions, and their start-up chatter kept off the terminal."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import types

import pytest

from mnistbench import backends
from mnistbench.backends import (
    THREAD_VARIABLES,
    apply_torch_threads,
    backend_version,
    check_backends,
    configured_backend,
    limit_threads,
    native_stderr_to,
    probe_modules,
    quiet_backend_logs,
    thread_limit_env,
)
from mnistbench.errors import ConfigError
from mnistbench.executors.local import call_in_worker


def installed(package: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(package) is None,
        reason=f"{package} is not installed: {backends.EXTRAS.get(package, package)}",
    )


@pytest.fixture
def no_thread_settings(monkeypatch):
    for name in (*THREAD_VARIABLES, "XLA_FLAGS"):
        monkeypatch.delenv(name, raising=False)


# --- check_backends ----------------------------------------------------------------------


def test_unknown_backend_is_refused_listing_the_known_ones():
    with pytest.raises(ConfigError) as error:
        check_backends(["tensorflow", "mxnet"])
    assert str(error.value) == "unknown backend 'mxnet' (known: tensorflow, jax, torch)"


def test_missing_backend_names_the_extra_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as error:
        check_backends(["jax"])
    assert str(error.value) == (
        "backend 'jax' is not installed; install it with: pip install 'mnistbench[jax]'"
    )


def test_missing_torch_hint_points_to_the_cpu_build_on_one_line(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as error:
        check_backends(["torch"])
    assert "pip install torch==2.13.0 for the CPU build" in str(error.value)
    assert "\n" not in str(error.value)


def test_checking_a_backend_and_reading_its_version_import_neither_it_nor_numpy():
    code = (
        "import sys; from mnistbench.backends import backend_version, check_backends; "
        "check_backends(['tensorflow']); backend_version('tensorflow'); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- the configured backend ----------------------------------------------------------------


def test_configured_backend_is_keras_backend_first(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert configured_backend() == "jax"


def test_configured_backend_is_then_keras_json(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert configured_backend() == "torch"


@pytest.mark.parametrize("content", [None, "{broken", "[]", "{}"])
def test_configured_backend_defaults_to_tensorflow(monkeypatch, tmp_path, content):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    if content is not None:
        (tmp_path / "keras.json").write_text(content)
    assert configured_backend() == "tensorflow"


# --- versions and start-up output ----------------------------------------------------------


def test_a_backends_version_is_its_installed_packages():
    assert backend_version("tensorflow") == importlib.metadata.version("tensorflow")


def test_a_backend_that_is_not_installed_has_an_empty_version():
    assert backend_version("mxnet") == ""


def test_tensorflows_native_logs_are_quieted_unless_the_user_chose_a_level(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_backend_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_backend_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_native_stderr_goes_to_the_file_meanwhile_and_comes_back_after(tmp_path, capfd):
    log_path = tmp_path / "native.log"
    log_path.write_text("earlier\n")
    with native_stderr_to(log_path):
        os.write(2, b"from C++\n")
    os.write(2, b"after\n")
    assert log_path.read_text() == "earlier\nfrom C++\n"
    assert capfd.readouterr().err == "after\n"


# --- thread limits -----------------------------------------------------------------------


def test_limit_threads_sets_each_pool_size_variable(no_thread_settings):
    limits = limit_threads(3)
    assert limits == {name: "3" for name in THREAD_VARIABLES}
    assert {name: os.environ[name] for name in THREAD_VARIABLES} == limits


def test_one_cpu_also_makes_xla_single_threaded_keeping_the_users_flags(
    no_thread_settings, monkeypatch
):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/hlo")
    limits = limit_threads(1)
    assert limits["XLA_FLAGS"] == "--xla_dump_to=/tmp/hlo --xla_cpu_multi_thread_eigen=false"


def test_a_users_own_xla_threading_flag_is_left_alone(no_thread_settings, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    assert "XLA_FLAGS" not in limit_threads(1)


def test_thread_limit_env_computes_without_setting(no_thread_settings):
    assert thread_limit_env(2, environ={})["OMP_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in os.environ


def test_a_run_needs_at_least_one_cpu():
    with pytest.raises(ConfigError, match="at least 1 CPU, got 0"):
        thread_limit_env(0)


def test_torch_threads_are_set_only_where_torch_is_imported(monkeypatch):
    calls = []
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert apply_torch_threads(2) is False
    fake = types.SimpleNamespace(set_num_threads=calls.append)
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert apply_torch_threads(2) is True
    assert calls == [2]


# --- one backend per worker --------------------------------------------------------------
# Keras 3 imports JAX at `import keras` whenever JAX is installed, whatever the backend;
# a run's worker must load its own backend package and no other.


def probe(tmp_path, backend: str):
    """``(backend packages the worker loaded, error)``."""
    return call_in_worker(
        probe_modules,
        (backend,),
        log_path=tmp_path / "probe.log",
        on_progress=lambda event: None,
    )


@installed("jax")
def test_a_jax_worker_imports_jax_and_not_tensorflow(tmp_path):
    assert probe(tmp_path, "jax") == (["jax"], None)


@installed("tensorflow")
def test_a_tensorflow_worker_imports_neither_jax_nor_torch(tmp_path):
    assert probe(tmp_path, "tensorflow") == (["tensorflow"], None)


@installed("torch")
def test_a_torch_worker_imports_torch_alone(tmp_path):
    assert probe(tmp_path, "torch") == (["torch"], None)
