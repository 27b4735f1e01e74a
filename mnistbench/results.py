"""Run records: the columns of ``runs.csv`` and writing them as runs finish."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mnistbench.errors import ResultsWriteError

# The columns of runs.csv, in order. Names carry their units; the same names
# are used in the code, the CSV and the README.
RUN_COLUMNS: list[str] = [
    "run_id",  # "<config_id>-r<repeat>"; unique within one output directory
    "config_id",  # architecture plus non-default options, e.g. "dnn-spe32-jiton"; repeats share it
    "architecture",
    "plugin",  # plugin (entry-point) name that registered the architecture
    "plugin_version",  # version of the distribution that ships the plugin
    "backend",  # Keras backend, e.g. "tensorflow"
    "backend_version",  # version of the backend's package
    "isolation",  # "process" (fresh worker per run) or "none"
    "executor",  # "local" or "ray"
    "node",  # host name of the machine that ran it
    "cpus_reserved",  # CPUs reserved for the run (local: all of the machine's)
    "epochs",  # the most epochs trained (fewer if a target accuracy stopped it)
    "batch_size",
    "steps_per_execution",  # passed to compile
    "jit_compile",  # XLA as resolved by Keras: True or False
    "train_samples",
    "test_samples",
    "seed",
    "repeat",  # 0-based repeat index; seed = base seed + repeat
    "target_accuracy",  # empty when no time-to-accuracy target was set
    "eval_every",  # evaluate every N steps for the target; empty = every epoch
    "fit_seconds",  # wall time of model.fit, all epochs (target evaluations included)
    "first_epoch_seconds",  # epoch 1: includes tracing/compilation
    "steady_epoch_seconds",  # mean of epochs 2..n; empty with one epoch
    "seconds_per_epoch",  # mean of epoch_seconds
    "epoch_seconds",  # JSON list, one float per epoch
    "epoch_accuracy",  # JSON list, training accuracy at the end of each epoch
    "epoch_loss",  # JSON list, training loss at the end of each epoch
    "time_to_accuracy_seconds",  # from fit start to the evaluation reaching the target
    "converged",  # True/False when a target was set; empty otherwise
    "train_samples_per_second",  # train_samples * epochs trained / fit_seconds
    "test_accuracy",
    "test_loss",
    "inference_samples_per_second",  # model.predict over the whole test set
    "latency_ms",  # median (p50) single-sample prediction latency
    "latency_p95_ms",
    "latency_p99_ms",
    "sample_predictions",  # JSON list: predicted labels of the digits in samples.npz
    "params",  # trainable + non-trainable parameter count
    "inference_flops_per_sample",  # analytic, a multiply-add counts 2
    "train_flops_per_sample",  # analytic: 3x inference (forward + backward)
    "train_flops_per_second",  # achieved during steady-state training
    "inference_flops_per_second",  # achieved during batch inference
    "peak_flops_per_second",  # large float32 matmul on this machine, measured once per sweep
    "train_peak_fraction",  # train_flops_per_second / peak_flops_per_second
    "inference_peak_fraction",  # inference_flops_per_second / peak_flops_per_second
    "peak_memory_mb",  # peak resident memory of the process that ran it
    "status",  # "ok", "failed" (error, crash, timeout) or "diverged" (loss became NaN/inf)
    "error",  # one line; empty when status is "ok"
    "started_at",  # ISO 8601, UTC
]


#: How many test digits each run predicts for ``predictions.png`` (saved in samples.npz).
SAMPLE_COUNT = 16


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: Path | str, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it onto ``path``.

    Readers see either the old complete file or the new complete one, never a
    partial write. On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise ResultsWriteError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        # mkstemp creates 0600; results are meant to be shared like any file the user writes.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, ResultsWriteError):
            raise
        # A full disk or a permission problem: one line naming the file; the
        # previous version of the file, if any, is untouched.
        raise ResultsWriteError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


#: MNIST's split sizes: a run without a limit uses all of them.
TRAIN_SAMPLES = 60_000
TEST_SAMPLES = 10_000

RUNS_CSV = "runs.csv"
SAMPLES_NPZ = "samples.npz"
ENVIRONMENT_JSON = "environment.json"


def make_row(
    config,
    architecture,
    measured: dict,
    *,
    status: str,
    error: str,
    started_at: str,
    isolation: str,
) -> dict:
    """One ``runs.csv`` row from a configuration, its architecture's origin and what was measured.

    A failed run keeps its configuration and error; its measured columns are empty.
    """
    row = {column: None for column in RUN_COLUMNS}
    row.update(
        run_id=config.run_id,
        config_id=config.config_id,
        architecture=config.architecture,
        plugin=architecture.plugin,
        plugin_version=architecture.version,
        isolation=isolation,
        executor="local",
        node=platform.node(),
        cpus_reserved=os.cpu_count(),
        backend=config.backend,
        epochs=config.epochs,
        batch_size=config.batch_size,
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
        seed=config.run_seed,
        repeat=config.repeat,
        target_accuracy=config.target_accuracy,
        eval_every=config.eval_every,
        train_samples=config.train_limit or TRAIN_SAMPLES,
        test_samples=config.test_limit or TEST_SAMPLES,
        started_at=started_at,
    )
    row.update({key: value for key, value in measured.items() if key in row})
    # "Not measured" is an empty cell, as the README says, not the text "nan".
    for key, value in row.items():
        if isinstance(value, float) and math.isnan(value):
            row[key] = None
    row["status"] = status
    # One line, so the CSV stays one row per run and the summary table stays readable.
    row["error"] = " ".join(error.split())
    return row


class RunsWriter:
    """Writes ``runs.csv`` in ``output_dir``, rewriting it atomically after each run.

    The file on disk is always complete: the header plus every finished run, in
    plan order, so a crash or Ctrl-C between runs loses nothing already measured.
    ``rows`` are earlier rows to keep (a resumed sweep's finished runs).
    """

    def __init__(self, output_dir: Path, order: list[str], rows: list[dict] = ()) -> None:
        self.path = Path(output_dir) / RUNS_CSV
        self.position = {run_id: index for index, run_id in enumerate(order)}
        self.rows: dict[str, dict] = {row["run_id"]: row for row in rows}

    def append(self, row: dict) -> None:
        """Add (or replace) a run's row and rewrite the file; ResultsWriteError if it cannot."""
        import csv

        self.rows[row["run_id"]] = row
        ordered = sorted(self.rows.values(), key=lambda r: self.position.get(r["run_id"], 1e9))
        try:
            with atomic_writer(self.path, "w") as handle:
                writer = csv.DictWriter(
                    handle, fieldnames=RUN_COLUMNS, lineterminator="\n", extrasaction="ignore"
                )
                writer.writeheader()
                writer.writerows(ordered)
        except OSError as error:
            raise ResultsWriteError(
                f"cannot write {self.path}: {error.strerror or error}; the runs finished "
                "before this one are intact in it"
            ) from None


def read_rows(output_dir: Path) -> list[dict]:
    """The rows of ``runs.csv`` as dicts of strings, as written; [] if there is none."""
    import csv

    path = Path(output_dir) / RUNS_CSV
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_runs(output_dir: Path):
    """The runs of ``output_dir`` as a DataFrame; MnistbenchError if there is no valid runs.csv."""
    import pandas as pd

    from mnistbench.errors import MnistbenchError

    path = Path(output_dir) / RUNS_CSV
    if not path.is_file():
        raise MnistbenchError(f"{path}: not found; is {output_dir} an mnistbench output directory?")
    try:
        runs = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as error:
        raise MnistbenchError(f"{path}: cannot be read as CSV: {error}") from None
    missing = [c for c in ("architecture", "status") if c not in runs.columns]
    if missing:
        raise MnistbenchError(f"{path}: missing column(s) {', '.join(missing)}")
    return runs


def reservation_warning(runs) -> str | None:
    """A warning when the runs were measured under different executors or CPU reservations.

    Wall times taken with 1 CPU reserved and with a whole machine are not comparable;
    returns None when every run shares one (executor, cpus_reserved).
    """
    columns = [c for c in ("executor", "cpus_reserved") if c in runs.columns]
    if not columns:
        return None
    kinds = runs[columns].dropna().astype(str).drop_duplicates()
    if len(kinds) <= 1:
        return None
    listed = ", ".join("/".join(row) for row in kinds.itertuples(index=False))
    return (
        f"these runs were measured under different reservations (executor/CPUs: {listed}): "
        "their times are not comparable with each other"
    )
