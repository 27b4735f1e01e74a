"""The output formats: the registry of ``--format``, the terminal's tables (``text``) and JSON
for programs (``json``). Markdown is tests/test_markdown.py's.

The comparisons are the ones of tests/test_markdown.py (``synthetic_runs.write_pair``):
dnn 20 % slower on the same machine, cnn 20 % faster, five repeats a side.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from rich.console import Console
from synthetic_runs import (
    FAST,
    SLOW,
    as_read,
    invoke,
    probed,
    repeat_rows,
    repeats,
    sweep_rows,
    write_pair,
)

import mnistbench
from mnistbench import record
from mnistbench.builtins import load_plugins
from mnistbench.compare import compare_runs
from mnistbench.errors import ConfigError, PluginError
from mnistbench.gates import FailRule
from mnistbench.outputs import Output, OutputFormat
from mnistbench.outputs.digest import compare_digest, sweep_digest
from mnistbench.outputs.json_output import JsonFormat, compare_json, sweep_json
from mnistbench.outputs.markdown import compare_markdown
from mnistbench.outputs.text import TextFormat
from mnistbench.speeds import machine_comparison
from mnistbench.summary import comparison_table


@pytest.fixture
def pair(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    # The tests run in GitHub Actions too: no test appends to the real step summary.
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return write_pair(tmp_path)


def rendered(render, digest) -> tuple[str, str]:
    """What ``render(digest, output)`` writes: (stdout, stderr); the terminal 120 wide."""
    stdout, stderr = io.StringIO(), io.StringIO()
    console = Console(file=stdout, width=120, color_system=None)
    render(digest, Output(stdout=stdout, stderr=stderr, console=console))
    return stdout.getvalue(), stderr.getvalue()


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def digest_of(base: Path, cand: Path, *rules: str):
    baseline, candidate = (record.frame(record.read(side)) for side in (base, cand))
    table = compare_runs(baseline, candidate, [FailRule.parse(rule) for rule in rules])
    return compare_digest(table, machine_comparison(baseline, candidate))


# --- the registry -----------------------------------------------------------------------


class Csv(OutputFormat):
    name = "csv"
    description = "one line per configuration"

    def sweep(self, digest, out):
        out.write("".join(f"{c.config},{c.runs}\n" for c in digest.configs))


class CsvPlugin:
    @mnistbench.hookimpl
    def mnistbench_register_output_formats(self, register):
        register(Csv())


class JsonAgain:
    @mnistbench.hookimpl
    def mnistbench_register_output_formats(self, register):
        register(JsonFormat())


def test_mnistbench_registers_text_markdown_and_json():
    plugins = load_plugins(entry_points=False)
    assert sorted(plugins.formats) == ["json", "markdown", "text"]
    assert isinstance(plugins.output_format("text"), TextFormat)
    assert {name: r.plugin for name, r in plugins.formats.items()} == {
        "text": "mnistbench.outputs.text",
        "markdown": "mnistbench.outputs.markdown",
        "json": "mnistbench.outputs.json_output",
    }
    with pytest.raises(ConfigError) as error:
        plugins.output_format("html")
    assert str(error.value) == "unknown output format 'html' (known: json, markdown, text)"


def test_a_plugins_format_renders_the_same_digest(tmp_path):
    plugins = load_plugins(entry_points=False, extra=[CsvPlugin()])
    assert sorted(plugins.formats) == ["csv", "json", "markdown", "text"]
    digest = sweep_digest(comparison_table(as_read(sweep_rows(), tmp_path)))
    stdout, _ = rendered(plugins.output_format("csv").sweep, digest)
    assert stdout == "dnn,2\nrnn,1\ncnn,1\nlstm,0\n"
    # What it does not render is one line naming the format.
    with pytest.raises(NotImplementedError, match="--format csv does not render comparisons"):
        plugins.output_format("csv").compare(None, Output())


def test_a_format_registered_twice_is_an_error_naming_both_plugins():
    with pytest.raises(PluginError, match="output format 'json' is registered twice: by plugin"):
        load_plugins(entry_points=False, extra=[JsonAgain()])


def test_an_unknown_format_is_a_usage_error_listing_the_registered_ones(pair):
    base, cand = pair
    result = invoke("compare", str(base), str(cand), "--format", "html")
    assert result.exit_code == 2
    assert "'html' is not one of 'json', 'markdown', 'text'" in result.stderr


# --- text -------------------------------------------------------------------------------


def test_compare_text_is_the_default_and_a_table(pair):
    base, cand = pair
    default = invoke("compare", str(base), str(cand))
    text = invoke("compare", str(base), str(cand), "--format", "text")
    assert default.exit_code == text.exit_code == 0
    assert default.stdout == text.stdout
    assert "mnistbench compare" in default.stdout and "|" not in default.stdout


def test_text_compare_shows_each_row_with_units_regressions_first_and_the_failing_rule(pair):
    stdout, stderr = rendered(TextFormat().compare, digest_of(*pair, "fit_seconds:10%"))
    assert stderr == ""
    shown = lines(stdout)
    assert shown[:2] == [
        "mnistbench compare",
        "config   metric          baseline   candidate   ratio      95% CI            p   verdict"
        "               normalized",
    ]
    # The failing rule wraps under its verdict, the Holm-adjusted p-value under the raw one
    # (the rule's two tests, dnn's and cnn's fit_seconds, adjusted together), in the row.
    assert [line.split() for line in shown[3:]] == [
        ["dnn", "fit_seconds", "10.0", "s", "12.0", "s", "1.200", "1.17–1.23", "0.008",
         "regressed", "✗", "1.200", "regressed"],
        ["Holm", "0.016", "fit_seconds:10%"],
        ["cnn", "fit_seconds", "12.0", "s", "10.0", "s", "0.833", "0.81–0.86", "0.008",
         "improved", "0.833", "improved"],
        ["Holm", "0.016"],
        ["dnn", "test_accuracy", "0.9720", "0.9720", "1.000", "1.00–1.00", "1.000", "no",
         "significant", "-"],
        ["change"],
        ["cnn", "test_accuracy", "0.9720", "0.9720", "1.000", "1.00–1.00", "1.000", "no",
         "significant", "-"],
        ["change"],
    ]  # fmt: skip


def test_text_sweep_shows_the_median_and_range_over_repeats(tmp_path):
    runs = as_read(
        repeat_rows(fit_seconds=(9.5, 10.0, 10.3), accuracies=(0.89, 0.9, 0.91)), tmp_path
    )
    stdout, _ = rendered(TextFormat().sweep, sweep_digest(comparison_table(runs)))
    assert lines(stdout) == [
        "medians over repeats",
        "config   runs   fit s (min-max)   acc (min-max)            noisy",
        "────────────────────────────────────────────────────────────────",
        "dnn      3      10.0 (9.5-10.3)   0.9000 (0.8900-0.9100)   -",
    ]


def test_text_sweep_names_noisy_metrics_and_explains_the_flag(tmp_path):
    runs = as_read(repeat_rows(), tmp_path)  # fit times 30, 33 and 39 s: cv 0.13
    stdout, _ = rendered(TextFormat().sweep, sweep_digest(comparison_table(runs)))
    shown = lines(stdout)
    assert shown[3] == (
        "dnn      3      33.0 (30.0-39.0)   0.9750 (0.9700-0.9800)   "
        "fit_seconds seconds_per_epoch train_samples_per_second"
    )
    assert shown[-1] == (
        "noisy: coefficient of variation above 10% over the repeats; "
        "see comparison.csv for every metric's spread."
    )


def test_only_repeated_configurations_get_medians(tmp_path):
    runs = as_read([*repeat_rows(), *sweep_rows()[2:]], tmp_path)
    digest = sweep_digest(comparison_table(runs), repeated_only=True)
    assert [config.config for config in digest.configs] == ["dnn"]
    single = sweep_digest(comparison_table(as_read(sweep_rows()[2:4], tmp_path / "single")))
    assert [c.runs for c in single.configs] == [1, 1]
    assert sweep_digest(comparison_table(runs.iloc[3:]), repeated_only=True).configs == ()


# --- json -------------------------------------------------------------------------------


def html(text: str) -> str:
    """The Markdown as HTML, tables parsed as GitHub does."""
    return MarkdownIt("commonmark").enable("table").render(text)


def table_cells(text: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html(text), flags=re.S)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S) for row in rows]


def test_compare_json_holds_the_same_rows_as_the_markdown(pair):
    digest = digest_of(*pair, "fit_seconds_normalized:15%")
    document = json.loads(compare_json(digest))
    assert document["verdicts"] == {
        "regressed": 1, "improved": 1, "no significant change": 2
    }  # fmt: skip
    assert document["failing"] == [
        "dnn fit_seconds_normalized: 500.0000 → 600.0000 (+20.0%, p=0.0079, "
        "Holm-adjusted p=0.016) exceeds 15%"
    ]
    assert document["machine"][0] == (
        "both machines ran at the same speed by the probe (×1.00, probe 0.02 s vs 0.02 s)"
    )
    rows = [(r["config"], r["metric"], r["verdict"]) for r in document["rows"]]
    markdown_rows = [
        (cells[0], re.sub(r"</?code>", "", cells[1]), re.sub(r"</?strong>", "", cells[7]))
        for cells in table_cells(compare_markdown(digest))[1:]
    ]
    assert [(c, m) for c, m, _ in rows] == [(c, m) for c, m, _ in markdown_rows]
    assert all(md.startswith(v) for (_, _, v), (_, _, md) in zip(rows, markdown_rows, strict=True))
    first = document["rows"][0]
    assert (first["baseline"], first["candidate"], first["ratio"]) == (10.0, 12.0, 1.2)
    assert first["failed_rules"] == ["fit_seconds_normalized:15%"]
    assert first["normalized_ratio"] == pytest.approx(1.2)
    # A value a row lacks is null, never NaN (which is no JSON).
    test_accuracy = document["rows"][-1]
    assert (test_accuracy["metric"], test_accuracy["normalized_ratio"]) == ("test_accuracy", None)


def test_compare_json_from_the_command_is_the_whole_stdout_and_matches_compare_csv(pair):
    base, cand = pair
    result = invoke(
        "compare", str(base), str(cand), "--fail", "fit_seconds_normalized:15%", "--format", "json"
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)  # nothing else on stdout
    assert document == json.loads(compare_json(digest_of(base, cand, "fit_seconds_normalized:15%")))
    assert "regression: dnn fit_seconds_normalized: 500.0000 → 600.0000" in result.stderr
    # The same rows as compare.csv, reordered.
    rows = [(r["config"], r["metric"], r["verdict"]) for r in document["rows"]]
    csv = pd.read_csv(cand / "compare.csv")
    assert sorted(zip(csv["config_id"], csv["metric"], csv["verdict"], strict=True)) == sorted(rows)


def test_sweep_json_holds_each_configuration_with_its_spread(tmp_path):
    runs = as_read([*repeat_rows(), *sweep_rows()[2:]], tmp_path)
    stdout, _ = rendered(JsonFormat().sweep, sweep_digest(comparison_table(runs)))
    document = json.loads(stdout)
    assert (document["configurations"], document["runs"], document["failed"]) == (4, 5, 1)
    assert [c["config"] for c in document["configs"]] == ["dnn", "rnn", "cnn", "lstm"]
    dnn = document["configs"][0]
    assert dnn["noisy"] == ["fit_seconds", "seconds_per_epoch", "train_samples_per_second"]
    assert dnn["metrics"]["fit_seconds"]["median"] == 33.0
    assert (dnn["metrics"]["fit_seconds"]["min"], dnn["metrics"]["fit_seconds"]["max"]) == (
        30.0,
        39.0,
    )
    assert dnn["metrics"]["fit_seconds"]["noisy"] is True
    lstm = document["configs"][3]
    assert (lstm["status"], lstm["error"]) == (
        "failed",
        "ValueError: expected ndim=3, found ndim=2",
    )
    assert lstm["metrics"]["fit_seconds"]["median"] is None
    assert not math.isnan(document["configs"][1]["metrics"]["test_accuracy"]["median"])
    assert sweep_json(sweep_digest(comparison_table(runs))) == stdout


def test_json_of_a_comparison_with_nothing_in_common_is_still_json():
    baseline = record.frame(probed("dnn", FAST))
    candidate = record.frame(repeats("cnn", fit_seconds=SLOW))
    digest = compare_digest(
        compare_runs(baseline, candidate), machine_comparison(baseline, candidate)
    )
    document = json.loads(compare_json(digest), parse_constant=pytest.fail)
    assert document["verdicts"] == {"only in baseline": 1, "only in candidate": 1}
    assert [row["candidate"] for row in document["rows"]] == [None, 11.8 + 0.2]
