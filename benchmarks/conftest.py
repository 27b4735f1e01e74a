"""Fixtures for the regression benchmarks: real MNIST, the installed plugins, the speed probe;
and the ``--drift`` option that runs the drift measurement (test_drift.py)."""

import os

import pytest

from mnistbench.backends import quiet_backend_logs
from mnistbench.data import resolve_mnist
from mnistbench.plugins import load_plugins
from mnistbench.probe import measure_probe, probe_columns


def pytest_generate_tests(metafunc):
    # Every registered architecture, third-party plugins included, is benchmarked.
    if "architecture" in metafunc.fixturenames:
        metafunc.parametrize("architecture", sorted(load_plugins().architectures))


@pytest.fixture(scope="session")
def plugins():
    quiet_backend_logs()
    return load_plugins()


@pytest.fixture(scope="session")
def mnist():
    return resolve_mnist()


def pytest_addoption(parser):
    parser.addoption(
        "--drift",
        action="store_true",
        help="Also run the drift measurement (test_drift.py, minutes); or set MNISTBENCH_DRIFT=1.",
    )


@pytest.fixture(scope="session")
def drift_enabled(request) -> bool:
    """Whether the drift measurement was asked for: ``--drift`` or ``MNISTBENCH_DRIFT=1``."""
    return bool(request.config.getoption("--drift")) or os.environ.get("MNISTBENCH_DRIFT") == "1"


@pytest.fixture
def speed_probe(benchmark):
    """The speed probe (:func:`mnistbench.probe.measure_probe`, in this process) before and
    after the benchmark, recorded in its ``extra_info`` beside the median divided by the probe.

    ``extra_info`` gets ``probe_version``, ``probe_seconds_before``, ``probe_seconds_after``,
    ``probe_seconds`` (their mean), ``machine_changed`` (as in runs.csv) and
    ``median_normalized``: the benchmark's median time ÷ ``probe_seconds``, the figure that
    compares across machine speeds. Nothing is measured with ``--benchmark-disable``.
    """
    if benchmark.disabled:
        yield benchmark
        return
    before = measure_probe()
    yield benchmark
    after = measure_probe()
    probe = probe_columns({}, before, after)
    keys = ("probe_version", "probe_seconds_before", "probe_seconds_after", "probe_seconds")
    benchmark.extra_info.update({key: probe[key] for key in (*keys, "machine_changed")})
    if benchmark.stats is not None:
        benchmark.extra_info["median_normalized"] = (
            benchmark.stats.stats.median / probe["probe_seconds"]
        )
