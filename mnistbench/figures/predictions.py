"""``predictions.png``: the digits of ``samples.npz`` and each configuration's guesses.

:func:`predictions_data` computes the guesses, one row per digit and
configuration; :func:`predictions_figure` draws only from that table and the
digits' images, and :func:`plot_predictions` writes it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from mnistbench.figures.style import WRONG_COLOR, figure, save, setting
from mnistbench.record import in_order, labels, ok

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

# Layout of predictions.png in inches: each digit is a cell with the true label
# above the image and one line per configuration below it. Sizes are computed,
# not left to a layout engine, so that lines never overlap whatever the number
# of configurations or digits.
_DIGITS_PER_ROW = 8
_IMAGE_IN = 0.9
_TRUE_LINE_IN = 0.26
_PREDICTION_LINE_IN = 0.19
_CELL_PAD_IN = 0.22
_HEADER_IN = 1.1
_MARGIN_IN = 0.2
_CHAR_IN = 0.075  # rough width of one character at 9 pt

#: The columns of :func:`predictions_data`, in order.
PREDICTIONS_COLUMNS = ["digit", "true", "label", "predicted", "correct"]


def sample_predictions(runs: pd.DataFrame) -> dict[str, list]:
    """Per configuration label, in run order, the predictions of its first successful run.

    Runs that recorded none are skipped; configurations none of whose runs did are left out.
    """
    names = labels(runs)
    predictions: dict[str, list] = {}
    for index in runs.index[ok(runs)]:
        if names[index] not in predictions:
            values = list(runs.at[index, "sample_predictions"])
            if values:
                predictions[names[index]] = values
    return {name: predictions[name] for name in in_order(names) if name in predictions}


def _samples(samples_npz: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """The images (K, 28, 28) and true labels (K,) of ``samples.npz``."""
    import numpy as np

    with np.load(samples_npz, allow_pickle=False) as samples:
        return samples["x"], samples["y"].astype(int)


def predictions_data(runs: pd.DataFrame, samples_npz: Path | str) -> pd.DataFrame:
    """What ``predictions.png`` shows: one row per digit of ``samples_npz`` and configuration.

    Configurations are those of :func:`sample_predictions`, in run order, each
    with the predictions of its first successful run. No rows when none
    recorded predictions. Columns:

    - ``digit``: the digit's 0-based position in ``samples.npz`` (test-set order);
    - ``true``: its true label;
    - ``label``: the configuration's label;
    - ``predicted``: the configuration's guess, ``<NA>`` where its predictions
      are shorter than ``samples.npz``;
    - ``correct``: whether the guess is the true label, ``<NA>`` without a guess.
    """
    import pandas as pd

    _, truth = _samples(samples_npz)
    rows = []
    for digit, true in enumerate(truth):
        for name, predicted in sample_predictions(runs).items():
            guess = int(predicted[digit]) if digit < len(predicted) else None
            correct = None if guess is None else guess == true
            rows.append([digit, int(true), name, guess, correct])
    data = pd.DataFrame(rows, columns=PREDICTIONS_COLUMNS)
    return data.astype({"predicted": "Int64", "correct": "boolean"})


def plot_predictions(runs: pd.DataFrame, samples_npz: Path | str, path: Path | str) -> Path:
    """Write :func:`draw` as ``predictions.png``; returns the path."""
    return save(draw(runs, samples_npz), path)


def draw(runs: pd.DataFrame, samples_npz: Path | str) -> Figure:
    """The digits of ``samples.npz`` and each configuration's guesses.

    One cell per digit, eight to a row, in test-set order: the true label above
    the image, below it one line per configuration (``cnn: 7``) from the first
    successful run of that configuration. A wrong prediction is red, bold and
    marked ✗, and its digit gets a red frame; right ones are black. A digit
    beyond the length of a configuration's predictions shows ``–``. The
    subtitle counts each configuration's mistakes.

    :param samples_npz: ``x`` (K, 28, 28) uint8 images and ``y`` (K,) labels.
    """
    images, truth = _samples(samples_npz)
    data = predictions_data(runs, samples_npz)
    return predictions_figure(data, images, truth, setting(runs))


def _cell_lines(data: pd.DataFrame) -> dict[int, list[tuple[str, str, str]]]:
    """Per digit, one line per configuration as (text, colour, weight)."""
    import pandas as pd

    lines: dict[int, list[tuple[str, str, str]]] = {}
    for row in data.itertuples(index=False):
        if pd.isna(row.correct):
            line = (f"{row.label}: –", "gray", "normal")
        elif row.correct:
            line = (f"{row.label}: {row.predicted}", "black", "normal")
        else:
            line = (f"{row.label}: {row.predicted} ✗", WRONG_COLOR, "bold")
        lines.setdefault(row.digit, []).append(line)
    return lines


def predictions_figure(
    data: pd.DataFrame, images: np.ndarray, truth: np.ndarray, measured: str
) -> Figure:
    """The figure of :func:`plot_predictions`, drawn from :func:`predictions_data`.

    :param images: the digits, (K, 28, 28); ``truth``: their labels, (K,).
    :param measured: what was measured (:func:`~mnistbench.figures.style.setting`).
    """
    count = len(truth)
    names = in_order(data["label"])
    lines = _cell_lines(data)

    columns = max(1, min(count, _DIGITS_PER_ROW))
    rows = max(1, math.ceil(count / columns))
    longest = max((len(f"{name}: 0 ✗") for name in names), default=0)
    cell_w = max(1.2, longest * _CHAR_IN + 0.25)
    cell_h = _TRUE_LINE_IN + _IMAGE_IN + len(names) * _PREDICTION_LINE_IN + _CELL_PAD_IN
    width = max(6.5, columns * cell_w + 2 * _MARGIN_IN)
    height = _HEADER_IN + rows * cell_h + _MARGIN_IN
    fig = figure((width, height), layout=None)
    left = (width - columns * cell_w) / 2  # centre the grid when the title sets the width

    for i in range(count):
        row, column = divmod(i, columns)
        centre = left + (column + 0.5) * cell_w
        image_top = height - _HEADER_IN - row * cell_h - _TRUE_LINE_IN
        ax = fig.add_axes(
            (
                (centre - _IMAGE_IN / 2) / width,
                (image_top - _IMAGE_IN) / height,
                _IMAGE_IN / width,
                _IMAGE_IN / height,
            )
        )
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.text(
            centre / width,
            (image_top + 0.05) / height,
            f"true {truth[i]}",
            ha="center",
            va="bottom",
            fontsize=10,
            fontweight="bold",
        )
        cell = lines.get(i, [])
        for j, (text, color, weight) in enumerate(cell):
            fig.text(
                centre / width,
                (image_top - _IMAGE_IN - 0.04 - j * _PREDICTION_LINE_IN) / height,
                text,
                ha="center",
                va="top",
                fontsize=9,
                color=color,
                fontweight=weight,
            )
        any_wrong = any(color == WRONG_COLOR for _, color, _ in cell)
        for spine in ax.spines.values():
            spine.set_color(WRONG_COLOR if any_wrong else "lightgray")
            spine.set_linewidth(2 if any_wrong else 1)

    fig.text(
        0.5,
        1 - 0.12 / height,
        f"Predictions on the first {count} test digits (red = wrong)",
        ha="center",
        va="top",
        fontsize=13,
        fontweight="bold",
    )
    fig.text(
        0.5,
        1 - 0.45 / height,
        f"{_detail(data, count)}\n{measured}",
        ha="center",
        va="top",
        fontsize=9,
        color="dimgray",
    )
    return fig


def _detail(data: pd.DataFrame, count: int) -> str:
    """The subtitle: how to read a cell, and each configuration's mistakes."""
    if data.empty:
        return "no successful run recorded predictions"
    wrong = data["correct"].eq(False).groupby(data["label"], sort=False).sum()
    mistakes = " · ".join(f"{name} {int(n)} of {count}" for name, n in wrong.items())
    return f"true label above each digit, each configuration's prediction below\nwrong: {mistakes}"
