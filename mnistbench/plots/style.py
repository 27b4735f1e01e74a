"""The look every figure shares: size and resolution, colours, axes style, notes, saving.

The figures are ``matplotlib.figure.Figure`` objects saved through the Agg
renderer, never pyplot: pyplot would register them with a global figure
manager, and forcing its backend with ``matplotlib.use("Agg")`` would close the
figures of a caller who uses pyplot interactively (a notebook). Nothing is
registered, so nothing needs closing; a figure is freed with its last reference.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench.atomic import atomic_writer
from mnistbench.runs import in_order, is_ok, labels, numeric, text

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Resolution of every plot: sharp on a laptop screen, small enough for a README.
DPI = 120
#: Size in inches of the figure that says there is nothing to plot.
NOTICE_SIZE = (9.0, 3.0)

# Red for wrong predictions, failures and regressions; always paired with a ✗, the word
# "failed" or "FAILS", so the plots do not rely on colour alone.
WRONG_COLOR = "#c62828"
# Orange for the "noisy" mark on a bar; the word carries the meaning, not the colour.
NOISY_COLOR = "#b45309"
GOOD_COLOR = "#2e7d32"
NEUTRAL_COLOR = "#9e9e9e"
FAINT_COLOR = "#cfcfcf"
ERROR_TEXT_CHARS = 90


def figure(size: tuple[float, float], layout: str | None = "constrained") -> Figure:
    """A new figure of ``size`` inches at :data:`DPI`, not registered with pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout=layout)


def save(fig: Figure, path: Path | str) -> Path:
    """Write ``fig`` as a PNG at :data:`DPI`, atomically; returns the path."""
    path = Path(path)
    with atomic_writer(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=DPI)
    return path


def style_axes(ax: Axes, grid: str = "y") -> None:
    """Open axes (no top or right spine) with a light grid behind the data."""
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis=grid, alpha=0.3)
    ax.set_axisbelow(True)


def notice(path: Path | str, title: str, lines: list[str], footer: str = "") -> Path:
    """A figure that says there is nothing to plot and why, instead of a stale or missing file."""
    fig = figure(NOTICE_SIZE)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=10, wrap=True)
    if footer:
        fig.supxlabel(footer, fontsize=9, color="dimgray")
    return save(fig, path)


def group_colors(runs: pd.DataFrame) -> dict[str, Any]:
    """One colour per configuration label, fixed by run order, so every plot of a directory
    agrees."""
    from matplotlib import colormaps

    palette = list(colormaps["tab10"].colors) + list(colormaps["Dark2"].colors)
    return {label: palette[i % len(palette)] for i, label in enumerate(in_order(labels(runs)))}


def seconds_text(value: float) -> str:
    """A time for a value label: ``1.23 s``, ``12.3 s``, ``123 s``."""
    if value < 10:
        return f"{value:.2f} s"
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


# --- what the figures say about the runs -----------------------------------------------

# Unsuccessful statuses the notes name as they are; any other is "failed".
_NAMED_FAILURES = ("diverged", "interrupted")


def first_error(errors, limit: int | None = None) -> str:
    """The first non-empty error, on one line; cut to ``limit`` characters for plots."""
    for error in errors:
        error = " ".join(str(error).split())
        if error:
            if limit is not None and len(error) > limit:
                error = error[: limit - 1] + "…"
            return error
    return ""


def failure_notes(runs: pd.DataFrame) -> list[str]:
    """One line per configuration with unsuccessful runs: which, how many, the first error."""
    names, ok = labels(runs), is_ok(runs)
    errors, statuses = text(runs, "error"), text(runs, "status")
    notes = []
    for name in in_order(names):
        members = names == name
        failed = int((members & ~ok).sum())
        if not failed:
            continue
        total = int(members.sum())
        kinds = statuses[members & ~ok].map(lambda s: s if s in _NAMED_FAILURES else "failed")
        word = " or ".join(dict.fromkeys(kinds))
        error = first_error(errors[members & ~ok], ERROR_TEXT_CHARS)
        what = word if failed == total else f"{failed} of {total} runs {word}"
        notes.append(f"{name}: {what}" + (f" ({error})" if error else ""))
    return notes


def add_failure_note(fig: Figure, notes: list[str], shown: str) -> None:
    """Name failed configurations under the plot, so a missing bar or line is never a mystery.

    :param notes: :func:`failure_notes`; nothing is added when it is empty.
    :param shown: what the failed configurations are not: "Not shown — dnn: failed (...)".
    """
    if notes:
        fig.supxlabel(
            f"Not {shown} — " + "; ".join(notes), fontsize=9, color=WRONG_COLOR, wrap=True
        )


def _span(values: pd.Series, fmt: Callable[[int], str] = str) -> str | None:
    """``"5"`` when every run agrees, ``"1–5"`` when they differ, None when unknown."""
    values = values.dropna()
    if values.empty:
        return None
    low, high = int(values.min()), int(values.max())
    return fmt(low) if low == high else f"{fmt(low)}–{fmt(high)}"


def setting(runs: pd.DataFrame) -> str:
    """What was measured, from the data: "MNIST: 60,000 train / 10,000 test samples, ..."."""
    ok = is_ok(runs)
    # Successful runs know how many samples they used; fall back to the configuration.
    source = runs[ok] if ok.any() else runs
    train = _span(numeric(source, "train_samples"), "{:,}".format)
    test = _span(numeric(source, "test_samples"), "{:,}".format)
    epochs = _span(numeric(source, "epochs"))
    batch = _span(numeric(source, "batch_size"))
    described = "MNIST"
    if train and test:
        described += f": {train} train / {test} test samples"
    if epochs:
        described += f", {epochs} epoch{'' if epochs == '1' else 's'}"
    if batch:
        described += f", batch size {batch}"
    backends = sorted(set(text(source, "backend")) - {""})
    if backends:
        described += f", backend {' / '.join(backends)}"
    return described


def runs_notice(path: Path | str, title: str, runs: pd.DataFrame) -> Path:
    """:func:`notice` for a figure of runs none of which succeeded, naming the failures."""
    lines = ["No successful runs: nothing to plot.", "", *failure_notes(runs)]
    return notice(path, title, lines, setting(runs))
