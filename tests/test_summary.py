"""The headline table (``comparison.csv``): one row per configuration, its medians with their
spread, ratios to the best, counts and first error (mnistbench.summary)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from synthetic_runs import (
    NEWER_COLUMNS,
    TIGHT_FIT_SECONDS,
    as_read,
    older_runs,
    repeat_rows,
    run_row,
    sweep_rows,
    target_rows,
)

from mnistbench.columns import HEADLINE, in_view
from mnistbench.stats import NOISY_CV
from mnistbench.summary import COUNTS, IDS, comparison_table, headline_metrics


@pytest.fixture
def runs(tmp_path) -> pd.DataFrame:
    return as_read(sweep_rows(), tmp_path)


# The headline metrics of comparison.csv, in runs.csv order.
HEADLINE_COLUMNS = [
    "fit_seconds", "steady_step_ms", "first_epoch_seconds", "steady_epoch_seconds",
    "seconds_per_epoch", "time_to_accuracy_seconds", "train_samples_per_second",
    "test_accuracy", "test_loss",
    "inference_samples_per_second", "latency_ms", "latency_p95_ms", "latency_p99_ms", "params",
    "train_flops_per_second", "train_peak_fraction", "inference_peak_fraction", "peak_memory_mb",
    "probe_seconds",
]  # fmt: skip


def test_comparison_table_columns_are_ids_counts_medians_ratios_spreads_and_error(runs):
    ratios = [f"{metric}_ratio_to_best" for metric in HEADLINE_COLUMNS]
    spreads = [
        f"{metric}_{stat}"
        for metric in HEADLINE_COLUMNS
        for stat in ("min", "max", "iqr", "stdev", "cv", "noisy")
    ]
    assert list(comparison_table(runs).columns) == [
        "config_id", "architecture", "backend", "steps_per_execution", "jit_compile",
        "status", "runs", "failed", "converged", "noisy_metrics",
        *HEADLINE_COLUMNS, *ratios, *spreads, "error",
    ]  # fmt: skip
    assert (IDS, COUNTS) == (
        ("config_id", "architecture", "backend", "steps_per_execution", "jit_compile"),
        ("status", "runs", "failed", "converged", "noisy_metrics"),
    )


def test_headline_metrics_are_the_registrys_headline_view_in_runs_csv_order():
    assert [column.name for column in headline_metrics()] == HEADLINE_COLUMNS
    assert headline_metrics() == in_view(HEADLINE)


def test_metrics_an_older_runs_csv_lacks_are_not_measured(tmp_path):
    table = comparison_table(older_runs(sweep_rows(), tmp_path))
    # Its runs read them as not measured: the table has the columns, all empty.
    measured = [metric for metric in HEADLINE_COLUMNS if table[metric].notna().any()]
    assert measured == [
        "fit_seconds", "seconds_per_epoch", "train_samples_per_second", "test_accuracy",
        "test_loss", "inference_samples_per_second", "latency_ms", "params", "peak_memory_mb",
    ]  # fmt: skip
    assert not set(measured) & set(NEWER_COLUMNS)
    assert table["first_epoch_seconds_ratio_to_best"].isna().all()


def test_an_older_runs_csv_without_config_id_is_grouped_by_architecture(tmp_path):
    table = comparison_table(older_runs(sweep_rows(), tmp_path))
    assert table["config_id"].tolist() == ["dnn", "rnn", "cnn", "lstm"]
    assert table["architecture"].tolist() == ["dnn", "rnn", "cnn", "lstm"]
    assert table["runs"].tolist() == [2, 1, 1, 0]
    assert table["steps_per_execution"].isna().all()


def test_comparison_table_has_one_row_per_architecture_in_run_order_with_counts(runs):
    table = comparison_table(runs)
    assert table["architecture"].tolist() == ["dnn", "rnn", "cnn", "lstm"]
    assert table["runs"].tolist() == [2, 1, 1, 0]
    assert table["failed"].tolist() == [0, 0, 0, 1]
    assert table["status"].tolist() == ["ok", "ok", "ok", "failed"]


def test_comparison_table_holds_medians_over_successful_runs(runs):
    dnn = comparison_table(runs).set_index("architecture").loc["dnn"]
    assert dnn["fit_seconds"] == pytest.approx(32.0)
    assert dnn["seconds_per_epoch"] == pytest.approx(16.0)
    assert dnn["test_accuracy"] == pytest.approx(0.972)
    assert dnn["inference_samples_per_second"] == pytest.approx(49000.0)
    assert dnn["params"] == 118_282


def test_ratio_to_best_is_one_for_the_best_and_value_over_best_for_the_others(runs):
    table = comparison_table(runs).set_index("architecture")
    # fit_seconds: lower is better, the best is dnn's 32 s.
    assert table.loc[["dnn", "rnn", "cnn"], "fit_seconds_ratio_to_best"].tolist() == [
        1.0, 6.125, 2.0,
    ]  # fmt: skip
    # test_accuracy and throughput: higher is better, so the others are below 1.
    assert table.loc["cnn", "test_accuracy_ratio_to_best"] == 1.0
    assert table.loc["dnn", "test_accuracy_ratio_to_best"] == round(0.972 / 0.982, 4)
    assert table.loc["dnn", "inference_samples_per_second_ratio_to_best"] == 1.0
    assert table.loc["rnn", "inference_samples_per_second_ratio_to_best"] == round(9 / 49, 4)


def test_failed_architecture_has_its_error_and_no_metrics(runs):
    lstm = comparison_table(runs).set_index("architecture").loc["lstm"]
    assert lstm["error"] == "ValueError: expected ndim=3, found ndim=2"
    assert math.isnan(lstm["fit_seconds"])
    assert math.isnan(lstm["fit_seconds_ratio_to_best"])


def test_failed_repeat_is_counted_but_not_in_the_median(tmp_path):
    rows = [*sweep_rows(), run_row("dnn", 2, error="TimeoutError: stopped after 600 s")]
    dnn = comparison_table(as_read(rows, tmp_path)).set_index("architecture").loc["dnn"]
    assert (dnn["status"], dnn["runs"], dnn["failed"]) == ("partial", 2, 1)
    assert dnn["fit_seconds"] == pytest.approx(32.0)


def test_runs_are_grouped_by_backend_when_several_backends_ran(tmp_path):
    rows = [
        run_row("dnn", fit_seconds=30.0),
        run_row("dnn", fit_seconds=20.0, backend="jax"),
        run_row("cnn", fit_seconds=60.0),
    ]
    table = comparison_table(as_read(rows, tmp_path))
    assert list(zip(table["architecture"], table["backend"], strict=True)) == [
        ("dnn", "tensorflow"),
        ("dnn", "jax"),
        ("cnn", "tensorflow"),
    ]
    assert table["fit_seconds_ratio_to_best"].tolist() == [1.5, 1.0, 3.0]


def test_spread_of_three_repeats_is_their_min_max_iqr_stdev_and_cv(tmp_path):
    dnn = comparison_table(as_read(repeat_rows(), tmp_path)).iloc[0]
    # 30, 33 and 39 s: quartiles interpolate to 31.5 and 36 s; the mean is 34 s.
    stdev = math.sqrt(((30 - 34) ** 2 + (33 - 34) ** 2 + (39 - 34) ** 2) / 2)
    stats = ["fit_seconds", "fit_seconds_min", "fit_seconds_max", "fit_seconds_iqr"]
    assert dnn[stats].tolist() == [33.0, 30.0, 39.0, 4.5]
    assert dnn["fit_seconds_stdev"] == pytest.approx(stdev)  # sqrt(21) = 4.58 s
    assert dnn["fit_seconds_cv"] == pytest.approx(stdev / 34)  # 0.135


def test_metric_whose_cv_exceeds_ten_percent_is_noisy(tmp_path):
    dnn = comparison_table(as_read(repeat_rows(), tmp_path)).iloc[0]
    assert NOISY_CV == 0.10
    assert dnn["fit_seconds_cv"] > NOISY_CV
    assert dnn["fit_seconds_noisy"] is True


def test_metric_whose_repeats_agree_is_not_noisy(tmp_path):
    dnn = comparison_table(as_read(repeat_rows(), tmp_path)).iloc[0]
    # 0.970, 0.980, 0.975: stdev 0.005 over a mean of 0.975.
    assert dnn["test_accuracy_cv"] == pytest.approx(0.005 / 0.975)
    assert dnn["test_accuracy_noisy"] is False


def test_noisy_metrics_names_every_noisy_metric_in_column_order(tmp_path):
    dnn = comparison_table(as_read(repeat_rows(), tmp_path)).iloc[0]
    # Epoch time and throughput follow the fit time, so they are as noisy.
    assert dnn["noisy_metrics"] == "fit_seconds seconds_per_epoch train_samples_per_second"


def test_noisy_metrics_is_empty_when_repeats_agree(tmp_path):
    rows = repeat_rows(fit_seconds=TIGHT_FIT_SECONDS)
    assert comparison_table(as_read(rows, tmp_path))["noisy_metrics"].tolist() == [""]


def test_a_single_run_has_a_median_but_no_stdev_cv_or_noisy_flag(runs):
    rnn = comparison_table(runs).set_index("config_id").loc["rnn"]
    stats = ["fit_seconds", "fit_seconds_min", "fit_seconds_max", "fit_seconds_iqr"]
    assert rnn[stats].tolist() == [196.0, 196.0, 196.0, 0.0]
    assert math.isnan(rnn["fit_seconds_stdev"]) and math.isnan(rnn["fit_seconds_cv"])
    assert rnn["fit_seconds_noisy"] is None
    assert rnn["noisy_metrics"] == ""


def test_configurations_of_one_architecture_are_separate_rows(tmp_path):
    rows = [
        *repeat_rows("dnn", fit_seconds=TIGHT_FIT_SECONDS),
        *repeat_rows("dnn-spe32", fit_seconds=(15.0, 16.0, 17.0), steps_per_execution=32),
        run_row("cnn", config_id="cnn", fit_seconds=60.0),
    ]
    table = comparison_table(as_read(rows, tmp_path))
    columns = ["config_id", "architecture", "steps_per_execution", "jit_compile", "runs"]
    assert table[columns].values.tolist() == [
        ["dnn", "dnn", 1, True, 3],
        ["dnn-spe32", "dnn", 32, True, 3],
        ["cnn", "cnn", 1, True, 1],
    ]
    assert table["fit_seconds_ratio_to_best"].tolist() == [31 / 16, 1.0, 60 / 16]


def test_configuration_and_backend_form_the_group_when_several_backends_ran(tmp_path):
    spe32 = {"config_id": "dnn-spe32", "steps_per_execution": 32}
    rows = [
        run_row("dnn", **spe32),
        run_row("dnn", backend="jax", **spe32),
        run_row("dnn", config_id="dnn"),
    ]
    table = comparison_table(as_read(rows, tmp_path))
    assert list(zip(table["config_id"], table["backend"], strict=True)) == [
        ("dnn-spe32", "tensorflow"),
        ("dnn-spe32", "jax"),
        ("dnn", "tensorflow"),
    ]


def test_converged_counts_the_runs_that_reached_the_target(tmp_path):
    table = comparison_table(as_read(target_rows(), tmp_path))
    assert table["converged"].tolist() == ["3/3", "2/3", "0/3"]


def test_time_to_accuracy_is_the_median_of_the_runs_that_reached_the_target(tmp_path):
    table = comparison_table(as_read(target_rows(), tmp_path))
    assert table["time_to_accuracy_seconds"].tolist()[:2] == [21.0, 10.0]
    assert math.isnan(table["time_to_accuracy_seconds"].tolist()[2])


def test_converged_is_empty_without_a_target(runs):
    assert comparison_table(runs)["converged"].tolist() == ["", "", "", ""]


def test_diverged_runs_are_counted_as_failed(tmp_path):
    nan_loss = "FloatingPointError: training loss became nan (diverged)"
    rows = [
        *repeat_rows()[:2],
        run_row("dnn", 2, config_id="dnn", status="diverged", error=nan_loss),
        run_row("cnn", config_id="cnn", status="diverged", error=nan_loss),
    ]
    table = comparison_table(as_read(rows, tmp_path)).set_index("config_id")
    assert table[["status", "runs", "failed", "error"]].values.tolist() == [
        ["partial", 2, 1, nan_loss],
        ["failed", 0, 1, nan_loss],
    ]
    assert table.loc["dnn", "fit_seconds"] == 31.5  # the median of 30 and 33 s only
