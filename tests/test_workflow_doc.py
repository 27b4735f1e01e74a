"""docs/github-actions.md: the workflow it documents parses, and every mnistbench command
in it is one the CLI accepts, with options it knows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from mnistbench.cli import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "github-actions.md"


def workflow() -> dict:
    yaml = pytest.importorskip("yaml")
    block = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)[0]
    return yaml.safe_load(block)


def commands(job: dict) -> list[list[str]]:
    """Every ``mnistbench ...`` command of the job's run steps, as arguments, with the job's
    variables put in and shell variables replaced by a plain value."""
    variables = job.get("env", {})
    found = []
    for step in job["steps"]:
        script = step.get("run", "").replace("\\\n", " ")
        for name, value in variables.items():
            script = script.replace(f"${name}", str(value))
        script = re.sub(r"\$\(\(.*?\)\)|\$\{\{.*?\}\}|\$\w+", "x1", script)
        for line in script.splitlines():
            words = shlex.split(line.split("||")[0].split(">")[0], comments=True)
            for i, word in enumerate(words):
                if word.endswith("/mnistbench") or word == "mnistbench":
                    found.append(words[i + 1 :])
    return found


def test_the_workflow_measures_base_against_head_in_pairs_and_posts_a_comment():
    job = workflow()["jobs"]["benchmark"]
    assert workflow()["permissions"]["pull-requests"] == "write"
    subcommands = [args[0] for args in commands(job)]
    assert subcommands == ["data", "ab"]
    [ab] = [args for args in commands(job) if args[0] == "ab"]
    assert "--fail" in ab and "--until" in ab and "markdown" in ab
    assert any("gh pr comment" in step.get("run", "") for step in job["steps"])


def test_every_mnistbench_command_of_the_workflow_parses():
    for args in commands(workflow()["jobs"]["benchmark"]):
        args = [arg.replace("x1", "1") if arg.startswith("x1") else arg for arg in args]
        try:
            group_context = cli.make_context("mnistbench", list(args))
            name, command, rest = cli.resolve_command(group_context, list(args))
            command.make_context(name, rest, parent=group_context)
        except click.UsageError as error:  # pragma: no cover - the failure message
            pytest.fail(f"mnistbench {shlex.join(args)}: {error}")
