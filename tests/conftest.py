"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mnistbench.data import resolve_mnist


@pytest.fixture(scope="session")
def mnist_npz() -> Path:
    """Path to a validated real-MNIST npz, resolved once per test session (mirror or user cache).

    Resolution uses the user's normal cache directory, so the mirror is fetched only in the
    first session on a machine and later sessions read ``~/.cache/mnistbench/mnist.npz``.
    """
    return resolve_mnist().cache_path


def install_as_distribution(
    site: Path, module: Path, distribution: str, entry_points: dict
) -> Path:
    """Lay ``module`` out in ``site`` as pip would install it: the module plus a *.dist-info.

    importlib.metadata finds the entry points on sys.path, in this process (with
    ``site`` prepended to sys.path) and in worker processes (which inherit sys.path).
    """
    shutil.copy(module, site)
    dist_info = site / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[mnistbench]\n{lines}")
    return site


@pytest.fixture
def faulty_plugin(tmp_path_factory, monkeypatch):
    """The misbehaving test plugin (tests/plugins/mnistbench_faulty.py), installed and loaded."""
    site = tmp_path_factory.mktemp("faulty-site")
    install_as_distribution(
        site,
        Path(__file__).parent / "plugins" / "mnistbench_faulty.py",
        "mnistbench-faulty",
        {"faulty": "mnistbench_faulty"},
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the mnistbench command in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mnistbench.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def sweep_in_process(output_dir: Path, mnist, plugins, configs, **options):
    """Run a sweep inside the test process (fast, and test plugins need no installing)."""
    from mnistbench.sweep import run_sweep

    return run_sweep(
        configs,
        mnist=mnist,
        plugins=plugins,
        output_dir=output_dir,
        isolation="none",
        argv=["mnistbench"],
        **options,
    )
