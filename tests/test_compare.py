"""compare: baseline vs candidate runs, verdicts, --fail rules, compare.csv and compare.png.

The runs are written by hand: each test states the numbers it is about. Five
distinct values per side that do not overlap give the smallest exact two-sided
Mann-Whitney U p-value for 5 vs 5 repeats, 2 / C(10, 5) = 2 / 252.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mnistbench.compare import (
    COMPARE_COLUMNS,
    METRICS,
    FailRule,
    compare_runs,
    regressions,
    write_compare,
)
from mnistbench.errors import ConfigError

EXACT_P_5_VS_5_SEPARATED = 2 / 252  # 0.0079365...

FAST = [9.8, 9.9, 10.0, 10.1, 10.2]  # median 10.0
SLOW = [11.8, 11.9, 12.0, 12.1, 12.2]  # median 12.0: 20 % slower, no overlap


def runs(config_id: str, backend: str = "tensorflow", status: str = "ok", **metrics) -> list[dict]:
    """One row per repeat, shaped like runs.csv: as many repeats as the metric lists are long."""
    count = len(next(iter(metrics.values())))
    architecture = config_id.split("-")[0]
    return [
        {
            "run_id": f"{config_id}-r{repeat}",
            "config_id": config_id,
            "architecture": architecture,
            "backend": backend,
            "seed": 42 + repeat,
            "repeat": repeat,
            **{metric: values[repeat] for metric, values in metrics.items()},
            "status": status,
            "error": "" if status == "ok" else "RuntimeError: out of memory",
        }
        for repeat in range(count)
    ]


def frame(*groups: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def row(table: pd.DataFrame, config_id: str, metric: str, backend: str = "tensorflow"):
    match = table[
        (table["config_id"] == config_id)
        & (table["metric"] == metric)
        & (table["backend"] == backend)
    ]
    assert len(match) == 1, match
    return match.iloc[0]


def rules(*texts: str) -> list[FailRule]:
    return [FailRule.parse(text) for text in texts]


# --- verdicts and significance --------------------------------------------------------


def test_clear_slowdown_is_a_significant_regression() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=FAST)),
        frame(runs("dnn", fit_seconds=SLOW)),
        rules("fit_seconds:10%"),
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["architecture"] == "dnn"
    assert result["better"] == "lower"
    assert result["baseline_median"] == 10.0
    assert result["candidate_median"] == 12.0
    assert result["ratio"] == 1.2
    assert (result["baseline_n"], result["candidate_n"]) == (5, 5)
    assert result["p_value"] == pytest.approx(EXACT_P_5_VS_5_SEPARATED, rel=1e-12)
    assert result["significant"]
    assert result["verdict"] == "regressed"
    assert result["regression"]
    assert result["failed_rule"] == "fit_seconds:10%"


def test_overlapping_noise_is_no_significant_change_even_beyond_the_threshold() -> None:
    # Medians 11.0 -> 12.5 (+13.6 %, beyond 10 %), but the samples interleave.
    table = compare_runs(
        frame(runs("dnn", fit_seconds=[9.0, 10.0, 11.0, 12.0, 13.0])),
        frame(runs("dnn", fit_seconds=[8.5, 9.5, 12.5, 13.0, 14.5])),
        rules("fit_seconds:10%"),
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["ratio"] == pytest.approx(12.5 / 11.0)
    assert result["p_value"] == pytest.approx(0.7533, abs=1e-4)
    assert not result["significant"]
    assert result["verdict"] == "no significant change"
    assert not result["regression"]
    assert result["failed_rule"] == ""


def test_without_required_significance_the_threshold_alone_fails() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=[9.0, 10.0, 11.0, 12.0, 13.0])),
        frame(runs("dnn", fit_seconds=[8.5, 9.5, 12.5, 13.0, 14.5])),
        rules("fit_seconds:10%"),
        require_significance=False,
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["verdict"] == "no significant change"
    assert result["regression"]
    assert result["failed_rule"] == "fit_seconds:10%"


def test_two_repeats_cannot_tell_but_a_breached_threshold_still_fails() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=[10.0, 10.2])),
        frame(runs("dnn", fit_seconds=[12.0, 12.2])),
        rules("fit_seconds:10%"),
    )
    result = row(table, "dnn", "fit_seconds")
    assert (result["baseline_n"], result["candidate_n"]) == (2, 2)
    assert math.isnan(result["p_value"])
    assert pd.isna(result["significant"])
    assert result["verdict"] == "cannot tell (n<3)"
    assert result["regression"]
    assert result["failed_rule"] == "fit_seconds:10%"


def test_two_repeats_within_the_threshold_pass() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=[10.0, 10.2])),
        frame(runs("dnn", fit_seconds=[10.5, 10.7])),  # +5 %
        rules("fit_seconds:10%"),
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["verdict"] == "cannot tell (n<3)"
    assert not result["regression"]


def test_three_repeats_on_one_side_and_two_on_the_other_cannot_tell() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=[10.0, 10.1, 10.2])),
        frame(runs("dnn", fit_seconds=[12.0, 12.1])),
    )
    assert row(table, "dnn", "fit_seconds")["verdict"] == "cannot tell (n<3)"


def test_accuracy_drop_beyond_an_absolute_threshold_fails() -> None:
    table = compare_runs(
        frame(runs("cnn", test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978])),
        frame(runs("cnn", test_accuracy=[0.970, 0.971, 0.969, 0.972, 0.968])),
        rules("test_accuracy:-0.005"),
    )
    result = row(table, "cnn", "test_accuracy")
    assert result["better"] == "higher"
    assert result["p_value"] == pytest.approx(EXACT_P_5_VS_5_SEPARATED, rel=1e-12)
    assert result["verdict"] == "regressed"
    assert result["regression"]
    assert result["failed_rule"] == "test_accuracy:-0.005"


def test_significant_accuracy_drop_within_the_absolute_threshold_passes() -> None:
    table = compare_runs(
        frame(runs("cnn", test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978])),
        frame(runs("cnn", test_accuracy=[0.977, 0.9775, 0.976, 0.9765, 0.9755])),  # -0.004
        rules("test_accuracy:-0.005"),
    )
    result = row(table, "cnn", "test_accuracy")
    assert result["verdict"] == "regressed"
    assert not result["regression"]


def test_memory_growth_beyond_20_percent_fails() -> None:
    table = compare_runs(
        frame(runs("rnn", peak_memory_mb=[490.0, 495.0, 500.0, 505.0, 510.0])),
        frame(runs("rnn", peak_memory_mb=[640.0, 645.0, 650.0, 655.0, 660.0])),  # +30 %
        rules("peak_memory_mb:20%"),
    )
    result = row(table, "rnn", "peak_memory_mb")
    assert result["ratio"] == 1.3
    assert result["verdict"] == "regressed"
    assert result["regression"]
    assert result["failed_rule"] == "peak_memory_mb:20%"


def test_memory_growth_within_20_percent_passes() -> None:
    table = compare_runs(
        frame(runs("rnn", peak_memory_mb=[490.0, 495.0, 500.0, 505.0, 510.0])),
        frame(runs("rnn", peak_memory_mb=[540.0, 545.0, 550.0, 555.0, 560.0])),  # +10 %
        rules("peak_memory_mb:20%"),
    )
    result = row(table, "rnn", "peak_memory_mb")
    assert result["verdict"] == "regressed"
    assert not result["regression"]


@pytest.mark.parametrize("require_significance", [True, False])
def test_an_improvement_is_never_a_regression(require_significance: bool) -> None:
    table = compare_runs(
        frame(
            runs(
                "dnn",
                fit_seconds=SLOW,
                inference_samples_per_second=[40e3, 41e3, 42e3, 43e3, 44e3],
                test_accuracy=[0.970, 0.971, 0.969, 0.972, 0.968],
            )
        ),
        frame(
            runs(
                "dnn",
                fit_seconds=FAST,
                inference_samples_per_second=[60e3, 61e3, 62e3, 63e3, 64e3],
                test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978],
            )
        ),
        rules("fit_seconds:1%", "inference_samples_per_second:1%", "test_accuracy:0.001"),
        require_significance=require_significance,
    )
    assert list(table["verdict"]) == ["improved"] * 3
    assert not table["regression"].any()
    assert list(table["failed_rule"]) == [""] * 3


def test_several_rules_on_one_metric_are_all_named() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=FAST)),
        frame(runs("dnn", fit_seconds=SLOW)),
        rules("fit_seconds:10%", "fit_seconds:+1.5", "fit_seconds:50%"),
    )
    assert row(table, "dnn", "fit_seconds")["failed_rule"] == "fit_seconds:10%; fit_seconds:+1.5"


# --- which runs and rows --------------------------------------------------------------


def test_failed_runs_are_excluded() -> None:
    baseline = frame(
        runs("dnn", fit_seconds=FAST),
        runs("dnn", status="failed", fit_seconds=[500.0, math.nan]),
    )
    table = compare_runs(baseline, frame(runs("dnn", fit_seconds=FAST)))
    result = row(table, "dnn", "fit_seconds")
    assert result["baseline_n"] == 5
    assert result["baseline_median"] == 10.0
    assert result["verdict"] == "no significant change"


def test_configs_on_one_side_only_are_listed_and_never_gated() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=FAST), runs("rnn", fit_seconds=FAST)),
        frame(runs("dnn", fit_seconds=FAST), runs("cnn-spe32", fit_seconds=SLOW)),
        rules("fit_seconds:1%"),
    )
    assert list(table["config_id"]) == ["dnn", "rnn", "cnn-spe32"]
    only_baseline = row(table, "rnn", "fit_seconds")
    assert only_baseline["verdict"] == "only in baseline"
    assert (only_baseline["baseline_n"], only_baseline["candidate_n"]) == (5, 0)
    assert math.isnan(only_baseline["candidate_median"])
    assert math.isnan(only_baseline["ratio"])
    only_candidate = row(table, "cnn-spe32", "fit_seconds")
    assert only_candidate["verdict"] == "only in candidate"
    assert only_candidate["architecture"] == "cnn"
    assert not table["regression"].any()


def test_a_config_whose_candidate_runs_all_failed_is_only_in_baseline() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=FAST)),
        frame(runs("dnn", status="failed", fit_seconds=[math.nan] * 5)),
    )
    assert row(table, "dnn", "fit_seconds")["verdict"] == "only in baseline"


def test_backends_are_compared_separately() -> None:
    table = compare_runs(
        frame(runs("dnn", "jax", fit_seconds=FAST), runs("dnn", "torch", fit_seconds=FAST)),
        frame(runs("dnn", "jax", fit_seconds=FAST), runs("dnn", "torch", fit_seconds=SLOW)),
    )
    assert row(table, "dnn", "fit_seconds", "jax")["verdict"] == "no significant change"
    assert row(table, "dnn", "fit_seconds", "torch")["verdict"] == "regressed"


def test_metric_columns_missing_on_either_side_are_skipped() -> None:
    baseline = frame(runs("dnn", fit_seconds=FAST, latency_p95_ms=[1.0] * 5))
    candidate = frame(runs("dnn", fit_seconds=FAST))  # written before latency_p95_ms existed
    assert list(compare_runs(baseline, candidate)["metric"]) == ["fit_seconds"]


def test_empty_cells_are_dropped_per_metric() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=FAST, time_to_accuracy_seconds=[math.nan] * 5)),
        frame(
            runs("dnn", fit_seconds=[*FAST[:4], math.nan], time_to_accuracy_seconds=[math.nan] * 5)
        ),
    )
    assert list(table["metric"]) == ["fit_seconds"]  # no target: no time-to-accuracy row
    assert row(table, "dnn", "fit_seconds")["candidate_n"] == 4


def test_rows_follow_config_order_then_metrics_order() -> None:
    metrics = {metric: [1.0, 2.0, 3.0] for metric in METRICS}
    table = compare_runs(
        frame(runs("b", **metrics), runs("a", **metrics)), frame(runs("a", **metrics))
    )
    assert list(table["config_id"]) == ["b"] * len(METRICS) + ["a"] * len(METRICS)
    assert list(table["metric"]) == list(METRICS) * 2
    assert list(table["better"]) == list(METRICS.values()) * 2
    assert list(table.columns) == COMPARE_COLUMNS


# --- FailRule.parse -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("fit_seconds:10%", FailRule("fit_seconds", 0.10, True)),
        ("peak_memory_mb:20%", FailRule("peak_memory_mb", 0.20, True)),
        (
            " inference_samples_per_second : 2.5 % ",
            FailRule("inference_samples_per_second", 0.025, True),
        ),
        ("test_accuracy:-0.005", FailRule("test_accuracy", 0.005, False)),
        ("test_accuracy:0.005", FailRule("test_accuracy", 0.005, False)),
        ("latency_ms:+0.5", FailRule("latency_ms", 0.5, False)),
        ("latency_ms:0.5", FailRule("latency_ms", 0.5, False)),
    ],
)
def test_fail_rule_parses_valid_forms(text: str, expected: FailRule) -> None:
    assert FailRule.parse(text) == expected


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("fit_seconds:10%", "fit_seconds:10%"),
        ("test_accuracy:0.005", "test_accuracy:-0.005"),
        ("latency_ms:0.5", "latency_ms:+0.5"),
        ("peak_memory_mb:12.5%", "peak_memory_mb:12.5%"),
    ],
)
def test_fail_rule_prints_as_fail_text_signed_in_the_bad_direction(
    text: str, canonical: str
) -> None:
    rule = FailRule.parse(text)
    assert str(rule) == canonical
    assert FailRule.parse(str(rule)) == rule


KNOWN = ", ".join(METRICS)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "fit_seconds10%",
            '--fail "fit_seconds10%": expected METRIC:THRESHOLD, '
            "e.g. fit_seconds:10% or test_accuracy:-0.005",
        ),
        (":10%", '--fail ":10%": missing metric before the colon, e.g. fit_seconds:10%'),
        ("fit_secs:10%", f'--fail "fit_secs:10%": unknown metric "fit_secs"; known: {KNOWN}'),
        (
            "fit_seconds:",
            '--fail "fit_seconds:": missing threshold after the colon, e.g. fit_seconds:10%',
        ),
        (
            "fit_seconds:ten%",
            '--fail "fit_seconds:ten%": threshold "ten%" is not a number or a percentage, '
            "e.g. 10% or 0.5",
        ),
        (
            "fit_seconds:%",
            '--fail "fit_seconds:%": threshold "%" is not a number or a percentage, '
            "e.g. 10% or 0.5",
        ),
        (
            "fit_seconds:nan",
            '--fail "fit_seconds:nan": threshold "nan" is not a number or a percentage, '
            "e.g. 10% or 0.5",
        ),
        (
            "fit_seconds:10%:5",
            '--fail "fit_seconds:10%:5": threshold "10%:5" is not a number or a percentage, '
            "e.g. 10% or 0.5",
        ),
        (
            "fit_seconds:0%",
            '--fail "fit_seconds:0%": a percentage must be above 0%: it is how much worse '
            "fit_seconds may get, e.g. fit_seconds:10%",
        ),
        (
            "fit_seconds:-10%",
            '--fail "fit_seconds:-10%": a percentage must be above 0%: it is how much worse '
            "fit_seconds may get, e.g. fit_seconds:10%",
        ),
        (
            "test_accuracy:0",
            '--fail "test_accuracy:0": the threshold must not be 0: it is how much worse '
            "test_accuracy may get",
        ),
    ],
)
def test_fail_rule_rejects_malformed_text_with_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FailRule.parse(text)
    assert str(caught.value) == message


# --- regressions() --------------------------------------------------------------------


def test_regressions_name_each_failing_rule_in_one_line() -> None:
    baseline = frame(
        runs("dnn", fit_seconds=FAST, test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978]),
        runs("cnn-spe32", peak_memory_mb=[490.0, 495.0, 500.0, 505.0, 510.0]),
        runs("rnn", fit_seconds=[40.0, 41.0]),
    )
    candidate = frame(
        runs("dnn", fit_seconds=SLOW, test_accuracy=[0.970, 0.971, 0.969, 0.972, 0.968]),
        runs("cnn-spe32", peak_memory_mb=[640.0, 645.0, 650.0, 655.0, 660.0]),
        runs("rnn", fit_seconds=[50.0, 51.0]),
    )
    table = compare_runs(
        baseline,
        candidate,
        rules("fit_seconds:10%", "test_accuracy:-0.005", "peak_memory_mb:20%"),
    )
    assert regressions(table) == [
        "dnn fit_seconds: 10.0 s → 12.0 s (+20.0%, p=0.0079) exceeds 10%",
        "dnn test_accuracy: 0.9800 → 0.9700 (-0.0100, p=0.0079) exceeds 0.005",
        "cnn-spe32 peak_memory_mb: 500.0 MB → 650.0 MB (+30.0%, p=0.0079) exceeds 20%",
        "rnn fit_seconds: 40.5 s → 50.5 s (+24.7%, n=2 vs 2: significance cannot be told) "
        "exceeds 10%",
    ]


def test_regressions_name_the_backend_when_several_ran() -> None:
    table = compare_runs(
        frame(runs("dnn", "jax", fit_seconds=FAST), runs("dnn", "torch", fit_seconds=FAST)),
        frame(runs("dnn", "jax", fit_seconds=FAST), runs("dnn", "torch", fit_seconds=SLOW)),
        rules("fit_seconds:+1"),
    )
    assert regressions(table) == [
        "dnn (torch) fit_seconds: 10.0 s → 12.0 s (+2.00 s, p=0.0079) exceeds 1 s"
    ]


def test_regressions_are_empty_without_failing_rules() -> None:
    table = compare_runs(frame(runs("dnn", fit_seconds=FAST)), frame(runs("dnn", fit_seconds=SLOW)))
    assert row(table, "dnn", "fit_seconds")["verdict"] == "regressed"
    assert regressions(table) == []


# --- compare.csv and compare.png ------------------------------------------------------


def _example_table() -> pd.DataFrame:
    baseline = frame(
        runs(
            "dnn",
            fit_seconds=FAST,
            inference_samples_per_second=[50e3, 51e3, 52e3, 49e3, 50.5e3],
            test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978],
            peak_memory_mb=[490.0, 495.0, 500.0, 505.0, 510.0],
        ),
        runs("cnn-spe32", fit_seconds=[29.0, 30.0, 30.5, 31.0, 32.0]),
        runs("rnn", fit_seconds=[40.0, 41.0]),
    )
    candidate = frame(
        runs(
            "dnn",
            fit_seconds=SLOW,
            inference_samples_per_second=[50e3, 51e3, 52e3, 49e3, 50.5e3],
            test_accuracy=[0.970, 0.971, 0.969, 0.972, 0.968],
            peak_memory_mb=[540.0, 545.0, 550.0, 555.0, 560.0],
        ),
        runs("cnn-spe32", fit_seconds=[19.0, 20.0, 20.5, 21.0, 22.0]),
        runs("rnn", fit_seconds=[50.0, 51.0]),
        runs("rnn-jiton", fit_seconds=[50.0, 51.0, 52.0]),
    )
    return compare_runs(baseline, candidate, rules("fit_seconds:10%", "test_accuracy:-0.005"))


def test_write_compare_writes_the_table_as_csv(tmp_path: Path) -> None:
    table = _example_table()
    paths = write_compare(table, tmp_path)
    assert paths == [tmp_path / "compare.csv", tmp_path / "compare.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.csv", "compare.png"]
    written = pd.read_csv(tmp_path / "compare.csv", keep_default_na=False)
    assert list(written.columns) == COMPARE_COLUMNS
    assert len(written) == len(table) == 7  # dnn: 4 metrics; the others: fit_seconds
    first = written.iloc[0]
    assert (first["config_id"], first["metric"], first["verdict"]) == (
        "dnn",
        "fit_seconds",
        "regressed",
    )
    assert first["significant"] == "True"
    assert first["failed_rule"] == "fit_seconds:10%"
    # Not tested: the significance cell is empty, not "False".
    assert list(written.loc[written["config_id"] == "rnn", "significant"]) == [""]


def test_write_compare_draws_a_readable_png(tmp_path: Path) -> None:
    from matplotlib.image import imread

    write_compare(_example_table(), tmp_path)
    image = imread(tmp_path / "compare.png")
    # At 120 dpi. Wide: 2 x (4.2 + 2.0) in of panels and notes, 0.4 in, and 0.085 in per
    # character of the longest label ("cnn-spe32", 9). High: 1.3 in of title and legend,
    # and 2 rows of panels, each 1.1 in plus 0.38 in for each of the 4 configurations.
    assert image.shape[:2] == (784, 1627)
    rgb = image[..., :3]
    assert (rgb.reshape(-1, 3).std(axis=0) > 0.05).all()  # not blank

    def has(color: str) -> bool:
        target = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        return bool((abs(rgb - target).max(axis=-1) < 0.02).any())

    assert has("#c62828")  # a regressed bar
    assert has("#2e7d32")  # an improved bar


def test_write_compare_without_rows_writes_a_notice(tmp_path: Path) -> None:
    failed = frame(runs("dnn", status="failed", fit_seconds=[math.nan]))
    table = compare_runs(failed, failed)
    assert table.empty
    write_compare(table, tmp_path)
    assert pd.read_csv(tmp_path / "compare.csv").columns.tolist() == COMPARE_COLUMNS
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_importing_compare_stays_light() -> None:
    # The CLI imports it for `mnistbench compare`; `--help` must not pay for pandas.
    code = (
        "import sys, mnistbench.compare; "
        "print(sorted(m for m in ('pandas', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_a_config_whose_candidate_runs_all_failed_fails_its_rules() -> None:
    table = compare_runs(
        frame(runs("dnn", fit_seconds=FAST)),
        frame(runs("dnn", status="failed", fit_seconds=[math.nan] * 5)),
        rules("fit_seconds:10%"),
    )
    assert row(table, "dnn", "fit_seconds")["regression"]
    assert regressions(table) == [
        "dnn fit_seconds: 10.0 s → no successful candidate run; fails fit_seconds:10%"
    ]
