"""Markdown for CI: ``compare`` and ``report`` with ``--format markdown``, and the step summary.

The comparisons are written by hand, like tests/test_compare.py's: five distinct values
per side that do not overlap give the smallest exact two-sided Mann-Whitney U p-value
for 5 vs 5 repeats, 2 / 252 (shown as p=0.0079). Rendered Markdown is parsed with
markdown-it-py (GitHub-flavoured tables on, raw HTML passed through as GitHub's parser
would before sanitizing), so a test sees the table a reader would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from synthetic_runs import (
    ACCURACY,
    FAST,
    SLOW,
    as_read,
    invoke,
    probed,
    repeat_rows,
    repeats,
    run_row,
    sweep_rows,
    write_dir,
    write_pair,
)

import mnistbench.outputs.markdown as markdown
from mnistbench import record
from mnistbench.compare import compare_runs
from mnistbench.gates import FailRule
from mnistbench.outputs.digest import compare_digest, sweep_digest
from mnistbench.outputs.markdown import (
    Limit,
    append_step_summary,
    compare_markdown,
    escape,
    sweep_markdown,
)
from mnistbench.record import Run
from mnistbench.speeds import machine_comparison
from mnistbench.summary import comparison_table

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def no_step_summary(monkeypatch) -> None:
    """The tests run in GitHub Actions too: no test appends to the real step summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """dnn 20 % slower on the same machine, cnn 20 % faster; accuracies unchanged."""
    return write_pair(tmp_path)


def html(text: str) -> str:
    """The Markdown as HTML, tables parsed as GitHub does."""
    return MarkdownIt("commonmark").enable("table").render(text)


def table_cells(text: str) -> list[list[str]]:
    """The cells of the Markdown's one table, header row first, as rendered HTML."""
    rendered = html(text)
    assert rendered.count("<table>") == 1, rendered
    rows = re.findall(r"<tr>(.*?)</tr>", rendered, flags=re.S)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S) for row in rows]


# --- compare --format markdown ----------------------------------------------------------

EXPECTED_COMPARE = """\
### mnistbench compare
**✗ 1 failing rule** · 1 regressed · 1 improved · 2 no significant change

**Failing `--fail` rules**
- dnn fit\\_seconds\\_normalized: 500.0000 → 600.0000 (+20.0%, p=0.0079, Holm-adjusted p=0.016) exceeds 15%

**Machine speed**
- both machines ran at the same speed by the probe (×1.00, probe 0.02 s vs 0.02 s)
- dnn: fit time ×1.20 (regressed); normalized ×1.20: regressed
- cnn: fit time ×0.83 (improved); normalized ×0.83: improved

| config | metric | baseline | candidate | ratio | 95% interval | norm. ratio | verdict |
| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |
| dnn | `fit_seconds` | 10.0 s | 12.0 s | 1.200 | [×1.17, ×1.23] | 1.200 | **regressed** (p=0.0079); normalized: regressed; ✗ fails `fit_seconds_normalized:15%` |
| cnn | `fit_seconds` | 12.0 s | 10.0 s | 0.833 | [×0.81, ×0.86] | 0.833 | **improved** (p=0.0079); normalized: improved |
| dnn | `test_accuracy` | 0.9720 | 0.9720 | 1.000 | [×1.00, ×1.00] | - | no significant change (p=1) |
| cnn | `test_accuracy` | 0.9720 | 0.9720 | 1.000 | [×1.00, ×1.00] | - | no significant change (p=1) |
"""  # noqa: E501


def test_compare_markdown_is_the_exact_table_regressions_first(pair, no_step_summary) -> None:
    base, cand = pair
    result = invoke(
        "compare", str(base), str(cand), "--format", "markdown",
        "--fail", "fit_seconds_normalized:15%",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.stdout == EXPECTED_COMPARE
    assert "regression: dnn fit_seconds_normalized: 500.0000 → 600.0000" in result.stderr
    assert (cand / "compare.csv").is_file()


def test_compare_markdown_without_a_failing_rule_has_no_failing_list() -> None:
    baseline = record.frame(
        probed("dnn", FAST, test_accuracy=ACCURACY) + probed("cnn", SLOW, test_accuracy=ACCURACY)
    )
    candidate = record.frame(
        probed("dnn", SLOW, test_accuracy=ACCURACY) + probed("cnn", FAST, test_accuracy=ACCURACY)
    )
    digest = compare_digest(
        compare_runs(baseline, candidate), machine_comparison(baseline, candidate)
    )
    text = compare_markdown(digest)
    assert text.splitlines()[1] == "1 regressed · 1 improved · 2 no significant change"
    assert "Failing" not in text
    # Without a rule, the same document as the command's, less the failing rule.
    assert text == EXPECTED_COMPARE.replace("**✗ 1 failing rule** · ", "").replace(
        "**Failing `--fail` rules**\n- dnn fit\\_seconds\\_normalized: 500.0000 → 600.0000 "
        "(+20.0%, p=0.0079, Holm-adjusted p=0.016) exceeds 15%\n\n",
        "",
    ).replace("; ✗ fails `fit_seconds_normalized:15%`", "")


def test_rows_come_failing_first_then_regressions_then_changes_then_the_rest() -> None:
    much_slower = [f * 1.5 for f in FAST]
    baseline = record.frame(
        [
            *repeats("keep", fit_seconds=FAST),
            *repeats("gone", fit_seconds=FAST),
            *repeats("slow", fit_seconds=FAST),
            *repeats("fast", fit_seconds=SLOW),
            *repeats("gated", fit_seconds=FAST),
        ]
    )
    candidate = record.frame(
        [
            *repeats("keep", fit_seconds=FAST),
            *repeats("slow", fit_seconds=SLOW),
            *repeats("fast", fit_seconds=FAST),
            *repeats("gated", fit_seconds=much_slower),
            *repeats("new", fit_seconds=FAST),
        ]
    )
    table = compare_runs(baseline, candidate, [FailRule.parse("fit_seconds:25%")])
    digest = compare_digest(table, machine_comparison(baseline, candidate))
    assert [(row.config, row.group) for row in digest.rows] == [
        ("gated", "failing"),
        ("slow", "regression"),
        ("gone", "change"),  # not run by the candidate: not gated
        ("fast", "change"),
        ("new", "change"),
        ("keep", "unchanged"),
    ]
    assert digest.verdicts == {
        "regressed": 2,
        "improved": 1,
        "only in baseline": 1,
        "only in candidate": 1,
        "no significant change": 1,
    }
    assert digest.failing == (
        "gated fit_seconds: 10.0 s → 15.0 s (+50.0%, p=0.0079, Holm-adjusted p=0.032) exceeds 25%",
    )


def test_a_missing_directory_is_one_line_and_exit_2_in_markdown(tmp_path, no_step_summary) -> None:
    result = invoke("compare", str(tmp_path / "no"), str(tmp_path), "--format", "markdown")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")


# --- the step summary -------------------------------------------------------------------


def test_markdown_is_appended_to_the_step_summary_after_what_it_held(pair, tmp_path) -> None:
    base, cand = pair
    summary = tmp_path / "summary.md"
    summary.write_text("## earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    first = invoke("compare", str(base), str(cand), "--format", "markdown", env=env)
    assert first.exit_code == 0, first.output
    assert summary.read_text() == "## earlier step\n\n" + first.stdout
    second = invoke("compare", str(base), str(cand), "--format", "markdown", env=env)
    assert summary.read_text() == "## earlier step\n\n" + first.stdout + "\n" + second.stdout


def test_a_file_without_a_final_newline_gets_a_blank_line_first(tmp_path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier")
    assert append_step_summary(summary, lambda limit: "| a |\n")
    assert summary.read_text() == "earlier\n\n| a |\n"


def test_text_and_json_leave_the_step_summary_alone(pair, tmp_path) -> None:
    base, cand = pair
    summary = tmp_path / "summary.md"
    summary.write_text("earlier\n")
    for output_format in ("text", "json"):
        result = invoke(
            "compare", str(base), str(cand), "--format", output_format,
            env={"GITHUB_STEP_SUMMARY": str(summary)},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    assert summary.read_text() == "earlier\n"


def test_an_unwritable_step_summary_is_one_line_and_exit_2(pair, tmp_path) -> None:
    base, cand = pair
    result = invoke(
        "compare", str(base), str(cand), "--format", "markdown",
        env={"GITHUB_STEP_SUMMARY": str(tmp_path / "missing-dir" / "summary.md")},
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(
        f"Error: cannot append to the step summary {tmp_path / 'missing-dir' / 'summary.md'} "
        "($GITHUB_STEP_SUMMARY): No such file or directory"
    )


# --- escaping ---------------------------------------------------------------------------


def test_escape_makes_markdown_and_html_literal() -> None:
    assert escape("a|b\nc <b>&</b> `x` *y* [z]") == (
        "a\\|b c &lt;b&gt;&amp;&lt;/b&gt; \\`x\\` \\*y\\* \\[z\\]"
    )


def test_a_config_id_with_script_and_a_pipe_shows_as_text_in_compare(
    tmp_path, no_step_summary
) -> None:
    nasty = f"dnn|{SCRIPT}\nnext"
    base = write_dir(tmp_path / "base", repeats(nasty, fit_seconds=FAST))
    cand = write_dir(tmp_path / "cand", repeats(nasty, fit_seconds=SLOW))
    result = invoke("compare", str(base), str(cand), "--format", "markdown")
    assert result.exit_code == 0, result.output
    rendered = html(result.stdout)
    assert "<script>" not in rendered
    cells = table_cells(result.stdout)
    assert {len(row) for row in cells} == {8}
    assert cells[1][:3] == [
        "dnn|&lt;script&gt;alert(1)&lt;/script&gt; next",
        "<code>fit_seconds</code>",
        "10.0 s",
    ]


def test_an_error_with_script_and_a_pipe_shows_as_text_in_report(tmp_path, no_step_summary) -> None:
    rows = [
        run_row("dnn"),
        run_row("cnn", error=f"ValueError: a|b {SCRIPT}"),
        run_row(f"x|{SCRIPT}", error="x"),
    ]
    as_read(rows, tmp_path)
    result = invoke("report", str(tmp_path), "--format", "markdown")
    assert result.exit_code == 0, result.output
    rendered = html(result.stdout)
    assert "<script>" not in rendered
    cells = table_cells(result.stdout)
    assert {len(row) for row in cells} == {8}
    assert [row[0] for row in cells[1:]] == [
        "dnn", "cnn", "x|&lt;script&gt;alert(1)&lt;/script&gt;"
    ]  # fmt: skip
    assert (
        "<li>cnn: 1 failed: ValueError: a|b &lt;script&gt;alert(1)&lt;/script&gt;</li>" in rendered
    )


# --- GitHub's limits --------------------------------------------------------------------


def many_runs(count: int) -> tuple[list[Run], list[Run]]:
    """``count`` configurations, each 20 % slower in the candidate."""
    base = [run for i in range(count) for run in repeats(f"dnn-{i:03d}", fit_seconds=FAST)]
    cand = [run for i in range(count) for run in repeats(f"dnn-{i:03d}", fit_seconds=SLOW)]
    return base, cand


def many_configs(count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`many_runs` as the two sides' typed tables."""
    base, cand = many_runs(count)
    return record.frame(base), record.frame(cand)


def test_markdown_is_cut_at_row_boundaries_within_the_limit() -> None:
    baseline, candidate = many_configs(40)
    digest = compare_digest(
        compare_runs(baseline, candidate), machine_comparison(baseline, candidate)
    )
    full = compare_markdown(digest, Limit(10**6, "no limit"))
    cut = compare_markdown(digest, Limit(2000, "a 2,000-character limit"))
    assert len(full) > 2000 >= len(cut)
    full_rows = [line for line in full.splitlines() if line.startswith("| dnn-")]
    cut_rows = [line for line in cut.splitlines() if line.startswith("| dnn-")]
    assert len(full_rows) == 40
    assert cut_rows == full_rows[: len(cut_rows)]
    # The next row would not have fitted.
    assert len(cut) + len(full_rows[len(cut_rows)]) + 1 > 2000
    assert cut.endswith(
        f"\n\n… {40 - len(cut_rows)} rows not shown (a 2,000-character limit); see compare.csv\n"
    )
    assert {len(row) for row in table_cells(cut)} == {8}
    assert len(table_cells(cut)) == 1 + len(cut_rows)


def test_compare_stdout_is_cut_to_the_comment_limit(monkeypatch, no_step_summary, tmp_path):
    monkeypatch.setattr(markdown, "COMMENT_LIMIT", 3000)
    baseline, candidate = many_runs(60)
    base, cand = write_dir(tmp_path / "base", baseline), write_dir(tmp_path / "cand", candidate)
    result = invoke("compare", str(base), str(cand), "--format", "markdown")
    assert result.exit_code == 0, result.output
    shown = sum(line.startswith("| dnn-") for line in result.stdout.splitlines())
    assert 0 < shown < 60
    assert len(result.stdout) <= 3000
    assert result.stdout.endswith(
        f"… {60 - shown} rows not shown (GitHub's 3,000-character comment limit); see compare.csv\n"
    )


def test_the_step_summary_is_cut_to_the_room_left_in_bytes(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(markdown, "STEP_SUMMARY_LIMIT", 4000)
    baseline, candidate = many_configs(60)
    digest = compare_digest(
        compare_runs(baseline, candidate), machine_comparison(baseline, candidate)
    )
    summary = tmp_path / "summary.md"
    earlier = "é" * 500 + "\n"  # 1,001 bytes in 501 characters
    summary.write_text(earlier, encoding="utf-8")
    assert append_step_summary(summary, lambda limit: compare_markdown(digest, limit))
    written = summary.read_bytes()
    assert 3900 < len(written) <= 4000
    text = written.decode("utf-8")
    assert text.startswith(earlier + "\n### mnistbench compare\n")
    assert re.search(
        r"\n\n… \d+ rows not shown \(GitHub's 4,000-byte step-summary limit\); "
        r"see compare.csv\n$",
        text,
    )


def test_a_full_step_summary_gets_nothing_and_a_warning(monkeypatch, pair, tmp_path) -> None:
    monkeypatch.setattr(markdown, "STEP_SUMMARY_LIMIT", 100)
    base, cand = pair
    summary = tmp_path / "summary.md"
    summary.write_text("x" * 90 + "\n")
    result = invoke(
        "compare", str(base), str(cand), "--format", "markdown",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert summary.read_text() == "x" * 90 + "\n"
    assert f"warning: step summary {summary} is full: nothing appended" in result.stderr


def test_the_real_limits_are_githubs() -> None:
    assert markdown.COMMENT_LIMIT == 65_536
    assert markdown.STEP_SUMMARY_LIMIT == 1_048_576
    assert markdown.comment_limit().reason == "GitHub's 65,536-character comment limit"
    assert markdown.step_summary_limit().reason == "GitHub's 1 MiB step-summary limit"


# --- report --format markdown ------------------------------------------------------

EXPECTED_REPORT = """\
### mnistbench report
4 configurations · 5 successful runs · 1 failed

| config | runs | failed | fit s | acc | infer/s | p50 ms | peak MB |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| dnn | 3 | 0 | 33.0 s ±13% ⚠ | 0.9750 ±0.5% | 20,000 samples/s ±0.0% | 1.5 ms ±0.0% | 900.0 MB ±0.0% |
| rnn | 1 | 0 | 196 s | 0.9800 | 9,000 samples/s | 1.5 ms | 900.0 MB |
| cnn | 1 | 0 | 64.0 s | 0.9820 | 21,000 samples/s | 1.5 ms | 900.0 MB |
| lstm | 0 | 1 | - | - | - | - | - |

Medians over each configuration's successful runs; ± the coefficient of variation; ⚠ noisy (above 10%).

**Failed runs**
- lstm: 1 failed: ValueError: expected ndim=3, found ndim=2
"""  # noqa: E501


def report_dir(tmp_path: Path) -> Path:
    """A synthetic sweep: three noisy dnn repeats, rnn, cnn and a failed lstm."""
    tmp_path.mkdir(exist_ok=True)
    as_read([*repeat_rows(), *sweep_rows()[2:]], tmp_path)
    return tmp_path


def test_sweep_markdown_is_the_headline_table(tmp_path) -> None:
    runs = as_read([*repeat_rows(), *sweep_rows()[2:]], tmp_path)
    assert sweep_markdown(sweep_digest(comparison_table(runs))) == EXPECTED_REPORT


def test_report_markdown_prints_the_headline_table_and_appends_it_to_the_step_summary(
    tmp_path,
) -> None:
    summary = tmp_path / "summary.md"
    sweep = report_dir(tmp_path / "sweep")
    result = invoke(
        "report", str(sweep), "--format", "markdown", env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == EXPECTED_REPORT
    assert summary.read_text() == EXPECTED_REPORT
    # The files are rewritten as with text, and named on stderr.
    assert (sweep / "comparison.csv").is_file()
    assert f"wrote {sweep / 'comparison.csv'}" in result.stderr
