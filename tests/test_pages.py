"""The history pages (mnistbench.pages.history) from synthetic points: on disk, and in a
real browser, offline, with each point's sweep and value on hover."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from browser import distinct_colors, mark_selector
from html_page import Page as _Page

from mnistbench.errors import ConfigError
from mnistbench.history import Change
from mnistbench.pages.history import write_history_pages

HOSTILE = "<script>alert(1)</script> | dnn"
SHOTS = Path("/tmp/pages-shots")
METRICS = ["fit_seconds", "inference_samples_per_second", "test_accuracy", "latency_ms"]
DAYS = 10
STEP_AT = 6  # the first sweep after the 40% step of the hostile series' fit time


def _points() -> pd.DataFrame:
    """Two configurations over ten daily sweeps; the first (hostile label) gets 40% slower."""
    rows = []
    for series, label, arch, base in (("a1", HOSTILE, "dnn", 10.0), ("b2", "cnn", "cnn", 20.0)):
        for day in range(DAYS):
            stepped = series == "a1" and day >= STEP_AT
            fit = base * (1.4 if stepped else 1.0) * (1 + 0.01 * (day % 3))
            probe = 0.5 * (1 + 0.01 * (day % 2))
            rows.append(
                {
                    "series": series,
                    "label": label,
                    "architecture": arch,
                    "backend": "tensorflow",
                    "executor": "local",
                    "isolation": "process",
                    "cpus_reserved": 2,
                    "epochs": 1,
                    "batch_size": 128,
                    "steps_per_execution": 1,
                    "jit_compile": False,
                    "train_samples": 2000,
                    "test_samples": 300,
                    "target_accuracy": float("nan"),
                    "eval_every": float("nan"),
                    "sweep_id": f"2024-05-{day + 1:02d}T120000",
                    "started_at": pd.Timestamp(f"2024-05-{day + 1:02d} 12:00", tz="UTC"),
                    "commit": f"c{day:06d}",
                    "dirty": day == DAYS - 1,
                    "mnistbench_version": "0.1.0",
                    "plugin_version": "<b>1.0</b>",
                    "runs": 3,
                    "fit_seconds": fit,
                    "fit_seconds_normalized": fit / probe,
                    "inference_samples_per_second": 40000.0 / base,
                    "inference_samples_per_second_normalized": 40000.0 / base * probe,
                    "test_accuracy": 0.95 + 0.001 * day,
                    # Older sweeps had no speed probe: the normalized latency is not measured.
                    "latency_ms": 1.5,
                    "latency_ms_normalized": float("nan"),
                    "probe_seconds": probe,
                }
            )
    return pd.DataFrame(rows)


CHANGES = [
    Change("b2", "cnn", "test_accuracy", 4, "c000003", "c000004", 0.95, 0.955, 1.005,
           "improvement", None),
    Change("a1", HOSTILE, "fit_seconds", STEP_AT, "c000005", "c000006", 10.1, 14.1, 1.40,
           "regression", True, low=1.31, high=1.49),
]  # fmt: skip


#: The most a history page may weigh: its figures are inline SVG, its style and script inline.
PAGE_LIMIT = 300_000


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("history")
    return write_history_pages(_points(), CHANGES, out, metrics=METRICS)


def _read(path: Path) -> _Page:
    return _Page(path.read_text(encoding="utf-8"))


def _charts(source: str) -> list[str]:
    """The inline SVG figures of a page, in order."""
    return re.findall(r'<svg [^>]*class="figure".*?</svg>', source, flags=re.S)


def _panels(chart: str) -> list[str]:
    """The metrics of a history chart's panels, from their titles."""
    return re.findall(r">([a-z_]+): (?:lower|higher) is better<", chart)


def test_history_pages_are_an_index_and_a_small_page_per_configuration(pages):
    assert [path.name for path in pages] == ["index.html", "config-a1.html", "config-b2.html"]
    assert {path.parent for path in pages} == {pages[0].parent}
    # Nothing else: the pages need no file beside them (no plotly.min.js any more).
    assert sorted(p.name for p in pages[0].parent.iterdir()) == sorted(p.name for p in pages)
    for page in pages:
        assert 50_000 < page.stat().st_size < PAGE_LIMIT, (page.name, page.stat().st_size)
    assert "<title>mnistbench history · mnistbench</title>" in pages[0].read_text()
    assert "<title>cnn · mnistbench</title>" in pages[2].read_text()


def test_every_link_resolves_to_a_written_page_and_anchor(pages):
    out = pages[0].parent
    checked = 0
    for page in pages:
        for href in _read(page).hrefs:
            target, _, anchor = href.partition("#")
            assert not re.match(r"[a-z]+:", target), href  # relative links only
            assert (out / target).is_file(), href
            if anchor:
                assert anchor in _read(out / target).ids, href
            checked += 1
    # index: 2 configurations in the latest table + 2 changes × (configuration, metric);
    # each configuration page: back to the index + its one change's metric.
    assert checked == 2 + 2 * 2 + 2 * 2


def test_changes_are_listed_regressions_first_with_commits_values_and_ratio(pages):
    rows = _read(pages[0]).rows
    header = rows.index(
        ["change", "configuration", "metric", "commits", "first sweep after", "before",
         "after", "ratio", "95% interval", "holds when normalized"]
    )  # fmt: skip
    assert rows[header + 1 : header + 3] == [
        ["▲ regression", HOSTILE, "fit_seconds", "c000005 → c000006", "2024-05-07 12:00 UTC",
         "10.1 s", "14.1 s", "×1.40 (+40%)", "[×1.31, ×1.49]", "yes"],
        ["▼ improvement", "cnn", "test_accuracy", "c000003 → c000004", "2024-05-05 12:00 UTC",
         "0.9500", "0.9550", "×1.00 (+0%)", "-", "-"],
    ]  # fmt: skip


def test_index_shows_each_configurations_latest_figures_with_date_and_commit(pages):
    rows = _read(pages[0]).rows
    header = rows.index(["configuration", "machine", "latest sweep", "commit", "sweeps", *METRICS])
    # The machine is "-": these synthetic sweeps never said which.
    assert rows[header + 1 : header + 3] == [
        [HOSTILE, "-", "2024-05-10 12:00 UTC", "c000009 (dirty)", "10",
         "14.0 s", "4,000 samples/s", "0.9590", "1.5 ms"],
        ["cnn", "-", "2024-05-10 12:00 UTC", "c000009 (dirty)", "10",
         "20.0 s", "2,000 samples/s", "0.9590", "1.5 ms"],
    ]  # fmt: skip


def test_text_from_runs_is_escaped_on_every_page(pages):
    for page in pages:
        source = page.read_text(encoding="utf-8")
        assert "<script>alert" not in source
        assert "<b>1.0" not in source
        # One script, inline: the figures' hover. None came from a label.
        assert _Page(source).scripts == ["inline"]
        assert _Page(source).unbalanced == []
    config = pages[1].read_text(encoding="utf-8")
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt; | dnn</h1>" in config
    assert "<td>&lt;b&gt;1.0&lt;/b&gt;</td>" in config
    # In the figures too: in the legend, and in each point's hover.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | dnn</text>" in pages[0].read_text()
    assert 'data-tip="&lt;script&gt;alert(1)&lt;/script&gt; | dnn: 14.0 s' in config


def test_index_draws_one_trend_chart_per_metric_with_a_line_per_configuration(pages):
    source = pages[0].read_text(encoding="utf-8")
    charts = _charts(source)
    assert [_panels(chart) for chart in charts] == [[metric] for metric in METRICS]
    # 2 configurations × 10 sweeps, each point with its hover; the change marked.
    assert [chart.count('class="tip"') for chart in charts] == [20, 20, 20, 20]
    assert ">regression +40%<" in charts[0]


def test_configuration_page_draws_each_metric_raw_above_normalized(pages):
    source = pages[1].read_text(encoding="utf-8")
    # fit time and inference with their normalized figures; accuracy has none; the
    # normalized latency was not measured, so it is a note, not an empty panel.
    assert [_panels(chart) for chart in _charts(source)] == [
        ["fit_seconds", "fit_seconds_normalized"],
        ["inference_samples_per_second", "inference_samples_per_second_normalized"],
        ["test_accuracy"],
        ["latency_ms"],
    ]
    assert "latency_ms_normalized: not measured in these sweeps" in source
    # Each section says the latest value and what the chart below shows, in words.
    text = " ".join(_read(pages[1]).by_class["note"])
    assert "Latest: 14.0 s. Below it, fit_seconds_normalized: divided by each run's" in (
        " ".join(text.split())
    )


def test_no_page_refers_to_the_network(pages):
    for page in pages:
        source = page.read_text()
        # XML namespaces name formats, they load nothing; nothing else may name a host.
        without_namespaces = re.sub(r'\sxmlns(?::\w+)?="[^"]*"', "", source)
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", without_namespaces)
        assert urls == [], page


def test_an_unknown_metric_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown metric 'fit_sec'"):
        write_history_pages(_points(), [], tmp_path, metrics=["fit_sec"])


def test_no_points_is_an_index_that_says_so(tmp_path):
    paths = write_history_pages(_points().iloc[0:0], [], tmp_path, metrics=METRICS)
    assert [path.name for path in paths] == ["index.html"]
    assert "No sweeps recorded yet." in paths[0].read_text()


def _check_visit(visit, charts: int) -> None:
    assert visit.console_errors == []
    assert visit.page_errors == []
    assert visit.dialogs == []
    assert visit.external_requests == []
    assert visit.charts == charts
    assert visit.scripts == ["inline"]


def test_history_pages_render_in_a_browser_offline_with_values_on_hover(pages, browser, tmp_path):
    index, config = pages[0], pages[1]
    # The hostile series' first point after its step, on the fit-time chart.
    first_after_step = mark_selector(0, STEP_AT)
    seen = browser.visit(index, tmp_path / "index.png", hover=first_after_step)
    _check_visit(seen, charts=len(METRICS))
    assert seen.marks == len(METRICS) * 2 * DAYS
    assert HOSTILE in seen.text
    assert seen.links[:2] == [config.as_uri(), config.as_uri() + "#metric-fit_seconds"]
    # Each point tells its sweep: value, date, commit, versions (shown literally), sweep.
    expected = [
        f"{HOSTILE}: 14.0 s (median of 3 runs)",
        "2024-05-07 12:00 UTC · commit c000006",
        "mnistbench 0.1.0 · plugin <b>1.0</b>",
        "sweep 2024-05-07T120000",
    ]
    assert seen.hover_text.splitlines() == expected

    page = browser.visit(config, tmp_path / "config.png", hover=first_after_step)
    _check_visit(page, charts=len(METRICS))
    # One series: 10 points in each of the 6 panels.
    assert page.marks == 6 * DAYS
    assert page.hover_text.splitlines() == expected
    assert page.title == f"{HOSTILE} · mnistbench"
    # The change is marked on the fit-time chart; the sweeps' commits label the axis.
    assert "regression +40%" in page.chart_text
    assert {"c000005", "c000006"} <= set(page.chart_text.split())

    SHOTS.mkdir(exist_ok=True)
    for visit, name in ((seen, "history-index.png"), (page, "history-config.png")):
        assert distinct_colors(visit.screenshot) > 50
        shutil.copy(visit.screenshot, SHOTS / name)
