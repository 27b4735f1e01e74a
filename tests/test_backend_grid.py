"""One sweep across Keras backends, end to end through the command line.

Runs on JAX or PyTorch stay in worker processes (the CLI's default isolation): in a
process that imported TensorFlow a JAX run is many times slower.
"""

from __future__ import annotations

import csv
import importlib.util

import pytest
from click.testing import CliRunner

from mnistbench import record
from mnistbench.cli import cli

BACKENDS = ["tensorflow", "jax"] + (["torch"] if importlib.util.find_spec("torch") else [])


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_backend_grid_runs_the_architecture_on_each_backend(tmp_path, mnist_npz):
    if "torch" not in BACKENDS:
        print("torch is not installed: the grid covers tensorflow and jax only")
    output = tmp_path / "out"
    # Enough images that each backend's run learns well beyond chance.
    options = [
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--test-limit",
        "100",
        "--order",
        "grouped",
    ]
    args = ["run", "dnn", "--backend", ",".join(BACKENDS), *options, "--output", str(output)]
    result = CliRunner().invoke(cli, [*args, "--data", str(mnist_npz)])
    assert result.exit_code == 0, result.output
    runs = record.read(output)
    assert [run.run_id for run in runs] == [f"dnn-{backend}-r0" for backend in BACKENDS]
    assert [run.backend for run in runs] == BACKENDS
    assert all(run.backend_version for run in runs)
    assert {run.status for run in runs} == {"ok"}
    assert all(run.test_accuracy > 0.5 for run in runs)
    assert all(run.isolation == "process" for run in runs)
    with open(output / "comparison.csv", newline="") as handle:
        assert sorted(row["backend"] for row in csv.DictReader(handle)) == sorted(BACKENDS)


def test_backend_that_is_not_known_is_refused_before_any_run(tmp_path):
    result = CliRunner().invoke(
        cli, ["run", "dnn", "--backend", "mxnet", "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: unknown backend 'mxnet' (known: tensorflow, jax, torch)"
    assert not (tmp_path / "o").exists()
