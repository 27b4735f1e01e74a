"""A real PostgreSQL server for the store's tests: Debian's server binaries, started once per
test worker on a Unix socket in a temporary directory, stopped at the end. No Docker, no mock.

Where no server binaries exist the tests that need one skip with a one-line reason, unless
``MNISTBENCH_REQUIRE_POSTGRES`` is set (``.ci/run`` sets it after installing them): then
the absence is a failure, so CI always runs them.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Set (to anything but "" or "0") to make a missing server a failure instead of a skip.
REQUIRE = "MNISTBENCH_REQUIRE_POSTGRES"
USER = "bench"
PASSWORD = "bench-secret"


def server_binaries() -> Path | None:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``: on PATH, or Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest first)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def required() -> bool:
    return os.environ.get(REQUIRE, "") not in ("", "0")


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running server: its data directory, socket directory and port."""

    bin: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "sockets"

    def url(self, database: str = "postgres", *, password: str = PASSWORD) -> str:
        """The store URL of ``database`` over the Unix socket, with the password."""
        return f"postgresql://{USER}:{password}@/{database}?host={self.sockets}&port={self.port}"

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            _as_server_user([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]),
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-k {self.sockets} -p {self.port} -c listen_addresses='' "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off "
            "-c max_connections=60 -c shared_buffers=16MB"
        )
        self._pg_ctl("-w", "-o", options, "-l", str(self.root / "server.log"), "start")

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop", check=False)

    def create_database(self) -> str:
        """A new, empty database; its name."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(
            host=str(self.sockets),
            port=self.port,
            user=USER,
            password=PASSWORD,
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name


def start_server() -> Server:
    """initdb a cluster in a new temporary directory (password logins: scram-sha-256) and
    start it; FileNotFoundError when there are no server binaries."""
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl)")
    root = Path(tempfile.mkdtemp(prefix="mnistbench-pg-"))
    server = Server(binaries, root, _free_port())
    server.sockets.mkdir()
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(server.sockets, "postgres")
        shutil.chown(password_file, "postgres")
    subprocess.run(
        _as_server_user(
            [
                str(binaries / "initdb"),
                "-D",
                str(server.data),
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    server.start()
    return server


def remove(server: Server) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)
