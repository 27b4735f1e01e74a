"""Warm workers (mnistbench/serve.py): several runs in one worker process, each as a fresh
worker would run it, and the local executor's --isolation warm, --threads and --pin."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import QUICK, logged

from mnistbench import record
from mnistbench.executors.local import call_in_worker, prepare_worker
from mnistbench.plan import RunConfig
from mnistbench.record import utc_now
from mnistbench.runner import peak_memory_mb
from mnistbench.serve import Spawn, WarmWorker, record_of, reset_peak_memory
from mnistbench.worker import Outcome, Placement


def _run(worker: WarmWorker, config: RunConfig, tmp_path: Path, **options):
    """One run in ``worker``; no speed probes (as ``sweep_in_process``) unless ``probe``."""
    options.setdefault("probe", False)
    placement = Placement("local", "warm", "here", 2)
    outcome, cells = worker.run(
        config,
        placement,
        started_at=utc_now(),
        log_path=tmp_path / "logs" / f"{config.run_id}.log",
        **options,
    )
    return outcome, record_of(cells, outcome, lambda **_: None)


class WarmAndFresh(NamedTuple):
    """What the module's warm worker and its fresh counterpart ran (``warm_and_fresh``)."""

    first: record.Run  # cnn-r0, the warm worker's first run
    second: record.Run  # dnn-r0, its second
    fresh: record.Run  # dnn-r0 again, in a fresh worker process
    starts: int  # the warm worker's starts after those two runs
    hung: Outcome  # sleepy, run in the warm worker past a 2 s timeout
    hung_alive: bool  # whether the worker lived on after it
    after: tuple[Outcome, record.Run]  # tiny, the run that came next
    starts_at_end: int


@pytest.fixture(scope="module")
def warm_and_fresh(tmp_path_factory, mnist_npz, sweep_in_process, faulty_site) -> WarmAndFresh:
    """dnn-r0 run in a warm worker after another run (cnn-r0), the same configuration run
    in a fresh worker process, then in the warm worker the faulty plugin's ``sleepy`` past
    a 2 s timeout and ``tiny`` after it. One worker for all of it: each worker imports
    TensorFlow."""
    tmp_path = tmp_path_factory.mktemp("warm")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(faulty_site), os.environ.get("PYTHONPATH", "")]),
    }
    with WarmWorker(Spawn(env=env), mnist_npz, tmp_path / "logs") as worker:
        first = _run(worker, RunConfig("cnn", **QUICK), tmp_path)
        second = _run(worker, RunConfig("dnn", **QUICK), tmp_path)
        starts = worker.starts
        hung, _ = _run(worker, RunConfig("sleepy", **QUICK), tmp_path, timeout=2)
        hung_alive = worker.alive
        after = _run(worker, RunConfig("tiny", **QUICK), tmp_path)
        starts_at_end = worker.starts
    fresh = sweep_in_process(tmp_path / "fresh", [RunConfig("dnn", **QUICK)], isolation="process")
    return WarmAndFresh(
        first[1], second[1], fresh.ran[0], starts, hung, hung_alive, after, starts_at_end
    )


def test_a_warm_worker_learns_exactly_what_a_fresh_one_does(warm_and_fresh):
    warm, fresh = warm_and_fresh.second, warm_and_fresh.fresh
    assert warm.status == fresh.status == "ok"
    assert warm.test_accuracy == fresh.test_accuracy
    assert warm.test_loss == fresh.test_loss
    assert warm.epoch_loss == fresh.epoch_loss
    assert warm.sample_predictions == fresh.sample_predictions
    assert warm.params == fresh.params


def test_a_warm_workers_later_runs_skip_the_start_up(warm_and_fresh):
    first, second, fresh, starts = warm_and_fresh[:4]
    assert starts == 1  # one worker served both runs
    # The first run paid for the interpreter and the backend's import; the second did not.
    assert first.startup_seconds > 1.0
    assert second.startup_seconds < first.startup_seconds / 3
    assert fresh.startup_seconds > 1.0


def test_each_warm_run_records_its_own_peak_memory(warm_and_fresh):
    first, second = warm_and_fresh.first, warm_and_fresh.second
    # The worker's peak is reset before each run, so a run's peak is its own, not the
    # highest of the worker's life (the CNN's, which came first, is the larger).
    assert first.peak_memory_mb > 100 and second.peak_memory_mb > 100
    assert second.peak_memory_mb != first.peak_memory_mb


def test_resetting_the_peak_memory_forgets_an_earlier_peak():
    if not reset_peak_memory():
        pytest.skip("this system cannot reset a process's peak memory")
    block = bytearray(200 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    before = peak_memory_mb()
    del block
    assert reset_peak_memory()
    assert peak_memory_mb() < before - 150  # MB: the 200 MB block is no longer the peak


def test_a_run_past_its_timeout_fails_and_the_next_run_gets_a_new_worker(warm_and_fresh):
    hung, outcome, run = warm_and_fresh.hung, *warm_and_fresh.after
    assert (hung.status, hung.error) == ("failed", "timed out after 2 s")
    assert not warm_and_fresh.hung_alive
    assert (outcome.status, run.status) == ("ok", "ok")
    assert warm_and_fresh.starts_at_end == 2


def test_a_worker_says_hello_before_its_backend_loads_and_stops_at_once_while_it_loads(
    tmp_path, mnist_npz
):
    with WarmWorker(Spawn(), mnist_npz, tmp_path / "logs") as worker:
        worker.launch()
        hello = worker.wait_hello()
        assert {"cnn", "dnn", "rnn"} <= set(hello["architectures"])
        assert (hello["backend"], hello["ready"], worker.ready) == ("tensorflow", False, False)
        process = worker.process
        worker.stop()  # mid-import: terminated, not waited for until its backend has loaded
    assert process.returncode == -signal.SIGTERM


#: A worker of an earlier version: a warning (a plugin that failed to load), then its
#: hello, sent once its backend was imported, is all it says before runs (no ``ready``);
#: then it waits for its requests' end.
OLD_WORKER = """\
import json, os, sys
answers = int(sys.argv[sys.argv.index("--answers") + 1])
requests = int(sys.argv[sys.argv.index("--requests") + 1])
for message in ({"event": "warning", "message": "plugin 'x' failed to load"},
                {"hello": 1, "architectures": ["old"]}):
    os.write(answers, json.dumps(message).encode() + b"\\n")
os.read(requests, 1)
"""


def test_an_earlier_workers_hello_without_ready_is_ready_and_warnings_before_are_logged(
    tmp_path, mnist_npz
):
    python = tmp_path / "python"
    python.write_text(f"#!{sys.executable}\n{OLD_WORKER}")
    python.chmod(0o755)
    with WarmWorker(Spawn(str(python)), mnist_npz, tmp_path / "logs") as worker, logged() as seen:
        worker.launch()
        worker.wait_ready()
        assert (worker.hello["architectures"], worker.ready) == (["old"], True)
    assert seen == ["plugin 'x' failed to load"]


def _affinity_and_threads(threads, pinned, on_progress):
    prepare_worker(threads, pinned)
    return sorted(os.sched_getaffinity(0)), os.environ.get("OMP_NUM_THREADS")


def test_a_worker_is_pinned_and_its_pools_limited_before_the_backend_loads(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    result, error = call_in_worker(
        _affinity_and_threads,
        (1, frozenset(cpus[:1])),
        log_path=tmp_path / "worker.log",
        on_progress=lambda event: None,
    )
    assert error is None
    assert result == (cpus[:1], "1")


def test_runs_record_their_threads_and_pinned_cpus(tmp_path, sweep_in_process):
    # A warm worker loads the installed plugins, as a fresh one does.
    cpus = sorted(os.sched_getaffinity(0))
    result = sweep_in_process(
        tmp_path / "out",
        [RunConfig("dnn", **QUICK)],
        isolation="warm",
        threads=1,
        pin=True,
    )
    (run,) = record.read(tmp_path / "out")
    assert result.ran[0].status == "ok"
    assert (run.isolation, run.cpus_reserved, run.pinned_cpus) == ("warm", 1, str(cpus[0]))
