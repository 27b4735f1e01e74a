"""The Ray executor: runs as tasks on a local Ray instance, with the local executor's contract."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray executor needs Ray: pip install 'mnistbench[ray]'")

from conftest import install_as_distribution  # noqa: E402

from mnistbench.backends import THREAD_VARIABLES  # noqa: E402
from mnistbench.data import resolve_mnist  # noqa: E402
from mnistbench.errors import ConfigError, MnistbenchError  # noqa: E402
from mnistbench.executor import Interrupted  # noqa: E402
from mnistbench.plugins import load_plugins  # noqa: E402
from mnistbench.ray_executor import (  # noqa: E402
    describe_failure,
    execute_on_ray,
    forwarded_sys_path,
    worker_env,
)
from mnistbench.runner import RunConfig  # noqa: E402

RAY_INIT = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}
FAULTY = Path(__file__).parent / "plugins" / "mnistbench_faulty.py"


def tiny(repeat: int = 0, architecture: str = "tiny") -> RunConfig:
    return RunConfig(architecture, epochs=1, train_limit=1000, test_limit=200, repeat=repeat)


@pytest.fixture(scope="module")
def mnist(mnist_npz):
    return resolve_mnist(mnist_npz, offline=True)


@pytest.fixture(scope="module")
def faulty_site(tmp_path_factory):
    """The faulty test plugin on sys.path for the whole module (its sweeps are shared)."""
    site = tmp_path_factory.mktemp("faulty-site")
    install_as_distribution(site, FAULTY, "mnistbench-faulty", {"faulty": "mnistbench_faulty"})
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        yield site


@pytest.fixture(scope="module", autouse=True)
def shut_down_ray():
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def local_ray():
    """One local Ray instance for the module's sweeps; execute_on_ray uses it and leaves it."""
    if not ray.is_initialized():
        ray.init(**RAY_INIT)
    return ray


def sweep(mnist, configs, log_dir, **options):
    results, started, events = [], [], []
    rows = execute_on_ray(
        configs,
        mnist=mnist,
        plugins=load_plugins(),
        log_dir=log_dir,
        on_result=results.append,
        on_start=started.append,
        on_progress=options.pop("on_progress", events.append),
        **options,
    )
    return rows, results, started, events


# --- without a cluster ---------------------------------------------------------------------


def test_without_ray_installed_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError) as error:
        execute_on_ray([tiny()], mnist=None, plugins=None, log_dir=tmp_path)
    assert str(error.value) == "the Ray executor needs Ray: pip install 'mnistbench[ray]'"


def test_worker_env_carries_backend_thread_limits_plugins_and_extra_paths(faulty_site, monkeypatch):
    monkeypatch.setenv("MNISTBENCH_PLUGINS", "faulty")
    env = worker_env(RunConfig("tiny", backend="jax"), cpus=2)
    assert env["KERAS_BACKEND"] == "jax"
    assert {name: env[name] for name in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "2")
    assert env["MNISTBENCH_PLUGINS"] == "faulty"
    assert str(faulty_site) in env["PYTHONPATH"].split(os.pathsep)


def test_forwarded_sys_path_leaves_out_the_interpreters_own_entries(faulty_site):
    forwarded = forwarded_sys_path()
    assert str(faulty_site) in forwarded
    assert not [path for path in forwarded if path.startswith(sys.prefix + os.sep)]
    assert not [path for path in forwarded if path.startswith(sys.base_prefix + os.sep)]


def test_a_task_error_keeps_its_cause_and_a_nan_loss_is_diverged():
    cause = FloatingPointError("training loss became nan (diverged)")
    error = ray.exceptions.RayTaskError("run_task", "Traceback ...", cause)
    assert describe_failure(ray, error) == (
        "diverged",
        "FloatingPointError: training loss became nan (diverged)",
    )


def test_a_crashed_worker_is_a_failed_run():
    status, message = describe_failure(ray, ray.exceptions.WorkerCrashedError())
    assert status == "failed"
    assert message.startswith("ray worker died: The worker died unexpectedly")


def test_a_lost_cluster_is_not_a_run_failure():
    with pytest.raises(ray.exceptions.RaySystemError):
        describe_failure(ray, ray.exceptions.RaySystemError("GCS unreachable"))


# --- on a local Ray instance ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory, mnist, faulty_site):
    """tiny twice and nan once, one CPU each, on the shared local instance."""
    if not ray.is_initialized():
        ray.init(**RAY_INIT)
    log_dir = tmp_path_factory.mktemp("ray-logs")
    configs = [tiny(0), tiny(1), tiny(0, "nan")]
    rows, results, started, events = sweep(mnist, configs, log_dir, cpus_per_run=1)
    return configs, rows, results, started, events, log_dir


def test_ray_rows_come_in_plan_order_marked_with_where_they_ran(ray_sweep):
    configs, rows, *_ = ray_sweep
    assert [row["run_id"] for row in rows] == [config.run_id for config in configs]
    assert [row["executor"] for row in rows] == ["ray"] * 3
    assert [row["cpus_reserved"] for row in rows] == [1] * 3
    assert all(row["node"] for row in rows)
    assert [row["isolation"] for row in rows] == ["process"] * 3


def test_ray_runs_train_on_the_object_store_data(ray_sweep):
    _, rows, *_ = ray_sweep
    assert [row["status"] for row in rows[:2]] == ["ok", "ok"]
    assert all(row["test_accuracy"] > 0.3 for row in rows[:2])
    assert [row["train_samples"] for row in rows[:2]] == [1000, 1000]
    assert [row["backend"] for row in rows[:2]] == ["tensorflow", "tensorflow"]


def test_a_diverging_ray_run_is_recorded_as_diverged(ray_sweep):
    _, rows, *_ = ray_sweep
    assert rows[2]["status"] == "diverged"
    assert rows[2]["error"] == "FloatingPointError: training loss became nan (diverged)"


def test_each_ray_row_is_handed_over_as_its_run_ends(ray_sweep):
    configs, rows, results, started, events, _ = ray_sweep
    assert sorted(row["run_id"] for row in results) == sorted(row["run_id"] for row in rows)
    assert sorted(c.run_id for c in started) == sorted(c.run_id for c in configs)
    ends = [event for event in events if event["event"] == "run_end"]
    assert sorted(event["index"] for event in ends) == [0, 1, 2]


def test_each_ray_runs_output_is_in_the_log_dir(ray_sweep):
    configs, *_, log_dir = ray_sweep
    assert sorted(path.name for path in log_dir.iterdir()) == sorted(
        f"{config.run_id}.log" for config in configs
    )


def test_a_killed_ray_worker_fails_its_run_alone(local_ray, mnist, faulty_site, tmp_path):
    configs = [tiny(0), tiny(0, "sleepy"), tiny(1)]

    def kill_sleepy(event):
        if event["event"] == "run" and event["config"].architecture == "sleepy":
            os.kill(event["pid"], signal.SIGKILL)

    rows, results, *_ = sweep(
        mnist, configs, tmp_path, cpus_per_run=1, on_progress=kill_sleepy, timeout=60
    )
    assert [row["status"] for row in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"].startswith("ray worker died: ")
    assert len(results) == 3


def test_a_ray_run_past_the_timeout_is_stopped_and_failed(local_ray, mnist, faulty_site, tmp_path):
    pids = []

    def note_pid(event):
        if event["event"] == "run":
            pids.append(event["pid"])

    started = time.monotonic()
    rows, *_ = sweep(
        mnist, [tiny(0, "sleepy")], tmp_path, cpus_per_run=1, on_progress=note_pid, timeout=2
    )
    assert [(row["status"], row["error"]) for row in rows] == [("failed", "timed out after 2 s")]
    assert time.monotonic() - started < 30
    assert worker_gone(pids[0], within=15)


def worker_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.2)
    return False


def test_more_cpus_per_run_than_any_node_has_is_refused(local_ray, mnist, tmp_path):
    with pytest.raises(ConfigError) as error:
        execute_on_ray(
            [tiny()], mnist=mnist, plugins=load_plugins(), log_dir=tmp_path, cpus_per_run=3
        )
    assert str(error.value) == (
        "--cpus-per-run 3 is more than the largest Ray node has (2); no run could start"
    )


def test_by_default_a_run_reserves_a_whole_node(local_ray, mnist, faulty_site, tmp_path):
    rows, *_ = sweep(mnist, [tiny()], tmp_path)
    assert (rows[0]["status"], rows[0]["cpus_reserved"]) == ("ok", 2)


def test_a_lost_cluster_stops_the_sweep_keeping_the_finished_rows(
    local_ray, mnist, faulty_site, tmp_path, monkeypatch
):
    def lose_cluster(*args, **kwargs):
        raise ray.exceptions.RaySystemError("GCS unreachable")

    results = []

    def on_result(row):
        results.append(row)
        monkeypatch.setattr(ray, "wait", lose_cluster)

    with pytest.raises(MnistbenchError) as error:
        execute_on_ray(
            [tiny(0), tiny(0, "sleepy")],
            mnist=mnist,
            plugins=load_plugins(),
            log_dir=tmp_path / "logs",
            cpus_per_run=1,
            on_result=on_result,
        )
    message = str(error.value)
    assert message.startswith("lost the Ray cluster at ")
    assert message.endswith(
        "System error: GCS unreachable; finished runs are saved; "
        f"resume with: mnistbench run --resume {tmp_path}"
    )
    assert [(row["run_id"], row["status"]) for row in results] == [("tiny-r0", "ok")]


def test_an_interrupted_ray_sweep_records_the_started_run_and_stops_it(
    local_ray, mnist, faulty_site, tmp_path
):
    results, pids = [], []

    def interrupt(event):
        if event["event"] == "run":
            pids.append(event["pid"])
            raise Interrupted(signal.SIGTERM)

    with pytest.raises(Interrupted):
        execute_on_ray(
            [tiny(0, "sleepy")],
            mnist=mnist,
            plugins=load_plugins(),
            log_dir=tmp_path,
            cpus_per_run=1,
            on_progress=interrupt,
            on_result=results.append,
        )
    assert [(row["status"], row["error"]) for row in results] == [
        ("interrupted", "interrupted by SIGTERM")
    ]
    assert worker_gone(pids[0], within=15)


def test_a_local_instance_started_for_the_sweep_is_shut_down(mnist, faulty_site, tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    rows, *_ = sweep(mnist, [tiny()], tmp_path, cpus_per_run=1, ray_init_kwargs=RAY_INIT)
    assert rows[0]["status"] == "ok"
    assert not ray.is_initialized()
