"""Results stores: every run of every sweep, with its sweep's environment, in one place that
``history`` reads, opened from a URL and found through the ``mnistbench_register_stores``
hook like any plugin's.

``runs.csv`` stays the record of one output directory; a store gathers all of them so that
history can be followed across sweeps, commits and machines. ``--db``, ``MNISTBENCH_DB``
and a sweep file's ``db`` name one by URL (:func:`open_store`): a plain path or
``sqlite:///path`` (:mod:`mnistbench.stores.sqlite`, the embedded default), or
``postgresql://user@host/dbname`` (:mod:`mnistbench.stores.postgresql`, a history a team
shares). A URL's password is never shown (:func:`shown`).

Every store has the same schema (:mod:`mnistbench.stores.schema`, derived from the column
registry) and the same code (:class:`Store`, on SQLAlchemy Core): what differs is how the
engine is made, how the migration lock is taken and how a connection error reads. A
sweep writes through :class:`~mnistbench.stores.recorder.SweepRecorder`.

Columns added to the registry since a store was created are added when it is next opened;
other schema changes are the ordered :data:`MIGRATIONS`, run once under the store's lock
(SQLite's immediate transaction, PostgreSQL's advisory lock) so that two sweeps opening
an old store at once migrate it once. A store written by a newer mnistbench (a higher
schema version) is refused rather than guessed at. One short transaction per write: a
killed sweep never leaves half a run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mnistbench import layout, record
from mnistbench.columns import COLUMNS, RUN_COLUMNS
from mnistbench.environment import machine_identity, read_environment
from mnistbench.errors import MnistbenchError
from mnistbench.manifest import read_sweep_identity
from mnistbench.record import Run
from mnistbench.stores.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SWEEP_COLUMNS,
    SWEEP_FIELDS,
    cell,
    stored_value,
    tables,
)

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SWEEP_COLUMNS",
    "Imported",
    "Store",
    "StoreError",
    "is_url",
    "open_store",
    "resolve",
    "scheme_of",
    "shown",
]


class StoreError(MnistbenchError):
    """A results store cannot be opened, read or written: one line naming it."""


@dataclass(frozen=True)
class Imported:
    """What :meth:`Store.import_directory` did: the sweep and its runs added or updated."""

    sweep_id: str
    added: int
    updated: int
    unchanged: int


# --- URLs ------------------------------------------------------------------------------------


def is_url(text: str) -> bool:
    """Whether ``text`` names a store by URL (``scheme://...``) rather than a path."""
    scheme, separator, _ = str(text).partition("://")
    return bool(separator) and scheme.replace("+", "").replace("-", "").isalnum()


def shown(url: str) -> str:
    """``url`` as it may be printed: its password, if any, as ``***``."""
    if not is_url(url):
        return str(url)
    from sqlalchemy.engine import make_url  # the store's library: loaded with the store
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        scheme, _, rest = str(url).partition("://")
        return f"{scheme}://{'***@' + rest.split('@', 1)[1] if '@' in rest else rest}"


def resolve(text: str | Path, base: Path | None = None) -> str:
    """A ``--db`` value as the store URL it names: a path (relative to ``base`` when given,
    the directory of the sweep file that named it) becomes ``sqlite:///ABSOLUTE``; a URL
    stays as it is."""
    text = str(text)
    if is_url(text):
        return text
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return f"sqlite:///{path.resolve()}"


def scheme_of(url: str) -> str:
    """The scheme of a store URL, its driver left out: ``postgresql+psycopg`` is ``postgresql``."""
    return str(url).partition("://")[0].split("+")[0].lower()


def open_store(url: str | Path, stores: dict, *, base: Path | None = None) -> Store:
    """The store ``url`` names (not connected yet): the registered store class of its scheme
    (``stores``: ``Plugins.stores``). StoreError naming the known schemes for another."""
    url = resolve(url, base)
    scheme = scheme_of(url)
    if scheme not in stores:
        known = ", ".join(sorted(stores)) or "none"
        raise StoreError(
            f"--db {shown(url)}: no results store for the scheme {scheme!r} (known: {known}); "
            "give a path, sqlite:///PATH or postgresql://USER@HOST/DBNAME"
        )
    return stores[scheme].value(url)


class Store:
    """A results store at a URL, on SQLAlchemy Core: everything but how the engine is made,
    how the migration lock is taken and how errors read (a subclass's :meth:`engine`,
    :meth:`lock` and :meth:`explain`).

    Nothing connects until :meth:`open` (which creates or migrates the schema) or
    :meth:`check` (which only reads). Subclasses set :attr:`schemes` and register the class
    through ``mnistbench_register_stores``.
    """

    #: The URL schemes this store opens (``sqlite``, ``postgresql``).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: One line for ``mnistbench plugins``.
    description: ClassVar[str] = ""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None
        self._reader: sa.Engine | None = None
        #: The schema version :meth:`open` found, before migrating (0: a new store).
        self.found_version: int | None = None
        schema = tables()
        self.meta, self.sweeps, self.runs = schema.meta, schema.sweeps, schema.runs
        self.tables = schema

    # -- what subclasses give ----------------------------------------------------------------

    def engine(self) -> sa.Engine:
        """A new SQLAlchemy engine for :attr:`url`, for writing."""
        raise NotImplementedError

    def reader(self) -> sa.Engine:
        """A new SQLAlchemy engine for reading only (default: :meth:`engine`'s kind)."""
        return self.engine()

    def lock(self, connection) -> None:
        """Take the lock under which the schema is created or migrated, in ``connection``'s
        transaction (released when it ends)."""

    def explain(self, error: Exception) -> str:
        """The one line a user reads for a database error: what is wrong with the store."""
        return f"{shown(self.url)}: {str(error).strip().splitlines()[0]}"

    def exists(self) -> bool:
        """Whether there is a store to read at all (a missing SQLite file is none)."""
        return True

    def beside(self) -> Path:
        """Where files drawn from the store go by default (``history.png``)."""
        return Path("results")

    # -- connecting --------------------------------------------------------------------------

    def __str__(self) -> str:
        return shown(self.url)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _connected(self) -> sa.Engine:
        if self._engine is None:
            self._engine = self.engine()
        return self._engine

    def _reading(self) -> sa.Engine:
        if self._reader is None:
            self._reader = self.reader()
        return self._reader

    def close(self) -> None:
        """Release the store's connections; what was written stays written.

        The reader goes first: SQLite folds its write-ahead log into the file, and deletes
        it, when the last connection closes, but only a connection that can write does.
        Closed after the writer, the read-only reader would leave the newest runs in the
        ``-wal`` file, where a copy of the database file alone misses them."""
        for engine in (self._reader, self._engine):
            if engine is not None:
                engine.dispose()
        self._engine = self._reader = None

    def _guard(self, action: Callable[[], Any]) -> Any:
        """``action()``, its database errors as one-line StoreErrors."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return action()
        except StoreError:
            raise
        except (SQLAlchemyError, OSError) as error:
            raise StoreError(self.explain(error)) from None

    def _version(self, connection) -> int:
        """The schema version of an open store: 0 for an empty one."""
        import sqlalchemy as sa

        tables = set(sa.inspect(connection).get_table_names())
        if not tables:
            return 0
        if "meta" not in tables:
            raise StoreError(f"{self}: a database, but not an mnistbench results store")
        value = connection.execute(
            sa.select(self.meta.c.value).where(self.meta.c.key == "schema_version")
        ).scalar()
        try:
            return int(value)
        except (TypeError, ValueError):
            raise StoreError(f"{self}: no readable schema_version in its meta table") from None

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self}: results store schema version {version} is newer than this "
                f"mnistbench's ({SCHEMA_VERSION}); upgrade mnistbench or choose another --db"
            )

    def check(self) -> None:
        """Refuse, before any run, a store a sweep could not write: unreachable, the wrong
        password, not an mnistbench store, a newer schema. Writes nothing."""

        def read() -> None:
            if not self.exists():
                return
            with self._reading().connect() as connection:
                self._refuse_newer(self._version(connection))

        self._guard(read)

    def open(self) -> Store:
        """Connect, and create or migrate the schema to :data:`SCHEMA_VERSION` under the
        store's lock. Returns the store."""
        import sqlalchemy as sa

        def migrate() -> None:
            with self._connected().begin() as connection:
                self.lock(connection)
                # Read inside the lock: another process may have migrated meanwhile.
                version = self._version(connection)
                self._refuse_newer(version)
                self.found_version = version
                for target, step in MIGRATIONS:
                    if target > version:
                        step(self.tables, connection)
                if version < SCHEMA_VERSION:
                    connection.execute(
                        self.meta.delete().where(self.meta.c.key == "schema_version")
                    )
                    connection.execute(
                        self.meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
                    )
                present = {c["name"] for c in sa.inspect(connection).get_columns("runs")}
                for column in self.runs.columns:
                    if column.name not in present:
                        kind = column.type.compile(dialect=connection.dialect)
                        connection.exec_driver_sql(
                            f'ALTER TABLE runs ADD COLUMN "{column.name}" {kind}'
                        )

        self._guard(migrate)
        return self

    @property
    def schema_version(self) -> int:
        def read() -> int:
            with self._reading().connect() as connection:
                return self._version(connection)

        return self._guard(read)

    # -- writing -----------------------------------------------------------------------------

    def _upsert(self, connection, table, values: dict, keys: Sequence[str]) -> None:
        insert = self.insert(table).values(**values)
        updates = {name: insert.excluded[name] for name in values if name not in keys}
        connection.execute(insert.on_conflict_do_update(index_elements=list(keys), set_=updates))

    def insert(self, table):
        """The dialect's INSERT, with ``on_conflict_do_update`` (SQLite's, PostgreSQL's)."""
        raise NotImplementedError

    def record_sweep(
        self, sweep_id: str, environment: dict, *, started_at: str, output_dir: Path | str
    ) -> None:
        """Add or replace a sweep's row: its start, output directory, machine and
        ``environment.json``."""
        self._guard(
            lambda: self._write(
                lambda c: self._sweep(c, sweep_id, environment, started_at, output_dir)
            )
        )

    def record_run(self, sweep_id: str, run: Run) -> str:
        """Add or replace the record ``run`` of sweep ``sweep_id``; "added", "updated" or
        "unchanged"."""
        return self._guard(lambda: self._write(lambda c: self._run(c, sweep_id, run)))

    def _write(self, write: Callable[[Any], Any]) -> Any:
        with self._connected().begin() as connection:
            return write(connection)

    def _sweep(self, connection, sweep_id, environment, started_at, output_dir) -> None:
        packages = environment.get("packages") or {}
        dirty = (environment.get("commit_info") or {}).get("dirty")
        values = {
            "sweep_id": sweep_id,
            "started_at": started_at or None,
            "output_dir": str(Path(output_dir).resolve()),
            "command": environment.get("command"),
            "git_commit": environment.get("git_commit"),
            "git_dirty": None if dirty is None else str(bool(dirty)),
            "mnistbench_version": packages.get("mnistbench"),
            "cpu_model": environment.get("cpu"),
            "platform": environment.get("platform"),
            "python": environment.get("python"),
            "backends": json.dumps(environment.get("backends", {}), sort_keys=True),
            "packages": json.dumps(packages, sort_keys=True),
            "plugins": json.dumps(environment.get("plugins", {}), sort_keys=True),
            "environment": json.dumps(environment, sort_keys=True),
            "machine": machine_identity(environment),
        }
        self._upsert(connection, self.sweeps, values, ["sweep_id"])

    def _run(self, connection, sweep_id: str, run: Run) -> str:
        import sqlalchemy as sa

        table = self.runs
        stored = connection.execute(
            sa.select(*(table.c[name] for name in RUN_COLUMNS)).where(
                table.c.sweep_id == sweep_id, table.c.run_id == run.run_id
            )
        ).first()
        if stored is not None:
            cells = {name: cell(value) for name, value in zip(RUN_COLUMNS, stored, strict=True)}
            try:
                if record.from_cells(cells) == run:
                    return "unchanged"
            except record.RecordError:
                pass  # a row a fault left unreadable: replace it
        values = {"sweep_id": sweep_id}
        values.update({c.name: stored_value(c, getattr(run, c.name)) for c in COLUMNS})
        self._upsert(connection, table, values, ["sweep_id", "run_id"])
        return "added" if stored is None else "updated"

    def import_directory(self, directory: Path) -> Imported:
        """Add an output directory's runs (``runs.csv``) and environment, in one transaction.

        The sweep is the one its ``manifest.json`` names; older directories get an id
        derived from their manifest or path, so importing twice adds and changes nothing.
        """
        directory = _output_dir(directory)
        runs = record.read(directory, require_runs=True)
        sweep_id, created_at = read_sweep_identity(directory)
        started = created_at or min((run.started_at for run in runs), default="")
        environment = read_environment(directory)

        def write(connection) -> Imported:
            self._sweep(connection, sweep_id, environment, started, directory)
            outcomes = {"added": 0, "updated": 0, "unchanged": 0}
            for run in runs:
                outcomes[self._run(connection, sweep_id, run)] += 1
            return Imported(sweep_id, **outcomes)

        return self._guard(lambda: self._write(write))

    def import_directories(self, directories: Sequence[Path]) -> list[Imported]:
        """:meth:`import_directory` each; every one is checked first
        (:func:`importable`), so a wrong path imports nothing."""
        return [self.import_directory(directory) for directory in importable(directories)]

    # -- reading -----------------------------------------------------------------------------

    def _read(self, connection) -> tuple[list[dict[str, Any]], list[tuple[str, Run]]]:
        """Every sweep's row (oldest first) and every run as ``(sweep_id, record)``, read in
        one connection. Values are read as the driver gives them, whatever the column's
        declared type (stores written by older mnistbench versions hold ``True`` as text)."""
        import sqlalchemy as sa

        version = self._version(connection)
        self._refuse_newer(version)
        if version == 0:
            return [], []
        inspector = sa.inspect(connection)
        sweep_names = {c["name"] for c in inspector.get_columns("sweeps")}
        sweeps = sa.table(
            "sweeps", *(sa.column(n) for n in ("sweep_id", *SWEEP_FIELDS) if n in sweep_names)
        )
        rows = connection.execute(
            sa.select(*sweeps.columns).order_by(sweeps.c.started_at, sweeps.c.sweep_id)
        ).mappings()
        sweep_rows = [{name: row.get(name) for name in ("sweep_id", *SWEEP_FIELDS)} for row in rows]
        run_names = {c["name"] for c in inspector.get_columns("runs")}
        stored = [column for column in COLUMNS if column.name in run_names]
        runs = sa.table("runs", sa.column("sweep_id"), *(sa.column(c.name) for c in stored))
        found = []
        query = sa.select(*runs.columns).order_by(runs.c.sweep_id, runs.c.run_id)
        for sweep_id, *values in connection.execute(query).all():
            cells = {c.name: cell(value) for c, value in zip(stored, values, strict=True)}
            found.append((sweep_id, record.from_cells(cells, where=str(self))))
        return sweep_rows, found

    def read_all(self) -> tuple[list[dict[str, Any]], list[tuple[str, Run]]]:
        """Every sweep's row (its id and :data:`SWEEP_FIELDS`, oldest first) and every run as
        ``(sweep_id, record)``. StoreError when the store is missing, unreachable or newer
        than this mnistbench."""

        def read():
            if not self.exists():
                raise StoreError(
                    f"{self}: not found; `mnistbench run` or `mnistbench db import` writes it"
                )
            with self._reading().connect() as connection:
                return self._read(connection)

        return self._guard(read)

    def read_runs(self) -> pd.DataFrame:
        """Every run in the store, one row each, oldest sweep first: the runs' typed table
        (:func:`mnistbench.record.frame`) with :data:`SWEEP_COLUMNS` beside.

        StoreError when the store is missing, unreachable or newer than this mnistbench.
        """
        sweep_rows, runs = self.read_all()
        sweeps = {row["sweep_id"]: row for row in sweep_rows}
        # Oldest sweep first, each sweep's runs in the order they started: their start
        # times are to the second, so runs started within one second go by their place in
        # the sweep's order. A run whose sweep row could not be written (a server that was
        # down) is still a run.
        ordered = sorted(
            enumerate(runs),
            key=lambda item: (
                not (sweeps.get(item[1][0]) or {}).get("started_at"),
                (sweeps.get(item[1][0]) or {}).get("started_at") or "",
                item[1][0],
                item[1][1].started_at,
                item[1][1].position is None,
                item[1][1].position or 0,
                item[0],
            ),
        )
        records, extra = [], []
        for _, (sweep_id, run) in ordered:
            sweep = sweeps.get(sweep_id) or {}
            records.append(run)
            extra.append(
                {
                    "sweep_id": sweep_id,
                    "sweep_started_at": sweep.get("started_at") or "",
                    **{name: cell(sweep.get(name)) for name in SWEEP_COLUMNS[2:]},
                }
            )
        table = record.frame(records, extra=extra)
        for name in SWEEP_COLUMNS:  # an empty store: the columns all the same
            if name not in table.columns:
                table[name] = ""
        return table

    def copy_to(self, target: Store) -> tuple[int, int]:
        """Every sweep and run of this store into ``target`` (opened), as they are:
        ``(sweeps, runs added or updated)``. Copying twice changes nothing."""
        sweeps, runs = self.read_all()
        target.open()

        def write(connection) -> tuple[int, int]:
            for row in sweeps:
                values = {name: row.get(name) for name in ("sweep_id", *SWEEP_FIELDS)}
                target._upsert(connection, target.sweeps, values, ["sweep_id"])
            changed = sum(
                target._run(connection, sweep_id, run) != "unchanged" for sweep_id, run in runs
            )
            return len(sweeps), changed

        return target._guard(lambda: target._write(write))


def importable(directories: Sequence[Path]) -> list[Path]:
    """The output ``directories``, each read as an import reads it (its ``runs.csv``,
    present and valid); raises on the first that is not, before any store is opened."""
    checked = [_output_dir(directory) for directory in directories]
    for directory in checked:
        record.read(directory, require_runs=True)
    return checked


def _output_dir(directory: Path) -> Path:
    directory = Path(directory)
    if not layout.RUNS_CSV.of(directory).is_file():
        raise StoreError(
            f"{directory}: no {layout.RUNS_CSV}; is it an mnistbench output directory?"
        )
    return directory
