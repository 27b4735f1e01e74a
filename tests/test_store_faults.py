"""The results stores under concurrency and faults, against the real servers: many writers at
once, two migrations at once, a writer killed mid-write, a server stopping mid-sweep."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import postgres
import pytest
from helpers import QUICK, Tiny, finished, logged, python_process, together
from synthetic_runs import invoke

import mnistbench
from mnistbench import record, stores
from mnistbench.builtins import load_plugins
from mnistbench.plan import plan

ROOT = Path(__file__).resolve().parent


def store(url) -> stores.Store:
    return stores.open_store(url, load_plugins(entry_points=False).stores)


# --- many writers at once ---------------------------------------------------------------------

WRITER = """
    import sys
    from helpers import ready_and_wait
    from mnistbench import stores
    from mnistbench.builtins import load_plugins
    from mnistbench.record import new_run

    url, sweep_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = stores.open_store(url, load_plugins(entry_points=False).stores)
    ready_and_wait()  # every writer set up and waiting, then all at once
    with store.open():
        store.record_sweep(sweep_id, {}, started_at="2026-01-01T00:00:00+00:00", output_dir=".")
        for index in range(count):
            run = new_run(run_id=f"run-{index:03d}", architecture="dnn", status="ok",
                          fit_seconds=index / 10, started_at=f"{index:03d}")
            store.record_run(sweep_id, run)
"""


def test_eight_processes_writing_100_runs_each_at_once_lose_none(store_url):
    writers = together([python_process(WRITER, store_url, f"sweep-{k}", "100") for k in range(8)])
    for writer in writers:
        finished(writer)
    runs = store(store_url).read_runs()
    assert runs.groupby("sweep_id").size().to_dict() == {f"sweep-{k}": 100 for k in range(8)}
    assert runs["fit_seconds"].sum() == pytest.approx(8 * sum(range(100)) / 10)
    assert not runs.duplicated(["sweep_id", "run_id"]).any()


# --- two migrations at once ------------------------------------------------------------------

OPENER = """
    import sys
    from helpers import ready_and_wait
    from mnistbench import stores
    from mnistbench.builtins import load_plugins

    store = stores.open_store(sys.argv[1], load_plugins(entry_points=False).stores)
    ready_and_wait()  # every opener set up and waiting, then all at once
    with store.open():
        print(store.found_version)
"""


def old_schema(url: str) -> None:
    """The schema version 1 made (no machine column), with one sweep and run in it."""
    import sqlalchemy as sa

    engine = sa.create_engine(store(url)._url() if url.startswith("postgresql") else url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        connection.exec_driver_sql("INSERT INTO meta VALUES ('schema_version', '1')")
        connection.exec_driver_sql(
            "CREATE TABLE sweeps (sweep_id TEXT PRIMARY KEY, started_at TEXT, output_dir TEXT, "
            "command TEXT, git_commit TEXT, git_dirty TEXT, mnistbench_version TEXT, "
            "cpu_model TEXT, platform TEXT, python TEXT, backends TEXT, packages TEXT, "
            "plugins TEXT, environment TEXT)"
        )
        connection.exec_driver_sql(
            "INSERT INTO sweeps (sweep_id, environment) VALUES "
            """('old', '{"machine": {"label": "runner-7"}}')"""
        )
        connection.exec_driver_sql(
            "CREATE TABLE runs (sweep_id TEXT NOT NULL, run_id TEXT NOT NULL, "
            "architecture TEXT, status TEXT, PRIMARY KEY (sweep_id, run_id))"
        )
        connection.exec_driver_sql("INSERT INTO runs VALUES ('old', 'dnn-r0', 'dnn', 'ok')")
    engine.dispose()


def test_two_sweeps_opening_an_old_store_at_once_migrate_it_once(store_url):
    if not store_url.startswith("postgresql"):
        store_url = f"sqlite:///{store_url}"
    old_schema(store_url)
    openers = together([python_process(OPENER, store_url) for _ in range(4)])
    found = sorted(int(finished(opener)) for opener in openers)
    # One migrated from version 1; the others waited on its lock and found it done.
    assert found == [1, stores.SCHEMA_VERSION, stores.SCHEMA_VERSION, stores.SCHEMA_VERSION]
    runs = store(store_url).read_runs()
    assert runs[["run_id", "machine"]].values.tolist() == [["dnn-r0", "runner-7"]]
    assert store(store_url).schema_version == stores.SCHEMA_VERSION


# --- a writer killed ---------------------------------------------------------------------------

KILLED = """
    import sys
    from mnistbench import stores
    from mnistbench.builtins import load_plugins
    from mnistbench.record import new_run

    store = stores.open_store(sys.argv[1], load_plugins(entry_points=False).stores).open()
    index = 0
    while True:  # until killed
        run = new_run(run_id=f"run-{index:06d}", architecture="dnn", status="failed",
                      error="x" * 2000, epochs=index, fit_seconds=index / 7,
                      started_at=f"{index:06d}", pinned_cpus=f"{index},{index + 1}")
        store.record_run("killed", run)
        index += 1
        if index == 20:
            print("20", flush=True)
"""


def test_a_writer_killed_mid_write_leaves_no_half_written_run(store_url):
    writer = python_process(KILLED, store_url)
    assert writer.stdout.readline().strip() == "20", writer.stderr.read()
    time.sleep(0.3)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    _, runs = store(store_url).read_all()
    assert len(runs) >= 20
    by_id = {run.run_id: run for _, run in runs}
    # Runs 0..n-1, each whole: every field as it was written.
    assert sorted(by_id) == [f"run-{index:06d}" for index in range(len(runs))]
    for index in range(len(runs)):
        run = by_id[f"run-{index:06d}"]
        assert (run.error, run.epochs, run.pinned_cpus) == (
            "x" * 2000,
            index,
            f"{index},{index + 1}",
        )
        assert run.fit_seconds == index / 7


# --- a server stopping in the middle of a sweep -----------------------------------------------


class StopsTheServer(Tiny):
    """The tiny plugin, stopping the PostgreSQL server once the first run is recorded."""

    def __init__(self, server: postgres.Server) -> None:
        self.server = server
        self.stopped = False

    @mnistbench.hookimpl
    def mnistbench_record_run(self, row):
        if not self.stopped:
            self.stopped = True
            self.server.stop()


@pytest.fixture
def own_server():
    """A PostgreSQL server of this test's own, to stop and start again."""
    if postgres.server_binaries() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    server = postgres.start_server()
    yield server
    postgres.remove(server)


def test_a_server_stopping_mid_sweep_warns_once_and_db_import_fills_the_gap(
    own_server, tmp_path, sweep_in_process
):
    url = own_server.url(own_server.create_database())
    plugins = load_plugins(extra=[StopsTheServer(own_server)], entry_points=False)
    output = tmp_path / "out"
    with logged() as messages:
        result = sweep_in_process(output, plan(["tiny"], **QUICK, repeats=3), plugins, db=url)
    # The sweep finished, every run in runs.csv, one warning for the runs the store missed.
    assert [run.status for run in result.runs] == ["ok", "ok", "ok"]
    assert [run.run_id for run in record.read(output)] == ["tiny-r0", "tiny-r1", "tiny-r2"]
    warnings = [message for message in messages if "results store not written" in message]
    assert len(warnings) == 1, messages
    assert "bench-secret" not in warnings[0]
    assert f"add them later with `mnistbench db import {output} --db " in warnings[0]
    own_server.start()
    assert store(url).read_runs()["run_id"].tolist() == ["tiny-r0"]
    imported = invoke("db", "import", str(output), "--db", url)
    assert imported.exit_code == 0, imported.output
    assert "2 run(s) added, 0 updated, 1 unchanged" in imported.stdout
    runs = store(url).read_runs()
    assert runs["run_id"].tolist() == ["tiny-r0", "tiny-r1", "tiny-r2"]
    assert set(runs["sweep_started_at"]) != {""}  # the sweep's row is there too
