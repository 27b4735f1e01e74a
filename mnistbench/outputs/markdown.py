"""Markdown for CI: a comparison or a sweep as a pull-request comment or a step summary.

:func:`compare_markdown` renders a :class:`mnistbench.outputs.digest.ComparisonDigest`
(what ``mnistbench compare --format markdown`` prints) and :func:`sweep_markdown` a
:class:`mnistbench.outputs.digest.SweepDigest` (``mnistbench report --format markdown``).
:func:`append_step_summary` appends the same Markdown to GitHub's step summary, the file
named by ``$GITHUB_STEP_SUMMARY``.

GitHub refuses a comment over :data:`COMMENT_LIMIT` characters and a step summary over
:data:`STEP_SUMMARY_LIMIT` bytes, so each document is cut to a :class:`Limit`: at row and
line boundaries, table rows first (they come in reading order, regressions first), with
a line saying how many were left out and which file holds them all. A cut table keeps
its header, so it stays well-formed.

Text from plugins and runs (configuration ids, architecture names, errors) goes through
:func:`escape`: it shows as text on GitHub and cannot break a table or inject HTML.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mnistbench
from mnistbench import format as fmt
from mnistbench import layout
from mnistbench.columns import metric
from mnistbench.compare import DIFFERENT_WORK, IMPROVED, REGRESSED
from mnistbench.errors import MnistbenchError
from mnistbench.outputs import Output, OutputFormat
from mnistbench.outputs.digest import ABDigest, ComparedRow, ComparisonDigest, SweepDigest
from mnistbench.stats import NOISY_CV

#: The most characters GitHub takes in a pull-request or issue comment.
COMMENT_LIMIT = 65_536
#: The most bytes GitHub takes in one step's summary.
STEP_SUMMARY_LIMIT = 1024 * 1024
#: The environment variable GitHub Actions names the step summary file in.
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

NOISY_MARK = "⚠"
FAIL_MARK = "✗"

# Characters that mean something in Markdown, escaped with a backslash. "<", ">" and
# "&" become entities instead, so that HTML in a message shows as text.
_BACKSLASHED = set("\\`*_[]|~#")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: object) -> str:
    """``text`` as literal Markdown text, safe in a table cell and a list item.

    Line breaks become spaces (a table row is one line), ``&``, ``<`` and ``>`` become
    entities (HTML shows as text), and Markdown's punctuation (``|``, backticks, ``*``,
    ``_``, brackets, ``~``, ``#``, backslash) is backslash-escaped.
    """
    out = []
    for char in " ".join(str(text).splitlines()):
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _BACKSLASHED:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


# --- limits and cutting ---------------------------------------------------------------


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:g} MiB" if size % (1024 * 1024) == 0 else f"{size:,}-byte"


@dataclass(frozen=True)
class Limit:
    """How big a document may be: ``size`` characters, or UTF-8 bytes when ``in_bytes``;
    ``reason`` is named in the line that says what was cut."""

    size: int
    reason: str
    in_bytes: bool = False

    def measure(self, text: str) -> int:
        """The size of ``text`` in this limit's unit."""
        return len(text.encode("utf-8")) if self.in_bytes else len(text)

    def admits(self, text: str) -> bool:
        """Whether ``text`` is within the limit."""
        return self.measure(text) <= self.size


def comment_limit() -> Limit:
    """A pull-request comment's limit: :data:`COMMENT_LIMIT` characters."""
    return Limit(COMMENT_LIMIT, f"GitHub's {COMMENT_LIMIT:,}-character comment limit")


def step_summary_limit(used: int = 0) -> Limit:
    """A step summary's limit, :data:`STEP_SUMMARY_LIMIT` bytes, less ``used`` bytes
    already in the file."""
    return Limit(
        STEP_SUMMARY_LIMIT - used,
        f"GitHub's {_mib(STEP_SUMMARY_LIMIT)} step-summary limit",
        in_bytes=True,
    )


@dataclass(frozen=True)
class _Block:
    """A part of a document: fixed ``head`` lines, then ``items`` that may be cut from
    the end. A table's items are its rows; a list's, its ``- `` lines."""

    head: Sequence[str]
    items: Sequence[str] = ()
    noun: tuple[str, str] = ("row", "rows")
    table: bool = False

    def lines(self, shown: int, limit: Limit, see: str) -> list[str]:
        lines = [*self.head, *self.items[:shown]]
        cut = len(self.items) - shown
        if cut:
            noun = self.noun[0] if cut == 1 else self.noun[1]
            note = f"… {cut} {noun} not shown ({limit.reason}); see {see}"
            # After a table a blank line ends it; in a list the note is an item.
            lines += ["", note] if self.table else [f"- {note}"]
        return lines


def _join(blocks: Sequence[_Block], shown: Sequence[int], limit: Limit, see: str) -> str:
    parts = ["\n".join(b.lines(n, limit, see)) for b, n in zip(blocks, shown, strict=True)]
    return "\n\n".join(parts) + "\n"


def _fit(blocks: Sequence[_Block], limit: Limit, see: str) -> str:
    """The blocks as one document within ``limit``: items cut from the last block first.

    Returns the document with every item cut when even that exceeds the limit; the
    caller checks :meth:`Limit.admits`.
    """
    shown = [len(block.items) for block in blocks]
    if limit.admits(_join(blocks, shown, limit, see)):
        return _join(blocks, shown, limit, see)
    for index in reversed(range(len(blocks))):
        # Fewer items make a shorter document, so the most that fit is a binary search.
        low, high = 0, len(blocks[index].items) - 1
        best = -1
        while low <= high:
            middle = (low + high) // 2
            shown[index] = middle
            if limit.admits(_join(blocks, shown, limit, see)):
                best, low = middle, middle + 1
            else:
                high = middle - 1
        if best >= 0:
            shown[index] = best
            return _join(blocks, shown, limit, see)
        shown[index] = 0
    return _join(blocks, shown, limit, see)


def _table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> _Block:
    """A table block; ``align`` holds ``"l"`` or ``"r"`` per column."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return _Block(
        head=[_row(header), _row(rule)],
        items=[_row(cells) for cells in rows],
        table=True,
    )


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _list(title: str, lines: Sequence[str], noun: tuple[str, str]) -> list[_Block]:
    """A titled list of escaped ``lines``; no block when there are none."""
    if not lines:
        return []
    return [_Block(head=[title], items=[f"- {escape(line)}" for line in lines], noun=noun)]


def _plural(count: int, singular: str, plural: str = "") -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


# --- compare --------------------------------------------------------------------------


def _ratio(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _verdict(row: ComparedRow) -> str:
    """The verdict cell: the verdict, its p-value, the normalized verdict, failing rules."""
    text = escape(row.verdict)
    if row.verdict in (REGRESSED, IMPROVED):
        text = f"**{text}**"
    if not math.isnan(row.p_value):
        holm = (
            ""
            if math.isnan(row.p_holm) or row.p_holm == row.p_value
            else f", Holm-adjusted {fmt.p_value(row.p_holm)}"
        )
        text += f" ({fmt.p_value(row.p_value)}{holm})"
    if row.different_work and row.verdict != DIFFERENT_WORK:  # compared anyway
        text += " (different work)"
    if row.normalized_verdict:
        text += f"; normalized: {escape(row.normalized_verdict)}"
    if row.failed_rules:
        rules = ", ".join(f"`{rule}`" for rule in row.failed_rules)
        text += f"; {FAIL_MARK} fails {rules}"
    return text


def compare_markdown(
    digest: ComparisonDigest, limit: Limit | None = None, see: str = str(layout.COMPARE_CSV)
) -> str:
    """A comparison as Markdown for a pull-request comment, within ``limit``
    (:func:`comment_limit` by default); ``see`` names the file that holds every row.

    A heading; the counts (failing rules, then each verdict); the failing ``--fail``
    rules; the machine-speed lines; the configurations that did different work; then
    a table with one row per configuration and metric: baseline and candidate medians
    (formatted by the metric registry), their ratio with its 95% bootstrap interval, the
    ratio of the normalized figures, and the verdict with its p-value (and its
    Holm-adjusted p-value where a rule gates it), the normalized verdict and the failing
    rules. Rows come regressions first (:func:`mnistbench.outputs.digest.compare_digest`).
    """
    limit = limit or comment_limit()
    counts = [f"{count} {verdict}" for verdict, count in digest.verdicts.items()]
    if digest.failing:
        counts.insert(0, f"**{FAIL_MARK} {_plural(len(digest.failing), 'failing rule')}**")
    header = [
        "config", "metric", "baseline", "candidate", "ratio", "95% interval", "norm. ratio",
        "verdict",
    ]  # fmt: skip
    rows = [
        [
            escape(row.config),
            f"`{row.metric}`",
            metric(row.metric).format(row.baseline),
            metric(row.metric).format(row.candidate),
            _ratio(row.ratio),
            fmt.interval(row.ratio_low, row.ratio_high) or "-",
            _ratio(row.normalized_ratio),
            _verdict(row),
        ]
        for row in digest.rows
    ]
    blocks = [
        _Block(head=["### mnistbench compare", " · ".join(counts) or "nothing compared"]),
        *_list("**Failing `--fail` rules**", digest.failing, ("failing rule", "failing rules")),
        *_list("**Machine speed**", digest.machine, ("machine line", "machine lines")),
        *_list(
            "**Different work**",
            digest.work_differences,
            ("configuration with different work", "configurations with different work"),
        ),
        _table(header, ["l", "l", "r", "r", "r", "r", "r", "l"], rows),
    ]
    return _fit(blocks, limit, see)


# --- report ---------------------------------------------------------------------------


def _percent(fraction: float) -> str:
    percent = fraction * 100
    return f"{percent:.1f}%" if percent < 10 else f"{percent:.0f}%"


def _spread_cell(name: str, median: float, cv: float, noisy: bool | None) -> str:
    text = metric(name).format(median)
    if not math.isnan(median) and not math.isnan(cv):
        text += f" ±{_percent(cv)}"
    if noisy:
        text += f" {NOISY_MARK}"
    return text


def sweep_markdown(
    digest: SweepDigest, limit: Limit | None = None, see: str = str(layout.COMPARISON_CSV)
) -> str:
    """A sweep's headline table as Markdown, within ``limit`` (:func:`comment_limit` by
    default); ``see`` names the file that holds every figure.

    A heading; the counts; one row per configuration with its successful and failed
    runs and, for each headline metric the registry gives a short header
    (:attr:`mnistbench.columns.Column.summary`) and some configuration has a value
    for, the median over successful runs with its coefficient of variation (``±``)
    and :data:`NOISY_MARK` when noisy; then the configurations with failed runs and
    their first error.
    """
    limit = limit or comment_limit()
    shown = [
        name
        for name in digest.metrics
        if metric(name).summary
        and any(not math.isnan(c.metrics[name].median) for c in digest.configs)
    ]
    counts = [
        _plural(len(digest.configs), "configuration"),
        _plural(digest.runs, "successful run"),
        f"{digest.failed} failed",
    ]
    rows = [
        [
            escape(config.config),
            str(config.runs),
            str(config.failed),
            *(
                _spread_cell(name, s.median, s.cv, s.noisy)
                for name, s in ((name, config.metrics[name]) for name in shown)
            ),
        ]
        for config in digest.configs
    ]
    failures = [
        f"{config.config}: {config.failed} failed" + (f": {config.error}" if config.error else "")
        for config in digest.configs
        if config.failed
    ]
    header = ["config", "runs", "failed", *(escape(metric(name).summary) for name in shown)]
    blocks = [
        _Block(head=["### mnistbench report", " · ".join(counts)]),
        _table(header, ["l", *"r" * (len(header) - 1)], rows),
        _Block(
            head=[
                "Medians over each configuration's successful runs; ± the coefficient of "
                f"variation; {NOISY_MARK} noisy (above {_percent(NOISY_CV)})."
            ]
        ),
        *_list("**Failed runs**", failures, ("configuration", "configurations")),
    ]
    return _fit(blocks, limit, see)


# --- ab -------------------------------------------------------------------------------


def ab_markdown(digest: ABDigest, limit: Limit | None = None, see: str = "ab.csv") -> str:
    """An A/B measurement as Markdown for a pull-request comment, within ``limit``: a
    heading naming both sides, the failing ``--fail`` rules, how the pairs ran and why they
    stopped, then one row per configuration and metric (gated ones first) with both sides'
    medians, the ratio head/base, its 95% interval, the paired test's p-value and the
    verdict."""
    limit = limit or comment_limit()
    header = ["config", "metric", "base", "head", "ratio", "95% interval", "p", "pairs", "verdict"]
    rows = []
    for row in digest.rows:
        column = metric(row.metric)
        verdict = escape(row.verdict)
        if row.verdict in (REGRESSED, IMPROVED):
            verdict = f"**{verdict}**"
        if row.failed_rules:
            verdict += f"; {FAIL_MARK} fails " + ", ".join(f"`{r}`" for r in row.failed_rules)
        rows.append(
            [
                escape(row.config),
                f"`{row.metric}`" + (" (gated)" if row.gated else ""),
                column.format(row.base),
                column.format(row.head),
                _ratio(row.ratio),
                fmt.interval(row.low, row.high) or "-",
                "-" if math.isnan(row.p_value) else f"{row.p_value:.2g}",
                str(row.pairs),
                verdict,
            ]
        )
    summary = (
        f"{_plural(digest.pairs, 'pair')} ({digest.failed_pairs} failed), {digest.mode}; "
        f"stopped: {digest.stopped}"
    )
    blocks = [
        _Block(head=[f"### mnistbench ab: {escape(digest.head)} against {escape(digest.base)}"]),
        *_list("**Failing `--fail` rules**", digest.failing, ("failing rule", "failing rules")),
        _Block(head=[escape(summary)]),
        _table(header, ["l", "l", "r", "r", "r", "r", "r", "r", "l"], rows),
        _Block(
            head=[
                "Ratios are head / base: the geometric mean over the pairs, with the 95% "
                f"interval of the {escape(digest.method)}."
            ]
        ),
    ]
    return _fit(blocks, limit, see)


# --- the step summary -----------------------------------------------------------------


def step_summary_path(environ: dict[str, str] | None = None) -> Path | None:
    """The step summary file ``$GITHUB_STEP_SUMMARY`` names; None when unset or empty."""
    value = (os.environ if environ is None else environ).get(STEP_SUMMARY_ENV, "")
    return Path(value) if value else None


def append_step_summary(path: Path, render: Callable[[Limit], str]) -> bool:
    """Append ``render(limit)`` to the step summary ``path``, never overwriting it.

    ``limit`` is the room left under :data:`STEP_SUMMARY_LIMIT` by what the file already
    holds. The Markdown starts after a blank line, so it never joins the last paragraph.

    :returns: False, writing nothing, when not even the cut document fits.
    :raises MnistbenchError: the file cannot be read or appended to.
    """
    path = Path(path)
    try:
        used = path.stat().st_size if path.exists() else 0
        tail = b""
        if used:
            with open(path, "rb") as handle:
                handle.seek(max(used - 2, 0))
                tail = handle.read()
        if not used or tail.endswith(b"\n\n"):
            separator = ""
        else:
            separator = "\n" if tail.endswith(b"\n") else "\n\n"
        limit = step_summary_limit(used + len(separator))
        text = render(limit)
        if not limit.admits(text):
            return False
        with open(path, "a", encoding="utf-8", newline="\n") as handle:
            handle.write(separator + text)
    except OSError as error:
        raise MnistbenchError(
            f"cannot append to the step summary {path} (${STEP_SUMMARY_ENV}): "
            f"{error.strerror or error}"
        ) from None
    return True


# --- the format -----------------------------------------------------------------------


class MarkdownFormat(OutputFormat):
    """Markdown for a pull-request comment, also appended to ``$GITHUB_STEP_SUMMARY``."""

    name = "markdown"
    description = (
        "Markdown for a pull-request comment (also appended to $GITHUB_STEP_SUMMARY when set)"
    )

    def compare(self, digest: ComparisonDigest, out: Output) -> None:
        _print(lambda limit: compare_markdown(digest, limit), out)

    def sweep(self, digest: SweepDigest, out: Output) -> None:
        _print(lambda limit: sweep_markdown(digest, limit), out)

    def ab(self, digest: ABDigest, out: Output) -> None:
        _print(lambda limit: ab_markdown(digest, limit), out)


def _print(render: Callable[[Limit], str], out: Output) -> None:
    """Print ``render``'s Markdown cut to a comment's limit; append it to the step summary."""
    out.write(render(comment_limit()))
    summary = step_summary_path()
    if summary is not None and not append_step_summary(summary, render):
        out.note(f"warning: step summary {summary} is full: nothing appended")


@mnistbench.hookimpl
def mnistbench_register_output_formats(register):
    register(MarkdownFormat())
