"""The pytest-benchmark suite collects every architecture and runs once with timing disabled."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_suite_runs_once_per_architecture(mnist_npz):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "benchmarks"),
            "--benchmark-disable",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    # Training steps and inference for each of dnn, rnn, cnn, and the harness overhead.
    assert "7 passed" in result.stdout
