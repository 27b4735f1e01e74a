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
LATENCY_TIMED_CALLS = 100

ProgressCallback = Callable[[dict], None]


@dataclass(frozen=True)
class RunConfig:
    """What to run: one architecture with one set of training options, one repeat."""

    architecture: str
    epochs: int = 5
    batch_size: int = 32
    train_limit: int | None = None  # first N training images; None = all 60000
    test_limit: int | None = None  # first N test images; None = all 10000
    seed: int = 0  # base seed; the run uses seed + repeat
    repeat: int = 0
    steps_per_execution: int = 1
    jit_compile: bool | None = None  # None keeps Keras' "auto"
    target_accuracy: float | None = None  # stop once test accuracy reaches it
    eval_every: int | None = None  # steps between target evaluations; None = each epoch
    backend: str | None = None  # Keras backend; None = the configured one (KERAS_BACKEND)

    @property
    def config_id(self) -> str:
        """The architecture plus its non-default options: repeats of one configuration share it."""
        parts = [self.architecture]
        if self.steps_per_execution != 1:
            parts.append(f"spe{self.steps_per_execution}")
        if self.jit_compile is not None:
            parts.append("jiton" if self.jit_compile else "jitoff")
        return "-".join(parts)

    @property
    def run_id(self) -> str:
        backend = f"-{self.backend}" if self.backend else ""
        return f"{self.config_id}{backend}-r{self.repeat}"

    @property
    def run_seed(self) -> int:
        return self.seed + self.repeat

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


def backend_version(backend: str) -> str:
    """The installed version of a Keras backend's package, without importing it."""
    import importlib.metadata

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


def _training_callback(
    on_progress: ProgressCallback,
    epochs: int,
    steps: int,
    target: tuple[float, int | None, object, np.ndarray, int] | None,
):
    """A Keras callback timing each epoch, forwarding progress (~10 updates/s at most), and
    stopping training once the test accuracy reaches the target, if one is set.

    ``target`` is ``(accuracy, eval_every_steps or None, test_x, test_y, batch_size)``.
    """
    import keras

    class Training(keras.callbacks.Callback):
        # A callback with a batch hook makes Keras wait for every step's logs (measured
        # here: about 15% slower epochs for the DNN). Progress only reads the step
        # number, so Keras may call it asynchronously, except when a target
        # evaluation must run between steps.
        async_safe = target is None or not target[1]

        def __init__(self) -> None:
            super().__init__()
            self.epoch_seconds: list[float] = []
            self.epoch_accuracy: list[float] = []
            self.epoch_loss: list[float] = []
            self.time_to_accuracy: float | None = None
            self._last_update = 0.0
            self._step = 0

        def on_train_begin(self, logs=None):
            self._fit_start = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()
            on_progress({"event": "epoch", "epoch": epoch + 1, "epochs": epochs, "steps": steps})

        def on_train_batch_end(self, batch, logs=None):
            self._step += 1
            now = time.perf_counter()
            if now - self._last_update >= 0.1:
                self._last_update = now
                on_progress({"event": "step", "step": batch + 1, "steps": steps})
            if target is not None and target[1] and self._step % target[1] == 0:
                self._check_target()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
            logs = logs or {}
            self.epoch_accuracy.append(float(logs.get("accuracy", math.nan)))
            self.epoch_loss.append(float(logs.get("loss", math.nan)))
            on_progress({"event": "step", "step": steps, "steps": steps})
            if target is not None and not target[1] and self.time_to_accuracy is None:
                self._check_target()

        def _check_target(self) -> None:
            # Evaluation runs inside the clock, as MLPerf times to a target.
            accuracy_goal, _, test_x, test_y, batch_size = target
            predicted = np.argmax(self.model.predict(test_x, batch_size=batch_size, verbose=0), -1)
            accuracy = float(np.mean(predicted == test_y))
            on_progress({"event": "phase", "phase": f"test accuracy {accuracy:.4f}"})
            if accuracy >= accuracy_goal:
                self.time_to_accuracy = time.perf_counter() - self._fit_start
                self.model.stop_training = True

    return Training()


def _percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


def _flops(plugins, architecture: str, model) -> tuple[float, float]:
    """(inference, train) FLOPs per sample: the plugin's figure, else the core's count."""
    from mnistbench.flops import count_flops

    given = plugins.model_flops(architecture, model)
    if given is not None:
        return float(given[0]), float(given[1])
    try:
        inference, train = count_flops(model)
    except ValueError:  # a layer the core cannot count and no plugin counted
        return math.nan, math.nan
    return float(inference), float(train)


def run_one(
    config: RunConfig,
    mnist,
    plugins,
    on_progress: ProgressCallback | None = None,
    peak_flops_per_second: float | dict[str, float] | None = None,
) -> dict:
    """Train and measure one configuration; returns the measured columns of ``runs.csv``.

    ``peak_flops_per_second`` is the machine's peak, or a dict of peaks by backend.

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

    keras.utils.set_random_seed(config.run_seed)
    on_progress({"event": "phase", "phase": "building model"})
    model = plugins.build_model(config.architecture, train.shape[1:], NUM_CLASSES)
    # Execution options apply to whatever the plugin compiled; Keras reads them
    # when fit builds its train function.
    model.steps_per_execution = config.steps_per_execution
    if config.jit_compile is not None:
        model.jit_compile = config.jit_compile
    inference_flops, train_flops = _flops(plugins, config.architecture, model)

    steps = math.ceil(len(train) / config.batch_size)
    target = None
    if config.target_accuracy is not None:
        target = (config.target_accuracy, config.eval_every, test, y_test, config.batch_size)
    training = _training_callback(on_progress, config.epochs, steps, target)
    start = time.perf_counter()
    model.fit(
        train,
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        verbose=0,
        callbacks=[training],
    )
    fit_seconds = time.perf_counter() - start
    epochs_trained = len(training.epoch_seconds)
    if not all(map(math.isfinite, training.epoch_loss)):
        raise FloatingPointError(f"training loss became {training.epoch_loss[-1]} (diverged)")

    on_progress({"event": "phase", "phase": "evaluating"})
    test_loss = float(model.evaluate(test, y_test, batch_size=config.batch_size, verbose=0)[0])

    on_progress({"event": "phase", "phase": "timing inference"})
    # Warm up the predict function (tracing, allocation) before timing it.
    model.predict(test[: config.batch_size], batch_size=config.batch_size, verbose=0)
    start = time.perf_counter()
    probabilities = model.predict(test, batch_size=config.batch_size, verbose=0)
    predict_seconds = time.perf_counter() - start
    if probabilities.shape != (len(test), NUM_CLASSES):
        raise ValueError(
            f"model output has shape {probabilities.shape}, expected ({len(test)}, {NUM_CLASSES})"
        )
    predicted = np.argmax(probabilities, axis=-1)

    # The tutorial's sample_prediction: one image at a time.
    single = test[:1]
    for _ in range(LATENCY_WARMUP_CALLS):
        model.predict_on_batch(single)
    latencies = []
    for _ in range(LATENCY_TIMED_CALLS):
        start = time.perf_counter()
        model.predict_on_batch(single)
        latencies.append(time.perf_counter() - start)

    steady = training.epoch_seconds[1:]
    steady_epoch_seconds = float(np.mean(steady)) if steady else math.nan
    # Achieved training FLOP/s from steady-state epochs when there are any: the
    # first epoch pays for tracing and would understate the hardware's use.
    epoch_seconds_for_rate = steady_epoch_seconds if steady else training.epoch_seconds[0]
    train_flops_per_second = train_flops * len(train) / epoch_seconds_for_rate
    inference_samples_per_second = len(test) / predict_seconds
    inference_flops_per_second = inference_flops * inference_samples_per_second
    if isinstance(peak_flops_per_second, dict):  # measured per backend
        peak_flops_per_second = peak_flops_per_second.get(keras.backend.backend())
    peak = peak_flops_per_second or math.nan
    converged = None
    if config.target_accuracy is not None:
        converged = training.time_to_accuracy is not None

    return {
        "backend": keras.backend.backend(),
        "backend_version": backend_version(keras.backend.backend()),
        "epochs": epochs_trained,
        "jit_compile": bool(model.jit_compile),
        "train_samples": len(train),
        "test_samples": len(test),
        "seed": config.run_seed,
        "fit_seconds": fit_seconds,
        "first_epoch_seconds": training.epoch_seconds[0],
        "steady_epoch_seconds": steady_epoch_seconds,
        "seconds_per_epoch": float(np.mean(training.epoch_seconds)),
        "epoch_seconds": json.dumps([round(s, 4) for s in training.epoch_seconds]),
        "epoch_accuracy": json.dumps([round(a, 6) for a in training.epoch_accuracy]),
        "epoch_loss": json.dumps([round(v, 6) for v in training.epoch_loss]),
        "time_to_accuracy_seconds": training.time_to_accuracy,
        "converged": converged,
        "train_samples_per_second": len(train) * epochs_trained / fit_seconds,
        "test_accuracy": float(np.mean(predicted == y_test)),
        "test_loss": test_loss,
        "inference_samples_per_second": inference_samples_per_second,
        "latency_ms": _percentile_ms(latencies, 50),
        "latency_p95_ms": _percentile_ms(latencies, 95),
        "latency_p99_ms": _percentile_ms(latencies, 99),
        "sample_predictions": json.dumps([int(p) for p in predicted[:SAMPLE_COUNT]]),
        "params": int(model.count_params()),
        "inference_flops_per_sample": inference_flops,
        "train_flops_per_sample": train_flops,
        "train_flops_per_second": train_flops_per_second,
        "inference_flops_per_second": inference_flops_per_second,
        "peak_flops_per_second": peak,
        "train_peak_fraction": train_flops_per_second / peak,
        "inference_peak_fraction": inference_flops_per_second / peak,
        "peak_memory_mb": peak_memory_mb(),
    }


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
