"""A history a team shares: machines kept apart in every series, the same history from SQLite
and PostgreSQL, a history moved between stores, and several machines writing one store."""

from __future__ import annotations

import os

from helpers import finished, python_process, together
from synthetic_runs import invoke
from test_history import COMMITS, STEP_40, as_read, run_row, sweep_rows

from mnistbench import stores
from mnistbench.builtins import load_plugins
from mnistbench.environment import MACHINE_VARIABLE, describe_machine, machine_identity
from mnistbench.history import points_from_runs


def store(url) -> stores.Store:
    return stores.open_store(url, load_plugins(entry_points=False).stores)


# --- what a machine is --------------------------------------------------------------------------


def test_a_machine_is_its_label_when_set_else_its_description():
    described = describe_machine({})
    assert described["label"] == ""
    assert described["cores"] == os.cpu_count() and described["memory_gb"] > 0
    identity = machine_identity({"machine": described})
    assert identity.startswith(f"{described['cpu']}, {os.cpu_count()} cores, ")
    assert f"{described['memory_gb']} GB" in identity and described["os"] in identity
    labelled = describe_machine({MACHINE_VARIABLE: "  ci-runner-1 "})
    assert machine_identity({"machine": labelled}) == "ci-runner-1"


def test_the_same_machine_described_twice_is_one_machine():
    assert machine_identity({"machine": describe_machine({})}) == machine_identity(
        {"machine": describe_machine({})}
    )


def test_machines_differing_in_any_part_are_told_apart():
    base = {"cpu": "Xeon", "cores": 8, "memory_gb": 32, "os": "Linux x86_64", "accelerator": ""}
    others = [
        {**base, "cores": 16},
        {**base, "memory_gb": 64},
        {**base, "cpu": "EPYC"},
        {**base, "os": "Darwin arm64"},
        {**base, "accelerator": "NVIDIA H200"},
    ]
    identities = {machine_identity({"machine": m}) for m in [base, *others]}
    assert len(identities) == 6


def test_an_older_sweep_is_described_from_what_it_recorded():
    older = {
        "cpu": "Old CPU",
        "cpu_count": 4,
        "machine_info": {"system": "Linux", "machine": "x86_64"},
    }
    assert machine_identity(older) == "Old CPU, 4 cores, Linux x86_64"
    older["environment_variables"] = {MACHINE_VARIABLE: "laptop"}
    assert machine_identity(older) == "laptop"


# --- series per machine --------------------------------------------------------------------------


def on(machine: str, rows):
    return [(run, {**sweep, "machine": machine}) for run, sweep in rows]


def two_machines():
    rows = []
    for i, value in enumerate(STEP_40):
        rows += on("runner-a", sweep_rows(i, [run_row(fit_seconds=value)]))
        rows += on("runner-b", sweep_rows(i, [run_row(fit_seconds=value * 2)]))
    return as_read(rows)


def test_each_machine_is_a_series_of_its_own():
    points = points_from_runs(two_machines())
    assert points.groupby("machine")["fit_seconds"].apply(list).to_dict() == {
        "runner-a": STEP_40,
        "runner-b": [value * 2 for value in STEP_40],
    }
    assert points["series"].nunique() == 2
    assert sorted(set(points["label"])) == ["dnn · on runner-a", "dnn · on runner-b"]


def test_history_machine_selects_one_machines_series():
    points = points_from_runs(two_machines(), machines=["runner-b"])
    assert set(points["machine"]) == {"runner-b"}
    assert points["label"].iloc[0] == "dnn"  # one machine shown: no need to name it


def test_history_of_an_unknown_machine_names_the_known_ones(tmp_path):
    path = tmp_path / "two.sqlite"
    with store(path).open() as opened:
        for machine in ("runner-a", "runner-b"):
            opened.record_sweep(
                machine, {"machine": {"label": machine}}, started_at="2026-01-01", output_dir="/x"
            )
            opened.record_run(machine, run_row())
    result = invoke("history", "--db", str(path), "--machine", "runner-c", "-o", str(tmp_path))
    assert (result.exit_code, result.stderr) == (
        2,
        f"Error: {path}: no runs match machine 'runner-c' (its machines: runner-a; runner-b)\n",
    )


# --- the same history from SQLite and PostgreSQL ----------------------------------------------


def fill(url: str) -> None:
    with store(url).open() as opened:
        for i, (dnn, cnn) in enumerate(zip(STEP_40, reversed(STEP_40), strict=True)):
            environment = {
                "git_commit": COMMITS[i],
                "commit_info": {"dirty": False},
                "packages": {"mnistbench": "0.1.0"},
                "machine": {"label": "runner-a" if i % 3 else "runner-b"},
            }
            started = f"2025-03-{i + 1:02d}T12:00:00+00:00"
            opened.record_sweep(f"s{i:02d}", environment, started_at=started, output_dir="/x")
            opened.record_run(f"s{i:02d}", run_row(fit_seconds=dnn))
            opened.record_run(f"s{i:02d}", run_row("cnn", fit_seconds=cnn, pinned_cpus="0,1"))


def test_the_same_sweeps_give_the_same_history_from_sqlite_and_postgresql(postgres_url, tmp_path):
    sqlite = str(tmp_path / "history.sqlite")
    fill(sqlite)
    fill(postgres_url)
    outputs = {}
    for name, url in (("sqlite", sqlite), ("postgresql", postgres_url)):
        pages = tmp_path / f"pages-{name}"
        result = invoke(
            "history", "--db", url, "-o", str(tmp_path / name), "--html", str(pages), "--metric",
            "fit_seconds",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs[name] = (result.stdout, (pages / "index.html").read_text())
    assert outputs["sqlite"] == outputs["postgresql"]
    assert "on runner-a" in outputs["sqlite"][0] and "on runner-b" in outputs["sqlite"][0]
    # And the same points, typed the same way.
    frames = [points_from_runs(store(url).read_runs()) for url in (sqlite, postgres_url)]
    assert frames[0].equals(frames[1])


def test_db_copy_moves_a_history_into_another_store_and_again_changes_nothing(
    postgres_url, tmp_path
):
    sqlite = str(tmp_path / "laptop.sqlite")
    fill(sqlite)
    first = invoke("db", "copy", sqlite, postgres_url)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith(f"copied 8 sweep(s) from {sqlite} into postgresql://")
    assert first.stdout.endswith(": 16 run(s) added or updated\n")
    assert "bench-secret" not in first.stdout
    again = invoke("db", "copy", sqlite, postgres_url)
    assert again.stdout.endswith(": 0 run(s) added or updated\n")
    frames = [points_from_runs(store(url).read_runs()) for url in (sqlite, postgres_url)]
    assert frames[0].equals(frames[1])
    same = invoke("db", "copy", sqlite, f"sqlite:///{sqlite}")
    assert (same.exit_code, same.stderr) == (
        2,
        f"Error: db copy: {sqlite} is both the source and the target\n",
    )


# --- three processes, two machines, one PostgreSQL --------------------------------------------

SWEEPER = """
    import sys
    from helpers import ready_and_wait
    from test_history import run_row
    from mnistbench import stores
    from mnistbench.stores.recorder import SweepRecorder
    from mnistbench.builtins import load_plugins
    from mnistbench.environment import describe_machine

    # A sweep's writes as run_sweep makes them (its recorder): the sweep's environment with
    # this machine (MNISTBENCH_MACHINE), then each run as it ends; all three processes at once.
    url, sweep_id = sys.argv[1], sys.argv[2]
    store = stores.open_store(url, load_plugins(entry_points=False).stores)
    recorder = SweepRecorder(store, sweep_id, ".")
    ready_and_wait()
    recorder.record_sweep(
        {"machine": describe_machine(), "git_commit": sweep_id * 40},
        started_at=f"2026-01-0{sweep_id}T00:00:00+00:00",
    )
    for repeat in range(3):
        for batch_size in (32, 64):
            recorder.record_run(run_row("tiny", batch_size=batch_size, repeat=repeat,
                                        fit_seconds=1.0 + repeat / 10))
    recorder.close()
"""


def test_history_of_a_store_written_at_once_by_three_processes_on_two_machines(
    postgres_url, tmp_path
):
    processes = together(
        [
            python_process(SWEEPER, postgres_url, str(k), env={MACHINE_VARIABLE: machine})
            for k, machine in ((1, "runner-a"), (2, "runner-a"), (3, "runner-b"))
        ]
    )
    for process in processes:
        finished(process)
    runs = store(postgres_url).read_runs()
    assert len(runs) == 18 and runs["sweep_id"].nunique() == 3
    result = invoke("history", "--db", postgres_url, "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    # Two configurations (batch sizes 32 and 64) on two machines: four series, each named.
    points = points_from_runs(runs)
    assert points.groupby(["machine", "batch_size"]).size().to_dict() == {
        ("runner-a", 32): 2,
        ("runner-a", 64): 2,
        ("runner-b", 32): 1,
        ("runner-b", 64): 1,
    }
    assert points["series"].nunique() == 4
    for label in set(points["label"]):
        assert label in result.stdout
    assert {label.rsplit(" · ", 1)[-1] for label in points["label"]} == {
        "on runner-a",
        "on runner-b",
    }
    only_b = invoke("history", "--db", postgres_url, "--machine", "runner-b", "-o", str(tmp_path))
    assert only_b.exit_code == 0, only_b.output
    assert "runner-a" not in only_b.stdout
