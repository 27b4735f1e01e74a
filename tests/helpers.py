"""What many test modules share: the tiny test plugin and the quick-run settings.

Imported by test modules (``from helpers import Tiny, QUICK``); fixtures live in
``conftest.py``. The plugin is class-based, registered in-process by the tests that run
sweeps inside the test process; the installed test plugin, for tests of a worker or the
command line, is ``tests/plugins/mnistbench_faulty.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import mnistbench
from mnistbench.plan import RunConfig

#: The smallest real run that still learns something: 1 epoch on 200 images, 50 to test.
QUICK = {"epochs": 1, "train_limit": 200, "test_limit": 50}
#: The same on the command line, without the speed probes (a test that reads them runs them).
QUICK_ARGS = ("--epochs", "1", "--train-limit", "200", "--test-limit", "50", "--no-probe")
#: The shared sweep of the three reference architectures (conftest's ``cli_sweep``): small,
#: but enough to learn. In one warm worker: its tests read what a sweep writes, not how
#: runs are isolated (the default, a fresh process per run, is what test_resume,
#: test_sweepfile and others run).
CLI_SWEEP_ARGS = (
    *("--epochs", "2", "--train-limit", "2000", "--test-limit", "300"),
    *("--isolation", "warm"),
)


def quick(architecture: str = "tiny", **options) -> RunConfig:
    """A :class:`RunConfig` of ``architecture`` with the :data:`QUICK` settings (``options``
    replace them)."""
    return RunConfig(architecture, **{**QUICK, **options})


def logistic_regression(input_shape, num_classes):
    """A compiled logistic regression: Flatten, Dense(num_classes, softmax)."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes, "softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Tiny:
    """Three architectures, one per way a run ends: ``tiny`` is a logistic regression that
    trains fine, ``broken``'s build raises (a failed run), ``nan`` trains on NaN inputs (a
    diverged run)."""

    @mnistbench.hookimpl
    def mnistbench_register_architectures(self, register):
        register("tiny", description="logistic regression")
        register("broken", description="its build raises")
        register("nan", description="its loss becomes NaN")

    @mnistbench.hookimpl
    def mnistbench_prepare_data(self, architecture, x):
        return x.astype("float32") * np.nan if architecture == "nan" else None

    @mnistbench.hookimpl
    def mnistbench_build_model(self, architecture, input_shape, num_classes):
        if architecture == "broken":
            raise RuntimeError("cannot build this one")
        if architecture not in ("tiny", "nan"):
            return None
        return logistic_regression(input_shape, num_classes)


def python_process(code: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``code`` (dedented) in a new Python process with ``args``, the tests' helpers importable
    (``from helpers import Tiny``), its input and output piped; ``env`` adds to this
    environment."""
    tests = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
    )


def ready_and_wait() -> None:
    """In a ``python_process`` that :func:`together` starts: say it is set up, then wait
    for the line that lets all go at once."""
    print("ready", flush=True)
    sys.stdin.readline()


def together(processes: list[subprocess.Popen]) -> list[subprocess.Popen]:
    """Let ``processes`` go at once, when every one has said it is ready
    (:func:`ready_and_wait`), however long their start took on a busy machine."""
    for process in processes:
        line = process.stdout.readline()
        if line != "ready\n":
            process.wait(timeout=60)
            for waiting in processes:  # none left waiting for a go that never comes
                waiting.kill()
            raise AssertionError(f"not ready: {line!r}; {process.stderr.read()}")
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    return processes


def finished(process: subprocess.Popen, timeout: float = 300) -> str:
    """The standard output of ``process`` once it exits, which it must do with status 0."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


@contextlib.contextmanager
def logged() -> Iterator[list[str]]:
    """The messages logged to the "mnistbench" logger meanwhile (warnings and above),
    whatever its propagation."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("mnistbench")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
