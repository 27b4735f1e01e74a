"""report.html (mnistbench.pages.report): one self-contained page per sweep, from the shared
real sweep, a hostile plugin's sweep and synthetic runs; on disk and in a real browser,
offline, with the figures' values on hover."""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shlex
import shutil
from pathlib import Path

import pytest
from browser import distinct_colors, mark_selector
from helpers import CLI_SWEEP_ARGS, QUICK, Tiny
from html_page import Page as _Page
from synthetic_runs import as_read, invoke, repeat_rows, run_row, write_samples

import mnistbench
from mnistbench import layout, record
from mnistbench.builtins import load_plugins
from mnistbench.columns import HEADLINE, in_view, metric
from mnistbench.environment import cpu_model, read_environment, recorded_variables
from mnistbench.figures import comparison, curves
from mnistbench.figures.style import DPI, svg
from mnistbench.pages.report import (
    LOG_TAIL_LINES,
    headline_rows,
    output_files,
    report_page,
    reproduce_command,
)
from mnistbench.plan import plan
from mnistbench.report import mnistbench_write_report
from mnistbench.summary import comparison_table

REPORT_HTML = str(layout.REPORT_HTML)
THIRD_PARTY = layout.THIRD_PARTY
#: The most report.html of a sweep may weigh: everything is inline, the figures as SVG.
PAGE_LIMIT = 1024 * 1024
SHOTS = Path("/tmp/report-shots")
SECTIONS = [
    "headline", "comparison", "curves", "predictions", "failures", "environment", "files",
    "reproduce",
]  # fmt: skip
HOSTILE_ERROR = "<script>alert('error')</script> | rm -rf /"
HOSTILE_LOG = "last words</pre><script>alert('log')</script> | tail"


def _runs(directory: Path):
    """The typed table of ``directory``'s runs, as the report hook gets it."""
    return record.frame(record.read(directory))


def _page(directory: Path) -> _Page:
    return _Page((directory / REPORT_HTML).read_text(encoding="utf-8"))


def _table(page: _Page, header: list[str]) -> list[list[str]]:
    """The rows after ``header`` up to the next header-like row of another table."""
    start = page.rows.index(header) + 1
    rows = []
    for row in page.rows[start:]:
        if len(row) != len(header):
            break
        rows.append(row)
    return rows


# The shared real sweep -------------------------------------------------------------------


def test_a_sweep_writes_report_html_with_every_section_in_order(cli_sweep):
    page = _page(cli_sweep)
    assert page.sections == SECTIONS
    # The navigation above the title leads to each section.
    assert page.hrefs[: len(SECTIONS)] == [f"#{section}" for section in SECTIONS]
    assert page.unbalanced == []


def test_headline_table_has_each_configurations_median_of_each_measured_metric(cli_sweep):
    runs = _runs(cli_sweep)
    table = comparison_table(runs)
    page = _page(cli_sweep)
    # One column per configuration, in the order they ran.
    assert sorted(table["config_id"]) == ["cnn", "dnn", "rnn"]
    header = ["metric", *(f"{config} ok 1 ok" for config in table["config_id"])]
    rows = _table(page, header)
    # Every headline metric but the time to a target accuracy (no target here).
    shown = [c for c in in_view(HEADLINE) if c.name != "time_to_accuracy_seconds"]
    assert [row[0].split()[0] for row in rows] == [c.name for c in shown]
    by_name = {row[0].split()[0]: row[1:] for row in rows}
    assert by_name["test_accuracy"] == [
        f"{value:.4f}" for value in table["test_accuracy"]
    ]  # one run each: no spread, no noisy flag
    assert by_name["params"] == [f"{value:,}" for value in table["params"]]
    assert by_name["fit_seconds"] == [metric("fit_seconds").format(v) for v in table["fit_seconds"]]
    # The best of the three is in bold: the highest accuracy.
    best = table["test_accuracy"].idxmax()
    source = (cli_sweep / REPORT_HTML).read_text()
    assert f"<b>{table['test_accuracy'][best]:.4f}</b>" in source


def test_every_link_of_report_html_resolves_to_a_file_or_section(cli_sweep):
    page = _page(cli_sweep)
    files = 0
    for href in page.hrefs:
        if href.startswith("#"):
            assert href[1:] in page.ids, href
        else:
            assert (cli_sweep / href).is_file(), href
            files += 1
    assert files > 0


def test_report_html_lists_every_other_file_of_the_directory(cli_sweep):
    page = _page(cli_sweep)
    listed = [row[0] for row in _table(page, ["file", "size", "what it holds"])]
    on_disk = sorted(
        path.relative_to(cli_sweep).as_posix()
        for path in cli_sweep.rglob("*")
        if path.is_file() and path.name != REPORT_HTML
    )
    assert sorted(listed) == on_disk
    assert {"runs.csv", "pytest-benchmark.json", "logs/cnn-r0.log"} <= set(listed)


def test_report_html_loads_nothing_from_the_network_and_stays_small(cli_sweep):
    path = cli_sweep / REPORT_HTML
    assert path.stat().st_size <= PAGE_LIMIT
    source = path.read_text()
    page = _Page(source)
    # One script, inline: the figures' hover. No source attribute loads anything.
    assert page.scripts == ["inline"]
    assert page.sources == []
    assert not [href for href in page.hrefs if "//" in href or ":" in href]
    # The figures are inline SVG; the digits' images inside them are embedded.
    assert source.count("<svg ") == 3
    images = re.findall(r'<image [^>]*xlink:href="([^"]{0,22})', source)
    assert len(images) == 16 and set(images) == {"data:image/png;base64,"}


def test_report_html_gives_the_command_that_reproduces_the_sweep(cli_sweep, mnist_npz):
    environment = read_environment(cli_sweep)
    variables = environment["environment_variables"]
    # The CLI fixture sets MNISTBENCH_DB; the others are what this session has set.
    assert variables == dict(
        sorted({**recorded_variables(os.environ), "MNISTBENCH_DB": variables["MNISTBENCH_DB"]}
               .items())
    )  # fmt: skip
    argv = ["mnistbench", "run", "--all", *CLI_SWEEP_ARGS, "--output", str(cli_sweep), "--force",
            "--data", str(mnist_npz)]  # fmt: skip
    assignments = [f"{name}={shlex.quote(value)}" for name, value in variables.items()]
    command = _page(cli_sweep).by_class["command"]
    assert command == [" ".join([*assignments, shlex.join(argv)])]
    words = shlex.split(command[0])
    assert words[len(variables) :] == argv


def test_report_html_shows_the_environment_and_no_failures(cli_sweep):
    page = _page(cli_sweep)
    text = (cli_sweep / REPORT_HTML).read_text()
    assert f"<dt>python</dt><dd>{platform.python_version()}</dd>" in text
    assert f"<dt>CPU</dt><dd>{cpu_model()} × {os.cpu_count()} cores</dd>" in text
    assert _table(page, ["architecture", "plugin", "distribution", "version"]) == [
        [name, name, "mnistbench", mnistbench.__version__] for name in ("cnn", "dnn", "rnn")
    ]
    assert "None: every run finished with status ok." in text


def test_mnistbench_report_regenerates_report_html(cli_sweep, tmp_path):
    copy = shutil.copytree(cli_sweep, tmp_path / "out")
    (copy / REPORT_HTML).unlink()
    (copy / "tracker.txt").write_text("a third party's report\n")
    result = invoke("report", str(copy))
    assert result.exit_code == 0, result.output
    # Written last, after the other reporters' files, which it lists.
    assert result.stderr.splitlines()[-1] == f"wrote {copy / REPORT_HTML}"
    rows = _table(_page(copy), ["file", "size", "what it holds"])
    assert [row[2] for row in rows if row[0] == "tracker.txt"] == [THIRD_PARTY]


# A plugin whose error holds markup -------------------------------------------------------


class HostilePlugin:
    """Registers ``hostile``, whose model cannot be built: the error holds a script and a |."""

    @mnistbench.hookimpl
    def mnistbench_register_architectures(self, register):
        register("hostile", description="<b>bold</b> | pipe")

    @mnistbench.hookimpl
    def mnistbench_build_model(self, architecture, input_shape, num_classes):
        if architecture == "hostile":
            raise RuntimeError(HOSTILE_ERROR)
        return None


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, sweep_in_process) -> Path:
    """A tiny in-process sweep of ``tiny`` and ``hostile``; the failed run's log holds markup
    too. Returns its directory with report.html regenerated."""
    output = tmp_path_factory.mktemp("hostile") / "out"
    plugins = load_plugins(extra=[Tiny(), HostilePlugin()], entry_points=False)
    sweep_in_process(output, plan(["tiny", "hostile"], **QUICK), plugins)
    # In-process runs leave no worker log: give the failed one a log to show.
    runs = record.read(output)
    [run_id] = [run.run_id for run in runs if run.architecture == "hostile"]
    (output / "logs").mkdir(exist_ok=True)
    lines = [f"line {i}" for i in range(100)] + [HOSTILE_LOG]
    (output / "logs" / f"{run_id}.log").write_text("\n".join(lines) + "\n")
    plugins.write_report(runs, output)
    return output


def test_an_error_holding_markup_shows_as_text_and_the_page_stays_well_formed(hostile):
    [error] = [run.error for run in record.read(hostile) if run.architecture == "hostile"]
    assert HOSTILE_ERROR in error
    source = (hostile / REPORT_HTML).read_text()
    assert "<script>alert" not in source
    page = _Page(source)
    assert page.unbalanced == []
    # The hover's script only: no script element came from the error or the log.
    assert page.scripts == ["inline"]
    assert page.by_class["error"] == [error]
    # The log's last lines, shown literally.
    expected_tail = [f"line {i}" for i in range(100 - LOG_TAIL_LINES + 1, 100)] + [HOSTILE_LOG]
    assert page.by_class["log"][0].splitlines() == expected_tail
    size = (hostile / "logs" / "hostile-r0.log").stat().st_size
    assert [row for row in page.rows if row and row[0] == "logs/hostile-r0.log"] == [
        ["logs/hostile-r0.log", f"{size} B",
         "the output of run hostile-r0's worker process"]
    ]  # fmt: skip


def test_a_failed_run_is_named_with_its_status_and_configuration(hostile):
    page = _page(hostile)
    assert "failures" in page.sections
    assert [" ".join(h.split()) for h in page.by_class["failure-title"]] == [
        "failed hostile-r0 · hostile"
    ]


# Synthetic runs --------------------------------------------------------------------------


def test_headline_cells_give_the_spread_and_flag_noisy_metrics(tmp_path):
    runs = as_read(repeat_rows(), tmp_path)
    table = headline_rows(runs)
    assert table["configurations"] == [{"label": "dnn", "status": "ok", "runs": 3, "failed": 0}]
    rows = {row["name"]: row["cells"] for row in table["rows"]}
    # Fit times 30, 33, 39 s: cv 13.5%, noisy; accuracies 0.970, 0.980, 0.975: cv 0.5%.
    assert rows["fit_seconds"] == [
        {"median": "33.0 s", "spread": "30.0–39.0 s · cv 13.5%", "noisy": True, "best": False}
    ]
    assert rows["test_accuracy"] == [
        {"median": "0.9750", "spread": "0.9700–0.9800 · cv 0.5%", "noisy": False, "best": False}
    ]
    page = _Page(report_page(runs, tmp_path, {}))
    flagged = [row[0].split()[0] for row in page.rows if any("noisy" in c for c in row[1:])]
    assert flagged == ["fit_seconds", "seconds_per_epoch", "train_samples_per_second"]


def test_inference_section_appears_only_when_runs_measured_curves(tmp_path):
    rows = [run_row("dnn"), run_row("cnn")]
    without = report_page(as_read(rows, tmp_path), tmp_path, {})
    assert "inference" not in _Page(without).sections
    curved = [
        run.replace(
            inference_curve=[
                {
                    "batch_size": size,
                    "samples": 64,
                    "seconds": 64 / (rate * scale),
                    "samples_per_second": rate * scale,
                    "latency_ms": 1000 * size / (rate * scale),
                }
                for size, rate in ((1, 500.0), (32, 9000.0), (256, 30000.0))
            ]
        )  # fmt: skip
        for run, scale in zip(rows, (1.0, 0.5), strict=True)
    ]
    written = mnistbench_write_report(as_read(curved, tmp_path), tmp_path)
    assert "inference.png" in [path.name for path in written]
    source = (tmp_path / REPORT_HTML).read_text()
    page = _Page(source)
    assert page.sections[:5] == ["headline", "comparison", "curves", "inference", "failures"]
    # The inference figure, its points showing their values on hover.
    assert 'aria-label="inference throughput against batch size, per configuration"' in source
    assert 'data-tip="dnn, batch size 32: 9,000 samples/s"' in source
    assert 'data-tip="cnn, batch size 256: 15,000 samples/s"' in source


def test_environment_section_names_the_devices_the_workers_saw(tmp_path):
    runs = as_read([run_row("dnn")], tmp_path)
    devices = {"node-1": {"jax": [{"kind": "gpu", "name": "NVIDIA <H200>", "memory_mb": 1.0}]}}
    environment = {"sweep_id": "s1", "python": "3.11.7", "devices": devices}
    (tmp_path / "environment.json").write_text(json.dumps(environment))
    source = report_page(runs, tmp_path, {})
    assert "<dt>devices</dt><dd>node-1 · jax: gpu NVIDIA &lt;H200&gt;</dd>" in source
    assert "<h1>mnistbench sweep s1</h1>" in source


def test_reproduce_command_quotes_the_variables_and_the_command():
    environment = {
        "command": "mnistbench run dnn --output 'my results'",
        "environment_variables": {"KERAS_BACKEND": "jax", "MNISTBENCH_DATA": "/data/my mnist"},
    }
    assert reproduce_command(environment) == (
        "KERAS_BACKEND=jax MNISTBENCH_DATA='/data/my mnist' "
        "mnistbench run dnn --output 'my results'"
    )
    assert reproduce_command({}) == ""


def test_only_mnistbench_and_keras_backend_variables_are_recorded():
    environ = {
        "MNISTBENCH_DATA": "/data",
        "KERAS_BACKEND": "torch",
        "HOME": "/root",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "KERAS_HOME": "/keras",
        "MNISTBENCHX": "no",
    }
    assert recorded_variables(environ) == {"KERAS_BACKEND": "torch", "MNISTBENCH_DATA": "/data"}


def test_output_files_skip_the_report_and_temporary_files(tmp_path):
    for name in ("runs.csv", REPORT_HTML, ".comparison.csv.x1.tmp", "notes.md"):
        (tmp_path / name).write_text("x")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "dnn-r0.log").write_text("x")
    assert [(f["path"], f["href"], f["description"]) for f in output_files(tmp_path)] == [
        ("notes.md", "notes.md", THIRD_PARTY),
        ("runs.csv", "runs.csv", "one row per run: every measurement, status and error"),
        ("logs/dnn-r0.log", "logs/dnn-r0.log", "the output of run dnn-r0's worker process"),
    ]


def test_a_report_of_no_successful_run_still_has_every_section(tmp_path):
    runs = as_read([run_row("dnn", error="MemoryError")], tmp_path)
    write_samples(tmp_path)
    mnistbench_write_report(runs, tmp_path)
    page = _page(tmp_path)
    assert page.sections == [s for s in SECTIONS if s != "predictions"]
    assert page.scripts == ["inline"]  # the hover's script; no figure to hover
    assert "<svg" not in (tmp_path / REPORT_HTML).read_text()
    assert "No successful run: nothing to compare." in page.by_class["card"][1]
    assert page.by_class["error"] == ["MemoryError"]


# In a browser ----------------------------------------------------------------------------


def test_report_html_renders_in_a_browser_offline_with_values_on_hover(
    cli_sweep, hostile, browser, tmp_path
):
    page = cli_sweep / REPORT_HTML
    table = comparison_table(_runs(cli_sweep)).set_index("config_id")
    # The first bar of the comparison figure: the first configuration's fit time, with its
    # unit (configurations come in the order they ran).
    first = table.index[0]
    seen = browser.visit(page, tmp_path / "report.png", hover=mark_selector(0, 0))
    assert seen.console_errors == []
    assert seen.page_errors == []
    assert seen.dialogs == []
    assert seen.external_requests == []
    assert seen.charts == 3
    # comparison: 3 panels × 3 configurations; curves: 2 panels × 3 configurations × 2 epochs.
    assert seen.marks == 9 + 12
    fit = metric("fit_seconds").format(table.loc[first, "fit_seconds"])
    assert seen.hover_text == f"{first}: {fit} (1 run)"
    assert re.fullmatch(r"[cdr]nn: \d+\.\d+ s \(1 run\)", seen.hover_text)
    for heading in ("Headline figures", "Comparison", "Training curves", "Predictions",
                    "Failed runs", "Environment", "Files", "Reproduce"):  # fmt: skip
        assert f"\n{heading}\n" in seen.text, heading
    for title in ("Training time (lower is better)", "Training accuracy per epoch"):
        assert title in seen.chart_text
    assert distinct_colors(seen.screenshot) > 500

    # The first point of the training curves: its accuracy after its first epoch.
    [first_epoch] = _runs(cli_sweep).query("config_id == @first")["epoch_accuracy"]
    point = browser.visit(page, tmp_path / "point.png", hover=mark_selector(1, 0))
    assert (point.console_errors, point.external_requests) == ([], [])
    assert point.hover_text == f"{first}, epoch 1: {first_epoch[0] * 100:.2f}%"

    bad = browser.visit(hostile / REPORT_HTML, tmp_path / "hostile.png")
    assert (bad.dialogs, bad.console_errors, bad.page_errors) == ([], [], [])
    assert bad.external_requests == []
    assert HOSTILE_ERROR in bad.text
    assert HOSTILE_LOG in bad.text

    SHOTS.mkdir(exist_ok=True)
    for visit, name in ((seen, "report.png"), (point, "report-point.png"), (bad, "hostile.png")):
        shutil.copy(visit.screenshot, SHOTS / name)


def test_written_report_is_the_page_of_its_runs_and_figures(tmp_path):
    runs = as_read([run_row("dnn")], tmp_path)
    path = mnistbench_write_report(runs, tmp_path)[-1]
    assert path == tmp_path / REPORT_HTML
    figures = {}
    for file, fig in (
        (layout.COMPARISON_PNG, comparison.draw(runs)),
        (layout.CURVES_PNG, curves.draw(runs)),
    ):
        fig.savefig(io.BytesIO(), format="png", dpi=DPI)  # as the hook does: the PNG first
        figures[file.name] = svg(fig, file.description)
    assert path.read_text() == report_page(runs, tmp_path, figures)


def test_each_log_is_described_by_what_writes_it():
    assert layout.describe("logs/dnn-r0.log") == "the output of run dnn-r0's worker process"
    # A warm worker's log is no run's (--isolation warm, ab): named for what it holds.
    assert layout.describe(f"logs/{layout.WORKER_START_LOG}") == (
        "the warm workers' own output: their start (the backend's import) and between runs"
    )
