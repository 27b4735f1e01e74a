"""One run, phase by phase: prepare data, build the model, fit, evaluate, time inference,
measure the inference curve (``--inference-batch-sizes``), record the devices.

The phases return raw timings and counts (:class:`RawRun`); :func:`derive_metrics`, a
pure function, turns them into the measured columns of ``runs.csv``. :func:`run_one`
strings them together; it is a plain function of plain values, so it runs the same
in-process (``--isolation none``) or in a worker (see :mod:`mnistbench.worker`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistbench import contention
from mnistbench.backends import backend_version, quiet_backend_logs
from mnistbench.data import SAMPLE_COUNT
from mnistbench.devices import device_columns, reset_peak_accelerator_memory
from mnistbench.flops import count_flops
from mnistbench.plan import RunConfig, Target

NUM_CLASSES = 10
#: Single-sample latency: calls discarded to warm up, then calls timed.
LATENCY_WARMUP_CALLS = 5
LATENCY_TIMED_CALLS = 100
#: Each point of the inference curve times at most this many images, but at least
#: CURVE_MIN_CALLS calls (a median of one call at a large batch size would be one sample)...
CURVE_MAX_SAMPLES = 2000
CURVE_MIN_CALLS = 5
#: ... and stops calling once this many seconds have passed, so batch size 1 stays quick.
CURVE_MAX_SECONDS = 3.0
#: Steps per block of ``steady_step_ms``: long enough that one step's jitter averages out,
#: short enough that a 1-epoch run on a few thousand images has several blocks.
BLOCK_STEPS = 20
#: The share of ``fit``'s time its threads may spend waiting for a CPU before the run is
#: flagged ``fit_contended``.
CONTENDED_SHARE = 0.25

ProgressCallback = Callable[[dict], None]


def _ignore(event: dict) -> None:
    pass


#: Linux's view of this process: its peak resident memory since it started or since a warm
#: worker last reset it (``VmHWM``, see :func:`mnistbench.serve.reset_peak_memory`).
_STATUS = Path("/proc/self/status")


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB (NaN where unsupported).

    On Linux ``VmHWM``, which a warm worker resets before each run; ``getrusage`` elsewhere
    (on Linux it also keeps the peak a thread saw when it exited, so it outlives a reset).
    """
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, IndexError, ValueError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass(frozen=True)
class RawRun:
    """What one run measured, before anything is derived from it. Times in seconds."""

    backend: str
    jit_compile: bool
    params: int
    train_samples: int
    test_samples: int
    seed: int
    fit_seconds: float
    epoch_seconds: list[float]
    epoch_accuracy: list[float]
    epoch_loss: list[float]
    target_set: bool
    time_to_accuracy_seconds: float | None  # None when no target was set or reached
    test_accuracy: float
    test_loss: float
    predict_seconds: float  # one predict call over the test set
    latency_seconds: list[float]  # single-sample calls, after warm-up
    sample_predictions: list[int]
    inference_flops_per_sample: float  # NaN when unknown
    train_flops_per_sample: float
    peak_flops_per_second: float | None  # the peak available to this run, None if unknown
    peak_memory_mb: float
    fit_counters: contention.Counters  # what the process got from the machine during fit
    inference_counters: contention.Counters  # ... while inference was timed
    inference_curve: list[dict] = field(default_factory=list)  # curve_point() per batch size
    #: Seconds of each block of :data:`BLOCK_STEPS` training steps, in order (the first,
    #: which traces and compiles, included).
    block_seconds: list[float] = field(default_factory=list)


def steady_step_ms(block_seconds: list[float], block_steps: int = BLOCK_STEPS) -> float:
    """The median time of one step over the blocks after the first, in ms; NaN with fewer
    than two blocks (the first traces and compiles: it is never steady)."""
    steady = block_seconds[1:]
    if not steady:
        return math.nan
    return float(np.median(steady)) / block_steps * 1000


def contended(run_queue_seconds: float | None, cpu_seconds: float | None) -> bool | None:
    """Whether a phase's threads waited for a CPU for more than :data:`CONTENDED_SHARE` of
    the time they were running or waiting; None where the system does not tell."""
    if run_queue_seconds is None or cpu_seconds is None:
        return None
    total = run_queue_seconds + cpu_seconds
    return bool(total > 0 and run_queue_seconds / total > CONTENDED_SHARE)


def derive_metrics(raw: RawRun) -> dict:
    """The measured columns of ``runs.csv`` from one run's raw timings; pure, no Keras."""
    epochs = len(raw.epoch_seconds)
    steady = raw.epoch_seconds[1:]
    steady_epoch_seconds = float(np.mean(steady)) if steady else math.nan
    # Achieved training FLOP/s from steady-state epochs when there are any: the first
    # epoch pays for tracing and would understate the hardware's use.
    epoch_seconds_for_rate = steady_epoch_seconds if steady else raw.epoch_seconds[0]
    train_flops_per_second = raw.train_flops_per_sample * raw.train_samples / epoch_seconds_for_rate
    inference_samples_per_second = raw.test_samples / raw.predict_seconds
    inference_flops_per_second = raw.inference_flops_per_sample * inference_samples_per_second
    peak = raw.peak_flops_per_second or math.nan

    def latency_ms(q: float) -> float:
        return float(np.percentile(raw.latency_seconds, q) * 1000)

    return {
        "backend": raw.backend,
        "backend_version": backend_version(raw.backend),
        "epochs": epochs,
        "jit_compile": raw.jit_compile,
        "train_samples": raw.train_samples,
        "test_samples": raw.test_samples,
        "seed": raw.seed,
        "fit_seconds": raw.fit_seconds,
        "steady_step_ms": steady_step_ms(raw.block_seconds),
        "first_epoch_seconds": raw.epoch_seconds[0],
        "steady_epoch_seconds": steady_epoch_seconds,
        "seconds_per_epoch": float(np.mean(raw.epoch_seconds)),
        "epoch_seconds": [round(s, 4) for s in raw.epoch_seconds],
        "epoch_accuracy": [round(a, 6) for a in raw.epoch_accuracy],
        "epoch_loss": [round(v, 6) for v in raw.epoch_loss],
        "time_to_accuracy_seconds": raw.time_to_accuracy_seconds,
        "converged": (raw.time_to_accuracy_seconds is not None) if raw.target_set else None,
        "train_samples_per_second": raw.train_samples * epochs / raw.fit_seconds,
        "test_accuracy": raw.test_accuracy,
        "test_loss": raw.test_loss,
        "inference_samples_per_second": inference_samples_per_second,
        "latency_ms": latency_ms(50),
        "latency_p95_ms": latency_ms(95),
        "latency_p99_ms": latency_ms(99),
        "inference_curve": list(raw.inference_curve),
        "sample_predictions": list(raw.sample_predictions),
        "params": raw.params,
        "inference_flops_per_sample": raw.inference_flops_per_sample,
        "train_flops_per_sample": raw.train_flops_per_sample,
        "train_flops_per_second": train_flops_per_second,
        "inference_flops_per_second": inference_flops_per_second,
        "peak_flops_per_second": peak,
        "train_peak_fraction": train_flops_per_second / peak,
        "inference_peak_fraction": inference_flops_per_second / peak,
        "peak_memory_mb": raw.peak_memory_mb,
        "fit_cpu_seconds": raw.fit_counters.cpu_seconds,
        "inference_cpu_seconds": raw.inference_counters.cpu_seconds,
        "fit_involuntary_switches": raw.fit_counters.involuntary_switches,
        "fit_cpu_pressure_seconds": raw.fit_counters.pressure_seconds,
        "fit_steal_seconds": raw.fit_counters.steal_seconds,
        "fit_run_queue_seconds": raw.fit_counters.run_queue_seconds,
        "fit_contended": contended(
            raw.fit_counters.run_queue_seconds, raw.fit_counters.cpu_seconds
        ),
    }


# --- the phases --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    train: np.ndarray
    y_train: np.ndarray
    test: np.ndarray
    y_test: np.ndarray


def _prepare(config: RunConfig, mnist, plugins) -> _Data:
    return _Data(
        plugins.prepare_data(config.architecture, mnist.x_train[: config.train_limit], "train"),
        mnist.y_train[: config.train_limit],
        plugins.prepare_data(config.architecture, mnist.x_test[: config.test_limit], "test"),
        mnist.y_test[: config.test_limit],
    )


def _build(config: RunConfig, plugins, input_shape: tuple[int, ...]):
    import keras

    keras.utils.set_random_seed(config.run_seed)
    model = plugins.build_model(config.architecture, input_shape, NUM_CLASSES)
    # Execution options apply to whatever the plugin compiled; Keras reads them
    # when fit builds its train function.
    model.steps_per_execution = config.steps_per_execution
    if config.jit_compile is not None:
        model.jit_compile = config.jit_compile
    return model


def _flops(plugins, architecture: str, model) -> tuple[float, float]:
    """(inference, train) FLOPs per sample: the plugin's figure, else the core's count."""
    given = plugins.model_flops(architecture, model)
    if given is not None:
        return float(given[0]), float(given[1])
    try:
        inference, train = count_flops(model)
    except ValueError:  # a layer the core cannot count and no plugin counted
        return math.nan, math.nan
    return float(inference), float(train)


def _training_callback(
    on_progress: ProgressCallback,
    epochs: int,
    steps: int,
    target: Target | None,
    test: _Data,
    batch_size: int,
):
    """A Keras callback timing each epoch, forwarding progress (~10 updates/s at most), and
    stopping training once the test accuracy reaches the target, if one is set."""
    import keras

    eval_every = target.eval_every if target is not None else None

    class Training(keras.callbacks.Callback):
        # A callback with a batch hook makes Keras wait for every step's logs (measured
        # here: about 15% slower epochs for the DNN). Progress only reads the step
        # number, so Keras may call it asynchronously, except when a target
        # evaluation must run between steps.
        async_safe = not eval_every

        def __init__(self) -> None:
            super().__init__()
            self.epoch_seconds: list[float] = []
            self.epoch_accuracy: list[float] = []
            self.epoch_loss: list[float] = []
            self.time_to_accuracy: float | None = None
            self.block_seconds: list[float] = []
            self._last_update = 0.0
            self._step = 0
            self._block_start = 0.0

        def on_train_begin(self, logs=None):
            self._fit_start = self._block_start = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()
            on_progress({"event": "epoch", "epoch": epoch + 1, "epochs": epochs, "steps": steps})

        def on_train_batch_end(self, batch, logs=None):
            self._step += 1
            now = time.perf_counter()
            if self._step % BLOCK_STEPS == 0:
                self.block_seconds.append(now - self._block_start)
                self._block_start = now
            if now - self._last_update >= 0.1:
                self._last_update = now
                on_progress({"event": "step", "step": batch + 1, "steps": steps})
            if eval_every and self._step % eval_every == 0:
                self._check_target()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
            logs = logs or {}
            self.epoch_accuracy.append(float(logs.get("accuracy", math.nan)))
            self.epoch_loss.append(float(logs.get("loss", math.nan)))
            on_progress({"event": "step", "step": steps, "steps": steps})
            if target is not None and not eval_every and self.time_to_accuracy is None:
                self._check_target()

        def _check_target(self) -> None:
            # Evaluation runs inside the clock, as MLPerf times to a target.
            probabilities = self.model.predict(test.test, batch_size=batch_size, verbose=0)
            accuracy = float(np.mean(np.argmax(probabilities, -1) == test.y_test))
            on_progress({"event": "phase", "phase": f"test accuracy {accuracy:.4f}"})
            if accuracy >= target.accuracy:
                self.time_to_accuracy = time.perf_counter() - self._fit_start
                self.model.stop_training = True

    return Training()


def _fit(model, config: RunConfig, data: _Data, on_progress: ProgressCallback):
    """Train; returns the callback holding the epoch timings, and fit's wall time."""
    steps = math.ceil(len(data.train) / config.batch_size)
    training = _training_callback(
        on_progress, config.epochs, steps, config.target, data, config.batch_size
    )
    start = time.perf_counter()
    model.fit(
        data.train,
        data.y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        verbose=0,
        callbacks=[training],
    )
    fit_seconds = time.perf_counter() - start
    if not all(map(math.isfinite, training.epoch_loss)):
        raise FloatingPointError(f"training loss became {training.epoch_loss[-1]} (diverged)")
    return training, fit_seconds


def _time_inference(model, test: np.ndarray, batch_size: int):
    """``(probabilities, seconds of one predict over test, single-sample latencies)``."""
    # Warm up the predict function (tracing, allocation) before timing it.
    model.predict(test[:batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    probabilities = model.predict(test, batch_size=batch_size, verbose=0)
    predict_seconds = time.perf_counter() - start
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
    return probabilities, predict_seconds, latencies


def curve_point(batch_size: int, call_seconds: list[float]) -> dict:
    """One point of the inference curve from the durations of its timed calls (pure).

    ``{"batch_size", "samples", "seconds", "samples_per_second", "latency_ms"}``: the images
    predicted, the calls' summed seconds, images per second over them, and the median
    call's milliseconds.
    """
    samples = batch_size * len(call_seconds)
    seconds = float(sum(call_seconds))
    return {
        "batch_size": batch_size,
        "samples": samples,
        "seconds": round(seconds, 6),
        "samples_per_second": round(samples / seconds, 1),
        "latency_ms": round(float(np.median(call_seconds)) * 1000, 4),
    }


def measure_inference_curve(
    model, test: np.ndarray, batch_sizes: tuple[int, ...], on_progress: ProgressCallback
) -> list[dict]:
    """Inference throughput and latency at each batch size: one warm-up call (tracing for
    the new shape), then ``predict_on_batch`` calls over the test images, repeated when
    fewer than needed, for at most :data:`CURVE_MAX_SAMPLES` images (at least
    :data:`CURVE_MIN_CALLS` calls) or until :data:`CURVE_MAX_SECONDS` have passed."""
    points = []
    for size in batch_sizes:
        on_progress({"event": "phase", "phase": f"inference curve: batch size {size}"})
        calls = max(CURVE_MIN_CALLS, CURVE_MAX_SAMPLES // size)
        # np.resize repeats whole images: the test set's size is a multiple of one image's.
        images = np.resize(test, (calls * size, *test.shape[1:]))
        model.predict_on_batch(images[:size])
        call_seconds: list[float] = []
        deadline = time.perf_counter() + CURVE_MAX_SECONDS
        for call in range(calls):
            start = time.perf_counter()
            model.predict_on_batch(images[call * size : (call + 1) * size])
            end = time.perf_counter()
            call_seconds.append(end - start)
            if end >= deadline:
                break
        points.append(curve_point(size, call_seconds))
    return points


def run_one(
    config: RunConfig,
    mnist,
    plugins,
    on_progress: ProgressCallback | None = None,
    peak_flops_per_second: float | None = None,
) -> dict:
    """Train and measure one configuration; returns the measured columns of ``runs.csv``.

    ``peak_flops_per_second`` is the peak available to this run (see
    :func:`mnistbench.worker.measure_machine`), None when unknown. After the inference
    timing comes the inference curve at ``config.inference_batch_sizes`` (none when empty),
    then the devices the backend sees, the one the model trained on and its peak
    accelerator memory (:func:`mnistbench.devices.device_columns`).

    Raises whatever the plugin or Keras raises; the executor records it as a failed run.
    """
    quiet_backend_logs()
    on_progress = on_progress or _ignore
    on_progress({"event": "phase", "phase": "preparing data"})
    data = _prepare(config, mnist, plugins)

    import keras

    backend = keras.backend.backend()
    reset_peak_accelerator_memory(backend)

    on_progress({"event": "phase", "phase": "building model"})
    model = _build(config, plugins, data.train.shape[1:])
    inference_flops, train_flops = _flops(plugins, config.architecture, model)

    start = contention.now()
    training, fit_seconds = _fit(model, config, data, on_progress)
    fit_counters = contention.now() - start

    on_progress({"event": "phase", "phase": "evaluating"})
    test_loss = float(
        model.evaluate(data.test, data.y_test, batch_size=config.batch_size, verbose=0)[0]
    )

    on_progress({"event": "phase", "phase": "timing inference"})
    start = contention.now()
    probabilities, predict_seconds, latencies = _time_inference(model, data.test, config.batch_size)
    inference_counters = contention.now() - start
    predicted = np.argmax(probabilities, axis=-1)
    curve = measure_inference_curve(model, data.test, config.inference_batch_sizes, on_progress)

    measured = derive_metrics(
        RawRun(
            backend=backend,
            jit_compile=bool(model.jit_compile),
            params=int(model.count_params()),
            train_samples=len(data.train),
            test_samples=len(data.test),
            seed=config.run_seed,
            fit_seconds=fit_seconds,
            epoch_seconds=training.epoch_seconds,
            epoch_accuracy=training.epoch_accuracy,
            epoch_loss=training.epoch_loss,
            target_set=config.target is not None,
            time_to_accuracy_seconds=training.time_to_accuracy,
            test_accuracy=float(np.mean(predicted == data.y_test)),
            test_loss=test_loss,
            predict_seconds=predict_seconds,
            latency_seconds=latencies,
            sample_predictions=[int(p) for p in predicted[:SAMPLE_COUNT]],
            inference_flops_per_sample=inference_flops,
            train_flops_per_sample=train_flops,
            peak_flops_per_second=peak_flops_per_second,
            peak_memory_mb=peak_memory_mb(),
            fit_counters=fit_counters,
            inference_counters=inference_counters,
            inference_curve=curve,
            block_seconds=training.block_seconds,
        )
    )
    weight = model.weights[0].value if model.weights else None
    measured.update(device_columns(backend, weight))
    return measured
