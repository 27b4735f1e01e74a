"""``mnistbench ab`` end to end: a small plugin package in a temporary git repository, at two
commits, measured against each other in pairs; and its one-line refusals."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import QUICK_ARGS

from mnistbench import record
from mnistbench.ab import SideRunner, schedule
from mnistbench.builtins import load_plugins
from mnistbench.checkouts import Side
from mnistbench.cli import cli
from mnistbench.plan import RunConfig
from mnistbench.stores import open_store

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "mnistbench-abdemo"
version = "{version}"

[project.entry-points.mnistbench]
abdemo = "mnistbench_abdemo"

[tool.setuptools]
py-modules = ["mnistbench_abdemo"]
"""

PLUGIN = """\
import mnistbench


@mnistbench.hookimpl
def mnistbench_register_architectures(register):
    register("{name}", description="logistic regression{extra_text}")


@mnistbench.hookimpl
def mnistbench_build_model(architecture, input_shape, num_classes):
    if architecture != "{name}":
        return None
    import keras

    layers = [keras.Input(input_shape), keras.layers.Flatten()]
    layers += [keras.layers.Dense(64, activation="relu")] * {hidden}
    model = keras.Sequential([*layers, keras.layers.Dense(num_classes, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""


def _git(repository: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repository, check=True, capture_output=True, text=True
    ).stdout.strip()


def _commit(repository: Path, version: str, hidden: int, message: str, name: str = "abdemo") -> str:
    (repository / "pyproject.toml").write_text(PYPROJECT.format(version=version))
    extra = "" if not hidden else f" with {hidden} hidden layer(s)"
    (repository / "mnistbench_abdemo.py").write_text(
        PLUGIN.format(hidden=hidden, extra_text=extra, name=name)
    )
    _git(repository, "add", "-A")
    _git(repository, "commit", "-q", "-m", message)
    return _git(repository, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> dict[str, str]:
    """A git repository of a plugin package: ``base`` (logistic regression), ``head`` (a
    hidden layer more), ``renamed`` (its architecture called ``abdemo2``), ``broken`` (a
    pyproject.toml pip cannot read); its commits."""
    path = tmp_path_factory.mktemp("abdemo")
    _git(path, "init", "-q")
    _git(path, "config", "user.email", "tests@example.com")
    _git(path, "config", "user.name", "tests")
    commits = {"path": str(path)}
    commits["base"] = _commit(path, "0.1.0", 0, "logistic regression")
    commits["head"] = _commit(path, "0.2.0", 1, "a hidden layer")
    commits["renamed"] = _commit(path, "0.3.0", 1, "renamed", name="abdemo2")
    (path / "pyproject.toml").write_text("[project\nname = ")
    _git(path, "commit", "-q", "-am", "a broken pyproject.toml")
    commits["broken"] = _git(path, "rev-parse", "HEAD")
    _git(path, "checkout", "-q", commits["head"])
    return commits


@pytest.fixture
def in_repository(repository, monkeypatch, tmp_path_factory):
    """Commands run in the repository, with the installed sides cached for the module."""
    monkeypatch.chdir(repository["path"])
    cache = tmp_path_factory.getbasetemp() / "ab-cache"
    monkeypatch.setenv("MNISTBENCH_CACHE_DIR", str(cache))
    return repository


def ab(*args: str, mnist_npz: Path):
    return CliRunner().invoke(cli, ["ab", *args, "--data", str(mnist_npz)])


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sequential(repository, tmp_path_factory, mnist_npz):
    """One ``ab base head abdemo`` of sequential pairs, recorded into a database: 2 pairs,
    then one more at a time ``--until`` its interval is within ±0.01%, which the third pair
    (``--max-pairs``) does not reach; its output directory given relative, as a user types it
    (the warm workers run in their own directory)."""
    previous = os.getcwd()
    os.chdir(repository["path"])
    cache = tmp_path_factory.getbasetemp() / "ab-cache"
    old_cache = os.environ.get("MNISTBENCH_CACHE_DIR")
    os.environ["MNISTBENCH_CACHE_DIR"] = str(cache)
    output = tmp_path_factory.mktemp("ab") / "out"
    db = output.parent / "results.sqlite"
    try:
        result = ab(
            repository["base"][:7],
            repository["head"][:7],
            "abdemo",
            *QUICK_ARGS,
            "--pairs",
            "2",
            "--until",
            "0.01%",
            "--max-pairs",
            "3",
            "--seed",
            "5",
            "--output",
            os.path.relpath(output),
            "--db",
            str(db),
            "--format",
            "json",
            mnist_npz=mnist_npz,
        )
    finally:
        os.chdir(previous)
        if old_cache is None:
            os.environ.pop("MNISTBENCH_CACHE_DIR", None)
        else:
            os.environ["MNISTBENCH_CACHE_DIR"] = old_cache
    return result, output, db


def test_ab_writes_both_sides_as_sweeps_with_their_commits(sequential, repository):
    result, output, _ = sequential
    assert result.exit_code == 0, result.output
    for side in ("base", "head"):
        runs = record.read(output / side)
        assert [run.run_id for run in runs] == ["abdemo-r0", "abdemo-r1", "abdemo-r2"]
        assert {run.status for run in runs} == {"ok"}
        environment = json.loads((output / side / "environment.json").read_text())
        assert environment["git_commit"] == repository[side]
        assert environment["ab"]["side"] == side
        assert (output / side / "report.html").is_file()  # report reads it as any sweep
    base, head = record.read(output / "base"), record.read(output / "head")
    assert [run.plugin_version for run in base] == ["0.1.0"] * 3
    assert [run.plugin_version for run in head] == ["0.2.0"] * 3
    # The head's model has a hidden layer more: its parameters tell the sides apart.
    assert base[0].params == 784 * 10 + 10
    assert head[0].params == 784 * 64 + 64 + 64 * 10 + 10
    # Pair k trains with the same seed on both sides.
    assert [run.seed for run in base] == [run.seed for run in head] == [5, 6, 7]
    # No speed probe by default: a pair's ratio cancels the machine's speed.
    assert {run.probe_seconds for run in base + head} == {None}
    assert all(run.fit_seconds and run.test_accuracy for run in base + head)


def test_ab_writes_one_row_per_pair_in_a_seeded_order(sequential, repository, mnist_npz):
    result, output, _ = sequential
    pairs = _rows(output / "pairs.csv")
    assert [row["pair"] for row in pairs] == ["0", "1", "2"]
    assert {row["order"] for row in pairs} <= {"base,head", "head,base"}
    assert all(float(row["fit_seconds_ratio"]) > 0 for row in pairs)
    # The order comes from the seed alone: the same seed schedules the same pairs.
    again = schedule([RunConfig("abdemo")], range(3), seed=5, duet=False)
    assert [pair.order for pair in again] == [row["order"] for row in pairs]


def test_ab_gives_each_metric_a_ratio_with_its_interval_and_a_verdict(sequential):
    result, output, _ = sequential
    verdicts = {row["metric"]: row for row in _rows(output / "ab.csv")}
    params = verdicts["test_accuracy"]
    assert params["test"] == "paired t-test on log-ratios"
    fit = verdicts["fit_seconds"]
    assert fit["pairs"] == "3"
    assert float(fit["ratio_low"]) <= float(fit["ratio"]) <= float(fit["ratio_high"])
    assert fit["verdict"] in ("improved", "regressed", "no significant change") or fit[
        "verdict"
    ].startswith("cannot tell (needs about ")
    document = json.loads(result.stdout)
    assert document["pairs"] == 3 and document["failed_pairs"] == 0
    assert document["rows"][0]["metric"] == "fit_seconds" and document["rows"][0]["gated"]


def test_the_default_gate_is_the_steady_step_or_the_fit_where_runs_are_too_short():
    from types import SimpleNamespace

    from mnistbench.ab import Design, gated

    measured = [SimpleNamespace(metric=name) for name in ("fit_seconds", "steady_step_ms")]
    assert gated(measured, Design()) == {"steady_step_ms"}
    # Runs of fewer than two blocks of 20 steps have no steady step: the fit is watched.
    assert gated(measured[:1], Design()) == {"fit_seconds"}
    chosen = Design(gate=("test_loss", "steady_step_ms"))
    assert gated(measured[:1], chosen) == {"test_loss", "fit_seconds"}
    assert gated(measured, Design(gate=("test_loss",))) == {"test_loss"}


def test_both_sides_land_in_the_results_database_with_their_commits(sequential, repository):
    _, _, db = sequential
    runs = open_store(db, load_plugins(entry_points=False).stores).read_runs()
    keys = runs["run_id"] + "/" + runs["plugin_version"]
    commits = dict(zip(keys, runs["git_commit"], strict=True))
    assert commits["abdemo-r0/0.1.0"] == repository["base"]
    assert commits["abdemo-r0/0.2.0"] == repository["head"]
    # The head's sweep starts after the base's: the store's history puts it second.
    started = dict(zip(runs["git_commit"], runs["sweep_started_at"], strict=True))
    assert started[repository["base"]] < started[repository["head"]]


def test_a_second_ab_of_the_same_commits_uses_the_installed_sides(
    in_repository, sequential, tmp_path, mnist_npz
):
    # The same commit on both sides (A/A), and --until on a metric that is identical on
    # both: the first look at 2 pairs is precise enough.
    result = ab(
        in_repository["base"],
        in_repository["base"],
        "abdemo",
        *QUICK_ARGS,
        "--duet",
        "--no-warmup",
        "--pairs",
        "2",
        "--until",
        "5%",
        "--gate",
        "test_loss",
        "--output",
        str(tmp_path / "out"),
        "--no-db",
        mnist_npz=mnist_npz,
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.count("(installed earlier)") == 2
    assert "stopped: every gated interval is within ±5%" in result.stderr
    pairs = _rows(tmp_path / "out" / "pairs.csv")
    assert [row["order"] for row in pairs] == ["duet", "duet"]
    # Each pair's two runs were pinned to the two halves of the CPUs, alternating.
    base = record.read(tmp_path / "out" / "base")
    head = record.read(tmp_path / "out" / "head")
    assert [run.pinned_cpus for run in base] != [run.pinned_cpus for run in head]
    assert {run.pinned_cpus for run in base} == {run.pinned_cpus for run in head}


def test_until_stops_at_max_pairs_when_the_interval_stays_wide(sequential):
    result, output, _ = sequential
    assert "stopped: --max-pairs 3 reached" in result.stderr
    assert len(_rows(output / "pairs.csv")) == 3


# --- what is refused, in one line and before any run ------------------------------------------


def test_a_ref_that_names_no_commit_is_one_line_and_nothing_is_written(
    in_repository, tmp_path, mnist_npz
):
    result = ab(
        "no-such-branch", "HEAD", "abdemo", "--output", str(tmp_path / "out"), mnist_npz=mnist_npz
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: 'no-such-branch' is no commit, branch or tag of the git repository at "
        f"{in_repository['path']} (or WORKTREE for the working tree)"
    ]
    assert not (tmp_path / "out").exists()


def test_a_directory_outside_git_is_one_line(tmp_path, monkeypatch, mnist_npz):
    monkeypatch.chdir(tmp_path)
    result = ab("HEAD~1", "HEAD", "dnn", mnist_npz=mnist_npz)
    assert result.exit_code == 2
    assert "is not in a git repository" in result.output
    assert "Traceback" not in result.output


def test_a_side_that_fails_to_install_is_one_line_naming_its_kept_log(
    in_repository, tmp_path, mnist_npz
):
    result = ab(
        in_repository["base"],
        in_repository["broken"],
        "abdemo",
        "--output",
        str(tmp_path / "out"),
        mnist_npz=mnist_npz,
    )
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(
        f"Error: head ({in_repository['broken']}) failed to install; its install log: "
    )
    log = Path(line.rsplit(": ", 1)[1])
    assert log.is_file() and "TOMLDecodeError" in log.read_text()


def test_an_architecture_one_side_lacks_is_one_line_before_any_run(
    in_repository, sequential, tmp_path, mnist_npz
):
    result = ab(
        in_repository["base"],
        in_repository["renamed"],
        "abdemo",
        "--output",
        str(tmp_path / "out"),
        mnist_npz=mnist_npz,
    )
    assert result.exit_code == 2, result.output
    renamed = in_repository["renamed"][:7]
    assert result.output.strip().splitlines()[-1] == (
        f"Error: head {in_repository['renamed']} ({renamed}) has no architecture 'abdemo' "
        "(it has: abdemo2, cnn, dnn, rnn)"
    )
    # The directory made for the runs is left empty: the mended command may use it.
    assert list((tmp_path / "out").iterdir()) == []


def test_no_architecture_is_one_line_before_the_sides_are_installed(
    in_repository, tmp_path, mnist_npz
):
    result = ab("HEAD~1", "HEAD", "--output", str(tmp_path / "out"), mnist_npz=mnist_npz)
    assert (result.exit_code, result.output) == (
        2,
        "Error: name at least one architecture, or use --all\n",
    )
    assert not (tmp_path / "out").exists()


def test_base_and_head_pythons_go_together(in_repository, tmp_path, mnist_npz):
    result = ab("a", "b", "abdemo", "--base-python", "/usr/bin/python3", mnist_npz=mnist_npz)
    assert result.exit_code == 2
    assert "give both --base-python and --head-python, or neither" in result.output


def test_a_sides_worker_keeps_this_environment_with_its_version_first(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTBENCH_MACHINE", "lab-1")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    side = Side("head", "HEAD", sys.executable, {"PYTHONPATH": "/side"})
    runner = SideRunner(side, tmp_path / "mnist.npz", tmp_path / "logs", threads=1)
    env = runner.worker("tensorflow").spawn.env
    # The user's variables reach the side's worker, its version comes first on the path,
    # and its thread pools are limited as asked.
    assert (env["MNISTBENCH_MACHINE"], env["PATH"]) == ("lab-1", os.environ["PATH"])
    assert env["PYTHONPATH"] == os.pathsep.join(["/side", "/elsewhere"])
    assert env["OMP_NUM_THREADS"] == "1"
