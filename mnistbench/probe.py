"""The speed probe: how fast the machine is for a run, measured beside every run.

Raw times drift with the machine (other load, a slower cloud VM, thermal limits) by as
much as 3× from day to day with the same code. Each run's worker times a short fixed
training workload just before and just after the run, under the run's own thread limit
and on its backend; dividing a run's times by the probe's time gives figures that
compare across machine speeds (``<metric>_normalized``). What this cannot see is
listed in the README ("The speed probe and normalization") and docs/history.md.

The workload is fixed by :data:`PROBE_VERSION`: a small convolutional and dense network
(the kinds of layer the reference architectures use), its weights seeded, trained on a
fixed synthetic batch. Its train function is traced once per process, then timed
:data:`PROBE_TIMINGS` times over :data:`PROBE_STEPS` steps; the probe is the median.
The probe draws only on its own seeds, and the run's seed is set after it, so the run
trains exactly as it would without it.
"""

from __future__ import annotations

import math
import statistics
import time

from mnistbench.columns import COLUMNS, HIGHER, metric, normalized

#: Changes whenever the workload below changes: probe times compare only within a version.
PROBE_VERSION = 1
#: Timed repeats of the workload; the probe is their median.
PROBE_TIMINGS = 5
#: Training steps in one timed repeat: long enough (about 50 ms here) to span many
#: scheduler time slices, so a competing load slows it as it slows training.
PROBE_STEPS = 24
#: The default training batch size: small steps, as training makes them.
PROBE_BATCH = 32
#: Two probes further apart than this (relative) flag the run ``machine_changed``.
MACHINE_CHANGED_TOLERANCE = 0.10

#: The metrics with a normalized form (``<name>_normalized`` in the registry): a time is
#: divided by the probe's time, a rate (higher is better) multiplied by it.
NORMALIZED = [column.name for column in COLUMNS if normalized(column.name)]

_MODEL = {}  # backend → (model, x, y): traced once per process


def _workload():
    import keras
    import numpy as np
    from keras import layers

    backend = keras.backend.backend()
    if backend not in _MODEL:
        rng = np.random.default_rng(PROBE_VERSION)
        x = rng.random((PROBE_BATCH, 28, 28, 1), dtype=np.float32)
        y = rng.integers(0, 10, PROBE_BATCH)
        init = keras.initializers.GlorotUniform(seed=PROBE_VERSION)
        model = keras.Sequential(
            [
                keras.Input(shape=(28, 28, 1)),
                layers.Conv2D(8, 3, activation="relu", kernel_initializer=init),
                layers.MaxPooling2D(),
                layers.Flatten(),
                layers.Dense(64, activation="relu", kernel_initializer=init),
                layers.Dense(10, activation="softmax", kernel_initializer=init),
            ],
            name="mnistbench_probe",
        )
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.train_on_batch(x, y)  # traces the train function: not timed
        _MODEL[backend] = (model, x, y)
    return _MODEL[backend]


def measure_probe() -> float:
    """Seconds of :data:`PROBE_STEPS` training steps of the fixed workload: the median of
    :data:`PROBE_TIMINGS` timings, in this process, on the configured backend."""
    model, x, y = _workload()
    timings = []
    for _ in range(PROBE_TIMINGS):
        start = time.perf_counter()
        for _ in range(PROBE_STEPS):
            model.train_on_batch(x, y)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def probe_columns(measured: dict, before: float | None, after: float | None) -> dict:
    """The probe's columns of a run's row from the two probes and its measured columns: the
    probe figures, the ``machine_changed`` flag and each ``<metric>_normalized``. Pure."""
    known = [p for p in (before, after) if p is not None and math.isfinite(p) and p > 0]
    probe = sum(known) / len(known) if known else math.nan
    columns = {
        "probe_version": PROBE_VERSION,
        "probe_seconds_before": before,
        "probe_seconds_after": after,
        "probe_seconds": probe,
        "machine_changed": (
            abs(after - before) / min(before, after) > MACHINE_CHANGED_TOLERANCE
            if len(known) == 2
            else None
        ),
    }
    for name in NORMALIZED:
        value = measured.get(name)
        if value is None or not known:
            columns[normalized(name)] = math.nan
        elif metric(name).better == HIGHER:  # a rate
            columns[normalized(name)] = value * probe
        else:
            columns[normalized(name)] = value / probe
    return columns
