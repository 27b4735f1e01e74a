"""Third parties' plugins, installed as distributions, are discovered, listed and used: the
README's example architecture, and an executor and an output format that no line of
mnistbench names (tests/plugins/mnistbench_extras.py).

That the benchmark suite covers the architecture too is in tests/test_benchmarks.py, which
runs the suite once with it installed.

A command that needs the plugins' options, formats or stores (``--executor serial
--serial-node``, ``--format lines``, ``--db labdb://``) runs in a fresh process, as a
user's does: the command line declares them once per process, from the plugins
installed when it starts. The listing takes the plugins when it runs, so it runs in
this process with the site on ``sys.path`` (a fresh process would import TensorFlow
again, to count the architectures' parameters).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistbench import record
from mnistbench.cli import cli as mnistbench_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnistbench-logreg"
EXTRAS = Path(__file__).resolve().parent / "plugins" / "mnistbench_extras.py"


@pytest.fixture(scope="module")
def site_env(tmp_path_factory, install_distribution) -> dict[str, str]:
    """The environment of a command that sees both plugins installed."""
    site = tmp_path_factory.mktemp("site")
    install_distribution(
        site, EXAMPLE / "mnistbench_logreg.py", "mnistbench-logreg", {"logreg": "mnistbench_logreg"}
    )
    install_distribution(site, EXTRAS, "mnistbench-extras", {"extras": "mnistbench_extras"})
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def installed(site_env, monkeypatch) -> None:
    """Both plugins installed for a command run in this process."""
    for path in reversed(site_env["PYTHONPATH"].split(os.pathsep)):
        monkeypatch.syspath_prepend(path)


def test_third_party_plugins_are_listed_with_their_distribution(installed):
    result = CliRunner().invoke(mnistbench_cli, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    line = next(line for line in lines if " logreg " in line)
    assert "mnistbench-logreg" in line and "0.1.0" in line and "7,850" in line
    executor = next(line for line in lines if " serial " in line)
    assert "executor" in executor and "mnistbench-extras" in executor
    output_format = next(line for line in lines if " lines " in line)
    assert "output format" in output_format and "mnistbench-extras" in output_format
    store = next(line for line in lines if " labdb " in line)
    assert "results store" in store and "mnistbench-extras" in store


def test_a_plugins_executor_runs_a_plugins_architecture_with_its_own_option_into_its_store(
    cli, site_env, tmp_path, mnist_npz
):
    output = tmp_path / "out"
    result = cli(
        "run",
        "logreg",
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--test-limit",
        "200",
        "--executor",
        "serial",
        "--serial-node",
        "lab-7",
        "--output",
        str(output),
        "--data",
        str(mnist_npz),
        # Recorded in the plugin's results store: a file of the lab's shared directory.
        "--db",
        "labdb://team",
        env={**site_env, "LABDB_DIR": str(tmp_path / "lab")},
    )
    assert result.returncode == 0, result.stderr
    (run,) = record.read(output)
    history = cli(
        "history", "--db", "labdb://team", "-o", str(tmp_path),
        env={**site_env, "LABDB_DIR": str(tmp_path / "lab")},
    )  # fmt: skip
    assert history.returncode == 0, history.stderr
    assert "logreg" in history.stdout
    assert (tmp_path / "lab" / "team.sqlite").is_file()
    assert (run.architecture, run.status, run.executor, run.node) == (
        "logreg",
        "ok",
        "serial",
        "lab-7",
    )
    assert run.plugin == "logreg" and run.plugin_version == "0.1.0"
    assert run.params == 784 * 10 + 10
    assert run.test_accuracy > 0.5
    # The plugin's output format prints the comparison of that directory with itself.
    compared = cli("compare", str(output), str(output), "--format", "lines", env=site_env)
    assert compared.returncode == 0, compared.stderr
    assert "logreg fit_seconds cannot tell (needs 4 repeats a side)" in compared.stdout.splitlines()


def test_another_executors_option_is_refused_in_one_line(cli, site_env, tmp_path):
    result = cli(
        "run", "logreg", "--serial-node", "x", "--output", str(tmp_path / "o"), env=site_env
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "Error: --serial-node needs --executor serial"
