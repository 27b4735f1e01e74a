"""Sweep files: `mnistbench run --config sweep.toml` takes the options of `run` from TOML."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mnistbench import layout, record
from mnistbench.cli import cli as mnistbench_cli
from mnistbench.cli.run import run
from mnistbench.cli.sweepfile import (
    canonical_keys,
    choose_architectures,
    read_sweep_file,
    save_sweep_file,
)
from mnistbench.environment import read_environment, write_environment
from mnistbench.errors import ConfigError
from mnistbench.plan import plan

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sweep.toml"


def write(directory: Path, text: str, name: str = "sweep.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def parse(*args: str) -> click.Context:
    """The context of `mnistbench run ARGS` once click has processed every option."""
    return run.make_context("run", list(args))


def invoke(*args: str):
    """``mnistbench ARGS`` in this process (the sweep file's options need no plugins
    installed); one case of the one-line errors runs in a fresh process as well."""
    return CliRunner().invoke(mnistbench_cli, list(args))


def params_without_config(ctx: click.Context) -> dict:
    return {name: value for name, value in ctx.params.items() if name != "config"}


# --- the file and the command line accept the same options ---------------------------------

GRID_FILE = """\
    architectures = ["dnn", "cnn"]
    epochs = 2
    batch_size = [32, 128]
    steps_per_execution = [1, 8]
    jit_compile = ["auto", "on"]
    train_limit = 500
    test_limit = 200
    seed = 3
    repeats = 2
    target_accuracy = 0.9
    eval_every = 10
    timeout = 600
    isolation = "process"
    output = "out"
"""
GRID_ARGS = (
    "dnn",
    "cnn",
    "--epochs",
    "2",
    "--batch-size",
    "32,128",
    "--steps-per-execution",
    "1,8",
    "--jit",
    "auto,on",
    "--train-limit",
    "500",
    "--test-limit",
    "200",
    "--seed",
    "3",
    "--repeats",
    "2",
    "--target-accuracy",
    "0.9",
    "--eval-every",
    "10",
    "--timeout",
    "600",
    "--isolation",
    "process",
)


def test_a_sweep_file_sets_the_same_options_as_the_equivalent_command_line(tmp_path):
    path = write(tmp_path, GRID_FILE)
    from_file = parse("--config", str(path))
    typed = parse(*GRID_ARGS, "--output", str(tmp_path / "out"))
    assert params_without_config(from_file) == params_without_config(typed)


def test_a_sweep_file_plans_the_same_runs_as_the_equivalent_command_line(tmp_path):
    options = params_without_config(parse("--config", str(write(tmp_path, GRID_FILE))))
    configs = plan(
        options["architectures"],
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        train_limit=options["train_limit"],
        test_limit=options["test_limit"],
        seed=options["seed"],
        repeats=options["repeats"],
        steps_per_execution=options["steps_per_execution"],
        jit_compile=options["jit_compile"],
        target_accuracy=options["target_accuracy"],
        eval_every=options["eval_every"],
    )
    assert configs == plan(
        ["dnn", "cnn"],
        epochs=2,
        batch_size=[32, 128],
        steps_per_execution=[1, 8],
        jit_compile=[None, True],
        train_limit=500,
        test_limit=200,
        seed=3,
        repeats=2,
        target_accuracy=0.9,
        eval_every=10,
    )
    assert len(configs) == 2 * 2 * 2 * 2 * 2


def test_the_dry_run_of_a_sweep_file_lists_the_runs_of_the_equivalent_command_line(tmp_path):
    path = write(tmp_path, GRID_FILE)
    from_file = invoke("run", "--config", str(path), "--dry-run")
    typed = invoke("run", *GRID_ARGS, "--output", str(tmp_path / "out"), "--dry-run")
    assert (from_file.exit_code, from_file.stderr) == (0, "")
    assert from_file.stdout == typed.stdout
    assert "mnistbench plan: 32 run(s)" in from_file.stdout
    assert "dnn-bs128-spe8-jiton-r1" in from_file.stdout


def test_file_keys_are_the_options_long_names_and_leave_out_config_resume_and_dry_run():
    keys = canonical_keys(run)
    assert {"architectures", "all", "batch_size", "jit", "backend", "cpus_per_run"} <= set(keys)
    assert {"data", "output", "executor", "isolation", "timeout", "ray_address"} <= set(keys)
    assert not {"config", "resume", "dry_run"} & set(keys)


def test_parameter_names_are_accepted_as_keys_too(tmp_path):
    path = write(tmp_path, 'architectures = "dnn"\njit_compile = "off"\nbackends = ["jax"]\n')
    assert read_sweep_file(path, run).defaults == {
        "architectures": ("dnn",),
        "jit_compile": "off",
        "backends": "jax",
    }


def test_flags_take_toml_booleans(tmp_path):
    ctx = parse("--config", str(write(tmp_path, "all = true\nforce = true\n")))
    assert (ctx.params["run_all"], ctx.params["force"]) == (True, True)


def test_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "sweeps").mkdir()
    path = write(tmp_path / "sweeps", 'output = "out"\ndata = "../mnist.npz"\n')
    ctx = parse("--config", str(path))
    assert ctx.params["output"] == tmp_path / "sweeps" / "out"
    assert ctx.params["data_path"] == tmp_path / "sweeps" / ".." / "mnist.npz"


def test_the_example_sweep_file_is_valid():
    ctx = parse("--config", str(EXAMPLE))
    assert ctx.params["architectures"] == ("dnn", "cnn")
    assert ctx.params["batch_size"] == [32, 128]
    assert ctx.params["jit_compile"] == [None, True]
    assert ctx.params["output"] == EXAMPLE.parent / ".." / "results" / "sweep-example"


# --- the command line replaces the file's values -------------------------------------------


def test_options_on_the_command_line_replace_the_files(tmp_path):
    path = write(tmp_path, GRID_FILE)
    ctx = parse("--config", str(path), "--batch-size", "64", "--epochs", "1")
    assert (ctx.params["batch_size"], ctx.params["epochs"]) == ([64], 1)
    assert ctx.params["steps_per_execution"] == [1, 8]  # the file's, not typed


def test_the_files_values_replace_the_defaults_only(tmp_path):
    ctx = parse("--config", str(write(tmp_path, "epochs = 2\n")))
    source = ctx.get_parameter_source
    assert (ctx.params["epochs"], source("epochs")) == (2, click.core.ParameterSource.DEFAULT_MAP)
    assert (ctx.params["seed"], source("seed")) == (0, click.core.ParameterSource.DEFAULT)


def test_architectures_on_the_command_line_replace_the_files(tmp_path):
    ctx = parse("--config", str(write(tmp_path, 'architectures = ["dnn", "cnn"]\n')), "rnn")
    assert choose_architectures(ctx, ctx.params["architectures"], ctx.params["run_all"]) == (
        ("rnn",),
        False,
    )


def test_architectures_on_the_command_line_replace_the_files_all(tmp_path):
    ctx = parse("--config", str(write(tmp_path, "all = true\n")), "rnn")
    assert choose_architectures(ctx, ctx.params["architectures"], ctx.params["run_all"]) == (
        ("rnn",),
        False,
    )


def test_all_on_the_command_line_replaces_the_files_architectures(tmp_path):
    ctx = parse("--config", str(write(tmp_path, 'architectures = ["dnn"]\n')), "--all")
    assert choose_architectures(ctx, ctx.params["architectures"], ctx.params["run_all"]) == (
        (),
        True,
    )


def test_the_dry_run_plans_the_architectures_and_options_typed_over_the_files(tmp_path):
    path = write(tmp_path, "all = true\nepochs = 1\nbatch_size = [32, 128]\ntrain_limit = 500\n")
    result = invoke("run", "--config", str(path), "dnn", "--batch-size", "256", "--dry-run")
    assert (result.exit_code, result.stderr) == (0, "")
    assert "mnistbench plan: 1 run(s)" in result.stdout
    assert "dnn-bs256-r0" in result.stdout


# --- a bad file: one line naming the file and the key, exit 2 ------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'batch_size = "big"\n',
            'batch_size: expected an integer or a list of integers, got "big"',
        ),
        ("batch_size = [32, 0]\n", "batch_size: '32,0': every value must be at least 1"),
        ("batch_size = []\n", "batch_size: expected an integer or a list of integers, got []"),
        ("epochs = 0\n", "epochs: 0 is not in the range x>=1."),
        ("epochs = 1.5\n", "epochs: expected an integer, got 1.5"),
        ("epochs = true\n", "epochs: expected an integer, got true"),
        ('jit = ["on", "maybe"]\n', "jit: 'maybe' is not one of auto, on, off"),
        ("target_accuracy = 1.5\n", "target_accuracy: 1.5 is not in the range 0<x<=1."),
        ('target_accuracy = "high"\n', 'target_accuracy: expected a number, got "high"'),
        ('executor = "slurm"\n', "executor: 'slurm' is not one of 'local', 'ray'."),
        ("executor = 1\n", 'executor: expected one of "local", "ray", got 1'),
        ('force = "yes"\n', 'force: expected true or false, got "yes"'),
        ("output = 3\n", "output: expected a path (a string), got 3"),
        ("architectures = [1]\n", "architectures: expected a name or a list of names, got [1]"),
        ("[epochs]\nvalue = 1\n", 'epochs: expected an integer, got {"value": 1}'),
        ('jit = "on"\njit_compile = "off"\n', "jit_compile: the same option as jit; give one"),
        ('all = true\narchitectures = ["dnn"]\n', "architectures and all: give one, not both"),
    ],
)
def test_a_bad_value_is_refused_naming_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        read_sweep_file(path, run)
    assert str(error.value) == f"{path}: {message}"


def test_an_unknown_key_is_refused_with_the_known_ones_and_the_closest(tmp_path):
    path = write(tmp_path, "batchsize = 64\n")
    with pytest.raises(ConfigError) as error:
        read_sweep_file(path, run)
    known = ", ".join(canonical_keys(run))
    assert str(error.value) == (
        f'{path}: unknown key "batchsize" (known: {known}); did you mean "batch_size"?'
    )


def test_keys_of_config_resume_and_dry_run_are_unknown(tmp_path):
    for key in ('config = "other.toml"', 'resume = "results/x"', "dry_run = true"):
        path = write(tmp_path, key + "\n")
        with pytest.raises(ConfigError, match=f'unknown key "{key.split(" ")[0]}"'):
            read_sweep_file(path, run)


def test_bad_file_errors_are_one_line_and_exit_2(tmp_path, cli):
    cases = {
        "missing.toml": (None, "cannot read: No such file or directory"),
        "not-toml.toml": ("epochs = = 1\n", "not TOML: Invalid value (at line 1, column 10)"),
        "unknown.toml": ("dnn = true\n", 'unknown key "dnn" (known: '),
        "bad-value.toml": ("epochs = -1\n", "epochs: -1 is not in the range x>=1."),
        "wrong-type.toml": (
            'batch_size = "big"\n',
            'batch_size: expected an integer or a list of integers, got "big"',
        ),
    }
    for index, (name, (text, message)) in enumerate(cases.items()):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        if index == 0:  # as a user's shell sees it: nothing else on stderr, no traceback
            result = cli("run", "--config", str(path), "--dry-run")
            code = result.returncode
        else:
            result = invoke("run", "--config", str(path), "--dry-run")
            code = result.exit_code
        assert code == 2, name
        assert result.stdout == "", name
        assert result.stderr.startswith(f"Error: {path}: {message}"), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


def test_a_file_that_is_not_utf8_is_not_toml(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_bytes(b"epochs = \xff\n")
    with pytest.raises(ConfigError) as error:
        read_sweep_file(path, run)
    assert str(error.value) == f"{path}: not TOML: the file is not UTF-8 text"


def test_resume_refuses_a_sweep_file(tmp_path):
    path = write(tmp_path, "epochs = 1\n")
    result = invoke("run", "--resume", str(tmp_path / "old"), "--config", str(path))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --resume DIR continues the plan saved in DIR: give no architectures, --all, "
        "--output or plan options (--config) with it\n"
    )


# --- the copy in the output directory and its record in environment.json -------------------


def test_saving_copies_the_file_and_records_its_path_and_content(tmp_path):
    path = write(tmp_path, "epochs = 1\n")
    output = tmp_path / "out"
    output.mkdir()
    copy = save_sweep_file(output, read_sweep_file(path, run))
    assert copy == layout.SWEEP_TOML.of(output)
    assert copy.read_text() == "epochs = 1\n"
    assert read_environment(output) == {
        "sweep_file": {"path": str(path.resolve()), "content": "epochs = 1\n"}
    }


def test_the_record_survives_the_sweep_rewriting_environment_json(tmp_path):
    save_sweep_file(tmp_path, read_sweep_file(write(tmp_path, "seed = 1\n", "s.toml"), run))
    write_environment(tmp_path, {"python": "3.11"})
    assert read_environment(tmp_path) == {
        "python": "3.11",
        "sweep_file": {"path": str((tmp_path / "s.toml").resolve()), "content": "seed = 1\n"},
    }


def test_a_sweep_without_a_file_drops_an_earlier_record(tmp_path):
    save_sweep_file(tmp_path, read_sweep_file(write(tmp_path, "seed = 1\n", "s.toml"), run))
    assert save_sweep_file(tmp_path, None) is None
    write_environment(tmp_path, {"python": "3.11"})
    assert read_environment(tmp_path) == {"python": "3.11"}


def test_a_sweep_run_from_a_file_keeps_a_copy_and_records_it(tmp_path, mnist_npz):
    text = textwrap.dedent(
        """\
        architectures = ["dnn"]
        epochs = 1
        batch_size = 64
        train_limit = 300
        test_limit = 100
        isolation = "none"
        output = "out"
        """
    )
    path = write(tmp_path, text)
    result = invoke("run", "--config", str(path), "--data", str(mnist_npz))
    assert result.exit_code == 0, result.output
    output = tmp_path / "out"
    assert layout.SWEEP_TOML.of(output).read_text() == text
    environment = json.loads((output / "environment.json").read_text())
    assert environment["sweep_file"] == {"path": str(path.resolve()), "content": text}
    assert "python" in environment  # the sweep's own description, with the record kept
    (run_,) = record.read(output)
    assert (run_.run_id, run_.batch_size, run_.status) == ("dnn-bs64-r0", 64, "ok")
