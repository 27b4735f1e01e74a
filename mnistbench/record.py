"""The run record: one immutable, validated :class:`Run` per run, and ``runs.csv``, its
one reader and writer.

A run's record is made once, where the run ends (in its worker, or by the driver for a
run whose worker died), and never changes after. Its fields are the columns of
:mod:`mnistbench.columns`, each of its column's kind: text is a ``str`` ("" when empty),
numbers are ``int`` or ``float`` (None when not measured, never NaN), flags ``bool`` (None
when unknown), lists tuples (``()`` when empty). Making a record checks every field, so a
value of the wrong type, or a field no column declares, is an error where it is made,
never a silent drop.

``runs.csv`` holds one record per row, in the registry's column order after a leading
``format_version`` column (:data:`FORMAT_VERSION`). Files written before that column
existed are format 1 and still read: their cells were written by the same rules, and a
file without a ``config_id`` column keys its runs by architecture. Adding a column does
not change the format (a missing column reads as not measured); changing what a cell
holds or how it is written does, and a file of a newer format is refused in one line.

For the analyses that work on tables (medians per configuration, history), :func:`frame`
turns records into a pandas DataFrame typed the same way: text as ``str``, numbers as
floats with NaN where not measured, flags as True/False/None, lists as tuples.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench import layout
from mnistbench.atomic import atomic_writer
from mnistbench.columns import (
    BOOL,
    COLUMNS,
    FLOAT,
    FORMAT_COLUMN,
    INT,
    LIST,
    RUN_COLUMNS,
    TEXT,
    Column,
)
from mnistbench.errors import MnistbenchError, ResultsWriteError

if TYPE_CHECKING:
    import pandas as pd

#: The format of ``runs.csv`` this mnistbench writes; it reads this one and every older one.
FORMAT_VERSION = 2

# A run's status.
OK = "ok"
FAILED = "failed"
DIVERGED = "diverged"
INTERRUPTED = "interrupted"

#: The columns without which a file is no runs.csv of mnistbench's.
REQUIRED_COLUMNS = ("run_id", "architecture", "status")


class RecordError(MnistbenchError):
    """A record that cannot be made, or a ``runs.csv`` that cannot be read."""


def utc_now() -> str:
    """Now, in UTC, ISO 8601 to the second: the timestamps of records and manifests."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- the record ------------------------------------------------------------------------------

_PYTHON_TYPES = {TEXT: str, INT: int | None, FLOAT: float | None, BOOL: bool | None, LIST: tuple}
_EMPTY = {TEXT: "", INT: None, FLOAT: None, BOOL: None, LIST: ()}


def _checked(column: Column, value: Any) -> Any:
    """``value`` as ``column``'s kind holds it; RecordError for a value of another type."""
    kind = column.kind
    if value is None:
        return _EMPTY[kind]
    if kind == TEXT:
        if isinstance(value, str):
            return value
    elif kind == INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and (math.isnan(value) or value.is_integer()):
            return None if math.isnan(value) else int(value)
        if hasattr(value, "item") and not isinstance(value, bool):  # a numpy integer
            return _checked(column, value.item())
    elif kind == FLOAT:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return None if math.isnan(value) else float(value)
        if hasattr(value, "item"):  # a numpy float
            return _checked(column, value.item())
    elif kind == BOOL:
        if isinstance(value, bool):
            return value
        if hasattr(value, "item") and isinstance(value.item(), bool):  # numpy.bool_
            return value.item()
    elif kind == LIST and isinstance(value, list | tuple):
        return tuple(value)
    raise RecordError(
        f"run record field {column.name!r} holds {kind} values, not {type(value).__name__} "
        f"({value!r})"
    )


class _RunMethods:
    """What every :class:`Run` does besides holding its fields."""

    __slots__ = ()

    def __post_init__(self) -> None:
        for column in COLUMNS:
            object.__setattr__(self, column.name, _checked(column, getattr(self, column.name)))
        if not self.run_id or not self.architecture or not self.status:  # type: ignore[attr-defined]
            raise RecordError("a run record needs a run_id, an architecture and a status")
        if not self.config_id:  # type: ignore[attr-defined]
            # Runs from before configuration ids are keyed by their architecture.
            object.__setattr__(self, "config_id", self.architecture)  # type: ignore[attr-defined]

    @property
    def ok(self) -> bool:
        """Whether the run succeeded; failed, diverged and interrupted runs did not."""
        return self.status == OK  # type: ignore[attr-defined]

    def values(self) -> dict[str, Any]:
        """The fields as a dict, in column order."""
        return {name: getattr(self, name) for name in RUN_COLUMNS}

    def cells(self) -> dict[str, str]:
        """The fields as ``runs.csv`` writes them, in column order."""
        return {column.name: _cell(column, getattr(self, column.name)) for column in COLUMNS}

    def replace(self, **changes: Any) -> Run:
        """A copy with ``changes`` (checked like any new record)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _field(column: Column) -> tuple[str, Any, Any]:
    default = dataclasses.field(default=_EMPTY[column.kind])
    return column.name, _PYTHON_TYPES[column.kind], default


Run = dataclasses.make_dataclass(
    "Run",
    [_field(column) for column in COLUMNS],
    bases=(_RunMethods,),
    frozen=True,
    kw_only=True,
    slots=True,
)
Run.__module__ = __name__  # where pickle finds it: records travel from workers to the driver
Run.__doc__ = """One run of a sweep: its configuration, where it ran, what it measured, how it
ended. One keyword field per column of :mod:`mnistbench.columns`; see the module's text
for the types. ``Run(run_id=..., architecture=..., status=..., ...)``: a field no column
declares is a TypeError, a value of the wrong type a :class:`RecordError`."""


def new_run(**fields: Any) -> Run:
    """A record from ``fields``; RecordError (one line) for an unknown field or a value of
    the wrong type, so a misspelled or stale field fails where the record is made."""
    unknown = sorted(set(fields) - set(RUN_COLUMNS))
    if unknown:
        raise RecordError(f"run record: unknown field(s) {', '.join(unknown)}")
    return Run(**fields)


# --- cells -----------------------------------------------------------------------------------


def _cell(column: Column, value: Any) -> str:
    if value is None or value == "" or value == ():
        return ""
    if column.kind == LIST:
        return json.dumps(list(value), separators=(",", ":"))
    if column.kind == FLOAT:
        return repr(float(value))
    return str(value)


_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


def _parse(column: Column, cell: str) -> Any:
    """A ``runs.csv`` cell as ``column``'s kind holds it; ValueError when it cannot be."""
    cell = cell.strip()
    if column.kind == TEXT:
        return cell
    if not cell:
        return _EMPTY[column.kind]
    if column.kind == INT:
        number = float(cell)
        if math.isnan(number):
            return None
        if not number.is_integer():
            raise ValueError(f"{cell!r} is not a whole number")
        return int(number)
    if column.kind == FLOAT:
        number = float(cell)
        return None if math.isnan(number) else number
    if column.kind == BOOL:
        if cell.lower() in _TRUE:
            return True
        if cell.lower() in _FALSE:
            return False
        raise ValueError(f"{cell!r} is not True or False")
    parsed = json.loads(cell)
    if not isinstance(parsed, list):
        raise ValueError(f"{cell!r} is not a JSON list")
    return tuple(parsed)


def from_cells(cells: dict[str, str], *, where: str = "runs.csv") -> Run:
    """The record of one ``runs.csv`` row (cells as the file holds them, any known format).

    Columns this mnistbench does not know are left out (a newer mnistbench of the same
    format may add some); columns the row lacks are empty. RecordError names ``where``
    and the column for a cell that cannot be read.
    """
    fields: dict[str, Any] = {}
    for column in COLUMNS:
        cell = cells.get(column.name)
        if cell is None:
            continue
        try:
            fields[column.name] = _parse(column, cell)
        except ValueError as error:
            raise RecordError(f"{where}: column {column.name}: {error}") from None
    if not fields.get("run_id") or not fields.get("architecture") or not fields.get("status"):
        raise RecordError(f"{where}: a row without a run_id, architecture or status")
    return Run(**fields)


# --- runs.csv --------------------------------------------------------------------------------


def read(directory: Path | str, *, require_runs: bool = False) -> list[Run]:
    """The records of ``directory``'s ``runs.csv``, in file order.

    RecordError, one line naming the file, when it is missing or empty, is not UTF-8
    text or CSV, lacks a :data:`REQUIRED_COLUMNS` column, is of a newer format than
    :data:`FORMAT_VERSION`, or holds a cell that cannot be read; with ``require_runs``
    (commands that take result directories: merge, db import) also when it holds no run.
    """
    path = layout.RUNS_CSV.of(directory)
    if not path.is_file():
        raise RecordError(f"{path}: not found; is {directory} an mnistbench output directory?")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise RecordError(f"{path}: cannot be read as CSV: {error}") from None
    if not columns:
        raise RecordError(f"{path}: empty; is {directory} an mnistbench output directory?")
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise RecordError(f"{path}: missing column(s) {', '.join(missing)}")
    if require_runs and not rows:
        raise RecordError(f"{path}: holds no run; is {directory} an mnistbench output directory?")
    versions = {row.get(FORMAT_COLUMN) or "1" for row in rows}
    for version in versions:
        if not version.isdigit() or int(version) > FORMAT_VERSION:
            raise RecordError(
                f"{path}: runs.csv format {version}, newer than this mnistbench reads "
                f"({FORMAT_VERSION}): upgrade mnistbench"
            )
    return [from_cells(row, where=f"{path} row {i}") for i, row in enumerate(rows, start=2)]


def read_if_present(directory: Path | str) -> list[Run]:
    """:func:`read`, or [] when the directory has no ``runs.csv`` yet."""
    if not layout.RUNS_CSV.of(directory).is_file():
        return []
    return read(directory)


def write(path: Path | str, runs: Iterable[Run]) -> Path:
    """Write ``runs`` as a ``runs.csv`` at ``path``, atomically, in the current format."""
    with atomic_writer(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([FORMAT_COLUMN, *RUN_COLUMNS])
        for run in runs:
            writer.writerow([FORMAT_VERSION, *run.cells().values()])
    return Path(path)


class RunsWriter:
    """Writes ``runs.csv`` in ``output_dir``, rewriting it atomically after each run.

    The file on disk is always complete: the header plus every finished run, in
    plan order, so a crash or Ctrl-C between runs loses nothing already measured.
    ``runs`` are earlier records to keep (a resumed sweep's finished runs).
    """

    def __init__(self, output_dir: Path, order: Sequence[str], runs: Iterable[Run] = ()) -> None:
        self.path = layout.RUNS_CSV.of(output_dir)
        self.position = {run_id: index for index, run_id in enumerate(order)}
        self.runs: dict[str, Run] = {run.run_id: run for run in runs}

    def append(self, run: Run) -> None:
        """Add (or replace) a run's record and rewrite the file; ResultsWriteError if it cannot."""
        self.runs[run.run_id] = run
        ordered = sorted(self.runs.values(), key=lambda r: self.position.get(r.run_id, 1e9))
        try:
            write(self.path, ordered)
        except ResultsWriteError as error:  # atomic_writer named the file and the cause
            raise ResultsWriteError(
                f"{error}; the runs finished before this one are intact in it"
            ) from None


# --- tables ----------------------------------------------------------------------------------


def frame(runs: Sequence[Run], extra: Sequence[dict[str, Any]] | None = None) -> pd.DataFrame:
    """``runs`` as a DataFrame, one row per run in order, one column per field, typed as the
    record types them: text as ``str``, numbers as float64 (NaN: not measured), flags as
    objects (True, False, None), lists as tuples.

    ``extra``: per run, more columns to add (the sweep a stored run belongs to).
    """
    import pandas as pd

    data: dict[str, Any] = {}
    for column in COLUMNS:
        values = [getattr(run, column.name) for run in runs]
        if column.kind in (INT, FLOAT):
            data[column.name] = pd.Series(
                [math.nan if v is None else float(v) for v in values], dtype=float
            )
        else:
            data[column.name] = pd.Series(values, dtype=object)
    table = pd.DataFrame(data)
    if extra is not None:
        more = pd.DataFrame(list(extra))
        for name in more.columns:
            table[name] = more[name].to_numpy()
    return table


def ok(table: pd.DataFrame) -> pd.Series:
    """True for the successful runs of a :func:`frame`."""
    return table["status"] == OK


# --- configurations --------------------------------------------------------------------------


def label(config_id: str, backend: str, several_backends: bool) -> str:
    """A configuration's one label: ``dnn-spe32``, or ``dnn-spe32 (jax)`` beside other backends.

    A run that failed before its backend was known keeps the bare name.
    """
    return f"{config_id} ({backend})" if several_backends and backend else str(config_id)


def several_backends(backends: Iterable[str]) -> bool:
    """Whether more than one backend is named among ``backends`` (empty ones ignored)."""
    return len({b for b in backends if isinstance(b, str) and b}) > 1


def labels(table: pd.DataFrame) -> pd.Series:
    """One label per row of a :func:`frame` (see :func:`label`): a configuration's runs
    share it."""
    import pandas as pd

    several = several_backends(table["backend"])
    return pd.Series(
        [
            label(config, backend, several)
            for config, backend in zip(table["config_id"], table["backend"], strict=True)
        ],
        index=table.index,
        dtype=object,
    )


def in_order(values: Iterable[Any]) -> list[Any]:
    """Distinct values in order of first appearance: the order the sweep ran them in."""
    return list(dict.fromkeys(values))


def reservation_warning(runs: Sequence[Run]) -> str | None:
    """A warning when the runs were measured under different executors or CPU reservations.

    Wall times taken with 1 CPU reserved and with a whole machine are not comparable;
    None when every run shares one (executor, cpus_reserved).
    """
    kinds = in_order(
        (run.executor, run.cpus_reserved) for run in runs if run.executor or run.cpus_reserved
    )
    if len(kinds) <= 1:
        return None
    listed = ", ".join(f"{executor}/{cpus}" for executor, cpus in kinds)
    return (
        f"these runs were measured under different reservations (executor/CPUs: {listed}): "
        "their times are not comparable with each other"
    )
