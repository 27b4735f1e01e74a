"""A sweep: new or resumed from its manifest, each run recorded as it finishes, then reports;
merging the sweeps of one side; estimating how long a sweep will take."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import Tiny, quick
from synthetic_runs import repeat_rows

import mnistbench
from mnistbench import layout, record
from mnistbench.builtins import load_plugins
from mnistbench.errors import ConfigError
from mnistbench.executors import local
from mnistbench.manifest import Manifest
from mnistbench.plan import Execution, RunConfig, plan
from mnistbench.plugins import load_plugins as load_bare_plugins
from mnistbench.sweep import (
    WORKER_START_SECONDS,
    Sweep,
    estimate_seconds,
    merge_directories,
    prepare_output_dir,
    run_sweep,
)

IN_PROCESS = Execution("local", None, {"isolation": "none"}, probe=False)


class RunsOnDisk:
    """Notes, each time a reporter hears of a run, the runs of runs.csv on disk."""

    def __init__(self) -> None:
        self.on_disk: list[list[str]] = []
        self.heard: list[str] = []

    @mnistbench.hookimpl
    def mnistbench_record_run(self, run, output_dir):
        self.heard.append(run.run_id)
        self.on_disk.append([r.run_id for r in record.read(output_dir)])


def states_of(directory) -> dict[str, str]:
    return Manifest.load(directory).states


@pytest.fixture(scope="module")
def finished(tmp_path_factory, sweep_in_process, tiny_plugins):
    """One finished in-process sweep of two tiny repeats: its directory, read-only."""
    output = tmp_path_factory.mktemp("finished") / "out"
    configs = plan(["tiny"], repeats=2, epochs=1, train_limit=200, test_limit=20)
    sweep_in_process(output, configs, tiny_plugins)
    return output


@pytest.fixture
def copy_of_finished(finished, tmp_path):
    return shutil.copytree(finished, tmp_path / "out")


# --- a new sweep ---------------------------------------------------------------------------


def test_failed_architecture_is_recorded_and_the_others_still_run(tmp_path, sweep_in_process):
    reporter = RunsOnDisk()
    # No reports here: the executor and the two plugins only.
    plugins = load_bare_plugins(builtins=[local], extra=[Tiny(), reporter], entry_points=False)
    configs = [quick("broken"), quick(train_limit=1000, test_limit=100)]
    result = sweep_in_process(tmp_path, configs, plugins)
    broken, tiny = record.read(tmp_path)
    assert (broken.architecture, broken.status, tiny.architecture, tiny.status) == (
        "broken",
        "failed",
        "tiny",
        "ok",
    )
    assert broken.error == (
        "PluginError: plugin 'Tiny' failed in mnistbench_build_model: "
        "RuntimeError: cannot build this one"
    )
    assert broken.fit_seconds is None
    assert tiny.test_accuracy > 0.5
    assert [run.architecture for run in result.failed] == ["broken"]
    assert result.ran == result.runs == [broken, tiny]
    assert (result.reports, result.skipped) == ([], 0)  # no reporter among these plugins
    # A reporter hears of a run once its record is on disk.
    assert reporter.heard == ["broken-r0", "tiny-r0"]
    assert reporter.on_disk == [["broken-r0"], ["broken-r0", "tiny-r0"]]


def test_a_finished_sweep_leaves_every_run_ok_in_its_manifest(finished):
    assert states_of(finished) == {"tiny-r0": "ok", "tiny-r1": "ok"}
    assert Manifest.load(finished).options == IN_PROCESS.to_dict()


def test_a_sweep_saves_the_digits_every_run_predicts(finished, mnist):
    with np.load(finished / "samples.npz") as samples:
        assert np.array_equal(samples["x"], mnist.x_test[:16])
        assert np.array_equal(samples["y"], mnist.y_test[:16])


def test_a_sweep_writes_the_core_reports(finished):
    assert sorted(path.name for path in finished.iterdir()) == [
        "comparison.csv",
        "comparison.png",
        "curves.png",
        "environment.json",
        "manifest.json",
        "predictions.png",
        "pytest-benchmark.json",
        "report.html",
        "runs.csv",
        "samples.npz",
    ]


def test_a_sweep_records_its_command_line(finished):
    assert json.loads((finished / "environment.json").read_text())["command"] == "mnistbench"


def test_a_new_sweep_checks_its_execution_settings(tmp_path, tiny_plugins):
    with pytest.raises(ConfigError) as error:
        Sweep.new(
            [RunConfig("tiny")], Execution("local", 5, IN_PROCESS.options), tmp_path, tiny_plugins
        )
    assert str(error.value) == "--timeout needs a worker: --isolation process or warm"


def test_a_new_sweep_has_every_run_pending(tmp_path, tiny_plugins):
    configs = plan(["tiny"], repeats=2)
    sweep = Sweep.new(configs, Execution(), tmp_path, tiny_plugins)
    assert (sweep.pending, sweep.kept, sweep.manifest) == (configs, [], None)


def test_a_plan_with_an_unregistered_architecture_is_refused(tmp_path, mnist):
    plugins = load_plugins(entry_points=False)
    sweep = Sweep.new([RunConfig("gone")], IN_PROCESS, tmp_path, plugins)
    with pytest.raises(ConfigError) as error:
        run_sweep(sweep, mnist=mnist, plugins=plugins)
    assert str(error.value) == "unknown architecture 'gone' (known: none)"
    assert list(tmp_path.iterdir()) == []


# --- a resumed sweep -----------------------------------------------------------------------


def test_resume_keeps_ok_runs_and_reruns_failed_interrupted_and_missing_ones(
    tmp_path, tiny_plugins
):
    configs = plan(["tiny"], epochs=1, repeats=4)
    manifest = Manifest.create(tmp_path, configs, IN_PROCESS.to_dict())
    runs = "run_id,architecture,status\ntiny-r0,tiny,ok\ntiny-r1,tiny,failed\ntiny-r2,tiny,ok\n"
    (tmp_path / "runs.csv").write_text(runs)
    manifest.set_state("tiny-r0", "ok")
    manifest.set_state("tiny-r1", "failed")
    manifest.set_state("tiny-r2", "interrupted")  # its record says ok: the manifest decides
    sweep = Sweep.resume(tmp_path, tiny_plugins)
    assert [run.run_id for run in sweep.kept] == ["tiny-r0"]
    assert [config.run_id for config in sweep.pending] == ["tiny-r1", "tiny-r2", "tiny-r3"]
    assert sweep.configs == configs


def test_resume_keeps_no_record_of_a_run_the_plan_lacks(tmp_path, tiny_plugins):
    manifest = Manifest.create(tmp_path, [RunConfig("tiny")], IN_PROCESS.to_dict())
    manifest.set_state("tiny-r0", "ok")
    (tmp_path / "runs.csv").write_text("run_id,architecture,status\ntiny-r0,tiny,ok\nx,x,ok\n")
    assert [run.run_id for run in Sweep.resume(tmp_path, tiny_plugins).kept] == ["tiny-r0"]


def test_resume_keeps_the_saved_execution_settings(tmp_path, tiny_plugins):
    saved = Execution("local", 30.0, {"isolation": "process"})
    Manifest.create(tmp_path, [RunConfig("tiny")], saved.to_dict())
    assert Sweep.resume(tmp_path, tiny_plugins).execution == saved


def test_a_manifest_made_after_another_starts_after_it_even_in_the_same_second(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "head").mkdir()
    base = Manifest.create(tmp_path / "base", [RunConfig("tiny")], {})
    head = Manifest.create(tmp_path / "head", [RunConfig("tiny")], {}, after=base.created_at)
    assert head.created_at > base.created_at  # the clock has a resolution of one second


def test_resume_reads_the_settings_of_a_manifest_older_than_executor_options(
    tmp_path, tiny_plugins
):
    saved = {
        "executor": "local",
        "isolation": "process",
        "timeout": 30.0,
        "ray_address": None,
        "cpus_per_run": None,
    }
    Manifest.create(tmp_path, [RunConfig("tiny")], saved)
    assert Sweep.resume(tmp_path, tiny_plugins).execution == Execution(
        "local", 30.0, {"isolation": "process"}
    )


def test_resume_replaces_the_execution_settings_given(tmp_path, tiny_plugins):
    saved = Execution("local", 30.0, {"isolation": "process"})
    Manifest.create(tmp_path, [RunConfig("tiny")], saved.to_dict())
    assert Sweep.resume(tmp_path, tiny_plugins, timeout=90.0).execution == Execution(
        "local", 90.0, {"isolation": "process"}
    )
    resumed = Sweep.resume(tmp_path, tiny_plugins, probe=False)
    assert resumed.execution == Execution("local", 30.0, {"isolation": "process"}, probe=False)


def test_resume_on_another_executor_drops_the_saved_executors_options(tmp_path, tiny_plugins):
    Manifest.create(tmp_path, [RunConfig("tiny")], IN_PROCESS.to_dict())
    resumed = Sweep.resume(tmp_path, tiny_plugins, executor="ray", options={"cpus_per_run": 1})
    # --no-probe is every executor's setting: it stays.
    assert resumed.execution == Execution("ray", None, {"cpus_per_run": 1}, probe=False)


def test_resume_checks_the_settings_it_ends_up_with(tmp_path, tiny_plugins):
    Manifest.create(tmp_path, [RunConfig("tiny")], Execution("local", 30.0).to_dict())
    with pytest.raises(ConfigError) as error:
        Sweep.resume(tmp_path, tiny_plugins, options={"isolation": "none"})
    assert str(error.value) == "--timeout needs a worker: --isolation process or warm"


def test_resume_refuses_a_plan_whose_architecture_is_no_longer_registered(tmp_path, tiny_plugins):
    Manifest.create(tmp_path, [RunConfig("gone")], Execution().to_dict())
    with pytest.raises(ConfigError) as error:
        Sweep.resume(tmp_path, tiny_plugins).check_architectures(["dnn"])
    assert str(error.value) == "unknown architecture 'gone' (known: dnn)"


def test_resume_of_a_finished_sweep_only_redoes_the_reports(copy_of_finished, mnist, tiny_plugins):
    environment = (copy_of_finished / "environment.json").read_text()
    runs_csv = (copy_of_finished / "runs.csv").read_text()
    (copy_of_finished / "comparison.csv").unlink()
    sweep = Sweep.resume(copy_of_finished, tiny_plugins)
    assert sweep.pending == []
    result = run_sweep(sweep, mnist=mnist, plugins=tiny_plugins, argv=["mnistbench"])
    assert (result.skipped, result.ran, result.runs) == (2, [], record.read(copy_of_finished))
    assert (copy_of_finished / "environment.json").read_text() == environment
    assert (copy_of_finished / "runs.csv").read_text() == runs_csv
    assert layout.COMPARISON_CSV.of(copy_of_finished) in result.reports
    assert layout.COMPARISON_CSV.of(copy_of_finished).is_file()


def test_cli_resume_of_a_finished_sweep_says_so_and_prints_no_empty_table(
    copy_of_finished, mnist_npz, faulty_plugin
):
    result = invoke("run", "--resume", copy_of_finished, "--data", mnist_npz)
    assert result.exit_code == 0, result.output
    assert (
        f"Kept 2 run(s) already finished in {copy_of_finished}; nothing was left to run."
        in result.stderr
    )
    assert "mnistbench results" not in result.stdout


def test_resume_reruns_a_failed_run_and_keeps_the_finished_one(
    copy_of_finished, mnist, tiny_plugins
):
    Manifest.load(copy_of_finished).set_state("tiny-r1", "failed")
    kept = record.read(copy_of_finished)[0]
    result = run_sweep(
        Sweep.resume(copy_of_finished, tiny_plugins),
        mnist=mnist,
        plugins=tiny_plugins,
        argv=["mnistbench"],
    )
    assert [run.run_id for run in result.ran] == ["tiny-r1"]
    runs = record.read(copy_of_finished)
    assert [(run.run_id, run.status) for run in runs] == [("tiny-r0", "ok"), ("tiny-r1", "ok")]
    assert runs[0] == kept and runs == result.runs
    assert states_of(copy_of_finished) == {"tiny-r0": "ok", "tiny-r1": "ok"}


# --- the output directory ------------------------------------------------------------------


def test_output_directory_is_created_with_its_parents(tmp_path):
    assert prepare_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list((tmp_path / "a" / "b").iterdir()) == []


def test_output_directory_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(ConfigError) as error:
        prepare_output_dir(target)
    assert str(error.value) == f"output {target} exists and is not a directory"


def test_non_empty_output_directory_is_refused(tmp_path):
    (tmp_path / "old.txt").write_text("")
    with pytest.raises(ConfigError) as error:
        prepare_output_dir(tmp_path)
    assert str(error.value) == (
        f"output directory {tmp_path} is not empty; choose another --output or pass --force"
    )


def test_force_allows_a_non_empty_output_directory(tmp_path):
    (tmp_path / "old.txt").write_text("")
    assert prepare_output_dir(tmp_path, force=True) == tmp_path


def test_output_directory_under_a_file_is_refused_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as error:
        prepare_output_dir(blocker / "out")
    assert (
        str(error.value) == f"cannot write to output directory {blocker / 'out'}: Not a directory"
    )


# --- merging the sweeps of one side ----------------------------------------------------------


def half(directory, fit_seconds: tuple[float, ...], cpu: str = "CPU A"):
    """A result directory of dnn repeats (run ids dnn-r0, dnn-r1, ...) and its environment."""
    directory.mkdir()
    runs = repeat_rows(fit_seconds=fit_seconds, accuracies=(0.97,) * len(fit_seconds))
    record.write(directory / "runs.csv", runs)
    (directory / "environment.json").write_text(json.dumps({"cpu": cpu, "python": "3.11"}))
    return directory


def test_merged_halves_hold_every_run_with_unique_ids(tmp_path):
    first, second = half(tmp_path / "a", (10.0, 11.0)), half(tmp_path / "b", (12.0, 13.0))
    (tmp_path / "side").mkdir()
    merge_directories([first, second], tmp_path / "side")
    runs = record.read(tmp_path / "side")
    assert [run.run_id for run in runs] == ["dnn-r0", "dnn-r1", "dnn-r0-m2", "dnn-r1-m2"]
    assert [run.fit_seconds for run in runs] == [10.0, 11.0, 12.0, 13.0]
    # Apart from the renamed ids, every record is kept as it was.
    assert [run.replace(run_id="x") for run in runs] == [
        run.replace(run_id="x") for run in record.read(first) + record.read(second)
    ]


def test_merged_environment_names_its_sources_and_joins_what_differs(tmp_path):
    first = half(tmp_path / "a", (10.0,), cpu="CPU A")
    second = half(tmp_path / "b", (12.0,), cpu="CPU B")
    (tmp_path / "side").mkdir()
    merge_directories([first, second], tmp_path / "side")
    environment = json.loads((tmp_path / "side" / "environment.json").read_text())
    assert environment["cpu"] == "CPU A / CPU B"
    assert environment["python"] == "3.11"
    assert environment["merged_from"] == [str(first.resolve()), str(second.resolve())]


def invoke(*args):
    """``mnistbench ARGS`` in this process."""
    from mnistbench.cli import cli

    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_cli_compares_sides_merged_from_alternating_halves(tmp_path):
    for name, fits in (("base-1", (10.0, 10.1)), ("head-1", (12.0, 12.1)),
                       ("base-2", (9.9, 10.2)), ("head-2", (11.9, 12.2))):  # fmt: skip
        half(tmp_path / name, fits)
    for side in ("base", "head"):
        merged = invoke("merge", tmp_path / side, *(tmp_path / f"{side}-{i}" for i in (1, 2)))
        assert merged.exit_code == 0, merged.output
    result = invoke("compare", tmp_path / "base", tmp_path / "head", "--fail", "fit_seconds:10%")
    assert result.exit_code == 1  # 4 a side: the 20% slowdown is significant
    assert "regression: dnn fit_seconds: 10.1 s → 12.1 s (+19.9%, p=0.029) exceeds 10%" in (
        result.stderr
    )


@pytest.mark.parametrize("how", ["twice", "copy"])
def test_cli_merge_refuses_a_sweep_given_twice_in_one_line_and_writes_nothing(tmp_path, how):
    first = half(tmp_path / "a", (10.0, 11.0))
    second = first
    if how == "copy":
        second = tmp_path / "copy-of-a"
        shutil.copytree(first, second)
    result = invoke("merge", tmp_path / "side", first, second)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: {second} holds runs that {first} holds too (dnn-r0, started "
        f"{record.read(first)[0].started_at}): merge each sweep once, or its runs count twice"
    ]
    assert not (tmp_path / "side").exists()


def test_cli_merge_of_sweeps_of_different_commits_warns(tmp_path):
    first, second = half(tmp_path / "a", (10.0,)), half(tmp_path / "b", (12.0,))
    for directory, commit in ((first, "a" * 40), (second, "b" * 40)):
        environment = json.loads((directory / "environment.json").read_text())
        (directory / "environment.json").write_text(
            json.dumps({**environment, "git_commit": commit})
        )
    result = invoke("merge", tmp_path / "side", first, second)
    assert result.exit_code == 0, result.output
    assert "warning: the directories ran 2 commits (aaaaaaa, bbbbbbb): merged as one side" in (
        result.stderr
    )


def test_cli_merge_never_writes_over_a_sweep_even_with_force(tmp_path):
    first, second = half(tmp_path / "a", (10.0, 11.0)), half(tmp_path / "b", (12.0, 13.0))
    kept = (first / "runs.csv").read_text()
    result = invoke("merge", first, second, "--force")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {first} holds a sweep (runs.csv); merge into a new directory\n"
    assert (first / "runs.csv").read_text() == kept


def test_cli_merge_of_a_directory_without_runs_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("merge", tmp_path / "side", tmp_path / "empty")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'empty' / 'runs.csv'}: not found; is "
        f"{tmp_path / 'empty'} an mnistbench output directory?"
    ]
    assert not (tmp_path / "side").exists()


def test_cli_merge_of_a_file_that_is_no_runs_csv_is_one_line_and_leaves_no_output(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "runs.csv").write_text("a,b\n1,2\n")
    result = invoke("merge", tmp_path / "side", tmp_path / "other")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'other' / 'runs.csv'}: missing column(s) run_id, architecture, status"
    ]
    assert not (tmp_path / "side").exists()


# --- estimate_seconds ----------------------------------------------------------------------


def measured(run_id="tiny-r0", architecture="tiny", fit_seconds=2.0, status="ok", **fields):
    return record.new_run(
        run_id=run_id,
        architecture=architecture,
        backend="tensorflow",
        status=status,
        fit_seconds=fit_seconds,
        train_samples=1000,
        epochs=2,
        **fields,
    )


def write_result(root, name: str, runs) -> None:
    (root / name).mkdir(parents=True)
    record.write(root / name / "runs.csv", runs)


def test_estimate_scales_the_median_rate_per_sample_and_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    # 2 s, 4 s and 3 s for 1000 samples x 2 epochs: a median of 1.5 ms per sample-epoch.
    write_result(tmp_path, "a", [measured(fit_seconds=2.0), measured("tiny-r1", fit_seconds=4.0)])
    write_result(tmp_path, "b", [measured(fit_seconds=3.0), measured("tiny-r1", status="failed")])
    # A runs.csv of format 1, as an older mnistbench wrote it, counts too.
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "runs.csv").write_text(
        "run_id,architecture,backend,status,fit_seconds,train_samples,epochs\n"
        "tiny-r0,tiny,tensorflow,ok,3.0,1000.0,2\n"
    )
    seconds, unknown = estimate_seconds([RunConfig("tiny", epochs=4, train_limit=500)], tmp_path)
    assert (seconds, unknown) == (pytest.approx(0.0015 * 2000 + WORKER_START_SECONDS), 0)


def test_estimate_counts_runs_without_earlier_measurements_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    write_result(tmp_path, "a", [measured()])
    configs = [RunConfig("cnn"), RunConfig("tiny", backend="jax"), RunConfig("tiny", epochs=1)]
    seconds, unknown = estimate_seconds(configs, tmp_path)
    assert (seconds, unknown) == (pytest.approx(0.001 * 60_000 + WORKER_START_SECONDS), 2)


def test_estimate_skips_foreign_and_unreadable_result_files(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "runs.csv").write_text("architecture,seconds\ntiny,1.0\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "runs.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert estimate_seconds([RunConfig("tiny")], tmp_path) == (0.0, 1)
