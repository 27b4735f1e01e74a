"""End to end across processes: a sweep stopped by SIGINT or SIGTERM keeps what it finished,
and ``mnistbench run --resume`` completes it like an uninterrupted one."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistbench import record
from mnistbench.cli import cli
from mnistbench.manifest import Manifest
from mnistbench.plan import plan

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Each run trains this many epochs: the signal comes as the second run's first one begins,
#: so the rest of that run (epochs, evaluation, inference timing) is the margin it lands in.
EPOCHS = 5
#: ``python -m mnistbench.cli`` with Python's own SIGINT handler, as an interactive start has.
DEFAULT_SIGINT = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'mnistbench'; runpy.run_module('mnistbench.cli', run_name='__main__')"
)


def interrupt_second_run(
    output: Path, data: Path, site: Path, signal_number: int, isolation: str
) -> dict:
    """Run ``tiny`` three times through the CLI (``--isolation ISOLATION``); send
    ``signal_number`` once the second run trains (its first epoch began). Returns the exit
    code, stderr, records and states.

    Waits for the CLI's own progress line, not for a time: a busy machine only makes it later.
    """
    # SIGINT as a terminal delivers it, however the suite was started: a process started in
    # the background of a shell without job control (nohup, a CI runner) inherits SIGINT
    # ignored, and Python then leaves it ignored; the CLI gets Python's usual handler back.
    command = [sys.executable, "-c", DEFAULT_SIGINT, "run", "tiny", "--repeats", "3"]
    options = ["--epochs", str(EPOCHS), "--train-limit", "2000", "--test-limit", "100"]
    options.append("--no-probe")  # the probes are not what this tests; --resume keeps it
    options += ["--isolation", isolation]
    process = subprocess.Popen(
        [*command, *options, "--output", str(output), "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        },
    )
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if line.startswith(f"[2/3] tiny-r1: epoch 1/{EPOCHS}"):
                process.send_signal(signal_number)
                break
        else:
            raise AssertionError(f"the second run never started training:\n{''.join(seen)}")
        _, rest = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return {
        "returncode": process.returncode,
        "stderr": "".join(seen) + rest,
        "runs": record.read(output),
        "states": Manifest.load(output).states,
    }


#: Each signal's sweep runs its own way: SIGINT's a fresh worker process per run (the
#: default), SIGTERM's one warm worker for all its runs; both must record the interrupted run.
ISOLATION = {"SIGINT": "process", "SIGTERM": "warm"}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, mnist_npz, faulty_site) -> dict[str, tuple[Path, dict]]:
    """Two sweeps, one stopped by SIGINT and one by SIGTERM during their second run, run at
    the same time (:data:`ISOLATION`): ``{"SIGINT": (directory, end), "SIGTERM": ...}``;
    read-only."""
    outputs = {
        name: tmp_path_factory.mktemp(name.lower()) / "out" for name in ("SIGINT", "SIGTERM")
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        ends = {
            name: pool.submit(
                interrupt_second_run,
                output,
                mnist_npz,
                faulty_site,
                signal.Signals[name],
                ISOLATION[name],
            )
            for name, output in outputs.items()
        }
        return {name: (outputs[name], end.result()) for name, end in ends.items()}


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_mid_sweep_exits_128_plus_its_number_with_the_resume_command(stopped, name, code):
    output, end = stopped[name]
    assert end["returncode"] == code
    assert f"Resume with: mnistbench run --resume {output}" in end["stderr"]
    assert "Traceback" not in end["stderr"]


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_sweep_keeps_finished_runs_and_records_the_interrupted_one(stopped, name):
    _, end = stopped[name]
    assert [(r.run_id, r.status, r.error) for r in end["runs"]] == [
        ("tiny-r0", "ok", ""),
        ("tiny-r1", "interrupted", f"interrupted by {name}"),
    ]
    interrupted = end["runs"][1]
    assert (interrupted.epochs, interrupted.isolation, interrupted.fit_seconds) == (
        EPOCHS,
        ISOLATION[name],
        None,
    )
    assert end["states"] == {"tiny-r0": "ok", "tiny-r1": "interrupted", "tiny-r2": "planned"}


def test_resume_completes_an_interrupted_sweep_like_an_uninterrupted_one(
    stopped, tmp_path, mnist_npz, faulty_plugin
):
    output = shutil.copytree(stopped["SIGINT"][0], tmp_path / "out")
    first = record.read(output)[0]
    # In this process (a given execution option replaces the saved one): what is kept and
    # what runs again is the point here, not isolation.
    args = ["run", "--resume", str(output), "--isolation", "none", "--data", str(mnist_npz)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"Kept 1 run(s) already finished in {output}." in result.stderr
    runs = record.read(output)
    assert [(r.run_id, r.status) for r in runs] == [
        ("tiny-r0", "ok"),
        ("tiny-r1", "ok"),
        ("tiny-r2", "ok"),
    ]
    assert runs[0] == first  # the finished run was kept, not rerun
    assert [r.isolation for r in runs] == ["process", "none", "none"]
    assert {r.probe_seconds for r in runs} == {None}  # the saved --no-probe still holds
    assert Manifest.load(output).states == {"tiny-r0": "ok", "tiny-r1": "ok", "tiny-r2": "ok"}
    with open(output / "comparison.csv", newline="") as handle:
        assert [row["runs"] for row in csv.DictReader(handle)] == ["3"]
    for name in ("comparison.png", "curves.png", "predictions.png"):
        assert (output / name).read_bytes()[:8] == PNG_SIGNATURE, name


def test_resume_dry_run_lists_the_unfinished_runs_and_runs_nothing(tmp_path, faulty_plugin):
    manifest = Manifest.create(tmp_path, plan(["tiny"], repeats=3), {"isolation": "process"})
    manifest.set_state("tiny-r0", "ok")
    manifest.set_state("tiny-r1", "interrupted")
    runs = "run_id,architecture,status\ntiny-r0,tiny,ok\ntiny-r1,tiny,interrupted\n"
    (tmp_path / "runs.csv").write_text(runs)
    before = (tmp_path / "manifest.json").read_text()
    result = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "tiny-r1" in result.stdout and "tiny-r2" in result.stdout
    assert "tiny-r0" not in result.stdout
    assert "mnistbench plan: 2 run(s)" in result.stdout
    assert (tmp_path / "manifest.json").read_text() == before
    assert (tmp_path / "runs.csv").read_text() == runs
    assert sorted(path.name for path in tmp_path.iterdir()) == ["manifest.json", "runs.csv"]
