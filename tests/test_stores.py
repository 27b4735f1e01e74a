"""The results stores: every finished run of every sweep, with the sweep's environment, in an
SQLite file or a PostgreSQL database (a real server, ``tests/postgres.py``), through one
interface. Tests that hold for every store run on both."""

from __future__ import annotations

import json
import shutil
import sqlite3
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from helpers import QUICK, QUICK_ARGS, logged
from synthetic_runs import invoke

import mnistbench
from mnistbench import record, stores
from mnistbench.builtins import load_plugins
from mnistbench.columns import RUN_COLUMNS
from mnistbench.environment import machine_identity
from mnistbench.manifest import Manifest, derived_sweep_id
from mnistbench.plan import plan
from mnistbench.record import new_run
from mnistbench.stores.recorder import SweepRecorder
from mnistbench.stores.sqlite import SQLiteStore
from mnistbench.sweep import Sweep, run_sweep

# A sweep of dnn small enough for a test; --isolation none skips the worker start-up.
CLI_RUN = ("run", "dnn", *QUICK_ARGS, "--isolation", "none")
#: The runs of the recorded sweep and how each ends.
STATUSES = {"tiny-r0": "ok", "broken-r0": "failed", "nan-r0": "diverged"}


@cache
def registered() -> dict:
    return load_plugins(entry_points=False).stores


def store(url: str | Path) -> stores.Store:
    """The store at ``url`` (a path or URL), not opened."""
    return stores.open_store(url, registered())


def run_ids(output: Path) -> list[str]:
    return [run.run_id for run in record.read(output)]


def query(path: Path, sql: str, *args) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def recorded(request, tmp_path_factory, sweep_in_process, tiny_plugins) -> tuple[Path, str]:
    """One in-process sweep of tiny (ok), broken (failed) and nan (diverged), recorded in a
    store of each kind: ``(output_dir, store URL)``. Read only: copy to change anything."""
    root = tmp_path_factory.mktemp(f"recorded-{request.param}")
    if request.param == "sqlite":
        url = str(root / "results.sqlite")
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.url(server.create_database())
    output = root / "out"
    sweep_in_process(output, plan(["tiny", "broken", "nan"], **QUICK), tiny_plugins, db=url)
    return output, url


# --- what a sweep writes, on every store ---------------------------------------------------


def test_every_run_of_a_sweep_is_in_the_store_typed_as_runs_csv_reads_it(recorded):
    output, url = recorded
    runs = store(url).read_runs()
    assert list(runs.columns) == [*RUN_COLUMNS, *stores.SWEEP_COLUMNS]
    assert list(runs["run_id"]) == run_ids(output)  # in the order the sweep ran them
    assert dict(zip(runs["run_id"], runs["status"], strict=True)) == STATUSES
    # The same records, the same typed table, cell for cell.
    pd.testing.assert_frame_equal(runs[RUN_COLUMNS], record.frame(record.read(output)))


def test_the_sweep_row_holds_the_environment_and_the_machine(recorded):
    output, url = recorded
    environment = json.loads((output / "environment.json").read_text())
    manifest = json.loads((output / "manifest.json").read_text())
    [sweep], _ = store(url).read_all()
    assert sweep == {
        "sweep_id": manifest["sweep_id"],
        "started_at": manifest["created_at"],
        "output_dir": str(output.resolve()),
        "command": "mnistbench",
        "git_commit": environment["git_commit"],
        "git_dirty": str(environment["commit_info"]["dirty"]),
        "mnistbench_version": mnistbench.__version__,
        "cpu_model": environment["cpu"],
        "platform": environment["platform"],
        "python": environment["python"],
        "backends": json.dumps(environment["backends"], sort_keys=True),
        "packages": json.dumps(environment["packages"], sort_keys=True),
        "plugins": json.dumps(environment["plugins"], sort_keys=True),
        "environment": json.dumps(environment, sort_keys=True),
        "machine": machine_identity(environment),
    }
    runs = store(url).read_runs()
    assert set(runs["machine"]) == {machine_identity(environment)}
    assert set(runs["sweep_id"]) == {manifest["sweep_id"]}


def test_importing_a_sweep_the_store_recorded_adds_and_changes_nothing(recorded):
    output, url = recorded
    with store(url).open() as opened:
        imported = opened.import_directory(output)
    assert (imported.added, imported.updated, imported.unchanged) == (0, 0, 3)


def test_runs_started_within_one_second_read_back_in_their_sweeps_order(store_url):
    # Start times are to the second: the runs' places in the sweep order them, not their ids.
    second = "2026-01-01T00:00:00+00:00"
    runs = [
        new_run(run_id=run_id, architecture="dnn", status="ok", started_at=at, position=place)
        for run_id, at, place in (
            ("c-r0", second, 0),
            ("b-r0", second, 1),
            ("a-r0", "2026-01-01T00:00:01+00:00", 2),
        )
    ]
    with store(store_url).open() as opened:
        for run in reversed(runs):
            opened.record_run("s", run)
    assert list(store(store_url).read_runs()["run_id"]) == ["c-r0", "b-r0", "a-r0"]


@pytest.mark.parametrize("recorded", ["sqlite"], indirect=True)  # its directory
def test_db_import_twice_adds_nothing(recorded, store_url):
    output, _ = recorded
    sweep_id = json.loads((output / "manifest.json").read_text())["sweep_id"]
    first = invoke("db", "import", str(output), "--db", store_url)
    second = invoke("db", "import", str(output), "--db", store_url)
    shown = str(store(store_url))
    assert "bench-secret" not in first.stdout + first.stderr  # a password is never printed
    assert (first.exit_code, first.stdout) == (
        0,
        f"{output}: 3 run(s) added, 0 updated, 0 unchanged (sweep {sweep_id})\n"
        f"results store: {shown}\n",
    )
    assert (second.exit_code, second.stdout) == (
        0,
        f"{output}: 0 run(s) added, 0 updated, 3 unchanged (sweep {sweep_id})\n"
        f"results store: {shown}\n",
    )
    assert len(store(store_url).read_runs()) == 3


def test_text_that_looks_like_a_number_stays_text(store_url):
    run = new_run(
        run_id="r1", architecture="nan", status="ok", plugin_version="1.10", node="1e5",
        fit_seconds=1.5, epochs=3, jit_compile=False, pinned_cpus="0,1",
    )  # fmt: skip
    with store(store_url).open() as opened:
        assert opened.record_run("s", run) == "added"
        assert opened.record_run("s", run) == "unchanged"
    [stored] = store(store_url).read_runs().to_dict("records")
    assert (stored["architecture"], stored["config_id"], stored["node"]) == ("nan", "nan", "1e5")
    assert (stored["plugin_version"], stored["fit_seconds"], stored["epochs"]) == ("1.10", 1.5, 3)
    assert stored["jit_compile"] is False
    [(_, back)] = store(store_url).read_all()[1]
    assert back == run


@pytest.mark.parametrize("recorded", ["sqlite"], indirect=True)
def test_a_resumed_sweep_keeps_its_id_and_replaces_the_rows_it_reruns(
    recorded, tmp_path, mnist, tiny_plugins
):
    output, url = recorded
    copied, target = tmp_path / "out", str(tmp_path / "copy.sqlite")
    shutil.copytree(output, copied)
    shutil.copy(url, target)
    sweep = Sweep.resume(copied, tiny_plugins)
    before = store(target).read_runs().set_index("run_id")
    run_sweep(sweep, mnist=mnist, plugins=tiny_plugins, argv=["mnistbench"], store=store(target))
    after = store(target).read_runs().set_index("run_id")
    assert set(after.index) == set(STATUSES)
    assert set(after["sweep_id"]) == {sweep.manifest.sweep_id}
    assert after.loc["tiny-r0", "started_at"] == before.loc["tiny-r0", "started_at"]  # kept
    assert dict(after["started_at"]) == {run.run_id: run.started_at for run in record.read(copied)}
    assert query(Path(target), "SELECT count(*) FROM sweeps") == [(1,)]


# --- URLs, and errors a user can cause ------------------------------------------------------


def test_a_path_and_sqlite_urls_open_the_sqlite_store(tmp_path):
    for location in (tmp_path / "a.sqlite", f"sqlite:///{tmp_path / 'a.sqlite'}"):
        opened = store(location)
        assert isinstance(opened, SQLiteStore)
        assert opened.path == tmp_path / "a.sqlite"


def test_a_url_is_shown_without_its_password():
    assert stores.shown("postgresql://ci:hunter2@db.example:5432/bench") == (
        "postgresql://ci:***@db.example:5432/bench"
    )
    assert stores.shown("results/mnistbench.sqlite") == "results/mnistbench.sqlite"


def test_a_relative_path_in_a_sweep_file_is_relative_to_the_file(tmp_path):
    assert stores.resolve("db.sqlite", tmp_path) == f"sqlite:///{tmp_path / 'db.sqlite'}"
    url = "postgresql://ci@db.example/bench"
    assert stores.resolve(url, tmp_path) == url


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://ci@db.example/bench", "no results store for the scheme 'mysql' (known: "
         "postgres, postgresql, sqlite); give a path, sqlite:///PATH or "
         "postgresql://USER@HOST/DBNAME"),
        ("postgresql://ci:wrong@/postgres?host=/nonexistent-socket-dir",
         "No such file or directory"),
    ],
)  # fmt: skip
def test_a_store_that_cannot_be_used_is_one_line_and_exit_2_before_any_run(url, message, tmp_path):
    output = tmp_path / "out"
    result = invoke(*CLI_RUN, "--db", url, "--output", str(output))
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ") and message in line
    assert "wrong" not in line  # the password
    assert not output.exists()


def test_a_wrong_password_refused_connection_and_unknown_host_are_one_line_each(
    postgres_server, tmp_path
):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cases = {
        postgres_server.url(password="not-the-password"): (
            'password authentication failed for user "bench"'
        ),
        f"postgresql://ci:secret@127.0.0.1:{port}/bench": "Connection refused",
        "postgresql://ci:secret@db.invalid/bench": "db.invalid",
    }  # fmt: skip
    for url, message in cases.items():
        output = tmp_path / "out"
        result = invoke(*CLI_RUN, "--db", url, "--output", str(output))
        assert result.exit_code == 2, (url, result.output)
        [line] = result.stderr.splitlines()
        assert line.startswith("Error: postgresql://") and message in line, line
        assert "not-the-password" not in line and "secret" not in line
        assert not output.exists()


def test_run_refuses_db_and_no_db_together(tmp_path):
    result = invoke(*CLI_RUN, "--db", str(tmp_path / "x.sqlite"), "--no-db")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: give --db URL|PATH or --no-db, not both\n",
    )


def test_read_runs_of_a_missing_sqlite_store_is_one_line_and_creates_nothing(tmp_path):
    with pytest.raises(stores.StoreError) as error:
        store(tmp_path / "none.sqlite").read_runs()
    assert str(error.value) == (
        f"{tmp_path / 'none.sqlite'}: not found; `mnistbench run` or `mnistbench db import` "
        "writes it"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("recorded", ["sqlite"], indirect=True)  # its directory
def test_db_import_of_a_directory_without_runs_csv_imports_nothing(recorded, store_url, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("db", "import", str(recorded[0]), str(empty), "--db", store_url)
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"Error: {empty}: no runs.csv; is it an mnistbench output directory?\n",
    )
    # Refused before the store was opened: an SQLite file is not even created.
    untouched = store(store_url)
    if store_url.startswith("postgresql"):
        assert untouched.read_runs().empty
    else:
        assert not untouched.exists()


def test_import_of_a_file_that_is_no_runs_csv_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "runs.csv").write_bytes(b"\xff\xfe\x00a")
    result = invoke("db", "import", str(tmp_path / "other"), "--db", str(tmp_path / "r.sqlite"))
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {tmp_path / 'other' / 'runs.csv'}: cannot be read as CSV")
    assert not (tmp_path / "r.sqlite").exists()  # refused before the store was made


# --- SQLite files -----------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", ["sqlite"], indirect=True)
def test_sqlite_keeps_numbers_as_numbers_and_empty_cells_as_null(recorded):
    _, url = recorded
    types = query(
        Path(url),
        "SELECT run_id, typeof(fit_seconds), typeof(epochs), typeof(jit_compile), "
        "typeof(error) FROM runs",
    )
    assert {run_id: rest for run_id, *rest in types} == {
        "tiny-r0": ["real", "integer", "integer", "null"],
        "broken-r0": ["null", "integer", "null", "text"],
        "nan-r0": ["null", "integer", "null", "text"],  # diverged: nothing measured is kept
    }
    assert query(Path(url), "PRAGMA journal_mode") == [("wal",)]


def newer(path: Path) -> Path:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    connection.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    connection.commit()
    connection.close()
    return path


def text_file(path: Path) -> Path:
    path.write_text("run_id,status\ndnn-r0,ok\n" * 200)
    return path


def truncated(path: Path) -> Path:
    with store(path).open() as opened:
        for index in range(50):
            run = new_run(run_id=f"r{index}", architecture="dnn", status="failed", error="x" * 500)
            opened.record_run("s", run)
    path.write_bytes(path.read_bytes()[:3000])
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


BAD_DATABASES = {
    "newer": (newer, "results store schema version 99 is newer than this mnistbench's "
              f"({stores.SCHEMA_VERSION}); upgrade mnistbench or choose another --db"),
    "text": (text_file, "not an SQLite database (file is not a database)"),
    "truncated": (truncated, "not an SQLite database (database disk image is malformed)"),
}  # fmt: skip


@pytest.mark.parametrize("recorded", ["sqlite"], indirect=True)  # its directory
@pytest.mark.parametrize("kind", BAD_DATABASES)
def test_a_bad_sqlite_file_is_refused_in_one_line_by_run_import_and_read_runs(
    kind, recorded, tmp_path
):
    make, message = BAD_DATABASES[kind]
    path = make(tmp_path / "bad.sqlite")
    content = path.read_bytes()
    expected = f"Error: {path}: {message}\n"
    output = tmp_path / "out"
    ran = invoke(*CLI_RUN, "--db", str(path), "--output", str(output))
    assert (ran.exit_code, ran.stderr, output.exists()) == (2, expected, False)
    imported = invoke("db", "import", str(recorded[0]), env={"MNISTBENCH_DB": str(path)})
    assert (imported.exit_code, imported.stderr) == (2, expected)
    with pytest.raises(stores.StoreError) as error:
        store(path).read_runs()
    assert f"Error: {error.value}\n" == expected
    assert path.read_bytes() == content  # refused, not repaired


def test_a_closed_sqlite_store_holds_every_run_in_its_file_alone(tmp_path):
    path = tmp_path / "results.sqlite"
    for sweep in ("s1", "s2"):
        # As a sweep does: checked first (the second time through a read-only connection,
        # the file existing), then written, then closed.
        writer = store(path)
        writer.check()
        with writer.open():
            writer.record_sweep(sweep, {}, started_at="2026-01-01T00:00:00+00:00", output_dir=".")
            writer.record_run(sweep, new_run(run_id="dnn-r0", architecture="dnn", status="ok"))
        assert not (tmp_path / "results.sqlite-wal").exists()  # folded into the file
    copy = shutil.copyfile(path, tmp_path / "copy.sqlite")  # as a user backs it up
    assert sorted(store(copy).read_runs()["sweep_id"]) == ["s1", "s2"]


def test_a_directory_is_no_sqlite_store(tmp_path):
    result = invoke(*CLI_RUN, "--db", str(tmp_path), "--output", str(tmp_path / "out"))
    assert (result.exit_code, result.stderr) == (
        2,
        f"Error: {tmp_path}: is a directory, not a results database\n",
    )


def test_a_sqlite_file_that_could_never_be_created_is_refused_before_any_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path, output = blocker / "results" / "mnistbench.sqlite", tmp_path / "out"
    result = invoke(*CLI_RUN, "--db", str(path), "--output", str(output))
    assert (result.exit_code, result.stderr, output.exists()) == (
        2,
        f"Error: cannot create {path}: {blocker} takes no new file (Not a directory)\n",
        False,
    )
    assert blocker.read_text() == ""  # tried, not changed


@pytest.mark.parametrize("recorded", ["sqlite"], indirect=True)  # its directory
def test_an_older_directory_gets_an_id_derived_from_its_manifest(recorded, tmp_path):
    output = shutil.copytree(recorded[0], tmp_path / "out")
    manifest = json.loads((output / "manifest.json").read_text())
    del manifest["sweep_id"]
    (output / "manifest.json").write_text(json.dumps(manifest))
    expected = derived_sweep_id(manifest["created_at"], [run["run_id"] for run in manifest["runs"]])
    with store(tmp_path / "fresh.sqlite").open() as opened:
        first, second = opened.import_directories([output, output])
    assert (first.sweep_id, first.added) == (expected, 3)
    assert (second.sweep_id, second.added, second.updated) == (expected, 0, 0)
    assert Manifest.load(output).sweep_id == expected  # what --resume will keep


@pytest.mark.parametrize("recorded", ["sqlite"], indirect=True)  # its directory
def test_a_directory_without_manifest_gets_an_id_derived_from_its_path(recorded, tmp_path):
    output = shutil.copytree(recorded[0], tmp_path / "out")
    (output / "manifest.json").unlink()
    with store(tmp_path / "fresh.sqlite").open() as opened:
        first, second = opened.import_directories([output, output])
    assert first.sweep_id == second.sweep_id
    assert first.sweep_id.startswith("derived-")
    assert (first.added, second.added) == (3, 0)
    started = query(tmp_path / "fresh.sqlite", "SELECT started_at FROM sweeps")
    assert started == [(min(run.started_at for run in record.read(output)),)]


def test_a_sweep_id_is_made_once_with_the_manifest_and_kept_when_loaded(tmp_path):
    configs = plan(["tiny"], **QUICK, repeats=2)
    created = Manifest.create(tmp_path, configs, {})
    loaded = Manifest.load(tmp_path)
    loaded.set_state("tiny-r0", "ok")
    assert Manifest.load(tmp_path).sweep_id == loaded.sweep_id == created.sweep_id
    stamp = created.created_at[:19].replace("-", "").replace(":", "")
    assert created.sweep_id.startswith(f"{stamp}Z-") and len(created.sweep_id) == 25
    (tmp_path / "other").mkdir()
    assert Manifest.create(tmp_path / "other", configs, {}).sweep_id != created.sweep_id


# --- schema versions --------------------------------------------------------------------------

#: The meta and sweeps tables of a schema-version-1 store, as version 1 made them.
VERSION_1_SWEEPS = """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE sweeps (sweep_id TEXT PRIMARY KEY, started_at TEXT, output_dir TEXT,
            command TEXT, git_commit TEXT, git_dirty TEXT, mnistbench_version TEXT,
            cpu_model TEXT, platform TEXT, python TEXT, backends TEXT, packages TEXT,
            plugins TEXT, environment TEXT);
"""
#: An environment.json of before machines were described, and the identity made of it.
OLD_ENVIRONMENT = {
    "cpu": "Old CPU",
    "cpu_count": 4,
    "machine_info": {"system": "Linux", "machine": "x86_64"},
}


def version_1(path: Path, runs_sql: str) -> Path:
    connection = sqlite3.connect(path)
    environment = json.dumps(OLD_ENVIRONMENT).replace("'", "''")
    connection.executescript(
        VERSION_1_SWEEPS
        + "INSERT INTO sweeps (sweep_id, started_at, git_commit, git_dirty, environment) "
        + f"VALUES ('old', '2024-01-01', 'abc', 'False', '{environment}');"
        + runs_sql
    )
    connection.close()
    return path


def test_a_version_1_store_is_migrated_keeps_its_rows_and_learns_its_machines(tmp_path):
    path = version_1(
        tmp_path / "old.sqlite",
        """
        CREATE TABLE runs (sweep_id TEXT NOT NULL, run_id TEXT NOT NULL, architecture,
            status, fit_seconds REAL, jit_compile, PRIMARY KEY (sweep_id, run_id));
        INSERT INTO runs VALUES ('old', 'dnn-r0', 'dnn', 'ok', 12.5, 'True');
        """,
    )
    with store(path).open() as opened:
        assert (opened.found_version, opened.schema_version) == (1, stores.SCHEMA_VERSION)
        run = new_run(run_id="dnn-r0", architecture="dnn", status="ok", probe_seconds=0.25)
        opened.record_run("new", run)
    columns = [row[1] for row in query(path, "PRAGMA table_info(runs)")]
    assert columns[:6] == [
        "sweep_id",
        "run_id",
        "architecture",
        "status",
        "fit_seconds",
        "jit_compile",
    ]
    assert sorted(columns[1:]) == sorted(RUN_COLUMNS)
    runs = store(path).read_runs()
    old = runs[runs["sweep_id"] == "old"].iloc[0]
    assert (old["run_id"], old["fit_seconds"], old["jit_compile"]) == ("dnn-r0", 12.5, True)
    assert (old["git_commit"], old["machine"]) == ("abc", "Old CPU, 4 cores, Linux x86_64")
    assert runs.loc[runs["sweep_id"] == "new", "probe_seconds"].tolist() == [0.25]


def test_reading_an_older_store_writes_nothing_to_it(tmp_path):
    path = version_1(
        tmp_path / "old.sqlite",
        """
        CREATE TABLE runs (sweep_id TEXT NOT NULL, run_id TEXT NOT NULL, architecture, status,
            PRIMARY KEY (sweep_id, run_id));
        INSERT INTO runs VALUES ('old', 'dnn-r0', 'dnn', 'ok');
        """,
    )
    content = path.read_bytes()
    runs = store(path).read_runs()
    assert list(runs.columns) == [*RUN_COLUMNS, *stores.SWEEP_COLUMNS]
    assert runs[["run_id", "architecture", "status", "sweep_id"]].values.tolist() == [
        ["dnn-r0", "dnn", "ok", "old"]
    ]
    assert runs["config_id"].tolist() == ["dnn"]  # older runs are keyed by architecture
    assert runs["machine"].tolist() == [""]  # not migrated: read as it is
    assert path.read_bytes() == content


def test_the_migrations_are_in_order_and_end_at_the_schema_version():
    versions = [version for version, _ in stores.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert versions[-1] == stores.SCHEMA_VERSION


# --- a store a sweep cannot write ---------------------------------------------------------------


def test_a_store_that_cannot_be_written_warns_once_and_the_sweep_goes_on(
    tmp_path, sweep_in_process, tiny_plugins
):
    (tmp_path / "file").write_text("")
    database = tmp_path / "file" / "results.sqlite"  # its directory cannot be made
    with logged() as messages:
        # Three writes fail: the sweep's, the failed run's, and the next run's.
        sweep_in_process(
            tmp_path / "out", plan(["broken", "tiny"], **QUICK), tiny_plugins, db=database
        )
    assert {run.run_id: run.status for run in record.read(tmp_path / "out")} == {
        "broken-r0": "failed",
        "tiny-r0": "ok",
    }
    warnings = [message for message in messages if "results store" in message]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"results store not written: cannot create {database}: ")
    assert warnings[0].endswith(
        f"add them later with `mnistbench db import {tmp_path / 'out'} --db {database}`"
    )


def test_a_sweep_recorder_warns_once_however_many_writes_fail(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("not a database\n")
    recorder = SweepRecorder(store(bad), "s1", tmp_path)
    with logged() as messages:
        recorder.record_sweep({}, started_at="2025-01-01T00:00:00+00:00")
        for repeat in range(3):
            recorder.record_run(new_run(run_id=f"tiny-r{repeat}", architecture="tiny", status="ok"))
    assert messages == [
        f"results store not written: {bad}: not an SQLite database (file is not a database); "
        f"runs.csv keeps every run, add them later with `mnistbench db import {tmp_path} "
        f"--db {bad}`"
    ]
