"""A third-party plugin, installed as a distribution, is discovered, listed and run.

That the benchmark suite covers it too is in tests/test_benchmarks.py, which runs the
suite once with this plugin installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnistbench-logreg"


@pytest.fixture(scope="module")
def site_env(tmp_path_factory, install_distribution) -> dict[str, str]:
    """The environment of a command that sees the README's example plugin installed."""
    site = install_distribution(
        tmp_path_factory.mktemp("site"),
        EXAMPLE / "mnistbench_logreg.py",
        "mnistbench-logreg",
        {"logreg": "mnistbench_logreg"},
    )
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_third_party_plugin_is_listed_with_its_distribution(cli, site_env):
    result = cli("plugins", env=site_env)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if " logreg " in line)
    assert "mnistbench-logreg" in line and "0.1.0" in line and "7,850" in line


def test_third_party_plugin_runs_by_name(cli, site_env, tmp_path, mnist_npz):
    output = tmp_path / "out"
    result = cli(
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
        env=site_env,
    )
    assert result.returncode == 0, result.stderr
    runs = pd.read_csv(output / "runs.csv")
    assert list(runs["architecture"]) == ["logreg"]
    row = runs.iloc[0]
    assert row["status"] == "ok"
    assert row["plugin"] == "logreg" and row["plugin_version"] == "0.1.0"
    assert row["params"] == 784 * 10 + 10
    assert row["test_accuracy"] > 0.5
