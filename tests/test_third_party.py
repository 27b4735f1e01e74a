"""A third-party plugin, installed as a distribution, is discovered, listed, run, benchmarked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import install_as_distribution

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnistbench-logreg"


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    """A sys.path entry holding the README's example plugin as an installed distribution."""
    return install_as_distribution(
        tmp_path_factory.mktemp("site"),
        EXAMPLE / "mnistbench_logreg.py",
        "mnistbench-logreg",
        {"logreg": "mnistbench_logreg"},
    )


def run(args: list[str], site: Path) -> subprocess.CompletedProcess:
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": pythonpath},
        timeout=600,
    )


def test_third_party_plugin_is_listed_with_its_distribution(site_dir):
    result = run(["-m", "mnistbench.cli", "plugins"], site_dir)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if " logreg " in line)
    assert "mnistbench-logreg" in line and "0.1.0" in line and "7,850" in line


def test_third_party_plugin_runs_by_name(site_dir, tmp_path, mnist_npz):
    output = tmp_path / "out"
    result = run(
        [
            "-m",
            "mnistbench.cli",
            "run",
            "logreg",
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
        ],
        site_dir,
    )
    assert result.returncode == 0, result.stderr
    runs = pd.read_csv(output / "runs.csv")
    assert list(runs["architecture"]) == ["logreg"]
    row = runs.iloc[0]
    assert row["status"] == "ok"
    assert row["plugin"] == "logreg" and row["plugin_version"] == "0.1.0"
    assert row["params"] == 784 * 10 + 10
    assert row["test_accuracy"] > 0.5


def test_benchmark_suite_covers_the_third_party_plugin(site_dir, mnist_npz):
    result = run(
        [
            "-m",
            "pytest",
            str(ROOT / "benchmarks"),
            "--benchmark-disable",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "logreg",
        ],
        site_dir,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "2 passed" in result.stdout
