"""A results store a team shares: one PostgreSQL database, through psycopg 3.

``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME`` names it (``postgres://`` too, as
hosting services write it; a Unix socket is ``postgresql://USER@/DBNAME?host=/run/dir``).
The database must exist; mnistbench creates its tables in it. The schema is created or
migrated under a transaction-level advisory lock, so CI jobs that start at once migrate it
once. Connections are checked before use, so a sweep whose server restarted writes its
next runs again.
"""

from __future__ import annotations

import pluggy

from mnistbench.stores import Store, shown

hookimpl = pluggy.HookimplMarker("mnistbench")

#: Seconds to wait for the server to answer before a command gives up on it.
CONNECT_TIMEOUT_SECONDS = 10
#: The advisory lock's key: "mnistbench" in the first bytes, so no other tool shares it.
LOCK_KEY = int.from_bytes(b"mnistbnc", "big") >> 1


class PostgreSQLStore(Store):
    schemes = ("postgresql", "postgres")
    description = "a PostgreSQL database a team shares (postgresql://USER@HOST/DBNAME)"

    def _url(self):
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        # Whatever driver the URL names, or none: psycopg 3 is the one installed.
        return url.set(drivername="postgresql+psycopg")

    def engine(self):
        import sqlalchemy as sa

        return sa.create_engine(
            self._url(),
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
            pool_pre_ping=True,
        )

    def lock(self, connection) -> None:
        import sqlalchemy as sa

        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))

    def insert(self, table):
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)

    def explain(self, error: Exception) -> str:
        cause = getattr(error, "orig", None) or error
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        # psycopg puts the server's own words last ("FATAL:  password authentication
        # failed for user ..."), after "connection to server at ... failed:"; its hints
        # ("Is the server running ...") add nothing a user can act on here.
        lines = [line for line in lines if not line.startswith(("Is the server", "HINT:"))]
        text = lines[-1] if lines else type(cause).__name__
        text = text.removeprefix("connection failed: ").replace("FATAL:  ", "")
        return f"{shown(self.url)}: {text}"


@hookimpl
def mnistbench_register_stores(register):
    register(PostgreSQLStore)
