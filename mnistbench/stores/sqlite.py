"""The embedded results store: one SQLite file (``results/mnistbench.sqlite`` by default).

A plain path or ``sqlite:///PATH`` names it. Writers use WAL mode, a busy timeout and one
short ``BEGIN IMMEDIATE`` transaction per write, so several sweeps on one machine can
write to one file at once and a killed sweep leaves it readable; readers open it read
only, so reading never creates a file or waits on a writer.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pluggy

from mnistbench.atomic import check_creatable, nearest_folder
from mnistbench.stores import Store, StoreError

hookimpl = pluggy.HookimplMarker("mnistbench")

#: Seconds a writer waits for another's transaction before giving up.
BUSY_TIMEOUT_SECONDS = 30.0


class SQLiteStore(Store):
    schemes = ("sqlite",)
    description = "one SQLite file on this machine (a path or sqlite:///PATH): the default"

    def __init__(self, url: str, *, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        super().__init__(url)
        self.path = self.locate(url)
        self.timeout = timeout

    def locate(self, url: str) -> Path:
        """The file ``url`` names (a subclass with a scheme of its own says where its
        files are)."""
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if not database or database == ":memory:":
            raise StoreError(f"--db {url}: name a file, as sqlite:///PATH")
        return Path(database)

    def __str__(self) -> str:
        return str(self.path)

    def beside(self) -> Path:
        return self.path.parent

    def exists(self) -> bool:
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a results database")
        return self.path.exists()

    def check(self) -> None:
        """Also refuse, before any run, a file that could never be created: the nearest
        folder above it that exists must take a new file (:func:`check_creatable`)."""
        super().check()
        if self.path.exists():
            return
        folder = nearest_folder(self.path)
        try:
            check_creatable(folder)
        except OSError as error:
            raise StoreError(
                f"cannot create {self.path}: {folder} takes no new file ({error.strerror or error})"
            ) from None

    def engine(self):
        import sqlalchemy as sa

        self.exists()  # a directory is refused by name
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create {self.path}: {error.strerror or error}") from None
        engine = sa.create_engine(f"sqlite:///{self.path}", connect_args={"timeout": self.timeout})

        @sa.event.listens_for(engine, "connect")
        def connect(dbapi_connection, _record) -> None:
            # Transactions are begun below, not by the driver: BEGIN IMMEDIATE takes the
            # write lock first, so two writers wait for each other (up to the busy timeout)
            # instead of one failing halfway.
            dbapi_connection.isolation_level = None
            self._switch_to_wal(dbapi_connection)
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # WAL: survives a kill

        @sa.event.listens_for(engine, "begin")
        def begin(connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def reader(self):
        import sqlalchemy as sa

        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        return sa.create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, timeout=self.timeout),
        )

    def _switch_to_wal(self, connection: sqlite3.Connection) -> None:
        """WAL mode, once per file. Switching needs the file to itself, and SQLite answers
        "database is locked" at once, without its busy timeout, when another process opens
        the new file at the same moment: retry until the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def insert(self, table):
        from sqlalchemy.dialects.sqlite import insert

        return insert(table)

    def explain(self, error: Exception) -> str:
        cause = getattr(error, "orig", None) or error
        name = getattr(cause, "sqlite_errorname", "")
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            return f"{self.path}: not an SQLite database ({cause})"
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        return f"{self.path}: cannot use the results database: {text}"


@hookimpl
def mnistbench_register_stores(register):
    register(SQLiteStore)
