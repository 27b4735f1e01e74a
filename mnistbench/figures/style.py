"""The look every figure shares: size and resolution, colours, axes style, notes, saving,
and the two forms of one drawing: a PNG file and an SVG for the HTML pages.

Each figure is drawn once, by one function of its module, and written both ways: as a
PNG (:func:`save`) for the result directory and the README, and as SVG text (:func:`svg`)
that the HTML pages embed. The values the pages show on hover are attached to the marks
while drawing (:func:`tip`): in the SVG each such mark carries a ``<title>`` (the
browser's own tooltip, and what screen readers read) and a ``data-tip`` the pages' script
shows at once beside the pointer. The PNG is the same drawing without them.

The figures are ``matplotlib.figure.Figure`` objects saved through the Agg and SVG
renderers, never pyplot: pyplot would register them with a global figure manager, and
forcing its backend with ``matplotlib.use("Agg")`` would close the figures of a caller
who uses pyplot interactively (a notebook). Nothing is registered, so nothing needs
closing; a figure is freed with its last reference.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench import format as fmt
from mnistbench.atomic import atomic_writer
from mnistbench.record import in_order, labels, ok

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.artist import Artist
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


def tip(artist: Artist, text: str) -> Artist:
    """Attach ``text`` to a mark of a figure (a bar, a point): what the HTML pages show when
    the pointer is on it. Returns the artist."""
    fig = artist.get_figure()
    tips = fig.__dict__.setdefault("_mnistbench_tips", {})
    gid = f"tip{len(tips)}"
    artist.set_gid(gid)
    tips[gid] = text
    return artist


def tip_points(ax: Axes, xs, ys, texts, color: Any, size: float = 6.0) -> None:
    """Each point of a line as a marker of its own carrying its text (:func:`tip`), drawn
    over the line, so the pages show every point's value on hover; missing points skipped."""
    for x, y, text in zip(xs, ys, texts, strict=True):
        if fmt.missing(y):
            continue
        (marker,) = ax.plot([x], [y], "o", color=color, markersize=size, zorder=3)
        tip(marker, text)


def tips(fig: Figure) -> dict[str, str]:
    """The texts :func:`tip` attached to ``fig``'s marks, by the marks' SVG ids."""
    return dict(fig.__dict__.get("_mnistbench_tips", {}))


_SVG_GROUP = re.compile(r'<g id="(tip\d+)">')
_SVG_ROOT = re.compile(r"<svg ([^>]*)>")
_SVG_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)


def svg(fig: Figure, title: str = "") -> str:
    """``fig`` as SVG text for an HTML page: text kept as text (small, selectable, in the
    page's fonts), no timestamp, sized by the page (``viewBox``), its marks carrying their
    :func:`tip` texts as ``<title>`` and ``data-tip``; ``title`` names the whole figure
    for screen readers."""
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mnistbench"}):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE: inline SVG
    text = _SVG_METADATA.sub("", text, count=1)  # an RDF block naming the SVG's format
    texts = tips(fig)

    def group(match: re.Match) -> str:
        content = html.escape(texts[match.group(1)], quote=True)
        return (
            f'<g id="{match.group(1)}" class="tip" data-tip="{content}">'
            f"<title>{html.escape(texts[match.group(1)], quote=False)}</title>"
        )

    text = _SVG_GROUP.sub(lambda m: group(m) if m.group(1) in texts else m.group(0), text)

    def root(match: re.Match) -> str:
        attributes = re.sub(r'\s(width|height)="[^"]*"', "", match.group(1))
        label = f' role="img" aria-label="{html.escape(title, quote=True)}"' if title else ""
        return f'<svg {attributes} class="figure"{label}>'

    return _SVG_ROOT.sub(root, text, count=1)


def style_axes(ax: Axes, grid: str = "y") -> None:
    """Open axes (no top or right spine) with a light grid behind the data."""
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis=grid, alpha=0.3)
    ax.set_axisbelow(True)


def notice_figure(title: str, lines: list[str], footer: str = "") -> Figure:
    """A figure that says there is nothing to plot and why, instead of a stale or missing file."""
    fig = figure(NOTICE_SIZE)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=10, wrap=True)
    if footer:
        fig.supxlabel(footer, fontsize=9, color="dimgray")
    return fig


def notice(path: Path | str, title: str, lines: list[str], footer: str = "") -> Path:
    """:func:`notice_figure`, written to ``path``."""
    return save(notice_figure(title, lines, footer), path)


def group_colors(runs: pd.DataFrame) -> dict[str, Any]:
    """One colour per configuration label, fixed by run order, so every plot of a directory
    agrees."""
    from matplotlib import colormaps

    palette = list(colormaps["tab10"].colors) + list(colormaps["Dark2"].colors)
    return {label: palette[i % len(palette)] for i, label in enumerate(in_order(labels(runs)))}


def seconds_text(value: float) -> str:
    """A time for a value label: ``1.23 s``, ``12.3 s``, ``123 s``."""
    return fmt.seconds(value)


# --- what the figures say about the runs -----------------------------------------------

# Unsuccessful statuses the notes name as they are; any other is "failed".
_NAMED_FAILURES = ("diverged", "interrupted")


def failure_notes(runs: pd.DataFrame) -> list[str]:
    """One line per configuration with unsuccessful runs: which, how many, the first error."""
    names, succeeded = labels(runs), ok(runs)
    errors, statuses = runs["error"], runs["status"]
    notes = []
    for name in in_order(names):
        members = names == name
        failed = int((members & ~succeeded).sum())
        if not failed:
            continue
        total = int(members.sum())
        kinds = statuses[members & ~succeeded].map(
            lambda s: s if s in _NAMED_FAILURES else "failed"
        )
        word = " or ".join(dict.fromkeys(kinds))
        error = fmt.first_error(errors[members & ~succeeded], ERROR_TEXT_CHARS)
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
    succeeded = ok(runs)
    # Successful runs know how many samples they used; fall back to the configuration.
    source = runs[succeeded] if succeeded.any() else runs
    train = _span(source["train_samples"], "{:,}".format)
    test = _span(source["test_samples"], "{:,}".format)
    epochs = _span(source["epochs"])
    batch = _span(source["batch_size"])
    described = "MNIST"
    if train and test:
        described += f": {train} train / {test} test samples"
    if epochs:
        described += f", {epochs} epoch{'' if epochs == '1' else 's'}"
    if batch:
        described += f", batch size {batch}"
    backends = sorted(set(source["backend"]) - {""})
    if backends:
        described += f", backend {' / '.join(backends)}"
    return described


def runs_notice(title: str, runs: pd.DataFrame) -> Figure:
    """:func:`notice_figure` for a figure of runs none of which succeeded, naming the
    failures."""
    lines = ["No successful runs: nothing to plot.", "", *failure_notes(runs)]
    return notice_figure(title, lines, setting(runs))
