"""One sweep across Keras backends, end to end through the CLI.

Runs on JAX or PyTorch stay in worker processes (the CLI's default isolation): in a
process that imported TensorFlow a JAX run is many times slower.
"""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

BACKENDS = ["tensorflow", "jax"] + (["torch"] if importlib.util.find_spec("torch") else [])


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_backend_grid_runs_the_architecture_on_each_backend(cli, tmp_path, mnist_npz):
    if "torch" not in BACKENDS:
        print("torch is not installed: the grid covers tensorflow and jax only")
    output = tmp_path / "out"
    result = cli(
        "run",
        "dnn",
        "--backend",
        ",".join(BACKENDS),
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--test-limit",
        "200",
        "--output",
        str(output),
        "--data",
        str(mnist_npz),
    )
    assert result.returncode == 0, result.stderr
    runs = pd.read_csv(output / "runs.csv")
    assert list(runs["run_id"]) == [f"dnn-{backend}-r0" for backend in BACKENDS]
    assert list(runs["backend"]) == BACKENDS
    assert runs["backend_version"].notna().all()
    assert set(runs["status"]) == {"ok"}
    assert (runs["test_accuracy"] > 0.5).all()
    comparison = pd.read_csv(output / "comparison.csv")
    assert sorted(comparison["backend"]) == sorted(BACKENDS)


def test_backend_that_is_not_known_is_refused_before_any_run(cli, tmp_path):
    result = cli("run", "dnn", "--backend", "mxnet", "--output", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: unknown backend 'mxnet' (known: tensorflow, jax, torch)"
    )
    assert not (tmp_path / "o").exists()
