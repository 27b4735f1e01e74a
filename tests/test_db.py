"""The results database: every finished run of every sweep, with the sweep's environment."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from helpers import QUICK, QUICK_ARGS
from synthetic_runs import invoke

import mnistbench
from mnistbench import db, record
from mnistbench.columns import RUN_COLUMNS
from mnistbench.manifest import Manifest, derived_sweep_id
from mnistbench.plan import plan
from mnistbench.record import new_run
from mnistbench.sweep import Sweep, run_sweep

# A sweep of dnn small enough for a test; --isolation none skips the worker start-up.
CLI_RUN = ("run", "dnn", *QUICK_ARGS, "--isolation", "none")


def run_ids(output: Path) -> list[str]:
    """The runs of ``output``'s runs.csv, in file order."""
    return [run.run_id for run in record.read(output)]


@contextlib.contextmanager
def logged() -> Iterator[list[str]]:
    """The messages logged to the "mnistbench" logger meanwhile, whatever its propagation."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("mnistbench")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def query(path: Path, sql: str, *args) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


#: The runs of the recorded sweep and how each ends.
STATUSES = {"tiny-r0": "ok", "broken-r0": "failed", "nan-r0": "diverged"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, sweep_in_process, tiny_plugins) -> tuple[Path, Path]:
    """One in-process sweep of tiny (ok), broken (failed) and nan (diverged), recorded in a
    database: ``(output_dir, database)``, read-only (copy them to change anything)."""
    root = tmp_path_factory.mktemp("recorded")
    output, database = root / "out", root / "results.sqlite"
    configs = plan(["tiny", "broken", "nan"], **QUICK)
    sweep_in_process(output, configs, tiny_plugins, db=database)
    return output, database


@pytest.fixture
def copies(recorded, tmp_path) -> tuple[Path, Path]:
    output, database = recorded
    return shutil.copytree(output, tmp_path / "out"), Path(
        shutil.copy(database, tmp_path / "results.sqlite")
    )


# --- a sweep writes it --------------------------------------------------------------------


def test_every_run_of_a_sweep_is_in_the_database_with_every_column(recorded):
    output, database = recorded
    runs = db.read_runs(database)
    assert list(runs.columns) == [*RUN_COLUMNS, *db.SWEEP_COLUMNS]
    # In the order the sweep ran them, each as it ended.
    assert list(runs["run_id"]) == run_ids(output)
    assert dict(zip(runs["run_id"], runs["status"], strict=True)) == STATUSES
    # Typed exactly as runs.csv reads: the same records, the same frame, cell for cell.
    pd.testing.assert_frame_equal(runs[RUN_COLUMNS], record.frame(record.read(output)))


def test_the_database_stores_numbers_as_numbers_and_empty_cells_as_null(recorded):
    _, database = recorded
    types = query(
        database,
        "SELECT run_id, typeof(fit_seconds), typeof(epochs), typeof(jit_compile), "
        "typeof(error) FROM runs",
    )
    assert {run_id: rest for run_id, *rest in types} == {
        "tiny-r0": ["real", "integer", "text", "null"],
        "broken-r0": ["null", "integer", "null", "text"],
        "nan-r0": ["null", "integer", "null", "text"],  # diverged: nothing measured is kept
    }


def test_the_sweep_row_holds_the_environment_of_the_sweep(recorded):
    output, database = recorded
    environment = json.loads((output / "environment.json").read_text())
    manifest = json.loads((output / "manifest.json").read_text())
    (sweep,) = query(
        database,
        "SELECT sweep_id, started_at, output_dir, command, git_commit, git_dirty, "
        "mnistbench_version, cpu_model, platform, python, backends, packages, plugins, "
        "environment FROM sweeps",
    )
    assert sweep == (
        manifest["sweep_id"],
        manifest["created_at"],
        str(output.resolve()),
        "mnistbench",
        environment["git_commit"],
        str(environment["commit_info"]["dirty"]),
        mnistbench.__version__,
        environment["cpu"],
        environment["platform"],
        environment["python"],
        json.dumps(environment["backends"], sort_keys=True),
        json.dumps(environment["packages"], sort_keys=True),
        json.dumps(environment["plugins"], sort_keys=True),
        json.dumps(environment, sort_keys=True),
    )
    assert environment["sweep_id"] == manifest["sweep_id"] != ""


def test_read_runs_gives_each_run_the_columns_of_its_sweep(recorded):
    output, database = recorded
    runs = db.read_runs(database)
    manifest = json.loads((output / "manifest.json").read_text())
    sweep_columns = runs[list(db.SWEEP_COLUMNS)].drop_duplicates()
    assert len(sweep_columns) == 1
    assert sweep_columns.iloc[0][["sweep_id", "sweep_started_at", "output_dir"]].tolist() == [
        manifest["sweep_id"],
        manifest["created_at"],
        str(output.resolve()),
    ]
    assert sweep_columns.iloc[0]["mnistbench_version"] == mnistbench.__version__


def ids_and_rowids(database: Path) -> dict[str, tuple]:
    rows = query(database, "SELECT run_id, sweep_id, rowid FROM runs")
    return {run_id: rest for run_id, *rest in rows}


def test_a_resumed_sweep_keeps_its_id_and_replaces_the_rows_it_reruns(copies, mnist, tiny_plugins):
    output, database = copies
    before = ids_and_rowids(database)
    sweep = Sweep.resume(output, tiny_plugins)
    assert sweep.manifest.sweep_id == before["tiny-r0"][0]
    run_sweep(sweep, mnist=mnist, plugins=tiny_plugins, argv=["mnistbench"], db=database)
    after = ids_and_rowids(database)
    assert set(after) == {"tiny-r0", "broken-r0", "nan-r0"}
    assert {sweep_id for sweep_id, _ in after.values()} == {sweep.manifest.sweep_id}
    assert after["tiny-r0"] == before["tiny-r0"]  # kept, not rerun
    stored = dict(query(database, "SELECT run_id, started_at FROM runs"))
    assert stored == {run.run_id: run.started_at for run in record.read(output)}
    assert query(database, "SELECT count(*) FROM sweeps") == [(1,)]


def test_a_database_that_cannot_be_written_warns_once_and_the_sweep_goes_on(
    tmp_path, sweep_in_process, tiny_plugins
):
    (tmp_path / "file").write_text("")
    database = tmp_path / "file" / "results.sqlite"  # its directory cannot be made
    with logged() as messages:
        # Three writes fail: the sweep's, the failed run's, and the next run's.
        configs = plan(["broken", "tiny"], **QUICK)
        sweep_in_process(tmp_path / "out", configs, tiny_plugins, db=database)
    assert {run.run_id: run.status for run in record.read(tmp_path / "out")} == {
        "broken-r0": "failed",
        "tiny-r0": "ok",
    }
    warnings = [message for message in messages if "results database" in message]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"results database not written: cannot create {database}: ")
    assert warnings[0].endswith(f"add them later with `mnistbench db import {tmp_path / 'out'}`")


def test_a_sweep_recorder_warns_once_however_many_writes_fail(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("not a database\n")
    recorder = db.SweepRecorder(bad, "s1", tmp_path)
    with logged() as messages:
        recorder.record_sweep({}, started_at="2025-01-01T00:00:00+00:00")
        for repeat in range(3):
            recorder.record_run(new_run(run_id=f"tiny-r{repeat}", architecture="tiny", status="ok"))
    assert messages == [
        f"results database not written: {bad}: not an SQLite database (file is not a "
        f"database); runs.csv keeps every run, add them later with "
        f"`mnistbench db import {tmp_path}`"
    ]


# --- concurrency and crashes ---------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mnistbench.db import Database
    from mnistbench.record import new_run

    path, sweep_id, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    start = float(sys.argv[4])
    while time.time() < start:
        time.sleep(0.005)
    with Database(path) as database:
        database.record_sweep(sweep_id, {}, started_at="", output_dir=".")
        for index in range(count):
            run = new_run(run_id=f"run-{index}", architecture="dnn", status="ok",
                          fit_seconds=index / 10)
            database.record_run(sweep_id, run)
    """
)


def test_two_processes_writing_at_once_lose_no_run(tmp_path):
    database, start = tmp_path / "shared.sqlite", time.time() + 2
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(database), sweep_id, "250", str(start)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for sweep_id in ("first", "second")
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    counts = query(database, "SELECT sweep_id, count(*) FROM runs GROUP BY sweep_id")
    assert counts == [("first", 250), ("second", 250)]
    assert query(database, "SELECT sum(fit_seconds) FROM runs") == [(2 * sum(range(250)) / 10,)]


def test_a_sweep_killed_mid_run_leaves_a_readable_database(tmp_path, mnist_npz):
    database, output = tmp_path / "env.sqlite", tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "mnistbench.cli", *CLI_RUN, "--repeats", "20"]
        + ["--output", str(output), "--data", str(mnist_npz)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # MNISTBENCH_DB chooses the database when --db is not given.
        env={**os.environ, "MNISTBENCH_DB": str(database)},
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            try:
                if query(database, "SELECT count(*) FROM runs")[0][0] >= 1:
                    break
            except sqlite3.Error:
                pass  # not created yet
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    runs = db.read_runs(database)
    finished = run_ids(output)
    assert 1 <= len(runs) < 20
    # Each row reaches the database right after runs.csv: it holds the same runs, or
    # all but the one whose database write the kill came before.
    assert list(runs["run_id"]) in (finished, finished[:-1])
    assert list(runs["run_id"]) == [f"dnn-r{repeat}" for repeat in range(len(runs))]
    assert set(runs["status"]) == {"ok"}


# --- the command line ------------------------------------------------------------------------


def test_run_writes_the_default_database_beside_the_default_output(
    tmp_path, mnist_npz, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    # Neither --db nor MNISTBENCH_DB: the database goes beside the default results/.
    result = invoke(*CLI_RUN, "--data", str(mnist_npz), env={"MNISTBENCH_DB": None})
    assert result.exit_code == 0, result.output
    (output,) = [path for path in (tmp_path / "results").iterdir() if path.is_dir()]
    runs = db.read_runs(tmp_path / "results" / "mnistbench.sqlite")
    assert list(runs["run_id"]) == ["dnn-r0"]
    assert list(runs["output_dir"]) == [str(output.resolve())]

    # With --no-db, no database at all, whatever MNISTBENCH_DB says.
    again = invoke(
        *CLI_RUN, "--no-db", "--data", str(mnist_npz), "--output", "out",
        env={"MNISTBENCH_DB": str(tmp_path / "env.sqlite")},
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert run_ids(tmp_path / "out") == ["dnn-r0"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "results"]
    assert db.read_runs(tmp_path / "results" / "mnistbench.sqlite")["run_id"].tolist() == ["dnn-r0"]


def test_run_refuses_db_and_no_db_together(tmp_path):
    result = invoke(*CLI_RUN, "--db", str(tmp_path / "x.sqlite"), "--no-db")
    assert (result.exit_code, result.stderr) == (2, "Error: give --db PATH or --no-db, not both\n")


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
    with db.Database(path) as database:
        for index in range(50):
            run = new_run(run_id=f"r{index}", architecture="dnn", status="failed", error="x" * 500)
            database.record_run("s", run)
    path.write_bytes(path.read_bytes()[:3000])
    return path


BAD_DATABASES = {
    "newer": (newer, "results database schema version 99 is newer than this mnistbench's (1); "
              "upgrade mnistbench or choose another --db"),
    "text": (text_file, "not an SQLite database (file is not a database)"),
    "truncated": (truncated, "not an SQLite database (database disk image is malformed)"),
}  # fmt: skip


@pytest.mark.parametrize("kind", BAD_DATABASES)
def test_a_bad_database_is_refused_in_one_line_by_run_import_and_read_runs(
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
    with pytest.raises(db.DatabaseError) as error:
        db.read_runs(path)
    assert f"Error: {error.value}\n" == expected
    assert path.read_bytes() == content  # refused, not repaired


def test_read_runs_of_a_missing_database_is_one_line(tmp_path):
    with pytest.raises(db.DatabaseError) as error:
        db.read_runs(tmp_path / "none.sqlite")
    assert str(error.value) == (
        f"{tmp_path / 'none.sqlite'}: not found; `mnistbench run` or `mnistbench db import` "
        "writes it"
    )


def test_db_import_twice_adds_nothing(recorded, tmp_path):
    output, _ = recorded
    sweep_id = json.loads((output / "manifest.json").read_text())["sweep_id"]
    database = tmp_path / "imported.sqlite"
    first = invoke("db", "import", str(output), "--db", str(database))
    second = invoke("db", "import", str(output), "--db", str(database))
    assert (first.exit_code, first.stdout) == (
        0,
        f"{output}: 3 run(s) added, 0 updated, 0 unchanged (sweep {sweep_id})\n"
        f"database: {database}\n",
    )
    assert (second.exit_code, second.stdout) == (
        0,
        f"{output}: 0 run(s) added, 0 updated, 3 unchanged (sweep {sweep_id})\n"
        f"database: {database}\n",
    )
    assert query(database, "SELECT count(*) FROM runs") == [(3,)]


def test_importing_a_sweep_the_database_recorded_changes_nothing(copies):
    output, database = copies
    with db.Database(database) as opened:
        imported = opened.import_directory(output)
    assert (imported.added, imported.updated, imported.unchanged) == (0, 0, 3)


def test_db_import_of_a_directory_without_runs_csv_imports_nothing(recorded, tmp_path):
    database, empty = tmp_path / "imported.sqlite", tmp_path / "empty"
    empty.mkdir()
    result = invoke("db", "import", str(recorded[0]), str(empty), "--db", str(database))
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"Error: {empty}: no runs.csv; is it an mnistbench output directory?\n",
    )
    assert query(database, "SELECT count(*) FROM runs") == [(0,)]


def test_an_older_directory_gets_an_id_derived_from_its_manifest(copies, tmp_path):
    output, _ = copies
    manifest = json.loads((output / "manifest.json").read_text())
    del manifest["sweep_id"]
    (output / "manifest.json").write_text(json.dumps(manifest))
    expected = derived_sweep_id(manifest["created_at"], [run["run_id"] for run in manifest["runs"]])
    assert sorted(run["run_id"] for run in manifest["runs"]) == sorted(STATUSES)
    with db.Database(tmp_path / "fresh.sqlite") as database:
        first, second = database.import_directories([output, output])
    assert (first.sweep_id, first.added) == (expected, 3)
    assert (second.sweep_id, second.added, second.updated) == (expected, 0, 0)
    assert Manifest.load(output).sweep_id == expected  # what --resume will keep


def test_a_directory_without_manifest_gets_an_id_derived_from_its_path(copies, tmp_path):
    output, _ = copies
    (output / "manifest.json").unlink()
    with db.Database(tmp_path / "fresh.sqlite") as database:
        first, second = database.import_directories([output, output])
    assert first.sweep_id == second.sweep_id
    assert first.sweep_id.startswith("derived-")
    assert (first.added, second.added) == (3, 0)
    started = query(tmp_path / "fresh.sqlite", "SELECT started_at FROM sweeps")
    assert started == [(min(run.started_at for run in record.read(output)),)]


# --- sweep ids --------------------------------------------------------------------------------


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


#: The meta and sweeps tables of a schema-version-1 database, as version 1 made them.
VERSION_1_SWEEPS = """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE sweeps (sweep_id TEXT PRIMARY KEY, started_at TEXT, output_dir TEXT,
            command TEXT, git_commit TEXT, git_dirty TEXT, mnistbench_version TEXT,
            cpu_model TEXT, platform TEXT, python TEXT, backends TEXT, packages TEXT,
            plugins TEXT, environment TEXT);
"""


def test_a_version_1_database_with_fewer_run_columns_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(
        VERSION_1_SWEEPS
        + """
        INSERT INTO sweeps (sweep_id, started_at, git_commit) VALUES ('old', '2024-01-01', 'abc');
        CREATE TABLE runs (sweep_id TEXT NOT NULL, run_id TEXT NOT NULL, architecture,
            status, fit_seconds REAL, PRIMARY KEY (sweep_id, run_id));
        INSERT INTO runs VALUES ('old', 'dnn-r0', 'dnn', 'ok', 12.5);
        """
    )
    connection.close()
    with db.Database(path) as database:
        assert database.schema_version == db.SCHEMA_VERSION
        run = new_run(run_id="dnn-r0", architecture="dnn", status="ok", probe_seconds=0.25)
        database.record_run("new", run)
    columns = [row[1] for row in query(path, "PRAGMA table_info(runs)")]
    assert columns[:5] == ["sweep_id", "run_id", "architecture", "status", "fit_seconds"]
    assert sorted(columns[1:]) == sorted(RUN_COLUMNS)
    runs = db.read_runs(path)
    assert runs[["sweep_id", "run_id", "architecture", "fit_seconds"]].values.tolist()[0] == [
        "old",
        "dnn-r0",
        "dnn",
        12.5,
    ]
    assert runs["git_commit"].tolist()[0] == "abc"
    assert runs["probe_seconds"].tolist()[0] != runs["probe_seconds"].tolist()[0]  # NaN
    assert runs["probe_seconds"].tolist()[1] == 0.25


def test_read_runs_of_an_older_database_reads_without_writing_to_it(tmp_path):
    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(
        VERSION_1_SWEEPS
        + """
        CREATE TABLE runs (sweep_id TEXT NOT NULL, run_id TEXT NOT NULL, architecture, status,
            PRIMARY KEY (sweep_id, run_id));
        INSERT INTO runs VALUES ('old', 'dnn-r0', 'dnn', 'ok');
        """
    )
    connection.close()
    content = path.read_bytes()
    runs = db.read_runs(path)
    assert list(runs.columns) == [*RUN_COLUMNS, *db.SWEEP_COLUMNS]
    assert runs[["run_id", "architecture", "status", "sweep_id"]].values.tolist() == [
        ["dnn-r0", "dnn", "ok", "old"]
    ]
    assert runs["config_id"].tolist() == ["dnn"]  # older runs are keyed by architecture
    assert path.read_bytes() == content


def test_the_migrations_are_in_order_and_end_at_the_schema_version():
    versions = [version for version, _ in db.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert versions[-1] == db.SCHEMA_VERSION


def test_text_that_looks_like_a_number_is_kept_as_written(tmp_path, recorded):
    path = tmp_path / "text.sqlite"
    with db.Database(path) as database:
        run = new_run(
            run_id="r1", architecture="nan", status="ok", plugin_version="1.10", node="1e5"
        )
        database.record_run("s", run)
    assert query(path, "SELECT architecture, plugin_version, node FROM runs") == [
        ("nan", "1.10", "1e5")
    ]
    # And reads back as the record it was: text fields hold the text.
    assert record.read_if_present(tmp_path) == []
    [stored] = db.read_runs(path).to_dict("records")
    assert (stored["architecture"], stored["config_id"], stored["node"]) == ("nan", "nan", "1e5")
    assert stored["plugin_version"] == "1.10"
    # The sweep's run of the architecture called nan too.
    assert sorted(db.read_runs(recorded[1])["architecture"]) == ["broken", "nan", "tiny"]


def test_import_of_a_file_that_is_no_runs_csv_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "runs.csv").write_bytes(b"\xff\xfe\x00a")
    result = invoke("db", "import", str(tmp_path / "other"), "--db", str(tmp_path / "r.sqlite"))
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {tmp_path / 'other' / 'runs.csv'}: cannot be read as CSV")
