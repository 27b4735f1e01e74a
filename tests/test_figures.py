"""The figures (mnistbench.figures): the data each one shows, what its renderer draws from
it, the PNGs, and the same drawing as SVG whose marks show their values on hover.

compare.png is tests/test_compare.py's (drawn from a comparison's table), history.png
tests/test_history.py's, inference.png tests/test_inference_curves.py's."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from synthetic_runs import (
    LABELS,
    TIGHT_FIT_SECONDS,
    as_read,
    blank,
    png,
    repeat_rows,
    run_row,
    sweep_rows,
    target_rows,
    with_wrong,
    write_samples,
)

from mnistbench.figures import comparison, curves, style
from mnistbench.figures.comparison import (
    COMPARISON_COLUMNS,
    comparison_data,
    comparison_figure,
    plot_comparison,
)
from mnistbench.figures.curves import CURVES_COLUMNS, curves_data, curves_figure, plot_curves
from mnistbench.figures.predictions import (
    PREDICTIONS_COLUMNS,
    plot_predictions,
    predictions_data,
    predictions_figure,
)
from mnistbench.figures.style import WRONG_COLOR

SETTING = "MNIST: 600 train / 100 test samples, 2 epochs, batch size 32, backend tensorflow"
LSTM_FAILED = "lstm: failed (ValueError: expected ndim=3, found ndim=2)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> pd.DataFrame:
    """dnn twice, rnn, cnn, and an lstm that failed."""
    return as_read(sweep_rows(), tmp_path_factory.mktemp("runs"))


def lines(ax) -> list:
    """The lines of ``ax`` the legend names (not the markers that carry each point's hover)."""
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def texts(artist) -> list[str]:
    """Every non-empty text of a figure or axes, in drawing order."""
    return [t.get_text() for t in artist.findobj(Text) if t.get_text()]


def panel(data: pd.DataFrame, metric: str) -> pd.DataFrame:
    return data[data["metric"] == metric].set_index("label")


# comparison.png: its data


def test_comparison_data_has_one_row_per_panel_and_successful_configuration(runs):
    data = comparison_data(runs)
    assert list(data.columns) == COMPARISON_COLUMNS
    assert data[["panel", "metric", "label"]].values.tolist() == [
        [panel, metric, label]
        for panel, metric in enumerate(
            ["fit_seconds", "inference_samples_per_second", "test_accuracy"]
        )
        for label in ["dnn", "rnn", "cnn"]
    ]


def test_comparison_panels_name_their_metric_direction_and_unit(runs):
    titles = comparison_data(runs).drop_duplicates("panel")[["title", "ylabel"]]
    assert titles.values.tolist() == [
        ["Training time (lower is better)", "fit time (s)"],
        ["Inference throughput (higher is better)", "samples / s"],
        ["Test accuracy (higher is better)", "test accuracy (%)"],
    ]


def test_comparison_bars_are_medians_with_their_min_max_and_run_count(runs):
    fit = panel(comparison_data(runs), "fit_seconds")
    assert fit[["median", "min", "max", "n", "runs"]].values.tolist() == [
        [32.0, 30.0, 34.0, 2, 2],
        [196.0, 196.0, 196.0, 1, 1],
        [64.0, 64.0, 64.0, 1, 1],
    ]


def test_comparison_accuracy_is_in_percent(runs):
    accuracy = panel(comparison_data(runs), "test_accuracy")
    assert accuracy["median"].tolist() == pytest.approx([97.2, 98.0, 98.2])


def test_comparison_value_labels_carry_the_unit(runs):
    data = comparison_data(runs)
    assert data.pivot(index="label", columns="metric", values="value_text").loc[
        ["dnn", "rnn", "cnn"], ["fit_seconds", "inference_samples_per_second", "test_accuracy"]
    ].values.tolist() == [
        ["32.0 s", "49,000", "97.20%"],
        ["196 s", "9,000", "98.00%"],
        ["64.0 s", "21,000", "98.20%"],
    ]


def test_the_best_bar_is_the_lowest_time_or_the_highest_throughput_and_accuracy(runs):
    data = comparison_data(runs)
    assert data.loc[data["best"], ["metric", "label"]].values.tolist() == [
        ["fit_seconds", "dnn"],
        ["inference_samples_per_second", "dnn"],
        ["test_accuracy", "cnn"],
    ]


def test_a_lone_configuration_has_no_best_bar(tmp_path):
    data = comparison_data(as_read([run_row("dnn")], tmp_path))
    assert not data["best"].any()


def test_bars_whose_repeats_disagree_are_noisy(tmp_path):
    # Fit times 30, 33 and 39 s (cv 0.13); throughput and accuracy agree.
    data = comparison_data(as_read(repeat_rows(), tmp_path))
    assert data.loc[data["noisy"], "metric"].tolist() == ["fit_seconds"]


def test_bars_whose_repeats_agree_are_not_noisy(tmp_path):
    data = comparison_data(as_read(repeat_rows(fit_seconds=TIGHT_FIT_SECONDS), tmp_path))
    assert not data["noisy"].any()


def test_a_target_accuracy_adds_the_time_to_reach_it_as_a_fourth_panel(tmp_path):
    data = comparison_data(as_read(target_rows(), tmp_path))
    assert data.drop_duplicates("panel")["title"].tolist()[3] == (
        "Time to 97% test accuracy (lower is better)"
    )
    time = panel(data, "time_to_accuracy_seconds")
    assert time[["n", "target_runs", "converged_runs", "value_text"]].values.tolist() == [
        [3, 3, 3, "21.0 s"],
        [2, 3, 2, "10.0 s"],
        [0, 3, 0, "not converged"],
    ]
    assert time["not_converged"].tolist() == [False, False, True]
    assert time.loc["dnn-spe32", "best"]


def test_without_a_target_other_panels_count_no_convergence(runs):
    data = comparison_data(runs)
    assert (data[["target_runs", "converged_runs"]] == 0).all().all()
    assert not data["not_converged"].any()


def test_comparison_data_is_empty_when_no_run_succeeded(tmp_path):
    rows = [run_row("dnn", error="MemoryError"), run_row("cnn", error="TimeoutError")]
    data = comparison_data(as_read(rows, tmp_path))
    assert data.empty and list(data.columns) == COMPARISON_COLUMNS


def test_every_figure_gives_a_configuration_the_same_colour(runs, tmp_path):
    bars = comparison_data(runs).drop_duplicates("label").set_index("label")["color"]
    lines = curves_data(runs).drop_duplicates("label").set_index("label")["color"]
    assert bars.to_dict() == lines.to_dict()
    assert len(set(bars)) == 3


# comparison.png: what it draws


def test_comparison_figure_draws_one_bar_per_row_at_its_median(runs):
    data = comparison_data(runs)
    fig = comparison_figure(data, SETTING, [])
    heights = [[bar.get_height() for bar in ax.patches] for ax in fig.axes]
    assert heights == [
        pytest.approx(panel(data, metric)["median"].tolist())
        for metric in ["fit_seconds", "inference_samples_per_second", "test_accuracy"]
    ]


def test_comparison_figure_labels_each_bar_and_names_the_failures(runs):
    fig = comparison_figure(comparison_data(runs), SETTING, [LSTM_FAILED])
    assert [t for t in texts(fig.axes[0]) if t.endswith(" s")] == ["32.0 s", "196 s", "64.0 s"]
    bold = [t.get_text() for t in fig.axes[0].texts if t.get_fontweight() == "bold"]
    assert bold == ["32.0 s"]  # the best
    assert fig.get_suptitle() == (
        f"Configuration comparison — {SETTING}\nbars: median of 1–2 runs each; error bars: min–max"
    )
    assert f"Not shown — {LSTM_FAILED}" in texts(fig)


def test_comparison_figure_marks_noisy_bars_and_explains_the_mark(tmp_path):
    fig = comparison_figure(comparison_data(as_read(repeat_rows(), tmp_path)), SETTING, [])
    assert [texts(ax).count("noisy") for ax in fig.axes] == [1, 0, 0]
    assert fig.get_suptitle().endswith(
        "median of 3 runs each; error bars: min–max; noisy: coefficient of variation > 10%"
    )


def test_comparison_figure_labels_a_never_converged_bar_inside_it(tmp_path):
    fig = comparison_figure(comparison_data(as_read(target_rows(), tmp_path)), SETTING, [])
    time_panel = fig.axes[3]
    assert texts(time_panel).count("not converged") == 1
    assert "2/3 converged" in texts(time_panel)
    # Four panels make a two-by-two grid of 13 x 8.6 in.
    assert tuple(fig.get_size_inches()) == (13.0, 8.6)


def test_comparison_png_is_a_row_of_three_panels_at_120_dpi(runs, tmp_path):
    path = plot_comparison(runs, tmp_path / "comparison.png")
    image = png(path)
    assert (image.format, image.size) == ("PNG", (1560, 576))  # 13 x 4.8 in


def test_comparison_png_is_a_notice_when_no_run_succeeded(tmp_path):
    runs = as_read([run_row("dnn", error="MemoryError")], tmp_path)
    assert png(plot_comparison(runs, tmp_path / "comparison.png")).size == (1080, 360)


# curves.png


def test_curves_data_has_one_row_per_configuration_series_and_epoch(runs):
    data = curves_data(runs)
    assert list(data.columns) == CURVES_COLUMNS
    assert data[["label", "series", "epoch"]].values.tolist() == [
        [label, series, epoch]
        for label in ["dnn", "rnn", "cnn"]
        for series in ["accuracy", "loss"]
        for epoch in [1, 2]
    ]


def test_curves_are_accuracy_in_percent_and_loss_per_epoch(tmp_path):
    data = curves_data(as_read([run_row("dnn")], tmp_path))
    assert data[["series", "median"]].values.tolist() == [
        ["accuracy", pytest.approx(91.0)],
        ["accuracy", pytest.approx(95.0)],
        ["loss", pytest.approx(0.3)],
        ["loss", pytest.approx(0.15)],
    ]


def test_curves_of_repeats_are_the_median_and_range_per_epoch(tmp_path):
    rows = [
        run_row("dnn", 0, epoch_accuracy=(0.90, 0.94, 0.96)),
        run_row("dnn", 1, epoch_accuracy=(0.92, 0.95)),  # stopped early at a target
        run_row("dnn", 2, epoch_accuracy=(0.94, 0.97)),
    ]
    accuracy = curves_data(as_read(rows, tmp_path)).query("series == 'accuracy'")
    assert accuracy[["epoch", "median", "min", "max", "runs"]].values.tolist() == [
        [1, pytest.approx(92.0), pytest.approx(90.0), pytest.approx(94.0), 3],
        [2, pytest.approx(95.0), pytest.approx(94.0), pytest.approx(97.0), 3],
        [3, pytest.approx(96.0), pytest.approx(96.0), pytest.approx(96.0), 3],
    ]


def test_curves_data_is_empty_when_no_run_succeeded(tmp_path):
    data = curves_data(as_read([run_row("dnn", error="MemoryError")], tmp_path))
    assert data.empty and list(data.columns) == CURVES_COLUMNS


def test_curves_figure_draws_a_line_per_configuration_and_a_shared_legend(runs):
    fig = curves_figure(curves_data(runs), SETTING, [LSTM_FAILED])
    accuracy, loss = fig.axes
    assert [line.get_label() for line in lines(accuracy)] == ["dnn", "rnn", "cnn"]
    assert lines(accuracy)[0].get_ydata().tolist() == pytest.approx([91.0, 95.0])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["dnn", "rnn", "cnn"]
    assert (accuracy.get_ylabel(), loss.get_ylabel()) == (
        "training accuracy (%)",
        "training loss (cross-entropy)",
    )
    assert fig.get_suptitle() == (
        f"Training curves — {SETTING}\nlines: median per epoch; bands: min–max over repeats"
    )
    assert f"Not plotted — {LSTM_FAILED}" in texts(fig)


def test_curves_figure_shades_a_band_only_for_repeated_configurations(runs):
    fig = curves_figure(curves_data(runs), SETTING, [])
    # dnn ran twice: one band per panel; rnn and cnn once: none.
    assert [len(ax.collections) for ax in fig.axes] == [1, 1]


def test_curves_png_is_12_by_4_6_inches_at_120_dpi(runs, tmp_path):
    image = png(plot_curves(runs, tmp_path / "curves.png"))
    assert (image.format, image.size) == ("PNG", (1440, 552))


# predictions.png


def test_predictions_data_has_one_row_per_digit_and_configuration(runs, tmp_path):
    data = predictions_data(runs, write_samples(tmp_path))
    assert list(data.columns) == PREDICTIONS_COLUMNS
    assert len(data) == 16 * 3
    assert data["true"].tolist() == [label for label in LABELS for _ in range(3)]
    assert data["label"].tolist()[:3] == ["dnn", "rnn", "cnn"]


def test_predictions_come_from_each_configurations_first_successful_run(runs, tmp_path):
    # dnn's first run took digit 8, a 5, for a 6; its second run got every digit right.
    data = predictions_data(runs, write_samples(tmp_path))
    wrong = data[~data["correct"]]
    assert wrong[["digit", "true", "label", "predicted"]].values.tolist() == [[8, 5, "dnn", 6]]


def test_a_digit_beyond_a_configurations_predictions_has_no_guess(tmp_path):
    runs = as_read([run_row("cnn", predictions=[7, 3])], tmp_path)
    data = predictions_data(runs, write_samples(tmp_path, 3))
    assert data["predicted"].tolist() == [7, 3, pd.NA]
    assert data["correct"].tolist() == [True, False, pd.NA]


def test_predictions_data_is_empty_without_recorded_predictions(tmp_path):
    runs = as_read([run_row("dnn", error="MemoryError")], tmp_path)
    assert predictions_data(runs, write_samples(tmp_path)).empty


def test_predictions_figure_marks_wrong_guesses_and_counts_them(tmp_path):
    runs = as_read([run_row("dnn", predictions=with_wrong(0, 1)), run_row("cnn")], tmp_path)
    samples = write_samples(tmp_path, 2)
    data = predictions_data(runs, samples)
    with np.load(samples) as digits:
        fig = predictions_figure(data, digits["x"], digits["y"], SETTING)
    red = [t.get_text() for t in fig.texts if t.get_color() == WRONG_COLOR]
    assert red == ["dnn: 1 ✗"]
    assert texts(fig)[:6] == ["true 7", "dnn: 1 ✗", "cnn: 7", "true 2", "dnn: 2", "cnn: 2"]
    assert texts(fig)[-1] == (
        "true label above each digit, each configuration's prediction below\n"
        f"wrong: dnn 1 of 2 · cnn 0 of 2\n{SETTING}"
    )
    # A digit someone got wrong gets a red frame; the others a light grey one.
    frames = [ax.spines["top"].get_edgecolor() for ax in fig.axes]
    assert frames[0][:3] == pytest.approx((0xC6 / 255, 0x28 / 255, 0x28 / 255))
    assert frames[1][:3] == pytest.approx((0xD3 / 255, 0xD3 / 255, 0xD3 / 255))


def test_predictions_png_is_eight_digits_a_row(runs, tmp_path):
    path = plot_predictions(runs, write_samples(tmp_path), tmp_path / "predictions.png")
    # 8 digits of 1.2 in per row, 2 rows with 3 configurations' lines under each digit.
    assert png(path).size == (1200, 624)


def test_predictions_grid_fits_any_number_of_digits(runs, tmp_path):
    samples = write_samples(tmp_path, 5)
    with np.load(samples) as digits:
        fig = predictions_figure(predictions_data(runs, samples), digits["x"], digits["y"], "")
    # One row of five digits: 1.1 in header + 1.95 in row + 0.2 in margin high; the
    # width never drops below the title's 6.5 in.
    assert tuple(fig.get_size_inches()) == pytest.approx((6.5, 3.25))


# The same drawings as SVG, with their values on hover


def tip_groups(svg_text: str) -> list[tuple[str, str]]:
    """Each hoverable mark of an SVG figure: (its data-tip, its title), as the page has them."""
    return re.findall(
        r'<g id="tip\d+" class="tip" data-tip="([^"]*)"><title>([^<]*)</title>', svg_text
    )


def test_each_comparison_bar_carries_its_value_with_its_unit(runs):
    fig = comparison.draw(runs)
    assert list(style.tips(fig).values()) == [
        "dnn: 32.0 s (median of 2 runs, 30.0–34.0 s)",
        "rnn: 196 s (1 run)",
        "cnn: 64.0 s (1 run)",
        "dnn: 49,000 samples/s (median of 2 runs, 48,000–50,000 samples/s)",
        "rnn: 9,000 samples/s (1 run)",
        "cnn: 21,000 samples/s (1 run)",
        "dnn: 97.20% (median of 2 runs, 97.00–97.40%)",
        "rnn: 98.00% (1 run)",
        "cnn: 98.20% (1 run)",
    ]


def test_a_time_to_target_bar_says_how_many_runs_converged(tmp_path):
    tips = list(style.tips(comparison.draw(as_read(target_rows(), tmp_path))).values())
    assert tips[-3:] == [
        "dnn: 21.0 s (median of 3 runs, 20.0–22.0 s)",
        "dnn-spe32: 10.0 s (median of 2 runs, 9.00–11.0 s); 2/3 converged; noisy",
        "cnn: not converged",
    ]


def test_each_point_of_the_curves_carries_its_epoch_and_value(runs):
    tips = list(style.tips(curves.draw(runs)).values())
    # Accuracy then loss, each configuration's epochs in order.
    assert tips[:3] == [
        "dnn, epoch 1: 91.00% (median of 2 runs)",
        "dnn, epoch 2: 95.00% (median of 2 runs)",
        "rnn, epoch 1: 91.00%",
    ]
    assert tips[6:8] == [
        "dnn, epoch 1: 0.3000 (median of 2 runs)",
        "dnn, epoch 2: 0.1500 (median of 2 runs)",
    ]
    assert len(tips) == 2 * 3 * 2  # panels × configurations × epochs


def test_svg_is_the_drawing_sized_by_the_page_with_its_hover_texts(runs):
    fig = comparison.draw(runs)
    text = style.svg(fig, 'Comparison of "dnn" <and> the others')
    root = re.match(r"<svg ([^>]*)>", text).group(1)
    # Inline SVG: no XML declaration; the page sizes it (a viewBox, no width or height).
    assert 'viewBox="0 0 936 345.6"' in root and " width=" not in root and " height=" not in root
    assert 'class="figure" role="img"' in root
    assert 'aria-label="Comparison of &quot;dnn&quot; &lt;and&gt; the others"' in root
    # Text stays text, in the page's fonts, and every bar shows its value on hover.
    assert "<text" in text and "Training time (lower is better)" in text
    assert tip_groups(text) == [(tip, tip) for tip in style.tips(fig).values()]
    # One drawing: the same SVG every time (no date, no random ids).
    assert text == style.svg(comparison.draw(runs), 'Comparison of "dnn" <and> the others')


def test_hover_texts_from_runs_are_escaped(tmp_path):
    runs = as_read([run_row('<b>dnn</b>"&'), run_row("cnn")], tmp_path)
    text = style.svg(comparison.draw(runs), "comparison")
    assert "<b>" not in text
    assert tip_groups(text)[0] == (
        "&lt;b&gt;dnn&lt;/b&gt;&quot;&amp;: 30.0 s (1 run)",
        '&lt;b&gt;dnn&lt;/b&gt;"&amp;: 30.0 s (1 run)',
    )


def test_tip_points_skips_missing_values():
    fig = style.figure((4, 3))
    ax = fig.add_subplot()
    style.tip_points(ax, [1, 2, 3], [1.0, float("nan"), None], ["a", "b", "c"], "black")
    assert list(style.tips(fig).values()) == ["a"]
    assert len(ax.get_lines()) == 1


def test_a_notice_figure_says_why_there_is_nothing_to_plot(tmp_path):
    runs = as_read([run_row("dnn", error="MemoryError: out of memory")], tmp_path)
    fig = style.runs_notice("Training curves", runs)
    assert fig.get_suptitle() == "Training curves"
    assert texts(fig.axes[0]) == [
        "No successful runs: nothing to plot.\n\ndnn: failed (MemoryError: out of memory)"
    ]
    assert tuple(fig.get_size_inches()) == style.NOTICE_SIZE
    assert style.tips(fig) == {}
    assert not blank(png(style.save(fig, tmp_path / "notice.png")))
