"""Train and measure one run: prepare data, build the model, fit, evaluate, time inference.

:func:`run_one` is a plain function of plain values so that it runs the same
in-process (``--isolation none``) or in a fresh worker process (the default,
see :mod:`mnistbench.executor`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np

from mnistbench.results import SAMPLE_COUNT

NUM_CLASSES = 10
#: Single-sample latency: calls discarded to warm up, then calls timed.
LATENCY_WARMUP_CALLS = 5
LATENCY_TIMED_CALLS = 50

ProgressCallback = Callable[[dict], None]


@dataclass(frozen=True)
class RunConfig:
    """What to run: one architecture with one set of training options."""

    architecture: str
    epochs: int = 5
    batch_size: int = 32
    train_limit: int | None = None  # first N training images; None = all 60000
    test_limit: int | None = None  # first N test images; None = all 10000
    seed: int = 0

    @property
    def run_id(self) -> str:
        return f"{self.architecture}-s{self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB (NaN where unsupported)."""
    try:
        import resource
    except ImportError:  # Windows
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


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


def _progress_callback(on_progress: ProgressCallback, epochs: int, steps: int):
    """A Keras callback timing each epoch and forwarding progress, at most ~10 updates/s."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch_seconds: list[float] = []
            self.epoch_accuracy: list[float] = []
            self.epoch_loss: list[float] = []
            self._last_update = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()
            on_progress({"event": "epoch", "epoch": epoch + 1, "epochs": epochs, "steps": steps})

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if now - self._last_update >= 0.1:
                self._last_update = now
                on_progress({"event": "step", "step": batch + 1, "steps": steps})

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
            logs = logs or {}
            self.epoch_accuracy.append(float(logs.get("accuracy", math.nan)))
            self.epoch_loss.append(float(logs.get("loss", math.nan)))
            on_progress({"event": "step", "step": steps, "steps": steps})

    return Progress()


def run_one(config: RunConfig, mnist, plugins, on_progress: ProgressCallback | None = None) -> dict:
    """Train and measure one configuration; returns the measured columns of ``runs.csv``.

    Raises whatever the plugin or Keras raises; the executor records it as a failed run.
    """
    quiet_backend_logs()
    on_progress = on_progress or (lambda event: None)
    x_train = mnist.x_train[: config.train_limit]
    y_train = mnist.y_train[: config.train_limit]
    x_test = mnist.x_test[: config.test_limit]
    y_test = mnist.y_test[: config.test_limit]

    on_progress({"event": "phase", "phase": "preparing data"})
    train = plugins.prepare_data(config.architecture, x_train, "train")
    test = plugins.prepare_data(config.architecture, x_test, "test")

    import keras

    keras.utils.set_random_seed(config.seed)
    on_progress({"event": "phase", "phase": "building model"})
    model = plugins.build_model(config.architecture, train.shape[1:], NUM_CLASSES)

    steps = math.ceil(len(train) / config.batch_size)
    progress = _progress_callback(on_progress, config.epochs, steps)
    start = time.perf_counter()
    model.fit(
        train,
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        verbose=0,
        callbacks=[progress],
    )
    fit_seconds = time.perf_counter() - start

    on_progress({"event": "phase", "phase": "evaluating"})
    test_loss = float(model.evaluate(test, y_test, batch_size=config.batch_size, verbose=0)[0])

    on_progress({"event": "phase", "phase": "timing inference"})
    # Warm up the predict function (tracing, allocation) before timing it.
    model.predict(test[: config.batch_size], batch_size=config.batch_size, verbose=0)
    start = time.perf_counter()
    probabilities = model.predict(test, batch_size=config.batch_size, verbose=0)
    predict_seconds = time.perf_counter() - start
    predicted = np.argmax(probabilities, axis=-1)
    if probabilities.shape != (len(test), NUM_CLASSES):
        raise ValueError(
            f"model output has shape {probabilities.shape}, expected ({len(test)}, {NUM_CLASSES})"
        )

    # The tutorial's sample_prediction: one image at a time.
    single = test[:1]
    for _ in range(LATENCY_WARMUP_CALLS):
        model.predict_on_batch(single)
    latencies = []
    for _ in range(LATENCY_TIMED_CALLS):
        start = time.perf_counter()
        model.predict_on_batch(single)
        latencies.append(time.perf_counter() - start)

    return {
        "backend": keras.backend.backend(),
        "train_samples": len(train),
        "test_samples": len(test),
        "fit_seconds": fit_seconds,
        "seconds_per_epoch": float(np.mean(progress.epoch_seconds)),
        "epoch_seconds": json.dumps([round(s, 4) for s in progress.epoch_seconds]),
        "epoch_accuracy": json.dumps([round(a, 6) for a in progress.epoch_accuracy]),
        "epoch_loss": json.dumps([round(v, 6) for v in progress.epoch_loss]),
        "train_samples_per_second": len(train) * config.epochs / fit_seconds,
        "test_accuracy": float(np.mean(predicted == y_test)),
        "test_loss": test_loss,
        "inference_samples_per_second": len(test) / predict_seconds,
        "latency_ms": float(np.median(latencies) * 1000),
        "sample_predictions": json.dumps([int(p) for p in predicted[:SAMPLE_COUNT]]),
        "params": int(model.count_params()),
        "peak_memory_mb": peak_memory_mb(),
    }


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
