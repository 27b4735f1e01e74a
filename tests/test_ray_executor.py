"""The Ray executor: runs as tasks on a Ray cluster, with the local executor's contract.

Runs use the faulty test plugin's ``tiny`` architecture (and ``sleepy``, ``nan``) on a few
hundred images: each in a Ray worker of its own, which is what these tests are about. The
behaviours that need no particular cluster share one sweep on one local instance; the
machine measurement per node runs on a two-node cluster of its own. The test of an
instance the executor starts (and stops) for its sweep comes first, then the tests that
share one local instance, then the two-node cluster's: each instance starts once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections import Counter
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


@pytest.fixture
def local_ray():
    """One local instance (2 CPUs) for the module's sweeps; the executor uses it and leaves it."""
    if not ray.is_initialized():
        ray.init(**RAY_INIT)
    return ray


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


# --- one sweep on a local instance ---------------------------------------------------------


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory, mnist, faulty_on_path) -> RaySweep:
    """tiny, nan, and sleepy killed as soon as it starts; one CPU each, on a local instance
    with two: sleepy waits for a CPU, so it starts once another run has ended."""
    if not ray.is_initialized():
        ray.init(**RAY_INIT)
    events = []

    def kill_sleepy(event):
        events.append(event)
        if event["event"] == "run" and event["config"].architecture == "sleepy":
            os.kill(event["pid"], signal.SIGKILL)

    configs = [tiny(0), tiny(0, "nan"), tiny(0, "sleepy")]
    log_dir = tmp_path_factory.mktemp("ray-sweep") / "logs"
    done = sweep(
        mnist, configs, log_dir, on_progress=kill_sleepy, cpus_per_run=1, timeout=PATIENCE_SECONDS
    )
    done.events = events
    return done


def test_ray_runs_come_in_plan_order_marked_with_where_they_ran(ray_sweep):
    runs = ray_sweep.runs
    assert [run.run_id for run in runs] == [config.run_id for config in ray_sweep.configs]
    assert [(run.executor, run.isolation, run.cpus_reserved) for run in runs] == [
        ("ray", "process", 1)
    ] * 3
    # Every run reported where it ran, even the one whose worker was killed.
    assert all(run.node for run in runs)


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
    assert [run.status for run in ray_sweep.runs] == ["ok", "diverged", "failed"]
    killed = ray_sweep.runs[2]
    assert killed.error.startswith("ray worker died: ")
    # The driver made its record: the configuration and where it ran, nothing measured.
    assert (killed.plugin, killed.train_samples, killed.fit_seconds) == ("faulty", 300, None)


def test_each_ray_run_is_handed_over_as_it_ends(ray_sweep):
    run_ids = sorted(config.run_id for config in ray_sweep.configs)
    assert sorted(run.run_id for run in ray_sweep.results) == run_ids
    assert sorted(config.run_id for config in ray_sweep.started) == run_ids
    ends = [event for event in ray_sweep.events if event["event"] == "run_end"]
    assert sorted(event["index"] for event in ends) == [0, 1, 2]


def test_each_ray_run_is_announced_with_its_node_and_worker_pid(ray_sweep):
    runs = [event for event in ray_sweep.events if event["event"] == "run"]
    assert sorted(event["index"] for event in runs) == [0, 1, 2]
    nodes = {run.run_id: run.node for run in ray_sweep.runs}
    assert all(event["node"] == nodes[event["config"].run_id] for event in runs)
    assert len({event["pid"] for event in runs}) == 3  # a fresh worker per run


def test_each_ray_runs_output_is_in_the_log_dir(ray_sweep):
    assert sorted(path.name for path in ray_sweep.log_dir.iterdir()) == sorted(
        f"{config.run_id}.log" for config in ray_sweep.configs
    )


# --- sweeps of their own -------------------------------------------------------------------


def test_more_cpus_per_run_than_any_node_has_is_refused(local_ray, mnist, tmp_path):
    with pytest.raises(ConfigError) as error:
        sweep(mnist, [tiny()], tmp_path, cpus_per_run=3)
    assert str(error.value) == (
        "--cpus-per-run 3 is more than the largest Ray node has (2); no run could start"
    )


def test_a_lost_cluster_stops_the_sweep_keeping_the_finished_runs(
    local_ray, mnist, faulty_on_path, tmp_path, monkeypatch
):
    def lose_cluster(*args, **kwargs):
        raise ray.exceptions.RaySystemError("GCS unreachable")

    results = []

    def on_result(run):
        results.append(run)
        monkeypatch.setattr(ray, "wait", lose_cluster)

    # One run at a time (each reserves the whole node): the first ends, stopped by the
    # timeout, while the second is still to come.
    configs = [tiny(0, "sleepy"), tiny(1, "sleepy")]
    with pytest.raises(MnistbenchError) as error:
        sweep(mnist, configs, tmp_path / "logs", on_result=on_result, cpus_per_run=2, timeout=2)
    message = str(error.value)
    assert message.startswith("lost the Ray cluster at ")
    assert message.endswith(
        "System error: GCS unreachable; finished runs are saved; "
        f"resume with: mnistbench run --resume {tmp_path}"
    )
    assert [(run.run_id, run.status, run.error) for run in results] == [
        ("sleepy-r0", "failed", "timed out after 2 s")
    ]


def test_an_interrupted_ray_sweep_records_the_started_run_and_stops_it(
    local_ray, mnist, faulty_on_path, tmp_path
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
    cli, local_ray, tmp_path, mnist_npz
):
    address = local_ray.get_runtime_context().gcs_address
    output = tmp_path / "out"
    result = cli(
        "run",
        "dnn",
        "--executor",
        "ray",
        "--ray-address",
        address,
        *QUICK_ARGS,
        "--output",
        str(output),
        "--data",
        str(mnist_npz),
    )
    assert result.returncode == 0, result.stderr
    (run,) = record.read(output)
    assert (run.run_id, run.status) == ("dnn-r0", "ok")
    # The local instance has one node of RAY_INIT's 2 CPUs: without --cpus-per-run, all.
    assert (run.executor, run.cpus_reserved) == ("ray", 2)
    assert run.node
    assert local_ray.is_initialized()  # the cluster it joined is left running
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["options"] == on_ray(ray_address=address).to_dict()  # --resume joins it


# --- the machine measurement on a two-node cluster ----------------------------------------

#: Start-up hook of the two-node cluster's Ray workers, found on their PYTHONPATH (the
#: driver forwards its sys.path). Both nodes run on this host, so each worker takes its
#: node's name from MNISTBENCH_TEST_NODE (set per raylet) as the host name a real
#: cluster's node has, and notes every peak FLOP/s measurement in MNISTBENCH_TEST_PEAKS.
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
class TwoNodeSweep:
    runs: list[record.Run]
    measured: list[dict]  # the notes of every peak measurement taken on the nodes
    run_pids: dict[str, int]  # run_id -> pid of its worker


@pytest.fixture(scope="module")
def two_node_sweep(tmp_path_factory, mnist, faulty_on_path) -> TwoNodeSweep:
    """Three tiny runs, one CPU each, on a cluster of two one-CPU nodes named node-a and
    node-b, through the sweep as ``mnistbench run --executor ray --cpus-per-run 1`` runs it."""
    from ray.cluster_utils import Cluster

    from mnistbench.executors import ray as ray_executor
    from mnistbench.plugins import load_plugins as load_bare_plugins
    from mnistbench.sweep import Sweep, prepare_output_dir, run_sweep

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

    pids = {}

    def note_pid(event):
        if event["event"] == "run":
            pids[event["config"].run_id] = event["pid"]

    cluster = Cluster(
        initialize_head=True, head_node_args={**node("node-a"), "include_dashboard": False}
    )
    try:
        cluster.add_node(**node("node-b"))
        ray.init(address=cluster.address, log_to_driver=False)
        assert node_cpus(ray) == [1, 1]
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(hook))
            output = prepare_output_dir(root / "out")
            configs = [tiny(repeat) for repeat in range(3)]
            # The Ray executor and the installed plugins: no reports, which no test here reads.
            plugins = load_bare_plugins(builtins=[ray_executor])
            plan = Sweep.new(configs, on_ray(cpus_per_run=1), output, plugins)
            result = run_sweep(
                plan, mnist=mnist, plugins=plugins, on_progress=note_pid, argv=["mnistbench"]
            )
    finally:
        ray.shutdown()
        cluster.shutdown()
    measured = [json.loads(line) for line in peaks.read_text().splitlines()]
    return TwoNodeSweep(result.ran, measured, pids)


def test_each_run_names_the_node_it_ran_on(two_node_sweep):
    runs = two_node_sweep.runs
    assert [run.status for run in runs] == ["ok"] * 3
    assert {run.node for run in runs} == {"node-a", "node-b"}


def test_each_peak_is_measured_in_a_runs_worker_under_the_runs_thread_limit(two_node_sweep):
    runs_on = {run.run_id: run.node for run in two_node_sweep.runs}
    workers = {(runs_on[run_id], pid) for run_id, pid in two_node_sweep.run_pids.items()}
    measured = two_node_sweep.measured
    where = [(note["node"], note["pid"]) for note in measured]
    assert {node for node, _ in where} == {"node-a", "node-b"}
    assert set(where) <= workers  # each in a run's own worker, on that run's node
    one_thread = dict.fromkeys(THREAD_VARIABLES, "1")
    assert [note["threads"] for note in measured] == [one_thread] * len(measured)


def test_each_run_carries_a_peak_measured_on_its_own_node(two_node_sweep):
    own = {note["pid"]: note["peak"] for note in two_node_sweep.measured}
    on_node = {}
    for note in two_node_sweep.measured:
        on_node.setdefault(note["node"], []).append(note["peak"])
    for run in two_node_sweep.runs:
        pid = two_node_sweep.run_pids[run.run_id]
        if pid in own:  # this run measured: it carries its own figure
            assert run.peak_flops_per_second == own[pid]
        else:  # it used its node's earlier figure
            assert run.peak_flops_per_second in on_node.get(run.node, [])


def test_the_runs_of_one_node_share_the_one_peak_measured_there(two_node_sweep):
    assert sorted(note["node"] for note in two_node_sweep.measured) == ["node-a", "node-b"]
    peaks = {}
    for run in two_node_sweep.runs:
        peaks.setdefault(run.node, set()).add(run.peak_flops_per_second)
    assert [len(values) for values in peaks.values()] == [1, 1]
    # Three runs on two nodes: one node ran two, and they share its one figure.
    assert max(Counter(run.node for run in two_node_sweep.runs).values()) >= 2


def test_each_runs_peak_fraction_is_its_training_rate_over_its_nodes_peak(two_node_sweep):
    runs = two_node_sweep.runs
    assert [run.train_peak_fraction for run in runs] == [
        run.train_flops_per_second / run.peak_flops_per_second for run in runs
    ]
