"""Property: whatever options a user types, the CLI answers with exit 0 or 2, never a traceback."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mnistbench.cli.run
from mnistbench.cli import cli
from mnistbench.sweep import SweepResult

NUMBERS = st.one_of(
    st.integers(min_value=-10, max_value=100_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "abc", "1,2", "0", "-1", "1e3", "nan", "1,,2", "on,off", "auto"]),
    st.text(max_size=8),
)
OPTIONS = [
    "--epochs",
    "--batch-size",
    "--train-limit",
    "--test-limit",
    "--seed",
    "--repeats",
    "--steps-per-execution",
    "--jit",
    "--target-accuracy",
    "--eval-every",
    "--isolation",
    "--timeout",
    "--backend",
    "--executor",
    "--cpus-per-run",
    "--resume",
]
FLAGS = ["--all", "--force", "--dry-run"]
NAMES = st.sampled_from(["dnn", "cnn", "rnn", "dnm", "", "DNN", "--", "x" * 50, "-x"])

option_pairs = st.lists(st.tuples(st.sampled_from(OPTIONS), NUMBERS), max_size=4)
arguments = st.tuples(
    st.lists(NAMES, max_size=3), option_pairs, st.lists(st.sampled_from(FLAGS), max_size=2)
)


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    """Parsing and validation run for real; the sweep itself and the data are stand-ins.

    Returns the directory to write under; ``no_training.sweeps`` are the sweeps "run".
    """
    monkeypatch.setattr(
        mnistbench.cli.run,
        "resolve_mnist",
        lambda path=None, offline=False: SimpleNamespace(
            source="path", origin="stand-in", cache_path=Path("mnist.npz")
        ),
    )
    sweeps.clear()

    def run_sweep(sweep, **options):
        sweeps.append(sweep)
        return SweepResult(sweep.output_dir, ran=[], runs=[])

    monkeypatch.setattr(mnistbench.cli.run, "run_sweep", run_sweep)
    return tmp_path


sweeps: list = []


counter = itertools.count()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(arguments)
def test_run_options_exit_0_or_2_without_traceback(no_training, args):
    names, pairs, flags = args
    argv = [
        "run",
        *names,
        *[item for pair in pairs for item in pair],
        *flags,
        "--output",
        str(no_training / f"out{next(counter)}"),
    ]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code in (0, 2), (argv, result.output, result.exception)
    # CliRunner keeps an escaped exception in result.exception, not in the output:
    # anything but the SystemExit of a handled exit is a traceback a user would see.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        argv,
        repr(result.exception),
    )
    if result.exit_code == 2:
        assert "Error" in result.output


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=3))
def test_malformed_or_valid_fail_rules_exit_2_on_missing_directories(rules):
    argv = ["compare", "/nonexistent/a", "/nonexistent/b"]
    for rule in rules:
        argv += ["--fail", rule]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, (argv, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)


def test_valid_options_reach_the_sweep(no_training):
    # Guards the property above against being vacuous: valid input gets through.
    argv = ["run", "dnn", "--epochs", "1", "--jit", "on,off", "--order", "grouped"]
    argv += ["--output", str(no_training / "o")]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    (sweep,) = sweeps
    assert [config.run_id for config in sweep.configs] == ["dnn-jiton-r0", "dnn-jitoff-r0"]
    assert [config.epochs for config in sweep.configs] == [1, 1]
