"""Fixtures shared by the test modules."""

from __future__ import annotations

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
