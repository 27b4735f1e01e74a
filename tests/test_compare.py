"""compare: baseline vs candidate runs, verdicts, --fail rules and compare.csv.

The runs are written by hand, as records: each test states the numbers it is about. Five
distinct values per side that do not overlap give the smallest exact two-sided
Mann-Whitney U p-value for 5 vs 5 repeats, 2 / C(10, 5) = 2 / 252. Unless a test
says otherwise, both sides did the same work: 5 epochs of 60,000 images. (compare.png is
tests/test_figures.py's; the output formats tests/test_markdown.py's and test_outputs.py's.)
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from synthetic_runs import (
    FAST,
    FULL,
    PROBE,
    SLOW,
    SMOKE,
    blank,
    invoke,
    png,
    probed,
    repeats,
    write_dir,
    write_older,
)

from mnistbench import record
from mnistbench.columns import metric
from mnistbench.compare import (
    COMPARE_COLUMNS,
    compare_runs,
    regressions,
    work_differences,
    write_compare_csv,
)
from mnistbench.errors import ConfigError
from mnistbench.figures import compare as compare_figure
from mnistbench.figures import style
from mnistbench.figures.compare import plot_compare
from mnistbench.gates import FailRule, compared_metrics, gated_metrics
from mnistbench.record import Run
from mnistbench.speeds import machine_comparison, normalized_lines

EXACT_P_5_VS_5_SEPARATED = 2 / 252  # 0.0079365...
CANNOT_TELL = "cannot tell (needs 4 repeats a side)"


def frame(*groups: list[Run]) -> pd.DataFrame:
    """The groups' runs as one typed table, as ``mnistbench compare`` reads a directory."""
    return record.frame([run for group in groups for run in group])


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
        frame(repeats("dnn", fit_seconds=FAST)),
        frame(repeats("dnn", fit_seconds=SLOW)),
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
        frame(repeats("dnn", fit_seconds=[9.0, 10.0, 11.0, 12.0, 13.0])),
        frame(repeats("dnn", fit_seconds=[8.5, 9.5, 12.5, 13.0, 14.5])),
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
        frame(repeats("dnn", fit_seconds=[9.0, 10.0, 11.0, 12.0, 13.0])),
        frame(repeats("dnn", fit_seconds=[8.5, 9.5, 12.5, 13.0, 14.5])),
        rules("fit_seconds:10%"),
        require_significance=False,
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["verdict"] == "no significant change"
    assert result["regression"]
    assert result["failed_rule"] == "fit_seconds:10%"


def test_two_repeats_cannot_tell_but_a_breached_threshold_still_fails() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[10.0, 10.2])),
        frame(repeats("dnn", fit_seconds=[12.0, 12.2])),
        rules("fit_seconds:10%"),
    )
    result = row(table, "dnn", "fit_seconds")
    assert (result["baseline_n"], result["candidate_n"]) == (2, 2)
    assert math.isnan(result["p_value"])
    assert pd.isna(result["significant"])
    assert result["verdict"] == CANNOT_TELL
    assert result["regression"]
    assert result["failed_rule"] == "fit_seconds:10%"


def test_two_repeats_within_the_threshold_pass() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[10.0, 10.2])),
        frame(repeats("dnn", fit_seconds=[10.5, 10.7])),  # +5 %
        rules("fit_seconds:10%"),
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["verdict"] == CANNOT_TELL
    assert not result["regression"]


def test_three_repeats_on_one_side_and_two_on_the_other_cannot_tell() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[10.0, 10.1, 10.2])),
        frame(repeats("dnn", fit_seconds=[12.0, 12.1])),
    )
    assert row(table, "dnn", "fit_seconds")["verdict"] == CANNOT_TELL


def test_accuracy_drop_beyond_an_absolute_threshold_fails() -> None:
    table = compare_runs(
        frame(repeats("cnn", test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978])),
        frame(repeats("cnn", test_accuracy=[0.970, 0.971, 0.969, 0.972, 0.968])),
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
        frame(repeats("cnn", test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978])),
        frame(repeats("cnn", test_accuracy=[0.977, 0.9775, 0.976, 0.9765, 0.9755])),  # -0.004
        rules("test_accuracy:-0.005"),
    )
    result = row(table, "cnn", "test_accuracy")
    assert result["verdict"] == "regressed"
    assert not result["regression"]


def test_memory_growth_beyond_20_percent_fails() -> None:
    table = compare_runs(
        frame(repeats("rnn", peak_memory_mb=[490.0, 495.0, 500.0, 505.0, 510.0])),
        frame(repeats("rnn", peak_memory_mb=[640.0, 645.0, 650.0, 655.0, 660.0])),  # +30 %
        rules("peak_memory_mb:20%"),
    )
    result = row(table, "rnn", "peak_memory_mb")
    assert result["ratio"] == 1.3
    assert result["verdict"] == "regressed"
    assert result["regression"]
    assert result["failed_rule"] == "peak_memory_mb:20%"


def test_memory_growth_within_20_percent_passes() -> None:
    table = compare_runs(
        frame(repeats("rnn", peak_memory_mb=[490.0, 495.0, 500.0, 505.0, 510.0])),
        frame(repeats("rnn", peak_memory_mb=[540.0, 545.0, 550.0, 555.0, 560.0])),  # +10 %
        rules("peak_memory_mb:20%"),
    )
    result = row(table, "rnn", "peak_memory_mb")
    assert result["verdict"] == "regressed"
    assert not result["regression"]


@pytest.mark.parametrize("require_significance", [True, False])
def test_an_improvement_is_never_a_regression(require_significance: bool) -> None:
    table = compare_runs(
        frame(
            repeats(
                "dnn",
                fit_seconds=SLOW,
                inference_samples_per_second=[40e3, 41e3, 42e3, 43e3, 44e3],
                test_accuracy=[0.970, 0.971, 0.969, 0.972, 0.968],
            )
        ),
        frame(
            repeats(
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
        frame(repeats("dnn", fit_seconds=FAST)),
        frame(repeats("dnn", fit_seconds=SLOW)),
        rules("fit_seconds:10%", "fit_seconds:+1.5", "fit_seconds:50%"),
    )
    assert row(table, "dnn", "fit_seconds")["failed_rule"] == "fit_seconds:10%; fit_seconds:+1.5"


# --- which runs and rows --------------------------------------------------------------


def test_failed_runs_are_excluded() -> None:
    baseline = frame(
        repeats("dnn", fit_seconds=FAST),
        repeats("dnn", status="failed", fit_seconds=[500.0, math.nan]),
    )
    table = compare_runs(baseline, frame(repeats("dnn", fit_seconds=FAST)))
    result = row(table, "dnn", "fit_seconds")
    assert result["baseline_n"] == 5
    assert result["baseline_median"] == 10.0
    assert result["verdict"] == "no significant change"


def test_configs_on_one_side_only_are_listed_and_never_gated() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=FAST), repeats("rnn", fit_seconds=FAST)),
        frame(repeats("dnn", fit_seconds=FAST), repeats("cnn-spe32", fit_seconds=SLOW)),
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
        frame(repeats("dnn", fit_seconds=FAST)),
        frame(repeats("dnn", status="failed", fit_seconds=[math.nan] * 5)),
    )
    assert row(table, "dnn", "fit_seconds")["verdict"] == "only in baseline"


@pytest.mark.parametrize(
    ("baseline", "candidate", "why"),
    [
        (repeats("dnn", fit_seconds=FAST), [], "the candidate has no runs"),
        (
            repeats("dnn", fit_seconds=FAST),
            repeats("cnn", fit_seconds=SLOW),
            "the candidate ran none of the baseline's configurations",
        ),
        (
            repeats("dnn", status="failed", fit_seconds=[math.nan] * 5),
            repeats("dnn", fit_seconds=SLOW),
            "the baseline has no successful run",
        ),
    ],
    ids=["empty-candidate", "disjoint", "failed-baseline"],
)
def test_a_gate_that_checks_no_configuration_is_refused(baseline, candidate, why) -> None:
    # Every row would be "only in" one side, which never fails: the gate would pass unseen.
    with pytest.raises(ConfigError) as error:
        compare_runs(frame(baseline), frame(candidate), rules("fit_seconds:10%"))
    assert str(error.value) == f"--fail gates nothing: {why}"
    # Without a rule the same comparison is a table of one-sided rows, as before.
    table = compare_runs(frame(baseline), frame(candidate))
    assert not table["regression"].any()


def test_cli_gate_against_a_sweep_without_runs_is_one_line_and_exit_2(tmp_path: Path) -> None:
    base = write_dir(tmp_path / "base", repeats("dnn", fit_seconds=FAST))
    cand = write_dir(tmp_path / "cand", [])
    result = invoke("compare", str(base), str(cand), "--fail", "fit_seconds:10%")
    assert result.exit_code == 2, result.output
    assert result.stderr == "Error: --fail gates nothing: the candidate has no runs\n"


def test_backends_are_compared_separately() -> None:
    table = compare_runs(
        frame(repeats("dnn", "jax", fit_seconds=FAST), repeats("dnn", "torch", fit_seconds=FAST)),
        frame(repeats("dnn", "jax", fit_seconds=FAST), repeats("dnn", "torch", fit_seconds=SLOW)),
    )
    assert row(table, "dnn", "fit_seconds", "jax")["verdict"] == "no significant change"
    assert row(table, "dnn", "fit_seconds", "torch")["verdict"] == "regressed"


def test_a_metric_an_older_runs_csv_lacks_reads_as_not_measured_and_is_never_gated(
    tmp_path: Path,
) -> None:
    # The baseline was written before latency_p95_ms existed: its runs did not measure it.
    older = tmp_path / "older"
    write_older(repeats("dnn", fit_seconds=FAST), older, lacking=["latency_p95_ms"])
    baseline = record.frame(record.read(older))
    assert baseline["latency_p95_ms"].isna().all()
    candidate = frame(repeats("dnn", fit_seconds=FAST, latency_p95_ms=[1.0] * 5))
    table = compare_runs(baseline, candidate, rules("latency_p95_ms:10%"))
    assert list(table["metric"]) == ["fit_seconds", "latency_p95_ms"]
    p95 = row(table, "dnn", "latency_p95_ms")
    assert (p95["verdict"], p95["baseline_n"], p95["candidate_n"]) == ("only in candidate", 0, 5)
    assert not table["regression"].any()
    assert regressions(table) == []


def test_a_candidate_that_did_not_measure_a_gated_metric_is_not_a_missing_result(
    tmp_path: Path,
) -> None:
    # The candidate's runs succeeded, written by an mnistbench without latency_p95_ms.
    older = tmp_path / "older"
    write_older(repeats("dnn", fit_seconds=FAST), older, lacking=["latency_p95_ms"])
    baseline = frame(repeats("dnn", fit_seconds=FAST, latency_p95_ms=[1.0] * 5))
    candidate = record.frame(record.read(older))
    table = compare_runs(baseline, candidate, rules("latency_p95_ms:10%"))
    p95 = row(table, "dnn", "latency_p95_ms")
    assert (p95["verdict"], p95["baseline_n"], p95["candidate_n"]) == ("only in baseline", 5, 0)
    assert not table["regression"].any()
    # A candidate whose runs all failed still fails the gate: no result is a regression.
    failed = repeats("dnn", fit_seconds=FAST, latency_p95_ms=[1.0] * 5)
    failed_candidate = frame([run.replace(status="failed", error="boom") for run in failed])
    gated = compare_runs(baseline, failed_candidate, rules("latency_p95_ms:10%"))
    assert row(gated, "dnn", "latency_p95_ms")["regression"]


def test_empty_cells_are_dropped_per_metric() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=FAST, time_to_accuracy_seconds=[math.nan] * 5)),
        frame(
            repeats(
                "dnn", fit_seconds=[*FAST[:4], math.nan], time_to_accuracy_seconds=[math.nan] * 5
            )
        ),
    )
    assert list(table["metric"]) == ["fit_seconds"]  # no target: no time-to-accuracy row
    assert row(table, "dnn", "fit_seconds")["candidate_n"] == 4


def test_rows_follow_config_order_then_runs_csv_metric_order() -> None:
    names = compared_metrics()
    metrics = {name: [1.0, 2.0, 3.0] for name in names}
    table = compare_runs(
        frame(repeats("b", **metrics), repeats("a", **metrics)), frame(repeats("a", **metrics))
    )
    assert names[:3] == ["fit_seconds", "steady_step_ms", "first_epoch_seconds"]
    assert len(names) == 12
    assert list(table["config_id"]) == ["b"] * len(names) + ["a"] * len(names)
    assert list(table["metric"]) == names * 2
    assert list(table["better"]) == [metric(name).better for name in names] * 2
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


KNOWN = (
    "fit_seconds, steady_step_ms, first_epoch_seconds, steady_epoch_seconds, "
    "time_to_accuracy_seconds, "
    "train_samples_per_second, test_accuracy, test_loss, inference_samples_per_second, "
    "latency_ms, latency_p95_ms, peak_memory_mb, fit_seconds_normalized, "
    "steady_epoch_seconds_normalized, inference_samples_per_second_normalized, "
    "latency_ms_normalized"
)


def test_gated_metrics_are_the_compared_ones_then_their_normalized_forms() -> None:
    assert ", ".join(gated_metrics()) == KNOWN
    assert gated_metrics()[: len(compared_metrics())] == compared_metrics()


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
        repeats("dnn", fit_seconds=FAST, test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978]),
        repeats("cnn-spe32", peak_memory_mb=[490.0, 495.0, 500.0, 505.0, 510.0]),
        repeats("rnn", fit_seconds=[40.0, 41.0]),
    )
    candidate = frame(
        repeats("dnn", fit_seconds=SLOW, test_accuracy=[0.970, 0.971, 0.969, 0.972, 0.968]),
        repeats("cnn-spe32", peak_memory_mb=[640.0, 645.0, 650.0, 655.0, 660.0]),
        repeats("rnn", fit_seconds=[50.0, 51.0]),
    )
    table = compare_runs(
        baseline,
        candidate,
        rules("fit_seconds:10%", "test_accuracy:-0.005", "peak_memory_mb:20%"),
    )
    assert regressions(table) == [
        # Three tests gated at once: each p-value times three (Holm).
        "dnn fit_seconds: 10.0 s → 12.0 s (+20.0%, p=0.0079, Holm-adjusted p=0.024) exceeds 10%",
        "dnn test_accuracy: 0.9800 → 0.9700 (-0.0100, p=0.0079, Holm-adjusted p=0.024) "
        "exceeds 0.005",
        "cnn-spe32 peak_memory_mb: 500.0 MB → 650.0 MB (+30.0%, p=0.0079, Holm-adjusted "
        "p=0.024) exceeds 20%",
        "rnn fit_seconds: 40.5 s → 50.5 s (+24.7%, n=2 vs 2: significance needs 4 repeats "
        "a side) exceeds 10%",
    ]


def test_regressions_name_the_backend_when_several_ran() -> None:
    table = compare_runs(
        frame(repeats("dnn", "jax", fit_seconds=FAST), repeats("dnn", "torch", fit_seconds=FAST)),
        frame(repeats("dnn", "jax", fit_seconds=FAST), repeats("dnn", "torch", fit_seconds=SLOW)),
        rules("fit_seconds:+1"),
    )
    assert regressions(table) == [
        "dnn (torch) fit_seconds: 10.0 s → 12.0 s (+2.00 s, p=0.0079, Holm-adjusted p=0.016) "
        "exceeds 1 s"
    ]


def test_regressions_are_empty_without_failing_rules() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=FAST)), frame(repeats("dnn", fit_seconds=SLOW))
    )
    assert row(table, "dnn", "fit_seconds")["verdict"] == "regressed"
    assert regressions(table) == []


# --- compare.csv and compare.png ------------------------------------------------------


def _example_table() -> pd.DataFrame:
    baseline = frame(
        repeats(
            "dnn",
            fit_seconds=FAST,
            inference_samples_per_second=[50e3, 51e3, 52e3, 49e3, 50.5e3],
            test_accuracy=[0.980, 0.981, 0.979, 0.982, 0.978],
            peak_memory_mb=[490.0, 495.0, 500.0, 505.0, 510.0],
        ),
        repeats("cnn-spe32", fit_seconds=[29.0, 30.0, 30.5, 31.0, 32.0]),
        repeats("rnn", fit_seconds=[40.0, 41.0]),
    )
    candidate = frame(
        repeats(
            "dnn",
            fit_seconds=SLOW,
            inference_samples_per_second=[50e3, 51e3, 52e3, 49e3, 50.5e3],
            test_accuracy=[0.970, 0.971, 0.969, 0.972, 0.968],
            peak_memory_mb=[540.0, 545.0, 550.0, 555.0, 560.0],
        ),
        repeats("cnn-spe32", fit_seconds=[19.0, 20.0, 20.5, 21.0, 22.0]),
        repeats("rnn", fit_seconds=[50.0, 51.0]),
        repeats("rnn-jiton", fit_seconds=[50.0, 51.0, 52.0]),
    )
    return compare_runs(baseline, candidate, rules("fit_seconds:10%", "test_accuracy:-0.005"))


def test_write_compare_csv_writes_the_table(tmp_path: Path) -> None:
    table = _example_table()
    assert write_compare_csv(table, tmp_path) == tmp_path / "compare.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.csv"]  # nothing left over
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


# --- compare.png ------------------------------------------------------------------------


def has_color(rgb, color: str) -> bool:
    """Whether some pixel of the image ``rgb`` (floats 0..1) is ``color`` (``#rrggbb``)."""
    target = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    return bool((abs(rgb - target).max(axis=-1) < 0.02).any())


def test_compare_png_is_readable(tmp_path: Path) -> None:
    from matplotlib.image import imread

    path = plot_compare(_example_table(), tmp_path / "compare.png")
    assert path == tmp_path / "compare.png"
    image = imread(path)
    # At 120 dpi. Wide: 2 x (4.2 + 2.0) in of panels and notes, 0.4 in, and 0.085 in per
    # character of the longest label ("cnn-spe32", 9). High: 1.5 in of title and legend,
    # and 2 rows of panels, each 1.1 in plus 0.38 in for each of the 4 configurations.
    assert image.shape[:2] == (808, 1627)
    rgb = image[..., :3]
    assert (rgb.reshape(-1, 3).std(axis=0) > 0.05).all()  # not blank
    assert has_color(rgb, "#c62828")  # a regressed bar
    assert has_color(rgb, "#2e7d32")  # an improved bar


def test_compare_figure_says_what_each_bar_is_and_shows_it_on_hover() -> None:
    fig = compare_figure.draw(_example_table())
    notes = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "+20.0%, p=0.0079\nFAILS: worse by > 10%" in notes  # dnn's fit time
    assert "only in candidate" in notes  # rnn-jiton
    tips = [text for text in style.tips(fig).values() if text.startswith("fit_seconds")]
    assert tips[0] == "fit_seconds: 10.0 s → 12.0 s (×1.200, p=0.0079, regressed)"
    svg = style.svg(fig, "compare")
    assert 'data-tip="fit_seconds: 10.0 s → 12.0 s (×1.200, p=0.0079, regressed)"' in svg


def test_compare_figure_marks_an_unchanged_ratio_and_keys_only_the_notes_it_has() -> None:
    same = frame(repeats("dnn", fit_seconds=[10.0, 10.0]))
    fig = compare_figure.draw(compare_runs(same, same))
    fit_panel = fig.axes[0]
    # A bar from 1.0 to 1.0 has no length: the ratio's own mark shows it, coloured by verdict.
    [mark] = [line for line in fit_panel.lines if line.get_marker() == "D"]
    assert (list(mark.get_xdata()), mark.get_markerfacecolor()) == (
        [1.0],
        compare_figure.VERDICT_COLORS["cannot tell (needs 4 repeats a side)"],
    )
    assert "+0.0%, n=2 vs 2" in [t.get_text() for t in fig.axes[1].texts]
    # The key explains "n=2 vs 2" and nothing this table lacks (no p-value, no different work).
    assert fig.get_suptitle() == (
        "Candidate vs baseline: ratio of medians per configuration\n"
        "n=B vs C: runs of baseline vs candidate, too few for a test (4 a side needed)"
    )


def test_compare_png_without_rows_is_a_notice_saying_why(tmp_path: Path) -> None:
    failed = frame(repeats("dnn", status="failed", fit_seconds=[math.nan]))
    table = compare_runs(failed, failed)
    assert table.empty
    write_compare_csv(table, tmp_path)
    assert pd.read_csv(tmp_path / "compare.csv").columns.tolist() == COMPARE_COLUMNS
    # A notice of 9 x 3 in, with something drawn on it, rather than a stale figure.
    image = png(plot_compare(table, tmp_path / "compare.png"))
    assert (image.format, image.size) == ("PNG", (1080, 360))
    assert not blank(image)
    fig = compare_figure.draw(table)
    assert fig.get_suptitle() == "Candidate vs baseline"
    assert [t.get_text() for t in fig.axes[0].texts] == [
        "Nothing to compare: neither side has a successful run\nwith a compared metric."
    ]


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
        frame(repeats("dnn", fit_seconds=FAST)),
        frame(repeats("dnn", status="failed", fit_seconds=[math.nan] * 5)),
        rules("fit_seconds:10%"),
    )
    assert row(table, "dnn", "fit_seconds")["regression"]
    assert regressions(table) == [
        "dnn fit_seconds: 10.0 s → no successful candidate run; fails fit_seconds:10%"
    ]


# --- too few repeats to test: the threshold decides -----------------------------------


def test_three_repeats_a_side_cannot_tell_however_large_the_change() -> None:
    # Exact two-sided Mann-Whitney U of 3 vs 3 cannot go below 2 / C(6, 3) = 0.1.
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[10.0, 10.1, 10.2])),
        frame(repeats("dnn", fit_seconds=[20.0, 20.1, 20.2])),
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["ratio"] == pytest.approx(20.1 / 10.1)
    assert math.isnan(result["p_value"])
    assert pd.isna(result["significant"])
    assert result["verdict"] == CANNOT_TELL


def test_three_repeats_a_side_beyond_the_threshold_fails_saying_what_significance_needs() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[10.0, 10.1, 10.2])),
        frame(repeats("dnn", fit_seconds=[20.0, 20.1, 20.2])),
        rules("fit_seconds:10%"),
    )
    assert row(table, "dnn", "fit_seconds")["failed_rule"] == "fit_seconds:10%"
    assert regressions(table) == [
        "dnn fit_seconds: 10.1 s → 20.1 s (+99.0%, n=3 vs 3: significance needs 4 repeats "
        "a side) exceeds 10%"
    ]


def test_three_repeats_a_side_within_the_threshold_pass() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[10.0, 10.1, 10.2])),
        frame(repeats("dnn", fit_seconds=[10.5, 10.6, 10.7])),  # +5 %
        rules("fit_seconds:10%"),
    )
    assert row(table, "dnn", "fit_seconds")["verdict"] == CANNOT_TELL
    assert regressions(table) == []


def test_three_against_four_cannot_tell() -> None:
    # 2 / C(7, 3) = 0.057: still not below 0.05.
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[10.0, 10.1, 10.2])),
        frame(repeats("dnn", fit_seconds=[12.0, 12.1, 12.2, 12.3])),
    )
    assert row(table, "dnn", "fit_seconds")["verdict"] == CANNOT_TELL


def test_four_repeats_a_side_separated_are_a_significant_regression() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[9.9, 10.0, 10.1, 10.2])),
        frame(repeats("dnn", fit_seconds=[11.9, 12.0, 12.1, 12.2])),
        rules("fit_seconds:10%"),
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["p_value"] == pytest.approx(2 / 70, rel=1e-12)
    assert result["verdict"] == "regressed"
    assert result["failed_rule"] == "fit_seconds:10%"


def test_three_against_five_separated_are_tested() -> None:
    # 2 / C(8, 3) = 0.036: below 0.05, so the test is run.
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=[10.0, 10.1, 10.2])),
        frame(repeats("dnn", fit_seconds=SLOW)),
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["p_value"] == pytest.approx(2 / 56, rel=1e-12)
    assert result["verdict"] == "regressed"


def test_three_repeats_a_side_with_a_large_slowdown_exit_1_from_the_cli(tmp_path: Path) -> None:
    base = write_dir(tmp_path / "base", repeats("dnn", fit_seconds=[10.0, 10.1, 10.2]))
    cand = write_dir(tmp_path / "cand", repeats("dnn", fit_seconds=[20.0, 20.1, 20.2]))
    result = invoke("compare", str(base), str(cand), "--fail", "fit_seconds:10%")
    assert result.exit_code == 1, result.output
    assert (
        "regression: dnn fit_seconds: 10.1 s → 20.1 s (+99.0%, n=3 vs 3: significance needs "
        "4 repeats a side) exceeds 10%\n"
    ) in result.stderr


# --- different work: no verdict, and no gate --------------------------------------------


def test_runs_that_did_different_work_get_no_verdict() -> None:
    table = compare_runs(
        frame(repeats("dnn", work=SMOKE, fit_seconds=FAST, test_accuracy=[0.90] * 5)),
        frame(repeats("dnn", fit_seconds=[50.0, 50.1, 50.2, 50.3, 50.4], test_accuracy=[0.98] * 5)),
    )
    assert list(table["metric"]) == ["fit_seconds", "test_accuracy"]
    assert list(table["verdict"]) == ["different work"] * 2
    assert list(table["different_work"]) == ["epochs 1 vs 5, train_samples 3,000 vs 60,000"] * 2
    assert table["p_value"].isna().all()
    assert table["significant"].isna().all()
    # The medians and ratio stay: they are facts, only their meaning is in doubt.
    assert row(table, "dnn", "fit_seconds")["ratio"] == pytest.approx(50.2 / 10.0)
    assert work_differences(table) == [
        "dnn: different work: epochs 1 vs 5, train_samples 3,000 vs 60,000"
    ]


def test_each_work_option_that_differs_is_named_side_by_side() -> None:
    baseline_work = {"batch_size": 32, "test_samples": 10000}
    candidate_work = {"batch_size": 128, "test_samples": 2000}
    table = compare_runs(
        frame(repeats("dnn", work=baseline_work, fit_seconds=FAST)),
        frame(repeats("dnn", work=candidate_work, fit_seconds=FAST)),
    )
    assert row(table, "dnn", "fit_seconds")["different_work"] == (
        "batch_size 32 vs 128, test_samples 10,000 vs 2,000"
    )


def test_the_same_work_is_compared_with_an_empty_different_work() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=FAST)), frame(repeats("dnn", fit_seconds=SLOW))
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["verdict"] == "regressed"
    assert result["different_work"] == ""
    assert work_differences(table) == []


def test_only_the_configuration_that_did_different_work_loses_its_verdict() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=FAST), repeats("cnn", work=SMOKE, fit_seconds=FAST)),
        frame(repeats("dnn", fit_seconds=SLOW), repeats("cnn", fit_seconds=SLOW)),
    )
    assert list(table["verdict"]) == ["regressed", "different work"]


def test_with_a_target_the_epochs_trained_are_an_outcome_not_work() -> None:
    # The candidate reached 0.97 in 2 epochs, the baseline in 3: the same work, done faster.
    target = {"target_accuracy": 0.97, "epochs": 3}
    table = compare_runs(
        frame(repeats("dnn", work=target, time_to_accuracy_seconds=SLOW)),
        frame(repeats("dnn", work={**target, "epochs": 2}, time_to_accuracy_seconds=FAST)),
    )
    result = row(table, "dnn", "time_to_accuracy_seconds")
    assert result["different_work"] == ""
    assert result["verdict"] == "improved"


def test_different_targets_are_different_work() -> None:
    table = compare_runs(
        frame(repeats("dnn", work={"target_accuracy": 0.97}, fit_seconds=FAST)),
        frame(repeats("dnn", work={"target_accuracy": 0.98}, fit_seconds=FAST)),
    )
    assert row(table, "dnn", "fit_seconds")["different_work"] == "target_accuracy 0.97 vs 0.98"


def test_a_target_on_one_side_only_is_different_work() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=FAST)),
        frame(repeats("dnn", work={"target_accuracy": 0.97, "epochs": 2}, fit_seconds=FAST)),
    )
    assert row(table, "dnn", "fit_seconds")["different_work"] == "target_accuracy none vs 0.97"


def test_with_a_target_different_evaluation_intervals_are_different_work() -> None:
    table = compare_runs(
        frame(repeats("dnn", work={"target_accuracy": 0.97}, fit_seconds=FAST)),
        frame(repeats("dnn", work={"target_accuracy": 0.97, "eval_every": 200}, fit_seconds=FAST)),
    )
    assert row(table, "dnn", "fit_seconds")["different_work"] == "eval_every each epoch vs 200"


def test_work_columns_an_older_runs_csv_lacks_are_not_compared(tmp_path: Path) -> None:
    older = tmp_path / "older"
    write_older(repeats("dnn", fit_seconds=FAST), older, lacking=list(FULL))
    baseline = record.frame(record.read(older))
    table = compare_runs(baseline, frame(repeats("dnn", work=SMOKE, fit_seconds=SLOW)))
    result = row(table, "dnn", "fit_seconds")
    assert result["different_work"] == ""
    assert result["verdict"] == "regressed"


def test_fail_rules_on_different_work_are_an_error_naming_the_options() -> None:
    with pytest.raises(ConfigError) as caught:
        compare_runs(
            frame(repeats("dnn", work=SMOKE, fit_seconds=FAST), repeats("cnn", fit_seconds=FAST)),
            frame(repeats("dnn", fit_seconds=SLOW), repeats("cnn", fit_seconds=FAST)),
            rules("fit_seconds:10%"),
        )
    assert str(caught.value) == (
        "--fail cannot gate runs that did different work (dnn: epochs 1 vs 5, "
        "train_samples 3,000 vs 60,000); rerun with the same options, "
        "or pass --allow-different-work"
    )


def test_allowing_different_work_tests_and_gates_as_usual() -> None:
    table = compare_runs(
        frame(repeats("dnn", work=SMOKE, fit_seconds=FAST)),
        frame(repeats("dnn", fit_seconds=SLOW)),
        rules("fit_seconds:10%"),
        allow_different_work=True,
    )
    result = row(table, "dnn", "fit_seconds")
    assert result["verdict"] == "regressed"
    assert result["different_work"] == "epochs 1 vs 5, train_samples 3,000 vs 60,000"
    assert result["failed_rule"] == "fit_seconds:10%"


def test_cli_fail_on_different_work_is_one_line_and_exit_2(tmp_path: Path) -> None:
    base = write_dir(tmp_path / "smoke", repeats("dnn", work=SMOKE, fit_seconds=FAST))
    cand = write_dir(tmp_path / "full", repeats("dnn", fit_seconds=SLOW))
    result = invoke("compare", str(base), str(cand), "--fail", "fit_seconds:10%")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "Error: --fail cannot gate runs that did different work (dnn: epochs 1 vs 5, "
        "train_samples 3,000 vs 60,000); rerun with the same options, "
        "or pass --allow-different-work\n"
    )
    assert not (cand / "compare.csv").exists()


def test_cli_without_fail_reports_different_work_and_no_verdict(tmp_path: Path) -> None:
    base = write_dir(tmp_path / "smoke", repeats("dnn", work=SMOKE, fit_seconds=FAST))
    cand = write_dir(tmp_path / "full", repeats("dnn", fit_seconds=SLOW))
    result = invoke("compare", str(base), str(cand))
    assert result.exit_code == 0, result.output
    assert (
        "warning: dnn: different work: epochs 1 vs 5, train_samples 3,000 vs 60,000: no verdict\n"
    ) in result.stderr
    assert "different work" in result.stdout
    assert "regressed" not in result.stdout
    written = pd.read_csv(cand / "compare.csv", keep_default_na=False)
    assert list(written["verdict"]) == ["different work"]
    assert list(written["different_work"]) == ["epochs 1 vs 5, train_samples 3,000 vs 60,000"]


def test_cli_allow_different_work_gates_with_a_warning(tmp_path: Path) -> None:
    base = write_dir(tmp_path / "smoke", repeats("dnn", work=SMOKE, fit_seconds=FAST))
    cand = write_dir(tmp_path / "full", repeats("dnn", fit_seconds=SLOW))
    result = invoke(
        "compare", str(base), str(cand), "--fail", "fit_seconds:10%", "--allow-different-work"
    )
    assert result.exit_code == 1, result.output
    assert (
        "warning: dnn: different work: epochs 1 vs 5, train_samples 3,000 vs 60,000: "
        "compared anyway\n"
    ) in result.stderr
    assert "regression: dnn fit_seconds: 10.0 s → 12.0 s (+20.0%, p=0.0079) exceeds 10%\n" in (
        result.stderr
    )


# --- compare.png with every verdict ----------------------------------------------------


def every_verdict_table() -> pd.DataFrame:
    """One configuration per verdict, on fit_seconds; the improved one on two panels."""
    baseline = frame(
        repeats("improved", fit_seconds=SLOW, peak_memory_mb=[600.0, 601.0, 602.0, 603.0, 604.0]),
        repeats("regressed", fit_seconds=FAST),
        repeats("unchanged", fit_seconds=FAST),
        repeats("three-repeats", fit_seconds=[10.0, 10.1, 10.2]),
        repeats("smoke-sweep", work=SMOKE, fit_seconds=FAST),
        repeats("dropped", fit_seconds=FAST),
    )
    candidate = frame(
        repeats("improved", fit_seconds=FAST, peak_memory_mb=[500.0, 501.0, 502.0, 503.0, 504.0]),
        repeats("regressed", fit_seconds=SLOW),
        repeats("unchanged", fit_seconds=[9.9, 10.0, 10.1, 10.2, 10.3]),
        repeats("three-repeats", fit_seconds=[12.0, 12.1, 12.2]),
        repeats("smoke-sweep", fit_seconds=[50.0, 50.1, 50.2, 50.3, 50.4]),
        repeats("added", fit_seconds=FAST),
    )
    return compare_runs(baseline, candidate)


def test_every_verdict_table_has_every_verdict() -> None:
    table = every_verdict_table()
    fit = table[table["metric"] == "fit_seconds"]
    assert list(fit["verdict"]) == [
        "improved",
        "regressed",
        "no significant change",
        CANNOT_TELL,
        "different work",
        "only in baseline",
        "only in candidate",
    ]


def test_compare_png_colours_each_verdict(tmp_path: Path) -> None:
    from matplotlib.image import imread

    rgb = imread(plot_compare(every_verdict_table(), tmp_path / "compare.png"))[..., :3]
    assert has_color(rgb, "#2e7d32")  # improved
    assert has_color(rgb, "#c62828")  # regressed
    assert has_color(rgb, "#9e9e9e")  # no significant change
    assert has_color(rgb, "#cfcfcf")  # cannot tell


# --- normalized by the speed probe ------------------------------------------------------


def test_a_machine_twice_as_slow_regresses_raw_but_not_normalized() -> None:
    slow_machine = [p * 2 for p in PROBE]
    baseline, candidate = (
        frame(probed("dnn", FAST, PROBE)),
        frame(probed("dnn", [f * 2 for f in FAST], slow_machine)),
    )
    machines = machine_comparison(baseline, candidate)
    fit = row(compare_runs(baseline, candidate), "dnn", "fit_seconds")
    assert (fit["verdict"], fit["ratio"]) == ("regressed", pytest.approx(2.0))
    assert (fit["normalized_verdict"], fit["normalized_ratio"]) == (
        "no significant change",
        pytest.approx(1.0),
    )
    assert machines.ratio == pytest.approx(2.0)
    assert normalized_lines(compare_runs(baseline, candidate), machines) == [
        "candidate's machine 2.00× slower by the probe (probe 0.04 s vs 0.02 s)",
        "dnn: fit time ×2.00 (regressed); normalized ×1.00: no significant change",
    ]


def test_a_slower_code_path_on_the_same_machine_regresses_normalized_too() -> None:
    baseline, candidate = frame(probed("dnn", FAST, PROBE)), frame(probed("dnn", SLOW, PROBE))
    table = compare_runs(baseline, candidate, rules("fit_seconds_normalized:10%"))
    fit = row(table, "dnn", "fit_seconds")
    assert (fit["normalized_verdict"], fit["regression"]) == ("regressed", True)
    assert fit["failed_rule"] == "fit_seconds_normalized:10%"
    assert regressions(table) == [
        "dnn fit_seconds_normalized: 500.0000 → 600.0000 (+20.0%, p=0.0079) exceeds 10%"
    ]
    assert normalized_lines(table, machine_comparison(baseline, candidate))[0] == (
        "both machines ran at the same speed by the probe (×1.00, probe 0.02 s vs 0.02 s)"
    )


def test_a_normalized_rule_does_not_fail_when_only_the_machine_slowed() -> None:
    baseline = frame(probed("dnn", FAST, PROBE))
    candidate = frame(probed("dnn", [f * 2 for f in FAST], [p * 2 for p in PROBE]))
    table = compare_runs(baseline, candidate, rules("fit_seconds_normalized:10%"))
    assert regressions(table) == []


@pytest.mark.parametrize(
    ("candidate_extra", "environments", "reason"),
    [
        (
            {"backend_version": "2.21.0"},
            (None, None),
            "tensorflow versions differ (2.20.0 vs 2.21.0)",
        ),
        ({}, ({"cpu": "CPU A"}, {"cpu": "CPU B"}), "CPU models differ (CPU A vs CPU B)"),
    ],
)
def test_normalized_figures_are_never_compared_across_backend_versions_or_cpus(
    candidate_extra, environments, reason
) -> None:
    baseline = frame(probed("dnn", FAST, PROBE))
    candidate = frame(probed("dnn", SLOW, PROBE, **candidate_extra))
    machines = machine_comparison(baseline, candidate, *environments)
    assert machines.withheld == reason
    table = compare_runs(baseline, candidate, normalization_withheld=machines.withheld)
    fit = row(table, "dnn", "fit_seconds")
    assert fit["verdict"] == "regressed" and fit["normalized_verdict"] == ""
    assert math.isnan(fit["normalized_ratio"])
    # Sides described by different CPUs ran on different machines, and compare says so first.
    different = [f"the sides ran on different machines: baseline on {environments[0]['cpu']}, "
                 f"candidate on {environments[1]['cpu']}"] if environments[0] else []  # fmt: skip
    assert normalized_lines(table, machines) == [
        *different,
        f"normalized figures not compared: {reason}; raw figures only",
    ]
    with pytest.raises(ConfigError, match="gate the raw metric instead"):
        compare_runs(
            baseline, candidate, rules("fit_seconds_normalized:10%"), normalization_withheld=reason
        )


def test_runs_without_a_probe_are_not_normalized() -> None:
    baseline = frame(repeats("dnn", fit_seconds=FAST))
    machines = machine_comparison(baseline, frame(probed("dnn", SLOW, PROBE)))
    assert machines.withheld == "the baseline's runs have no speed probe"


def test_cli_says_when_the_candidate_machine_was_slower(tmp_path: Path) -> None:
    base = write_dir(tmp_path / "base", probed("dnn", FAST, PROBE))
    cand = write_dir(
        tmp_path / "cand", probed("dnn", [f * 2 for f in FAST], [p * 2 for p in PROBE])
    )
    result = invoke("compare", str(base), str(cand), "--fail", "fit_seconds_normalized:10%")
    assert result.exit_code == 0, result.output
    assert "machine: candidate's machine 2.00× slower by the probe" in result.stderr
    assert "machine: dnn: fit time ×2.00 (regressed); normalized ×1.00: no significant change" in (
        result.stderr
    )


def test_a_failed_run_without_a_probe_does_not_make_probe_versions_differ() -> None:
    baseline = frame(probed("dnn", FAST, PROBE))
    candidate = frame(
        probed("dnn", SLOW, PROBE), repeats("dnn", status="failed", fit_seconds=[None])
    )
    assert machine_comparison(baseline, candidate).withheld == ""


def test_a_configuration_on_one_side_only_has_no_normalized_line() -> None:
    baseline = frame(probed("dnn", FAST, PROBE))
    candidate = frame(probed("dnn", FAST, PROBE), probed("cnn", SLOW, PROBE))
    table = compare_runs(baseline, candidate)
    lines = normalized_lines(table, machine_comparison(baseline, candidate))
    assert [line.split(":")[0] for line in lines[1:]] == ["dnn"]


def test_a_candidate_whose_runs_all_failed_fails_a_normalized_rule_rather_than_an_error() -> None:
    baseline = frame(probed("dnn", FAST, PROBE))
    # As runs.csv holds them: every column, empty for a failed run.
    candidate = frame(
        repeats("dnn", status="failed", fit_seconds=[None] * 5, fit_seconds_normalized=[None] * 5)
    )
    machines = machine_comparison(baseline, candidate)
    assert machines.withheld == ""
    assert machines.line() == "no machine speed to compare: a side has no successful run"
    table = compare_runs(
        baseline,
        candidate,
        rules("fit_seconds_normalized:15%"),
        normalization_withheld=machines.withheld,
    )
    fit = row(table, "dnn", "fit_seconds")
    assert (fit["verdict"], fit["regression"], fit["failed_rule"]) == (
        "only in baseline",
        True,
        "fit_seconds_normalized:15%",
    )


# --- intervals and many gates at once --------------------------------------------------


def test_every_ratio_has_its_bootstrap_interval() -> None:
    table = compare_runs(
        frame(repeats("dnn", fit_seconds=FAST)), frame(repeats("dnn", fit_seconds=SLOW))
    )
    result = row(table, "dnn", "fit_seconds")
    # Each side's median resampled: the ratio's interval lies between the extremes' ratios.
    assert 11.8 / 10.2 <= result["ratio_low"] < 1.2 < result["ratio_high"] <= 12.2 / 9.8
    assert math.isnan(result["p_holm"])  # no rule gates it: no family to adjust in


@pytest.mark.parametrize("configurations, fails", [(6, True), (7, False)])
def test_the_gates_of_many_configurations_keep_one_false_alarm_rate(configurations, fails):
    # Each 5-vs-5 test alone: p = 2/252 = 0.0079, "regressed". Gated together, Holm
    # multiplies the smallest by the number of tests: 6 × 0.0079 = 0.048 still fails,
    # 7 × 0.0079 = 0.056 no longer does.
    names = [f"c{i}" for i in range(configurations)]
    table = compare_runs(
        frame(*(repeats(name, fit_seconds=FAST, test_accuracy=[0.9] * 5) for name in names)),
        frame(*(repeats(name, fit_seconds=SLOW, test_accuracy=[0.9] * 5) for name in names)),
        rules("fit_seconds:10%"),
    )
    fit = table[table["metric"] == "fit_seconds"]
    assert set(fit["verdict"]) == {"regressed"}
    assert fit["p_holm"].tolist() == pytest.approx(
        [configurations * EXACT_P_5_VS_5_SEPARATED] * configurations
    )
    assert fit["regression"].tolist() == [fails] * configurations
    assert math.isnan(row(table, "c0", "test_accuracy")["p_holm"])  # not gated


def test_compare_says_when_the_sides_ran_on_different_machines() -> None:
    baseline, candidate = frame(probed("dnn", FAST, PROBE)), frame(probed("dnn", FAST, PROBE))
    labelled = [{"machine": {"label": name}} for name in ("runner-a", "runner-b")]
    machines = machine_comparison(baseline, candidate, *labelled)
    assert machines.machines == ("runner-a", "runner-b")
    table = compare_runs(baseline, candidate)
    assert normalized_lines(table, machines)[0] == (
        "the sides ran on different machines: baseline on runner-a, candidate on runner-b"
    )
    same = machine_comparison(baseline, candidate, labelled[0], labelled[0])
    assert not any("different machines" in line for line in normalized_lines(table, same))
