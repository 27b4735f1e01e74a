"""The Ray executor: runs as tasks on a Ray cluster, with the local executor's contract.

Runs use the faulty test plugin's ``tiny`` architecture (and ``sleepy``, ``nan``) on a few
hundred images: each in a Ray worker of its own, which is what these tests are about. Two
tests start a local instance through the executor, which stops it; every other test runs
on one two-node cluster started once for the module (each node one CPU, each named, so
the machine measurement per node shows), and the behaviours of one sweep (a run that
trains, one that diverges, a worker killed, a run waiting for a CPU) are one sweep's,
shared by their tests. Each Ray worker imports TensorFlow: fewer workers, a faster suite.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray executor needs Ray: pip install 'mnistbench[ray]'")

from helpers import QUICK_ARGS  # noqa: E402

from mnistbench import record  # noqa: E402
from mnistbench.backends import THREAD_VARIABLES  # noqa: E402
from mnistbench.builtins import load_plugins  # noqa: E402
from mnistbench.errors import ConfigError, MnistbenchError  # noqa: E402
from mnistbench.executors import Interrupted, Recorder, check_execution  # noqa: E402
from mnistbench.executors.ray import (  # noqa: E402
    RayExecutor,
    describe_failure,
    forwarded_sys_path,
    node_cpus,
    worker_env,
)
from mnistbench.plan import Execution, RunConfig  # noqa: E402

RAY_INIT = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}
#: Generous: long enough for a worker to start on a busy machine, far below sleepy's 600 s.
PATIENCE_SECONDS = 180


def tiny(repeat: int = 0, architecture: str = "tiny") -> RunConfig:
    """One epoch on 300 images: enough for ``tiny`` to learn well beyond chance."""
    return RunConfig(architecture, epochs=1, train_limit=300, test_limit=50, repeat=repeat)


def on_ray(timeout: float | None = None, **options) -> Execution:
    """Ray's settings; no speed probes, which no test here reads (as ``QUICK_ARGS``)."""
    return Execution("ray", timeout, options, probe=False)


@dataclass
class RaySweep:
    """What a sweep through :class:`RayExecutor` handed to its :class:`Recorder`."""

    configs: list[RunConfig]
    recorder: Recorder
    log_dir: Path
    results: list[record.Run] = field(default_factory=list)  # on_result, as each run ended
    started: list[RunConfig] = field(default_factory=list)  # on_start
    events: list[dict] = field(default_factory=list)  # on_progress, when not replaced
    measured: list[dict] = field(default_factory=list)  # every peak measured on the nodes
    run_pids: dict[str, int] = field(default_factory=dict)  # run_id -> its worker's pid

    @property
    def runs(self) -> list[record.Run]:
        return self.recorder.results()


def sweep(
    mnist, configs, log_dir, *, on_progress=None, on_result=None, ray_init_kwargs=None, **execution
):
    """Run ``configs`` through a RayExecutor (``execution``: :func:`on_ray`'s arguments) and
    return what it recorded; on an exception, the exception propagates."""
    done = RaySweep(list(configs), None, Path(log_dir))
    plugins = load_plugins()
    done.recorder = Recorder(
        configs,
        plugins,
        on_progress=on_progress or done.events.append,
        on_start=done.started.append,
        on_result=on_result or done.results.append,
    )
    executor = RayExecutor(
        on_ray(**execution),
        mnist=mnist,
        plugins=plugins,
        log_dir=log_dir,
        ray_init_kwargs=ray_init_kwargs,
    )
    executor.run(done.recorder)
    return done


@pytest.fixture(scope="module")
def faulty_on_path(faulty_site):
    """The faulty test plugin on sys.path for the whole module (its sweeps are shared)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(faulty_site))
        yield faulty_site


@pytest.fixture(scope="module", autouse=True)
def shut_down_ray():
    yield
    if ray.is_initialized():
        ray.shutdown()


def worker_gone(pid: int, within: float = PATIENCE_SECONDS) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``within`` seconds."""
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


# --- without a cluster ---------------------------------------------------------------------


def test_without_ray_installed_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    recorder = Recorder([tiny()], None)
    executor = RayExecutor(on_ray(), mnist=None, log_dir=tmp_path)
    with pytest.raises(ConfigError) as error:
        executor.run(recorder)
    assert str(error.value) == "the Ray executor needs Ray: pip install 'mnistbench[ray]'"


def test_the_ray_executor_is_the_one_execution_names(tmp_path):
    execution = on_ray(30, cpus_per_run=1)
    assert check_execution(execution, load_plugins().executors, [None]) is RayExecutor
    executor = RayExecutor(execution, mnist=None, log_dir=tmp_path)
    assert (executor.requested_cpus, executor.timeout, executor.address) == (1, 30, None)
    joins = RayExecutor(on_ray(ray_address="ray://head:10001"), mnist=None, log_dir=tmp_path)
    assert (joins.requested_cpus, joins.timeout, joins.address) == (None, None, "ray://head:10001")


def test_worker_env_carries_backend_thread_limits_plugins_and_extra_paths(
    faulty_on_path, monkeypatch
):
    monkeypatch.setenv("MNISTBENCH_PLUGINS", "faulty")
    env = worker_env(RunConfig("tiny", backend="jax"), cpus=2)
    assert env["KERAS_BACKEND"] == "jax"
    assert {name: env[name] for name in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "2")
    assert env["MNISTBENCH_PLUGINS"] == "faulty"
    assert str(faulty_on_path) in env["PYTHONPATH"].split(os.pathsep)


def test_forwarded_sys_path_leaves_out_the_interpreters_own_entries(faulty_on_path):
    forwarded = forwarded_sys_path()
    assert str(faulty_on_path) in forwarded
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


# --- a local instance the executor starts ---------------------------------------------------


def test_a_ray_run_past_the_timeout_is_stopped_and_failed_and_its_instance_shut_down(
    mnist, faulty_on_path, tmp_path
):
    # No instance running: the executor starts a local one for the sweep, and shuts it down.
    if ray.is_initialized():
        ray.shutdown()
    pids = []

    def note_pid(event):
        if event["event"] == "run":
            pids.append(event["pid"])

    started = time.monotonic()
    done = sweep(
        mnist,
        [tiny(0, "sleepy")],
        tmp_path,
        on_progress=note_pid,
        ray_init_kwargs=RAY_INIT,
        cpus_per_run=1,
        timeout=2,
    )
    assert [(run.status, run.error) for run in done.runs] == [("failed", "timed out after 2 s")]
    # Stopped, not waited for: sleepy would hang for 600 s.
    assert time.monotonic() - started < PATIENCE_SECONDS
    assert worker_gone(pids[0])
    assert ray.is_initialized() is False


def test_a_lost_cluster_stops_the_sweep_keeping_the_finished_runs(
    mnist, faulty_on_path, tmp_path, monkeypatch
):
    def lose_cluster(*args, **kwargs):
        raise ray.exceptions.RaySystemError("GCS unreachable")

    results = []

    def on_result(run):
        results.append(run)
        monkeypatch.setattr(ray, "wait", lose_cluster)

    # One run at a time (each reserves the instance's 2 CPUs): the first ends, stopped by
    # the timeout, while the second is still to come.
    configs = [tiny(0, "sleepy"), tiny(1, "sleepy")]
    with pytest.raises(MnistbenchError) as error:
        sweep(
            mnist,
            configs,
            tmp_path / "logs",
            on_result=on_result,
            ray_init_kwargs=RAY_INIT,
            cpus_per_run=2,
            timeout=2,
        )
    message = str(error.value)
    assert message.startswith("lost the Ray cluster at ")
    assert message.endswith(
        "System error: GCS unreachable; finished runs are saved; "
        f"resume with: mnistbench run --resume {tmp_path}"
    )
    assert [(run.run_id, run.status, run.error) for run in results] == [
        ("sleepy-r0", "failed", "timed out after 2 s")
    ]
    assert ray.is_initialized() is False


# --- one two-node cluster for the rest of the module ----------------------------------------

#: Start-up hook of the cluster's Ray workers, found on their PYTHONPATH (the driver
#: forwards its sys.path). Both nodes run on this host, so each worker takes its node's
#: name from MNISTBENCH_TEST_NODE (set per raylet) as the host name a real cluster's node
#: has, and notes every peak FLOP/s measurement in MNISTBENCH_TEST_PEAKS.
NODE_SITECUSTOMIZE = textwrap.dedent(
    """
    import os
    import sys

    NODE = os.environ.get("MNISTBENCH_TEST_NODE")
    if NODE and sys.argv and sys.argv[0].endswith("default_worker.py"):
        import json
        import platform

        import mnistbench.flops

        platform.node = lambda: NODE
        measure = mnistbench.flops.measure_peak_flops

        def noted(*args, **kwargs):
            peak = measure(*args, **kwargs)
            note = {
                "node": NODE,
                "pid": os.getpid(),
                "threads": {name: os.environ.get(name) for name in THREADS},
                "peak": peak,
            }
            with open(os.environ["MNISTBENCH_TEST_PEAKS"], "a") as notes:
                notes.write(json.dumps(note) + "\\n")
            return peak

        mnistbench.flops.measure_peak_flops = noted
    """
)


@dataclass
class Cluster:
    address: str  # the GCS address a driver joins
    peaks: Path  # the notes of every peak measurement taken on the nodes
    hook: Path  # the folder of NODE_SITECUSTOMIZE, for a driver's sys.path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    """Two nodes of one CPU each, named node-a and node-b, and this process connected."""
    from ray.cluster_utils import Cluster as RayCluster

    if ray.is_initialized():
        ray.shutdown()
    root = tmp_path_factory.mktemp("two-nodes")
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        f"THREADS = {tuple(THREAD_VARIABLES)!r}\n{NODE_SITECUSTOMIZE}"
    )
    peaks = root / "peaks.jsonl"
    peaks.touch()

    def node(name: str) -> dict:
        variables = {"MNISTBENCH_TEST_NODE": name, "MNISTBENCH_TEST_PEAKS": str(peaks)}
        return {"num_cpus": 1, "env_vars": variables}

    nodes = RayCluster(
        initialize_head=True, head_node_args={**node("node-a"), "include_dashboard": False}
    )
    try:
        nodes.add_node(**node("node-b"))
        ray.init(address=nodes.address, log_to_driver=False)
        assert node_cpus(ray) == [1, 1]
        yield Cluster(ray.get_runtime_context().gcs_address, peaks, hook)
    finally:
        ray.shutdown()
        nodes.shutdown()


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory, mnist, faulty_on_path, cluster) -> RaySweep:
    """tiny, nan, sleepy killed as soon as it starts, and tiny again; one CPU each on the
    two one-CPU nodes: sleepy waits for a CPU, so it starts once another run has ended,
    and the last run comes to a node that has run one before."""
    events, pids = [], {}

    def note_and_kill_sleepy(event):
        events.append(event)
        if event["event"] == "run":
            pids[event["config"].run_id] = event["pid"]
            if event["config"].architecture == "sleepy":
                os.kill(event["pid"], signal.SIGKILL)

    configs = [tiny(0), tiny(0, "nan"), tiny(0, "sleepy"), tiny(1)]
    log_dir = tmp_path_factory.mktemp("ray-sweep") / "logs"
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(cluster.hook))
        done = sweep(
            mnist,
            configs,
            log_dir,
            on_progress=note_and_kill_sleepy,
            cpus_per_run=1,
            timeout=PATIENCE_SECONDS,
        )
    done.events, done.run_pids = events, pids
    done.measured = [json.loads(line) for line in cluster.peaks.read_text().splitlines()]
    return done


def test_ray_runs_come_in_plan_order_marked_with_where_they_ran(ray_sweep):
    runs = ray_sweep.runs
    assert [run.run_id for run in runs] == [config.run_id for config in ray_sweep.configs]
    assert [(run.executor, run.isolation, run.cpus_reserved) for run in runs] == [
        ("ray", "process", 1)
    ] * 4
    # Every run reported where it ran, even the one whose worker was killed.
    assert {run.node for run in runs} == {"node-a", "node-b"}


def test_ray_runs_train_on_the_object_store_data(ray_sweep):
    trained = ray_sweep.runs[0]
    assert (trained.status, trained.train_samples, trained.test_samples) == ("ok", 300, 50)
    assert (trained.backend, trained.plugin) == ("tensorflow", "faulty")
    assert trained.test_accuracy > 0.3


def test_a_diverging_ray_run_is_recorded_as_diverged(ray_sweep):
    nan = ray_sweep.runs[1]
    assert (nan.status, nan.error) == (
        "diverged",
        "FloatingPointError: training loss became nan (diverged)",
    )


def test_a_killed_ray_worker_fails_its_run_alone(ray_sweep):
    assert [run.status for run in ray_sweep.runs] == ["ok", "diverged", "failed", "ok"]
    killed = ray_sweep.runs[2]
    assert killed.error.startswith("ray worker died: ")
    # The driver made its record: the configuration and where it ran, nothing measured.
    assert (killed.plugin, killed.train_samples, killed.fit_seconds) == ("faulty", 300, None)


def test_each_ray_run_is_handed_over_as_it_ends(ray_sweep):
    run_ids = sorted(config.run_id for config in ray_sweep.configs)
    assert sorted(run.run_id for run in ray_sweep.results) == run_ids
    assert sorted(config.run_id for config in ray_sweep.started) == run_ids
    ends = [event for event in ray_sweep.events if event["event"] == "run_end"]
    assert sorted(event["index"] for event in ends) == [0, 1, 2, 3]


def test_each_ray_run_is_announced_with_its_node_and_worker_pid(ray_sweep):
    runs = [event for event in ray_sweep.events if event["event"] == "run"]
    assert sorted(event["index"] for event in runs) == [0, 1, 2, 3]
    nodes = {run.run_id: run.node for run in ray_sweep.runs}
    assert all(event["node"] == nodes[event["config"].run_id] for event in runs)
    assert len({event["pid"] for event in runs}) == 4  # a fresh worker per run


def test_each_ray_runs_output_is_in_the_log_dir(ray_sweep):
    assert sorted(path.name for path in ray_sweep.log_dir.iterdir()) == sorted(
        f"{config.run_id}.log" for config in ray_sweep.configs
    )


# --- the machine measurement per node --------------------------------------------------------


def test_each_peak_is_measured_in_a_runs_worker_under_the_runs_thread_limit(ray_sweep):
    runs_on = {run.run_id: run.node for run in ray_sweep.runs}
    workers = {(runs_on[run_id], pid) for run_id, pid in ray_sweep.run_pids.items()}
    measured = ray_sweep.measured
    where = [(note["node"], note["pid"]) for note in measured]
    assert {node for node, _ in where} == {"node-a", "node-b"}
    assert set(where) <= workers  # each in a run's own worker, on that run's node
    one_thread = dict.fromkeys(THREAD_VARIABLES, "1")
    assert [note["threads"] for note in measured] == [one_thread] * len(measured)


def test_each_run_carries_a_peak_measured_on_its_own_node(ray_sweep):
    own = {note["pid"]: note["peak"] for note in ray_sweep.measured}
    on_node = {}
    for note in ray_sweep.measured:
        on_node.setdefault(note["node"], []).append(note["peak"])
    # The runs that ended ok: a diverged or killed run's record is the driver's, unmeasured.
    for run in [run for run in ray_sweep.runs if run.status == "ok"]:
        pid = ray_sweep.run_pids[run.run_id]
        if pid in own:  # this run measured: it carries its own figure
            assert run.peak_flops_per_second == own[pid]
        else:  # it used its node's earlier figure
            assert run.peak_flops_per_second in on_node.get(run.node, [])


def test_the_runs_of_one_node_share_the_one_peak_measured_there(ray_sweep):
    # Four runs on two nodes, one measurement on each.
    assert sorted(note["node"] for note in ray_sweep.measured) == ["node-a", "node-b"]
    # The last run came to a node that had run another before it: it measured nothing and
    # carries that node's figure.
    last = ray_sweep.runs[3]
    assert ray_sweep.run_pids[last.run_id] not in {note["pid"] for note in ray_sweep.measured}
    [figure] = [note["peak"] for note in ray_sweep.measured if note["node"] == last.node]
    assert (last.status, last.peak_flops_per_second) == ("ok", figure)


def test_each_runs_peak_fraction_is_its_training_rate_over_its_nodes_peak(ray_sweep):
    trained = [run for run in ray_sweep.runs if run.status == "ok"]
    assert [run.train_peak_fraction for run in trained] == [
        run.train_flops_per_second / run.peak_flops_per_second for run in trained
    ]


# --- more sweeps on the cluster ---------------------------------------------------------------


def test_more_cpus_per_run_than_any_node_has_is_refused(cluster, mnist, tmp_path):
    with pytest.raises(ConfigError) as error:
        sweep(mnist, [tiny()], tmp_path, cpus_per_run=2)
    assert str(error.value) == (
        "--cpus-per-run 2 is more than the largest Ray node has (1); no run could start"
    )


def test_an_interrupted_ray_sweep_records_the_started_run_and_stops_it(
    cluster, mnist, faulty_on_path, tmp_path
):
    results, pids = [], []

    def interrupt(event):
        if event["event"] == "run":
            pids.append(event["pid"])
            raise Interrupted(signal.SIGTERM)

    with pytest.raises(Interrupted):
        sweep(
            mnist,
            [tiny(0, "sleepy")],
            tmp_path,
            on_progress=interrupt,
            on_result=results.append,
            cpus_per_run=1,
        )
    assert [(run.status, run.error, run.executor) for run in results] == [
        ("interrupted", "interrupted by SIGTERM", "ray")
    ]
    assert worker_gone(pids[0])


def test_the_cli_joins_a_running_cluster_where_by_default_a_run_reserves_a_whole_node(
    cli, cluster, tmp_path, mnist_npz
):
    output = tmp_path / "out"
    result = cli(
        "run",
        "dnn",
        "--executor",
        "ray",
        "--ray-address",
        cluster.address,
        *QUICK_ARGS,
        "--output",
        str(output),
        "--data",
        str(mnist_npz),
    )
    assert result.returncode == 0, result.stderr
    (run,) = record.read(output)
    assert (run.run_id, run.status) == ("dnn-r0", "ok")
    # Each node of the cluster has one CPU: without --cpus-per-run, a run takes all of it.
    assert (run.executor, run.cpus_reserved) == ("ray", 1)
    assert run.node
    assert ray.is_initialized() and node_cpus(ray) == [1, 1]  # the cluster is left running
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["options"] == on_ray(ray_address=cluster.address).to_dict()  # --resume joins it
