"""Writing run records: a ``runs.csv`` row from a run, written atomically as each run finishes.

The columns themselves are declared in :mod:`mnistbench.metrics`; reading them back
is :mod:`mnistbench.runs`.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mnistbench.atomic import atomic_writer
from mnistbench.data import TEST_SAMPLES, TRAIN_SAMPLES
from mnistbench.errors import ResultsWriteError
from mnistbench.metrics import RUN_COLUMNS
from mnistbench.runs import RUNS_CSV

#: How many test digits each run predicts for ``predictions.png`` (saved in samples.npz).
SAMPLE_COUNT = 16


SAMPLES_NPZ = "samples.npz"
ENVIRONMENT_JSON = "environment.json"


def utc_now() -> str:
    """Now, in UTC, ISO 8601 to the second: the timestamps of rows and manifests."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Placement:
    """Where a run ran: the ``runs.csv`` columns that the executor, not the run, knows."""

    executor: str  # "local" or "ray"
    isolation: str  # "process" or "none"
    node: str  # host name
    cpus_reserved: int  # CPUs the run's thread pools are limited to

    @classmethod
    def here(cls, isolation: str) -> Placement:
        """A local run on this machine, with all of its CPUs."""
        return cls("local", isolation, platform.node(), os.cpu_count() or 1)


def make_row(
    config,
    architecture,
    measured: dict,
    *,
    status: str,
    error: str,
    started_at: str,
    placement: Placement,
) -> dict:
    """One ``runs.csv`` row from a configuration, its architecture's origin, where it ran and
    what was measured.

    A failed run keeps its configuration, placement and error; its measured columns are empty.
    Its backend is the one it was to run on (``--backend``, else the configured one).
    """
    from mnistbench.environment import configured_backend

    row = {column: None for column in RUN_COLUMNS}
    row.update(
        run_id=config.run_id,
        config_id=config.config_id,
        architecture=config.architecture,
        plugin=architecture.plugin,
        plugin_version=architecture.version,
        # The backend a failed run was to use, so it keys like the runs that succeeded.
        backend=config.backend or configured_backend(),
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
    row.update(asdict(placement))
    # "Not measured" is an empty cell, as the README says, not the text "nan".
    for key, value in row.items():
        if isinstance(value, float) and math.isnan(value):
            row[key] = None
    row["status"] = status
    # One line, so the CSV stays one row per run and the summary table stays readable.
    row["error"] = " ".join(error.split())
    return row


def write_runs_csv(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` as ``runs.csv`` at ``path``, atomically: the header of
    :data:`RUN_COLUMNS`, a missing cell empty, other keys left out."""
    import csv

    with atomic_writer(path, "w") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=RUN_COLUMNS, restval="", lineterminator="\n", extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)


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
        self.rows[row["run_id"]] = row
        ordered = sorted(self.rows.values(), key=lambda r: self.position.get(r["run_id"], 1e9))
        try:
            write_runs_csv(self.path, ordered)
        except ResultsWriteError as error:  # atomic_writer named the file and the cause
            raise ResultsWriteError(
                f"{error}; the runs finished before this one are intact in it"
            ) from None


def merge_directories(directories: list[Path], output_dir: Path) -> Path:
    """One result directory from several sweeps of one side: every row of their
    ``runs.csv``, in order, as ``output_dir/runs.csv``; returns ``output_dir``.

    This is how a side is measured in halves that alternate with the other side's (base,
    head, base, head on one CI runner), so that drift hits both sides alike. A run id
    already taken by an earlier directory gets ``-m<k>`` (``k``: its directory's place,
    from 1). ``environment.json`` is the first directory's, with ``merged_from`` listing
    the directories; a field that differs between them (the CPU model, the commit) holds
    their values joined by `` / ``, so ``compare`` sees that the sides did not run on one
    machine. ``samples.npz`` is the first one's. ``output_dir`` must exist.
    """
    import json
    import shutil

    from mnistbench.environment import read_environment, write_environment
    from mnistbench.runs import read_result_rows

    read = [read_result_rows(directory) for directory in directories]  # all checked first
    rows: list[dict] = []
    taken: set[str] = set()
    environments = []
    for place, (directory, directory_rows) in enumerate(zip(directories, read, strict=True), 1):
        for row in directory_rows:
            if row["run_id"] in taken:
                row = {**row, "run_id": f"{row['run_id']}-m{place}"}
            taken.add(row["run_id"])
            rows.append(row)
        environments.append(read_environment(directory))
    output_dir = Path(output_dir)
    write_runs_csv(output_dir / RUNS_CSV, rows)
    merged = dict(environments[0])
    for key, value in environments[0].items():
        values = [json.dumps(env.get(key), sort_keys=True) for env in environments]
        if isinstance(value, str) and len(set(values)) > 1:
            merged[key] = " / ".join(dict.fromkeys(str(env.get(key)) for env in environments))
    merged["merged_from"] = [str(Path(directory).resolve()) for directory in directories]
    write_environment(output_dir, merged)
    # The merged directory is no sweep: a manifest left by --force would lend it a sweep id.
    (output_dir / "manifest.json").unlink(missing_ok=True)
    samples = Path(directories[0]) / SAMPLES_NPZ
    if samples.is_file():
        shutil.copyfile(samples, output_dir / SAMPLES_NPZ)
    return output_dir
