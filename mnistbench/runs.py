"""Reading ``runs.csv``: the one module that knows how its cells are written.

Every reader (the reporters, ``mnistbench compare``, the pytest-benchmark writer, the
terminal) reads runs through these functions: a run's status, typed columns (text,
numbers, True/False flags, JSON lists), a configuration's key and its one label.

pandas reads a column of ``runs.csv`` as numbers, strings, booleans or floats
depending on which cells are empty; the functions here give each kind one
representation, whatever pandas guessed.

A configuration is a ``config_id`` (an architecture plus its non-default execution
options, e.g. ``dnn-spe32``) on one ``backend``; its rows are repeats. Its label is
the ``config_id``, followed by `` (backend)`` when the runs hold several backends:
``dnn-spe32`` or ``dnn-spe32 (jax)``. Older ``runs.csv`` files have no ``config_id``;
their runs are keyed by architecture.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench.errors import MnistbenchError

if TYPE_CHECKING:
    import pandas as pd

RUNS_CSV = "runs.csv"

# A run's status in runs.csv.
OK = "ok"
FAILED = "failed"
DIVERGED = "diverged"
INTERRUPTED = "interrupted"


def read_runs(output_dir: Path) -> pd.DataFrame:
    """The runs of ``output_dir`` as a DataFrame; MnistbenchError if there is no valid runs.csv."""
    import pandas as pd

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


def read_rows(output_dir: Path) -> list[dict[str, str]]:
    """The rows of ``runs.csv`` as dicts of strings, exactly as written; [] if there is none."""
    path = Path(output_dir) / RUNS_CSV
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


#: The columns without which a file is no runs.csv of mnistbench's.
REQUIRED_COLUMNS = ("run_id", "architecture", "status")


def read_result_rows(output_dir: Path) -> list[dict[str, str]]:
    """The rows of an output directory's ``runs.csv`` as written, for commands that take
    directories (``merge``, ``db import``): MnistbenchError, one line, when the file is
    missing or empty, not text, not CSV, or lacks :data:`REQUIRED_COLUMNS`."""
    path = Path(output_dir) / RUNS_CSV
    where = f"{path}: not found or empty; is {output_dir} an mnistbench output directory?"
    if not path.is_file():
        raise MnistbenchError(where)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as error:
        raise MnistbenchError(f"{path}: cannot be read as CSV: {error}") from None
    if not rows:
        raise MnistbenchError(where)
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise MnistbenchError(f"{path}: missing column(s) {', '.join(missing)}")
    return rows


# --- typed columns ----------------------------------------------------------------------


def is_ok(runs: pd.DataFrame) -> pd.Series:
    """True for successful runs; anything but "ok" (failed, diverged, interrupted, empty) is not."""
    return text(runs, "status").eq(OK)


def text(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as stripped strings, "" where missing (an all-empty column reads as floats)."""
    import pandas as pd

    if column not in runs.columns:
        return pd.Series("", index=runs.index, dtype=object)
    values = runs[column]
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def numeric(runs: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats; missing columns and unparsable cells become NaN."""
    import pandas as pd

    if column not in runs.columns:
        return pd.Series(math.nan, index=runs.index, dtype=float)
    return pd.to_numeric(runs[column], errors="coerce").astype(float)


_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


def flags(runs: pd.DataFrame, column: str) -> pd.Series:
    """A True/False column as Python bools, None where empty or unreadable."""
    return (
        text(runs, column)
        .str.lower()
        .map(lambda value: True if value in _TRUE else False if value in _FALSE else None)
    )


def json_list(value: Any) -> list:
    """A JSON-list cell as a list; empty for failed runs (NaN, "") and unreadable cells."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return []
    return parsed if isinstance(parsed, list) else []


# --- configurations ---------------------------------------------------------------------


def config_keys(runs: pd.DataFrame) -> pd.Series:
    """One key per row: the ``config_id``, or the architecture where there is none."""
    architecture = text(runs, "architecture")
    config = text(runs, "config_id")
    # Older runs.csv files have no config_id: the architecture is the best key they offer.
    return config.where(config != "", architecture)


def label(config_id: str, backend: str, several_backends: bool) -> str:
    """A configuration's one label: ``dnn-spe32``, or ``dnn-spe32 (jax)`` beside other backends.

    A run that failed before its backend was known keeps the bare name.
    """
    return f"{config_id} ({backend})" if several_backends and backend else str(config_id)


def several_backends(backends) -> bool:
    """Whether more than one backend is named among ``backends`` (empty ones ignored)."""
    return len({b for b in backends if isinstance(b, str) and b}) > 1


def labels(runs: pd.DataFrame) -> pd.Series:
    """One label per row (see :func:`label`): runs of one configuration share it."""
    import pandas as pd

    keys, backends = config_keys(runs), text(runs, "backend")
    several = several_backends(backends)
    return pd.Series(
        [label(k, b, several) for k, b in zip(keys, backends, strict=True)],
        index=runs.index,
        dtype=object,
    )


def in_order(values) -> list:
    """Distinct values in order of first appearance: the order the sweep ran them in."""
    return list(dict.fromkeys(values))


def reservation_warning(runs: pd.DataFrame) -> str | None:
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


def missing(value) -> bool:
    """True for an empty cell: None, NaN or NaT."""
    import pandas as pd

    return value is None or bool(pd.isna(value))
