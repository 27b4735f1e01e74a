"""Where runs execute: checking an execution's settings, the recorder's records and events,
the local executor, and workers that fail, hang or are killed."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time

import pytest
from helpers import quick

from mnistbench import record
from mnistbench.errors import ConfigError
from mnistbench.executors import Interrupted, Recorder, check_execution
from mnistbench.executors.local import LocalExecutor, call_in_worker
from mnistbench.executors.ray import RayExecutor
from mnistbench.plan import Execution, plan
from mnistbench.worker import MachineKey, Outcome, Placement, run_record

PLACEMENT = Placement("local", "process", "node-1", 2)
KEY = MachineKey("node-1", "tensorflow", 2)


def local(timeout=None, **options) -> Execution:
    """The local executor's settings; no speed probes, which no test here reads."""
    return Execution("local", timeout, options, probe=False)


def ray(timeout=None, **options) -> Execution:
    return Execution("ray", timeout, options)


# --- check_execution -------------------------------------------------------------------------


def test_the_executor_an_execution_names_is_checked_and_returned(tiny_plugins):
    assert check_execution(Execution(), tiny_plugins.executors, [None]) is LocalExecutor
    assert check_execution(ray(30, cpus_per_run=1), tiny_plugins.executors, [None]) is RayExecutor


def test_the_default_execution_is_local_processes_without_timeout():
    assert Execution() == Execution("local", None, {})
    assert Execution().option("isolation", "process") == "process"


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        (Execution("slurm"), "unknown executor 'slurm' (known: local, ray)"),
        (local(isolation="thread"), "unknown isolation 'thread' (known: process, warm, none)"),
        (local(timeout=0), "--timeout must be above 0 seconds, got 0"),
        (local(timeout=-1.5), "--timeout must be above 0 seconds, got -1.5"),
        (local(10, isolation="none"), "--timeout needs a worker: --isolation process or warm"),
        (local(ray_address="ray://head:10001"), "--ray-address needs --executor ray"),
        (local(cpus_per_run=2), "--cpus-per-run needs --executor ray"),
        (ray(isolation="none"), "--isolation needs --executor local"),
        (ray(cpus_per_run=0), "--cpus-per-run must be at least 1, got 0"),
        (local(gpus_per_run=1), "--gpus-per-run needs an executor that takes it"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_check_execution_refuses_a_combination_that_cannot_run(tiny_plugins, execution, message):
    with pytest.raises(ConfigError) as error:
        check_execution(execution, tiny_plugins.executors, [None])
    assert str(error.value) == message


def test_an_option_given_as_none_is_not_given(tiny_plugins):
    execution = local(ray_address=None, cpus_per_run=None, isolation=None)
    assert check_execution(execution, tiny_plugins.executors, [None]) is LocalExecutor
    assert execution.option("isolation", "process") == "process"


def test_ray_with_an_address_and_a_reservation_is_accepted(tiny_plugins):
    execution = ray(ray_address="ray://head:10001", cpus_per_run=2)
    assert check_execution(execution, tiny_plugins.executors, [None]) is RayExecutor


def test_an_unknown_backend_is_refused(tiny_plugins):
    with pytest.raises(ConfigError) as error:
        check_execution(Execution(), tiny_plugins.executors, ["theano"])
    assert str(error.value) == "unknown backend 'theano' (known: tensorflow, jax, torch)"


def test_in_process_runs_refuse_a_backend_other_than_the_configured_one(tiny_plugins, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(ConfigError) as error:
        check_execution(local(isolation="none"), tiny_plugins.executors, ["tensorflow", "jax"])
    assert (
        str(error.value)
        == "--backend other than the configured one needs a worker: --isolation process or warm"
    )


def test_in_process_runs_accept_the_configured_backend_named(tiny_plugins, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    check_execution(local(isolation="none"), tiny_plugins.executors, ["tensorflow", None])


# --- Recorder ------------------------------------------------------------------------------


@pytest.fixture
def events() -> list[dict]:
    return []


@pytest.fixture
def recorded() -> dict[str, list]:
    return {"started": [], "runs": []}


@pytest.fixture
def recorder(events, recorded, tiny_plugins) -> Recorder:
    return Recorder(
        plan(["tiny"], repeats=2),
        tiny_plugins,
        on_progress=events.append,
        on_start=recorded["started"].append,
        on_result=recorded["runs"].append,
    )


def test_a_started_run_is_announced_with_where_it_runs(recorder, events, recorded):
    recorder.started(1, node="node-1", pid=123)
    config = recorder.configs[1]
    assert recorded["started"] == [config]
    assert events == [
        {"event": "run", "index": 1, "total": 2, "config": config, "node": "node-1", "pid": 123}
    ]


def test_a_finished_run_is_the_workers_record_handed_on_at_once(recorder, recorded):
    config = recorder.configs[0]
    made = run_record(
        config,
        recorder.plugins.architectures["tiny"],
        PLACEMENT,
        status="ok",
        started_at="2025-01-01T00:00:00+00:00",
        measured={"fit_seconds": 1.5},
    )
    elsewhere = Placement("ray", "process", "node-9", 1)  # the worker's record wins
    run = recorder.finished(
        0, Outcome("ok", "", made, KEY, 3e9), started_at="", placement=elsewhere
    )
    assert recorded["runs"] == [run] and run is made
    assert (run.run_id, run.status, run.error, run.fit_seconds) == ("tiny-r0", "ok", "", 1.5)


def test_a_run_whose_worker_made_no_record_gets_one_with_its_placement(recorder, recorded):
    outcome = Outcome("failed", "worker process killed by SIGKILL")
    run = recorder.finished(1, outcome, started_at="2025-01-01T00:00:00+00:00", placement=PLACEMENT)
    assert recorded["runs"] == [run]
    assert (run.run_id, run.status, run.error, run.plugin, run.fit_seconds) == (
        "tiny-r1",
        "failed",
        "worker process killed by SIGKILL",
        "Tiny",
        None,
    )
    assert (run.executor, run.isolation, run.node, run.cpus_reserved) == (
        "local",
        "process",
        "node-1",
        2,
    )
    assert (run.started_at, run.epochs, run.seed) == ("2025-01-01T00:00:00+00:00", 5, 1)


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
    recorder.finished(1, Outcome("diverged", "nan"), started_at="", placement=PLACEMENT)
    recorder.finished(0, Outcome("failed", "boom"), started_at="", placement=PLACEMENT)
    assert [(run.run_id, run.status) for run in recorder.results()] == [
        ("tiny-r0", "failed"),
        ("tiny-r1", "diverged"),
    ]


def test_the_first_peak_measured_on_a_machine_key_is_shared(recorder):
    for index, peak in ((0, 3e9), (1, 5e9)):
        outcome = Outcome("failed", "boom", machine=KEY, peak_flops_per_second=peak)
        recorder.finished(index, outcome, started_at="", placement=PLACEMENT)
    assert recorder.peaks == {KEY: 3e9}


def test_a_run_without_a_peak_shares_nothing(recorder):
    recorder.finished(0, Outcome("failed", "boom", machine=KEY), started_at="", placement=PLACEMENT)
    assert recorder.peaks == {}


def test_an_interrupted_run_is_an_interrupted_record_with_its_placement(recorder, recorded):
    recorder.interrupted(1, Interrupted(signal.SIGTERM), started_at="t0", placement=PLACEMENT)
    (run,) = recorded["runs"]
    assert (run.run_id, run.status, run.error, run.node, run.started_at) == (
        "tiny-r1",
        "interrupted",
        "interrupted by SIGTERM",
        "node-1",
        "t0",
    )
    assert recorder.results() == []


def test_a_plain_ctrl_c_is_named_sigint(recorder, recorded):
    recorder.interrupted(0, KeyboardInterrupt(), started_at="", placement=PLACEMENT)
    assert recorded["runs"][0].error == "interrupted by SIGINT"


@pytest.mark.parametrize(("number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interruption_exits_with_128_plus_its_signal(number, code):
    interruption = Interrupted(number)
    assert (interruption.exit_code, interruption.args[0]) == (code, signal.Signals(number).name)
    assert isinstance(interruption, KeyboardInterrupt)


# --- LocalExecutor in-process --------------------------------------------------------------


def test_the_local_executor_places_runs_here_with_every_cpu(tmp_path, mnist, tiny_plugins):
    executor = LocalExecutor(
        local(isolation="none"), mnist=mnist, plugins=tiny_plugins, log_dir=tmp_path
    )
    assert executor.placement == Placement.here("local", "none")
    assert executor.placement.cpus_reserved == os.cpu_count()


def test_an_interruption_during_a_run_records_it_and_propagates(
    tmp_path, mnist, tiny_plugins, monkeypatch
):
    from mnistbench.executors import local as local_executor

    def interrupted_mid_run(config, mnist, plugins, *, on_progress, **where):
        on_progress({"event": "phase", "phase": "training"})
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(local_executor, "perform", interrupted_mid_run)
    runs, events = [], []
    recorder = Recorder([quick()], tiny_plugins, on_progress=events.append, on_result=runs.append)
    executor = LocalExecutor(
        local(isolation="none"), mnist=mnist, plugins=tiny_plugins, log_dir=tmp_path
    )
    with pytest.raises(Interrupted):
        executor.run(recorder)
    assert [(run.run_id, run.status, run.error, run.isolation) for run in runs] == [
        ("tiny-r0", "interrupted", "interrupted by SIGTERM", "none")
    ]
    assert [event["event"] for event in events] == ["run", "phase"]  # and no run_end
    assert recorder.results() == []


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


def test_hang_past_the_timeout_is_a_failed_run(tmp_path, sweep_in_process, faulty_plugin):
    # Only the hanging run is in this sweep: a healthy run beside it could be slow enough
    # on a busy machine to hit a short timeout too.
    started = time.monotonic()
    result = sweep_in_process(tmp_path, [quick("sleepy")], isolation="process", timeout=3)
    assert [(run.status, run.error, run.isolation) for run in record.read(tmp_path)] == [
        ("failed", "timed out after 3 s", "process")
    ]
    assert result.failed == result.runs
    assert time.monotonic() - started < 120
    assert multiprocessing.active_children() == []


def test_worker_killed_mid_training_is_one_failed_run_and_the_sweep_goes_on(
    tmp_path, sweep_in_process, faulty_plugin
):
    # The first run is killed at its first training step, long before it could end.
    configs = [quick(epochs=2, train_limit=1000), quick(repeat=1, train_limit=500)]
    killed = []

    def kill_first_worker_mid_epoch(event):
        if event["event"] == "step" and not killed:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    sweep_in_process(
        tmp_path, configs, isolation="process", on_progress=kill_first_worker_mid_epoch
    )
    first, second = record.read(tmp_path)
    assert len(killed) == 1
    assert (first.status, second.status) == ("failed", "ok")
    assert first.error == (
        f"worker process killed by SIGKILL; see {tmp_path / 'logs' / 'tiny-r0.log'}"
    )
    assert (first.plugin, first.isolation, first.train_samples) == ("faulty", "process", 1000)
    assert second.test_accuracy > 0.3
