"""Run records: the columns of ``runs.csv`` and writing them as runs finish."""

from __future__ import annotations

# The columns of runs.csv, in order. Names carry their units; the same names
# are used in the code, the CSV and the README.
RUN_COLUMNS: list[str] = [
    "run_id",  # "<architecture>-<seed>"; unique within one output directory
    "architecture",
    "plugin",  # plugin (entry-point) name that registered the architecture
    "plugin_version",  # version of the distribution that ships the plugin
    "backend",  # Keras backend, e.g. "tensorflow"
    "epochs",
    "batch_size",
    "train_samples",
    "test_samples",
    "seed",
    "fit_seconds",  # wall time of model.fit, all epochs
    "seconds_per_epoch",  # mean of epoch_seconds
    "epoch_seconds",  # JSON list, one float per epoch
    "epoch_accuracy",  # JSON list, training accuracy at the end of each epoch
    "epoch_loss",  # JSON list, training loss at the end of each epoch
    "train_samples_per_second",  # train_samples * epochs / fit_seconds
    "test_accuracy",
    "test_loss",
    "inference_samples_per_second",  # model.predict over the whole test set
    "latency_ms",  # median single-sample prediction latency
    "sample_predictions",  # JSON list: predicted labels of the digits in samples.npz
    "params",  # trainable + non-trainable parameter count
    "peak_memory_mb",  # peak resident memory of the process that ran it
    "status",  # "ok" or "failed"
    "error",  # one line; empty when status is "ok"
    "started_at",  # ISO 8601, UTC
]

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

#: How many test digits each run predicts for ``predictions.png`` (saved in samples.npz).
SAMPLE_COUNT = 16


@contextlib.contextmanager
def atomic_writer(path: Path | str, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it onto ``path``.

    Readers see either the old complete file or the new complete one, never a
    partial write. On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
