"""The pytest-benchmark suite (benchmarks/) collects every registered architecture, a
third-party plugin's too, and each benchmark runs once with timing disabled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnistbench-logreg"
BUILT_IN = ("cnn", "dnn", "rnn")
OVERHEAD = "benchmarks/test_overhead.py::test_harness_overhead_against_plain_keras"


def per_architecture(*architectures: str) -> set[str]:
    return {
        f"benchmarks/test_architectures.py::{test}[{architecture}]"
        for architecture in architectures
        for test in ("test_training_steps", "test_inference")
    }


@pytest.fixture(scope="module")
def suite(tmp_path_factory, install_distribution, mnist_npz) -> tuple[int, set[str], str]:
    """One run of the whole suite as `make test` would see it, timing disabled, with the
    README's example plugin installed: ``(exit code, ids of passed tests, output)``."""
    site = install_distribution(
        tmp_path_factory.mktemp("logreg-site"),
        EXAMPLE / "mnistbench_logreg.py",
        "mnistbench-logreg",
        {"logreg": "mnistbench_logreg"},
    )
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks",
            "--benchmark-disable",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": pythonpath},
        timeout=600,
    )
    passed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("PASSED ")}
    return result.returncode, passed, result.stdout[-3000:]


def test_every_benchmark_runs_once_and_passes_with_timing_disabled(suite):
    returncode, passed, output = suite
    assert returncode == 0, output
    # Training steps and inference per architecture, and the harness overhead's one round.
    assert passed == per_architecture(*BUILT_IN, "logreg") | {OVERHEAD}


def test_a_third_party_plugins_architecture_is_benchmarked_like_the_built_in_ones(suite):
    _, passed, output = suite
    assert per_architecture("logreg") <= passed, output
