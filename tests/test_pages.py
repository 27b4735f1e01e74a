"""The HTML pages: the history page set from synthetic points, on disk and in a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from browser import distinct_colors, point_selector
from html_page import Page as _Page

from mnistbench.errors import ConfigError
from mnistbench.history import Change
from mnistbench.pages.history import write_history_pages
from mnistbench.pages.shell import PLOTLY_JS

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
           "regression", True),
]  # fmt: skip


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("history")
    return write_history_pages(_points(), CHANGES, out, metrics=METRICS)


def _read(path: Path) -> _Page:
    return _Page(path.read_text(encoding="utf-8"))


def test_history_pages_are_an_index_a_page_per_configuration_and_plotly(pages):
    assert [path.name for path in pages] == [
        "index.html",
        "config-a1.html",
        "config-b2.html",
        PLOTLY_JS,
    ]
    assert all(path.is_file() and path.stat().st_size > 0 for path in pages)
    assert {path.parent for path in pages} == {pages[0].parent}


def test_every_link_resolves_to_a_written_page_and_anchor(pages):
    out = pages[0].parent
    checked = 0
    for page in pages[:-1]:
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
         "after", "ratio", "holds when normalized"]
    )  # fmt: skip
    assert rows[header + 1 : header + 3] == [
        ["▲ regression", HOSTILE, "fit_seconds", "c000005 → c000006", "2024-05-07 12:00 UTC",
         "10.1 s", "14.1 s", "×1.40 (+40%)", "yes"],
        ["▼ improvement", "cnn", "test_accuracy", "c000003 → c000004", "2024-05-05 12:00 UTC",
         "0.9500", "0.9550", "×1.00 (+0%)", "-"],
    ]  # fmt: skip


def test_index_shows_each_configurations_latest_figures_with_date_and_commit(pages):
    rows = _read(pages[0]).rows
    header = rows.index(["configuration", "latest sweep", "commit", "sweeps", *METRICS])
    assert rows[header + 1 : header + 3] == [
        [HOSTILE, "2024-05-10 12:00 UTC", "c000009 (dirty)", "10",
         "14.0 s", "4,000 samples/s", "0.9590", "1.5 ms"],
        ["cnn", "2024-05-10 12:00 UTC", "c000009 (dirty)", "10",
         "20.0 s", "2,000 samples/s", "0.9590", "1.5 ms"],
    ]  # fmt: skip


def test_text_from_runs_is_escaped_on_every_page(pages):
    for page in pages[:-1]:
        source = page.read_text(encoding="utf-8")
        assert "<script>alert" not in source
        assert "<b>1.0" not in source
        parsed = _Page(source)
        charts = source.count('class="plotly-graph-div"')
        # plotly's file, then one inline script per chart: none injected by a label.
        assert parsed.scripts == [PLOTLY_JS] + ["inline"] * charts
    config = pages[1].read_text(encoding="utf-8")
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt; | dnn</h1>" in config
    assert "<td>&lt;b&gt;1.0&lt;/b&gt;</td>" in config


def test_configuration_page_draws_each_metric_raw_beside_normalized(pages):
    source = pages[1].read_text(encoding="utf-8")
    charts = re.findall(r'<div id="(chart-\d-\d)" class="plotly-graph-div"', source)
    # fit time and inference with their normalized figures; accuracy has none; the
    # normalized latency was not measured, so it is a note, not an empty chart.
    assert charts == ["chart-0-0", "chart-0-1", "chart-1-0", "chart-1-1", "chart-2-0",
                      "chart-3-0"]  # fmt: skip
    assert "latency_ms_normalized: not measured in these sweeps" in source


def test_no_page_refers_to_the_network(pages):
    for page in pages[:-1]:
        assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.read_text()) == [], page


def test_an_unknown_metric_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown metric 'fit_sec'"):
        write_history_pages(_points(), [], tmp_path, metrics=["fit_sec"])


def test_no_points_is_an_index_that_says_so(tmp_path):
    paths = write_history_pages(_points().iloc[0:0], [], tmp_path, metrics=METRICS)
    assert [path.name for path in paths] == ["index.html", PLOTLY_JS]
    assert "No sweeps recorded yet." in paths[0].read_text()


def _check_visit(visit, charts: int) -> None:
    assert visit.console_errors == []
    assert visit.page_errors == []
    assert visit.dialogs == []
    assert visit.external_requests == []
    assert visit.charts == charts
    assert visit.scripts == [PLOTLY_JS] + ["inline"] * charts


def test_history_pages_render_in_a_browser_offline(pages, browser, tmp_path):
    index, config = pages[0], pages[1]
    seen = browser.visit(index, tmp_path / "index.png")
    _check_visit(seen, charts=len(METRICS))
    assert HOSTILE in seen.text
    assert seen.links[:2] == [config.as_uri(), config.as_uri() + "#metric-fit_seconds"]

    first_after_step = point_selector("chart-0-0", STEP_AT)
    page = browser.visit(config, tmp_path / "config.png", hover=first_after_step)
    _check_visit(page, charts=6)
    # Each point tells its sweep: value, date, commit, versions (shown literally), runs.
    assert page.hover_text.splitlines() == [
        "14.0 s",
        "2024-05-07 12:00 UTC",
        "commit c000006",
        "mnistbench 0.1.0 · plugin <b>1.0</b>",
        "sweep 2024-05-07T120000 · 3 runs",
    ]
    assert page.title == f"{HOSTILE} · mnistbench"
    # The change's marker on the fit-time chart names its commits and ratio.
    assert "c000005→c000006 ×1.40" in page.chart_text

    SHOTS.mkdir(exist_ok=True)
    for visit, name in ((seen, "history-index.png"), (page, "history-config.png")):
        assert distinct_colors(visit.screenshot) > 50
        shutil.copy(visit.screenshot, SHOTS / name)
