"""The results database: every run of every sweep, with its environment, in one SQLite file.

``runs.csv`` stays the record of one output directory; the database gathers all of
them so that history can be queried across sweeps, commits and machines. Tables:

- ``meta(key, value)``: ``schema_version``.
- ``sweeps``: one row per sweep (its id, start, output directory, command, git commit
  and dirtiness, versions, CPU, platform, and the whole ``environment.json``).
- ``runs``: one row per run, keyed by ``(sweep_id, run_id)``, with every column of
  ``runs.csv`` as :mod:`mnistbench.columns` declares them; a rerun replaces its row.

Cells hold what ``runs.csv`` holds, with numbers as numbers: empty cells are NULL,
True/False are the text ``True``/``False``, JSON lists are text. Columns added to the
registry since a database was created are added to it when it is next opened; other
schema changes are the ordered :data:`MIGRATIONS`. A database written by a newer
mnistbench (a higher schema version) is refused rather than guessed at.

Writers use WAL mode, a busy timeout and one short transaction per write, so several
sweeps can write to one database at once and a killed sweep leaves it readable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench import layout, record
from mnistbench.columns import COLUMNS, RUN_COLUMNS, TEXT, Column
from mnistbench.environment import read_environment
from mnistbench.errors import MnistbenchError
from mnistbench.manifest import read_sweep_identity
from mnistbench.record import Run

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("mnistbench")

#: Seconds a writer waits for another's transaction before giving up.
BUSY_TIMEOUT_SECONDS = 30.0

#: The columns of ``sweeps`` that :func:`read_runs` joins to each run, as it names them.
SWEEP_COLUMNS = (
    "sweep_id",
    "sweep_started_at",
    "git_commit",
    "git_dirty",
    "mnistbench_version",
    "cpu_model",
    "platform",
    "python",
    "command",
    "output_dir",
)


class DatabaseError(MnistbenchError):
    """The results database cannot be read or written: missing, not SQLite, too new."""


# --- schema and migrations ----------------------------------------------------------------


def _create_tables(connection: sqlite3.Connection) -> None:
    # The runs columns of runs.csv are not listed here: they come from the registry
    # (see _add_registry_columns), so a migration never has to name them.
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    connection.execute(
        "CREATE TABLE sweeps (sweep_id TEXT PRIMARY KEY, started_at TEXT, output_dir TEXT, "
        "command TEXT, git_commit TEXT, git_dirty TEXT, mnistbench_version TEXT, "
        "cpu_model TEXT, platform TEXT, python TEXT, backends TEXT, packages TEXT, "
        "plugins TEXT, environment TEXT)"
    )
    connection.execute(
        "CREATE TABLE runs (sweep_id TEXT NOT NULL, run_id TEXT NOT NULL, "
        "PRIMARY KEY (sweep_id, run_id))"
    )


#: Schema changes in order: ``(version, migrate)``; ``migrate`` brings a database at the
#: previous version to ``version``. A new change is a new entry at the end; never edit
#: an old one, databases in the wild were made by it.
MIGRATIONS: tuple[tuple[int, Callable[[sqlite3.Connection], None]], ...] = ((1, _create_tables),)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _column_type(name: str) -> str:
    # A metric is always a number; REAL affinity keeps it one. Other columns take values
    # as they come (numbers stay numbers, text stays text: plugin_version "1.10" is text).
    column = next((c for c in COLUMNS if c.name == name), None)
    return "REAL" if column is not None and column.is_metric else ""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def _stored_version(connection: sqlite3.Connection, path: Path) -> int:
    """The schema version of an open database: 0 for an empty one."""
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    if not tables:
        return 0
    if "meta" not in tables:
        raise DatabaseError(f"{path}: an SQLite database, but not an mnistbench results database")
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise DatabaseError(f"{path}: no readable schema_version in its meta table") from None


def _refuse_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{path}: results database schema version {version} is newer than this "
            f"mnistbench's ({SCHEMA_VERSION}); upgrade mnistbench or choose another --db"
        )


def _sqlite_error(path: Path, error: sqlite3.Error) -> DatabaseError:
    if getattr(error, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return DatabaseError(f"{path}: not an SQLite database ({error})")
    return DatabaseError(f"{path}: cannot use the results database: {error}")


# --- cells ----------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?\d+")


def _cell(value: Any) -> Any:
    """A value as the database stores it: what runs.csv would hold, numbers as numbers."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse(value)
    if hasattr(value, "item") and not isinstance(value, (list, tuple)):
        value = value.item()  # a numpy scalar
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else float(value)
    if isinstance(value, float):
        return None if math.isnan(value) else value
    return _parse(str(value))


def _parse(text: str) -> Any:
    # The same cell gives the same value whether it comes from a sweep's row or from
    # runs.csv (db import), so re-importing a recorded sweep changes nothing.
    # Only text that a number writes back unchanged is a number: plugin_version "1.10"
    # and node "007" stay text.
    if text == "":
        return None
    if _INTEGER.fullmatch(text):
        return _cell(int(text)) if str(int(text)) == text else text
    try:
        number = float(text)
    except ValueError:
        return text
    return _cell(number) if repr(number) == text or math.isnan(number) else text


def _run_cell(column: Column, cell: str) -> Any:
    """A record's ``runs.csv`` cell as the database stores it: text columns as the text they
    hold (an architecture called ``nan`` or a node called ``1e5`` is no number), the others
    as :func:`_cell` reads them; an empty cell as NULL."""
    if column.kind == TEXT:
        return cell or None
    return _cell(cell)


def _csv_text(value: Any) -> str:
    return "" if value is None else str(value) if not isinstance(value, float) else repr(value)


# --- the database --------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """What :meth:`Database.import_directory` did: the sweep and its runs added or updated."""

    sweep_id: str
    added: int
    updated: int
    unchanged: int


def check(path: Path) -> None:
    """Refuse, upfront, a database a sweep could not write: not SQLite, or a newer schema.

    A missing file is fine (a sweep creates it); nothing is written.
    """
    path = Path(path)
    if not path.exists():
        return
    if path.is_dir():
        raise DatabaseError(f"{path}: is a directory, not a results database")
    connection = _connect_read_only(path)
    try:
        _refuse_newer(_stored_version(connection, path), path)
    except sqlite3.Error as error:
        raise _sqlite_error(path, error) from None
    finally:
        connection.close()


def _connect_read_only(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as error:
        raise _sqlite_error(path, error) from None


class Database:
    """An open results database: created or migrated to :data:`SCHEMA_VERSION` on opening.

    DatabaseError (one line naming the file) when it is not SQLite, is newer than this
    mnistbench, or cannot be created or written.
    """

    def __init__(self, path: Path, *, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self.timeout = timeout
        if self.path.is_dir():
            raise DatabaseError(f"{self.path}: is a directory, not a results database")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseError(f"cannot create {self.path}: {error.strerror or error}") from None
        try:
            # Autocommit: every write below is its own explicit, short transaction.
            self.connection = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as error:
            raise _sqlite_error(self.path, error) from None
        try:
            self._open()
        except sqlite3.Error as error:
            self.connection.close()
            raise _sqlite_error(self.path, error) from None
        except BaseException:
            self.connection.close()
            raise

    def _open(self) -> None:
        connection = self.connection
        _refuse_newer(_stored_version(connection, self.path), self.path)
        self._switch_to_wal()
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a killed process
        with self._transaction():
            # Read again inside the write lock: another process may have migrated meanwhile.
            version = _stored_version(connection, self.path)
            _refuse_newer(version, self.path)
            for target, migrate in MIGRATIONS:
                if target > version:
                    migrate(connection)
            if version < SCHEMA_VERSION:
                connection.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            self._add_registry_columns()

    def _switch_to_wal(self) -> None:
        """WAL mode, once per database file. Switching needs the file to itself, and SQLite
        answers "database is locked" at once, without its busy timeout, when another
        process opens the new file at the same moment: retry until the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = self.connection.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":
                    self.connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _add_registry_columns(self) -> None:
        present = set(_table_columns(self.connection, "runs"))
        for name in RUN_COLUMNS:
            if name not in present:
                self.connection.execute(
                    f"ALTER TABLE runs ADD COLUMN {_quote(name)} {_column_type(name)}".rstrip()
                )

    def _transaction(self):
        return _Transaction(self.connection)

    def close(self) -> None:
        """Close the connection; the database stays as the last transaction left it."""
        self.connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return _stored_version(self.connection, self.path)

    # --- writing -------------------------------------------------------------------------

    def record_sweep(
        self, sweep_id: str, environment: dict, *, started_at: str, output_dir: Path | str
    ) -> None:
        """Add or replace a sweep's row: its start, output directory and ``environment.json``."""
        with self._transaction():
            self._upsert_sweep(sweep_id, environment, started_at, output_dir)

    def record_run(self, sweep_id: str, run: Run) -> str:
        """Add or replace the record ``run`` of sweep ``sweep_id``.

        Returns "added", "updated" or "unchanged".
        """
        with self._transaction():
            return self._upsert_run(sweep_id, run)

    def import_directory(self, directory: Path) -> Imported:
        """Add an output directory's runs (``runs.csv``) and environment, in one transaction.

        The sweep is the one its ``manifest.json`` names; older directories get an id
        derived from their manifest or path, so importing twice adds nothing.
        """
        directory = _output_dir(directory)
        runs = record.read(directory, require_runs=True)
        sweep_id, created_at = read_sweep_identity(directory)
        started = created_at or min((run.started_at for run in runs), default="")
        outcomes = {"added": 0, "updated": 0, "unchanged": 0}
        with self._transaction():
            self._upsert_sweep(sweep_id, read_environment(directory), started, directory)
            for run in runs:
                outcomes[self._upsert_run(sweep_id, run)] += 1
        return Imported(sweep_id, **outcomes)

    def import_directories(self, directories: Sequence[Path]) -> list[Imported]:
        """:meth:`import_directory` each; every one is checked first, so a wrong path
        imports nothing."""
        checked = [_output_dir(directory) for directory in directories]
        for directory in checked:
            record.read(directory, require_runs=True)
        return [self.import_directory(directory) for directory in checked]

    def _upsert_sweep(
        self, sweep_id: str, environment: dict, started_at: str, output_dir: Path | str
    ) -> None:
        packages = environment.get("packages") or {}
        values = {
            "sweep_id": sweep_id,
            "started_at": started_at or None,
            "output_dir": str(Path(output_dir).resolve()),
            "command": environment.get("command"),
            "git_commit": environment.get("git_commit"),
            "git_dirty": (environment.get("commit_info") or {}).get("dirty"),
            "mnistbench_version": packages.get("mnistbench"),
            "cpu_model": environment.get("cpu"),
            "platform": environment.get("platform"),
            "python": environment.get("python"),
            "backends": json.dumps(environment.get("backends", {}), sort_keys=True),
            "packages": json.dumps(packages, sort_keys=True),
            "plugins": json.dumps(environment.get("plugins", {}), sort_keys=True),
            "environment": json.dumps(environment, sort_keys=True),
        }
        names = ", ".join(values)
        updates = ", ".join(f"{name} = excluded.{name}" for name in values if name != "sweep_id")
        self.connection.execute(
            f"INSERT INTO sweeps ({names}) VALUES ({', '.join('?' * len(values))}) "
            f"ON CONFLICT (sweep_id) DO UPDATE SET {updates}",
            [_cell(value) if name == "git_dirty" else value for name, value in values.items()],
        )

    def _upsert_run(self, sweep_id: str, run: Run) -> str:
        columns = ["sweep_id", *RUN_COLUMNS]
        cells = run.cells()
        values = [sweep_id, *(_run_cell(column, cells[column.name]) for column in COLUMNS)]
        quoted = ", ".join(_quote(name) for name in columns)
        existing = self.connection.execute(
            f"SELECT {quoted} FROM runs WHERE sweep_id = ? AND run_id = ?",
            (sweep_id, values[1]),
        ).fetchone()
        if existing is not None and list(existing) == values:
            return "unchanged"
        self.connection.execute(
            f"INSERT OR REPLACE INTO runs ({quoted}) VALUES ({', '.join('?' * len(columns))})",
            values,
        )
        return "added" if existing is None else "updated"


def _output_dir(directory: Path) -> Path:
    directory = Path(directory)
    if not layout.RUNS_CSV.of(directory).is_file():
        raise DatabaseError(
            f"{directory}: no {layout.RUNS_CSV}; is it an mnistbench output directory?"
        )
    return directory


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``: takes the write lock first, so two writers wait
    for each other (up to the busy timeout) instead of failing halfway."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            try:
                self.connection.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        # Leaves the connection usable for the next transaction whatever went wrong.
        with contextlib.suppress(sqlite3.Error):
            self.connection.execute("ROLLBACK")


# --- recording a sweep ---------------------------------------------------------------------


class SweepRecorder:
    """A sweep's writes to the database: its environment once, then each run as it ends.

    Never fails the sweep: ``runs.csv`` is the record. The first failure (locked past
    the timeout, full disk, unwritable directory, a file that is not a results database)
    is logged once as a warning; later writes are still tried, silently.
    """

    def __init__(self, path: Path, sweep_id: str, output_dir: Path) -> None:
        self.path = Path(path)
        self.sweep_id = sweep_id
        self.output_dir = Path(output_dir)
        self.database: Database | None = None
        self.warned = False

    def record_sweep(self, environment: dict, *, started_at: str) -> None:
        """Write the sweep's row (its ``environment.json`` and start)."""
        self._try(
            lambda db: db.record_sweep(
                self.sweep_id, environment, started_at=started_at, output_dir=self.output_dir
            )
        )

    def record_run(self, run: Run) -> None:
        """Write one run's record, as it was written to ``runs.csv``."""
        self._try(lambda db: db.record_run(self.sweep_id, run))

    def close(self) -> None:
        if self.database is not None:
            self.database.close()
            self.database = None

    def _try(self, write: Callable[[Database], Any]) -> None:
        try:
            if self.database is None:
                self.database = Database(self.path)
            write(self.database)
        except (sqlite3.Error, OSError, MnistbenchError) as error:
            if not self.warned:
                self.warned = True
                cause = error if isinstance(error, MnistbenchError) else f"{self.path}: {error}"
                logger.warning(
                    f"results database not written: {cause}; runs.csv keeps every run, "
                    f"add them later with `mnistbench db import {self.output_dir}`"
                )


# --- reading -----------------------------------------------------------------------------


def read_runs(path: Path) -> pd.DataFrame:
    """Every run in the database, one row each, oldest sweep first: the runs' typed table
    (:func:`mnistbench.record.frame`) with :data:`SWEEP_COLUMNS` beside.

    DatabaseError when the file is missing, not SQLite or newer than this mnistbench.
    """
    path = Path(path)
    if not path.is_file():
        raise DatabaseError(
            f"{path}: not found; `mnistbench run` or `mnistbench db import` writes it"
        )
    connection = _connect_read_only(path)
    try:
        version = _stored_version(connection, path)
        _refuse_newer(version, path)
        if version == 0:
            records, stored = [], []
        else:
            present = _table_columns(connection, "runs")
            stored = [name for name in RUN_COLUMNS if name in present]
            selected = ", ".join(
                [*(f"r.{_quote(name)}" for name in stored), "r.sweep_id", "s.started_at"]
                + [f"s.{name}" for name in SWEEP_COLUMNS[2:]]
            )
            records = connection.execute(
                # LEFT JOIN: a run whose sweep row could not be written is still a run.
                f"SELECT {selected} FROM runs r LEFT JOIN sweeps s ON s.sweep_id = r.sweep_id "
                "ORDER BY s.started_at IS NULL, s.started_at, r.sweep_id, r.rowid"
            ).fetchall()
    except sqlite3.Error as error:
        raise _sqlite_error(path, error) from None
    finally:
        connection.close()
    runs, sweeps = [], []
    for values in records:
        cells = {name: _csv_text(value) for name, value in zip(stored, values, strict=False)}
        runs.append(record.from_cells(cells, where=f"{path}"))
        sweep = dict(zip(SWEEP_COLUMNS, values[len(stored) :], strict=True))
        sweeps.append({name: "" if value is None else value for name, value in sweep.items()})
    table = record.frame(runs, extra=sweeps)
    for name in SWEEP_COLUMNS:  # an empty database: the columns all the same
        if name not in table.columns:
            table[name] = ""
    return table
