"""Fixtures for the regression benchmarks: real MNIST and the installed plugins."""

import pytest

from mnistbench.backends import quiet_backend_logs
from mnistbench.data import resolve_mnist
from mnistbench.plugins import load_plugins


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
