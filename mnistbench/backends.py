"""Keras backends: which are installed, one per worker process, and how many threads each uses.

Stdlib-only at import time: the CLI checks backends and a worker prepares its
environment before any backend (or Keras) is imported.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from mnistbench.errors import ConfigError

#: Keras backend name -> the package that must be importable for it.
BACKENDS: dict[str, str] = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

#: Keras backend name -> how to install it (one line: it ends up in a one-line error).
EXTRAS: dict[str, str] = {
    "tensorflow": "pip install 'mnistbench[tensorflow]'",
    "jax": "pip install 'mnistbench[jax]'",
    "torch": (
        "pip install 'mnistbench[torch]' "
        "(on a machine without CUDA: pip install torch==2.13.0 for the CPU build)"
    ),
}

#: Thread-count variables read once, when the library that owns the pool is loaded.
#: OMP (also torch's intra-op default), MKL and OpenBLAS size the BLAS/OpenMP pools;
#: TensorFlow reads the two TF_ variables when it creates its first session/context.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)

#: Makes XLA:CPU run its Eigen kernels (dot, convolution) on the calling thread.
#: XLA has no flag for "N threads": its CPU client sizes its pool from the process's
#: CPU affinity (jax-ml/jax#1539), so the flag is only set for a one-CPU budget.
#: The often-quoted companion ``intra_op_parallelism_threads=N`` is not an XLA flag:
#: XLA's parser skips it after a ``--`` flag and, as the first word of XLA_FLAGS,
#: takes it for a file name and aborts the process.
XLA_SINGLE_THREAD_FLAG = "--xla_cpu_multi_thread_eigen=false"


def configured_backend() -> str:
    """The Keras backend a new process will use, found as Keras finds it, without importing it."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return json.loads((keras_home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def check_backends(names: Sequence[str]) -> None:
    """Raise :class:`ConfigError` unless every named backend is known and installed.

    Installed means its package can be found (``importlib.util.find_spec``); nothing is
    imported, so checking TensorFlow costs no start-up time.
    """
    for name in dict.fromkeys(names):
        if name not in BACKENDS:
            known = ", ".join(BACKENDS)
            raise ConfigError(f"unknown backend {name!r} (known: {known})")
        if importlib.util.find_spec(BACKENDS[name]) is None:
            raise ConfigError(f"backend {name!r} is not installed; install it with: {EXTRAS[name]}")


def thread_limit_env(cpus: int, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables that keep a backend to ``cpus`` threads, without setting them.

    ``environ`` (default ``os.environ``) supplies the XLA_FLAGS to extend; for a run
    elsewhere (a Ray worker) the driver computes this and ships it as the worker's env.
    """
    if cpus < 1:
        raise ConfigError(f"a run needs at least 1 CPU, got {cpus}")
    environ = os.environ if environ is None else environ
    limits = {name: str(cpus) for name in THREAD_VARIABLES}
    xla_flags = environ.get("XLA_FLAGS", "").split()
    if cpus == 1 and not any(f.startswith("--xla_cpu_multi_thread_eigen") for f in xla_flags):
        limits["XLA_FLAGS"] = " ".join([*xla_flags, XLA_SINGLE_THREAD_FLAG])
    return limits


def limit_threads(cpus: int) -> dict[str, str]:
    """Keep the backend this process will import to ``cpus`` threads; returns the variables set.

    Must run before the backend is imported: the pools are sized once, at load. For
    torch, also call :func:`apply_torch_threads` after the import.
    """
    limits = thread_limit_env(cpus)
    os.environ.update(limits)
    return limits


def apply_torch_threads(cpus: int) -> bool:
    """Set torch's intra-op thread count if torch is imported; True if it was.

    torch takes OMP_NUM_THREADS at import, but ``torch.set_num_threads`` is its
    documented control and also covers a torch imported before the limits were set.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    torch.set_num_threads(cpus)
    return True


def select_backend(backend: str | None) -> str:
    """In a fresh process, before Keras is imported: choose the backend, keep the others out.

    Keras 3 imports JAX whenever it is installed (its Orbax checkpoint callback does,
    at ``import keras``), which adds about 120 MB to the peak memory of a TensorFlow or
    torch run. A ``None`` entry in ``sys.modules`` makes ``import jax`` raise ImportError,
    which Keras handles; only backends not yet imported are blocked. Returns the backend.
    """
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    chosen = configured_backend()
    if chosen not in BACKENDS:  # Keras' numpy backend, for one, borrows from JAX
        return chosen
    for name, package in BACKENDS.items():
        if name != chosen and package not in sys.modules:
            sys.modules[package] = None
    return chosen


def imported_backends() -> list[str]:
    """The backend packages this process has imported, sorted."""
    return sorted(package for package in BACKENDS.values() if sys.modules.get(package))


def probe_modules(backend: str, on_progress: Callable[[dict], None] | None = None) -> list[str]:
    """Worker task: prepare ``backend`` as a run's worker does, use it, return the backends loaded.

    For tests (through :func:`mnistbench.executors.local.call_in_worker` or a Ray task): a
    run should load exactly one backend package.
    """
    select_backend(backend)
    import keras
    import numpy as np

    ones = np.ones((4, 4), dtype="float32")
    keras.ops.convert_to_numpy(keras.ops.matmul(ones, ones))
    return imported_backends()


def backend_version(backend: str) -> str:
    """The installed version of a Keras backend's package, without importing it."""
    try:
        return importlib.metadata.version(backend)
    except importlib.metadata.PackageNotFoundError:
        return ""


def quiet_backend_logs() -> None:
    """Silence TensorFlow's C++ start-up chatter; must run before keras is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_stderr_to(path: str | os.PathLike) -> Iterator[None]:
    """Send file descriptor 2 (where TensorFlow's C++ start-up lines go) to a file meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
