"""The documentation: the README is a short tour whose links hold, and the generated
command-line reference (docs/cli.md) is what the click commands say today."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from mnistbench.cli import cli
from mnistbench.cli.reference import cli_reference, slug, walk

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
#: The README is the first thing a user reads: a tour, with the reference under docs/.
README_MAX_LINES = 350

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`]*`")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
#: ``[text](target)`` and ``![alt](target)``, with an optional "title".
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The Markdown without fenced blocks and comments: what a reader sees as text."""
    return _COMMENT.sub("", _FENCE.sub("", text))


def links(path: Path) -> list[str]:
    """Every link and image target of a Markdown page, outside code."""
    return _LINK.findall(_CODE_SPAN.sub(lambda m: " " * len(m.group()), _prose(path.read_text())))


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the page's headings (a repeated one gets ``-1``, ``-2``)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in _HEADING.findall(_prose(path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- docs/cli.md ------------------------------------------------------------------------


def test_docs_cli_md_is_generated_from_the_commands():
    # Regenerate with: python -m mnistbench.cli.reference > docs/cli.md (or make docs)
    path = DOCS / "cli.md"
    assert path.is_file(), "docs/cli.md is missing: python -m mnistbench.cli.reference > it"
    assert path.read_text() == cli_reference()


def test_the_module_prints_the_reference():
    printed = subprocess.run(
        [sys.executable, "-m", "mnistbench.cli.reference"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert printed == cli_reference()


def test_the_reference_has_a_section_for_every_command_and_subcommand():
    headings = re.findall(r"^## (.+)$", cli_reference(), re.MULTILINE)
    assert headings == [context.command_path for context, _ in walk(cli)]
    assert {"mnistbench run", "mnistbench compare", "mnistbench history"} <= set(headings)
    assert {"mnistbench db import", "mnistbench data fetch", "mnistbench data info"} <= set(
        headings
    )


def test_every_option_of_every_command_is_in_its_section():
    reference = cli_reference()
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", reference, re.M | re.S))
    for context, command in walk(cli):
        for param in command.params:
            if isinstance(param, click.Option):
                for name in param.opts:
                    assert f"`{name}`" in sections[context.command_path], (
                        f"{context.command_path} {name}"
                    )


@click.group()
def _toy() -> None:
    """A toy tool.

    Its second paragraph.
    """


@_toy.command()
@click.argument("directory")
@click.option(
    "--mode",
    type=click.Choice(["fast", "slow"]),
    default="fast",
    show_default=True,
    help="How | fast.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N [default: all].")
@click.option("--share", type=click.FloatRange(0, 1, min_open=True), default=None, help="Part.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag. Repeatable.")
@click.option(
    "--db",
    "-d",
    type=click.Path(dir_okay=False),
    default="a.sqlite",
    envvar="TOY_DB",
    help="The <db> file.",
)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Where.")
@click.option("--quiet", is_flag=True, help="Say less.")
@click.option("--secret", hidden=True, help="Never shown.")
def go(directory, mode, limit, share, tags, db, out, quiet, secret) -> None:
    """Go to DIRECTORY."""


def test_an_options_table_shows_kind_default_environment_and_help():
    reference = cli_reference(_toy, name="toy")
    section = reference[reference.index("## toy go") :]
    assert section.splitlines() == [
        "## toy go",
        "",
        "```text",
        "toy go [OPTIONS] DIRECTORY",
        "```",
        "",
        "Go to DIRECTORY.",
        "",
        "| option | takes | default | environment | meaning |",
        "| --- | --- | --- | --- | --- |",
        "| `--mode` | `fast` \\| `slow` | `fast` |  | How \\| fast. |",
        "| `--limit` | integer ≥ 1 | all |  | At most N. |",
        "| `--share` | number in (0, 1] |  |  | Part. |",
        "| `--tag` | `TAG`, repeatable |  |  | A tag. Repeatable. |",
        "| `--db`, `-d` | file | `a.sqlite` | `$TOY_DB` | The &lt;db> file. |",
        "| `--out` | directory |  |  | Where. |",
        "| `--quiet` | flag |  |  | Say less. |",
    ]


def test_a_group_lists_its_subcommands_and_the_contents_link_every_command():
    reference = cli_reference(_toy, name="toy")
    assert "A toy tool.\n\nIts second paragraph.\n\nSubcommands: [`toy go`](#toy-go).\n" in (
        reference
    )
    assert "| [`toy`](#toy) | A toy tool. |" in reference
    assert "| [`toy go`](#toy-go) | Go to DIRECTORY. |" in reference


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("mnistbench db import", "mnistbench-db-import"),
        ("report.html", "reporthtml"),
        ("Drift: how well the probe works", "drift-how-well-the-probe-works"),
        ("Gates: `--fail`", "gates---fail"),
        ("Writing a plugin", "writing-a-plugin"),
        ("The columns of runs.csv", "the-columns-of-runscsv"),
    ],
)
def test_slug_is_the_anchor_github_gives_a_heading(heading, anchor):
    assert slug(heading) == anchor


# --- links ------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_relative_link_points_to_an_existing_file(page):
    broken = [
        target
        for target in links(page)
        if _relative(target)
        and target.split("#")[0]
        and not (page.parent / target.split("#")[0]).exists()
    ]
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_anchor_points_to_an_existing_heading(page):
    broken = []
    for target in links(page):
        if not _relative(target) or "#" not in target:
            continue
        file, anchor = target.split("#", 1)
        linked = (page.parent / file) if file else page
        if linked.suffix == ".md" and linked.is_file() and anchor not in anchors(linked):
            broken.append(target)
    assert broken == []


def test_every_docs_page_is_reachable_from_the_readme():
    reached, queue = {README.resolve()}, [README]
    while queue:
        page = queue.pop()
        for target in links(page):
            file = target.split("#")[0]
            if not _relative(target) or not file.endswith(".md"):
                continue
            linked = (page.parent / file).resolve()
            if linked.is_file() and linked not in reached:
                reached.add(linked)
                queue.append(linked)
    assert sorted(p.name for p in DOCS.glob("*.md") if p.resolve() not in reached) == []


def test_links_and_anchors_are_read_outside_code(tmp_path):
    text = (
        "See [the docs](docs/a.md#part) and ![a figure](b.png).\n"
        "`[not](a-link.md)`\n"
        "```console\n# not a heading\n[nor](this.md)\n```\n"
        "## A heading: here\n"
        "## A heading: here\n"
    )
    page = tmp_path / "page.md"
    page.write_text(text)
    assert links(page) == ["docs/a.md#part", "b.png"]
    assert anchors(page) == {"a-heading-here", "a-heading-here-1"}


# --- the README ----------------------------------------------------------------------------


def test_the_readme_stays_a_short_tour():
    assert len(README.read_text().splitlines()) < README_MAX_LINES


def test_the_readme_tours_in_order():
    headings = re.findall(r"^## (.+)$", _prose(README.read_text()), re.MULTILINE)
    assert headings == [
        "Quickstart",
        "What you get",
        "Comparing two sweeps and gating",
        "Catching a 10% regression: mnistbench ab",
        "Tracking history across commits",
        "Writing a plugin",
        "Tracking regressions with pytest-benchmark",
        "Development",
    ]


def test_the_readme_links_the_generated_cli_reference():
    assert "](docs/cli.md)" in README.read_text()
