"""Where runs execute: the recorder's rows and events, workers that fail, hang or are killed."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time

import pandas as pd
import pytest

import mnistbench
from mnistbench.executor import (
    Interrupted,
    LocalExecutor,
    Recorder,
    call_in_worker,
    make_executor,
)
from mnistbench.plan import Execution, RunConfig, plan
from mnistbench.plugins import load_plugins
from mnistbench.results import Placement
from mnistbench.worker import MachineKey, Outcome

PLACEMENT = Placement("local", "process", "node-1", 2)
KEY = MachineKey("node-1", "tensorflow", 2)


class Registers:
    """Registers the architecture 'tiny' and nothing else."""

    @mnistbench.hookimpl
    def mnistbench_register_architectures(self, register):
        register("tiny")


@pytest.fixture
def events() -> list[dict]:
    return []


@pytest.fixture
def recorded() -> dict[str, list]:
    return {"started": [], "rows": []}


@pytest.fixture
def recorder(events, recorded) -> Recorder:
    return Recorder(
        plan(["tiny"], repeats=2),
        load_plugins(entry_points=False, extra=[Registers()]),
        on_progress=events.append,
        on_start=recorded["started"].append,
        on_result=recorded["rows"].append,
    )


# --- Recorder ------------------------------------------------------------------------------


def test_a_started_run_is_announced_with_where_it_runs(recorder, events, recorded):
    recorder.started(1, node="node-1", pid=123)
    config = recorder.configs[1]
    assert recorded["started"] == [config]
    assert events == [
        {"event": "run", "index": 1, "total": 2, "config": config, "node": "node-1", "pid": 123}
    ]


def test_a_finished_run_is_a_row_with_its_placement_handed_on_at_once(recorder, recorded):
    outcome = Outcome("ok", "", {"fit_seconds": 1.5}, KEY, 3e9)
    row = recorder.finished(0, outcome, started_at="2025-01-01T00:00:00+00:00", placement=PLACEMENT)
    assert recorded["rows"] == [row]
    assert (row["run_id"], row["status"], row["error"], row["fit_seconds"]) == (
        "tiny-r0",
        "ok",
        "",
        1.5,
    )
    assert (row["executor"], row["isolation"], row["node"], row["cpus_reserved"]) == (
        "local",
        "process",
        "node-1",
        2,
    )
    assert row["started_at"] == "2025-01-01T00:00:00+00:00"


def test_a_finished_run_ends_with_its_status(recorder, events):
    recorder.finished(1, Outcome("failed", "boom"), started_at="", placement=PLACEMENT)
    assert events == [
        {
            "event": "run_end",
            "index": 1,
            "total": 2,
            "config": recorder.configs[1],
            "status": "failed",
        }
    ]


def test_results_are_in_plan_order_whatever_order_runs_end(recorder):
    recorder.finished(1, Outcome("ok"), started_at="", placement=PLACEMENT)
    recorder.finished(0, Outcome("failed", "boom"), started_at="", placement=PLACEMENT)
    assert [(row["run_id"], row["status"]) for row in recorder.results()] == [
        ("tiny-r0", "failed"),
        ("tiny-r1", "ok"),
    ]


def test_the_first_peak_measured_on_a_machine_key_is_shared(recorder):
    recorder.finished(
        0, Outcome("ok", machine=KEY, peak_flops_per_second=3e9), started_at="", placement=PLACEMENT
    )
    recorder.finished(
        1, Outcome("ok", machine=KEY, peak_flops_per_second=5e9), started_at="", placement=PLACEMENT
    )
    assert recorder.peaks == {KEY: 3e9}


def test_a_run_without_a_peak_shares_nothing(recorder):
    recorder.finished(0, Outcome("failed", "boom", machine=KEY), started_at="", placement=PLACEMENT)
    assert recorder.peaks == {}


def test_an_interrupted_run_is_an_interrupted_row_with_its_placement(recorder, recorded):
    recorder.interrupted(1, Interrupted(signal.SIGTERM), started_at="t0", placement=PLACEMENT)
    (row,) = recorded["rows"]
    assert (row["run_id"], row["status"], row["error"], row["node"], row["started_at"]) == (
        "tiny-r1",
        "interrupted",
        "interrupted by SIGTERM",
        "node-1",
        "t0",
    )
    assert recorder.results() == []


def test_a_plain_ctrl_c_is_named_sigint(recorder, recorded):
    recorder.interrupted(0, KeyboardInterrupt(), started_at="", placement=PLACEMENT)
    assert recorded["rows"][0]["error"] == "interrupted by SIGINT"


@pytest.mark.parametrize(("number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interruption_exits_with_128_plus_its_signal(number, code):
    interruption = Interrupted(number)
    assert (interruption.exit_code, interruption.args[0]) == (code, signal.Signals(number).name)
    assert isinstance(interruption, KeyboardInterrupt)


# --- make_executor, LocalExecutor in-process -----------------------------------------------


def test_the_local_executor_places_runs_here_with_every_cpu(tmp_path, mnist):
    executor = make_executor(
        Execution(isolation="none"), mnist=mnist, plugins=load_plugins(), log_dir=tmp_path
    )
    assert isinstance(executor, LocalExecutor)
    assert executor.placement == Placement.here("none")


def test_an_interruption_during_a_run_records_it_and_propagates(tmp_path, mnist, faulty_plugin):
    rows = []

    def interrupt(event):
        if event["event"] == "phase":
            raise Interrupted(signal.SIGTERM)

    recorder = Recorder(
        [RunConfig("tiny", epochs=1, train_limit=100, test_limit=50)],
        load_plugins(),
        on_progress=interrupt,
        on_result=rows.append,
    )
    executor = LocalExecutor(
        Execution(isolation="none"), mnist=mnist, plugins=recorder.plugins, log_dir=tmp_path
    )
    with pytest.raises(Interrupted):
        executor.run(recorder)
    assert [(row["run_id"], row["status"], row["error"]) for row in rows] == [
        ("tiny-r0", "interrupted", "interrupted by SIGTERM")
    ]


# --- call_in_worker: tasks in a fresh process (defined here so the worker can import them) --


def answers(value, on_progress):
    on_progress({"event": "phase", "phase": "working"})
    print("to the log")
    logging.getLogger("mnistbench").warning("careful")
    return value * 2


def raises(on_progress):
    raise ValueError("bad input")


def exits(code, on_progress):
    os._exit(code)


def kills_itself(on_progress):
    os.kill(os.getpid(), signal.SIGKILL)


def reports_forever(on_progress):
    step = 0
    while True:
        step += 1
        on_progress({"event": "step", "step": step, "steps": 0})
        time.sleep(0.05)


def hangs(on_progress):
    time.sleep(600)


def test_a_task_result_comes_back_with_its_progress(tmp_path, caplog):
    events = []
    with caplog.at_level(logging.WARNING, logger="mnistbench"):
        result = call_in_worker(
            answers, (21,), log_path=tmp_path / "w.log", on_progress=events.append
        )
    assert result == (42, None)
    assert events == [{"event": "phase", "phase": "working"}]
    assert caplog.messages == ["careful"]  # a worker's warning is logged here
    assert (tmp_path / "w.log").read_text() == "to the log\n"


def test_a_task_that_raises_is_its_error(tmp_path):
    result = call_in_worker(raises, (), log_path=tmp_path / "w.log", on_progress=lambda e: None)
    assert result == (None, "ValueError: bad input")


def test_a_worker_that_exits_is_its_exit_code_and_log(tmp_path):
    log = tmp_path / "w.log"
    result = call_in_worker(exits, (3,), log_path=log, on_progress=lambda e: None)
    assert result == (None, f"worker process exited with code 3; see {log}")


def test_a_killed_worker_is_named_by_its_signal(tmp_path):
    log = tmp_path / "w.log"
    result = call_in_worker(kills_itself, (), log_path=log, on_progress=lambda e: None)
    assert result == (None, f"worker process killed by SIGKILL; see {log}")


def test_the_timeout_stops_a_task_that_keeps_reporting_progress(tmp_path):
    events = []
    started = time.monotonic()
    result = call_in_worker(
        reports_forever, (), log_path=tmp_path / "w.log", on_progress=events.append, timeout=5
    )
    assert result == (None, "timed out after 5 s")
    assert events  # it was reporting when it was stopped
    assert time.monotonic() - started < 60
    assert multiprocessing.active_children() == []


def test_the_timeout_stops_a_task_that_hangs(tmp_path):
    result = call_in_worker(
        hangs, (), log_path=tmp_path / "w.log", on_progress=lambda e: None, timeout=0.5
    )
    assert result == (None, "timed out after 0.5 s")
    assert multiprocessing.active_children() == []


# --- LocalExecutor with process isolation: real runs in workers ----------------------------


def test_hang_past_the_timeout_is_a_failed_row(tmp_path, sweep_in_process, faulty_plugin):
    # Only the hanging run is in this sweep: a healthy run beside it could be slow enough
    # on a busy machine to hit a short timeout too.
    configs = plan(["sleepy"], epochs=1, train_limit=300, test_limit=100)
    started = time.monotonic()
    sweep_in_process(tmp_path, configs, isolation="process", timeout=3)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(zip(runs["status"], runs["error"], strict=True)) == [
        ("failed", "timed out after 3 s")
    ]
    assert time.monotonic() - started < 120
    assert multiprocessing.active_children() == []


def test_worker_killed_mid_training_is_one_failed_row_and_the_sweep_goes_on(
    tmp_path, mnist, faulty_plugin
):
    from mnistbench.sweep import Sweep, run_sweep

    configs = [
        RunConfig("tiny", epochs=3, train_limit=3000, test_limit=100),
        RunConfig("tiny", epochs=1, train_limit=500, test_limit=100, repeat=1),
    ]
    killed = []

    def kill_first_worker_mid_epoch(event):
        if event["event"] == "step" and not killed:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    run_sweep(
        Sweep.new(configs, Execution(isolation="process"), tmp_path),
        mnist=mnist,
        plugins=load_plugins(),
        on_progress=kill_first_worker_mid_epoch,
        argv=["mnistbench"],
    )
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(killed) == 1
    assert list(runs["status"]) == ["failed", "ok"]
    assert runs.loc[0, "error"] == (
        f"worker process killed by SIGKILL; see {tmp_path / 'logs' / 'tiny-r0.log'}"
    )
    assert runs.loc[1, "test_accuracy"] > 0.3
