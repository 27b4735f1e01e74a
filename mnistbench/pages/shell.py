"""The shell every HTML page shares: template, CSS, escaping, plotly charts, atomic writing.

A page is a jinja2 template that extends :data:`BASE` (``{% extends "base.html" %}``,
filling ``{% block content %}``), rendered by :func:`render` with autoescaping on: every
value a template prints is escaped unless it is :class:`markupsafe.Markup`, so text from
plugins and runs (labels, versions, commits, errors) shows literally and cannot inject
markup. Charts are plotly figures turned into a ``<div>`` and a script by :func:`chart`;
plotly interprets a little HTML in its own text (names, hover labels, annotations), so
such text goes through :func:`plot_text` first.

Pages make no network request: the CSS is inline, fonts are the system's, and plotly's
JavaScript is either a file beside the pages (:func:`write_plotly_js`, referenced as
:data:`PLOTLY_JS`) or inlined into a single page (``plotly="inline"``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound
from markupsafe import Markup, escape

from mnistbench import __version__
from mnistbench.atomic import atomic_writer
from mnistbench.plots.style import GOOD_COLOR, WRONG_COLOR

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: The file name of plotly's JavaScript beside the pages that reference it.
PLOTLY_JS = "plotly.min.js"

#: Colours of regressions and improvements, the same as the PNG figures'.
REGRESSION_COLOR = WRONG_COLOR
IMPROVEMENT_COLOR = GOOD_COLOR

#: One colour per configuration, in order (Tableau 10: distinct, readable on white).
SERIES_COLORS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip

#: System fonts only: a page never fetches a font.
FONT_FAMILY = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", '
    "Arial, sans-serif"
)

#: Plotly's options for every chart: no logo, no link to plotly's cloud, resizes with the page.
CHART_CONFIG = {"displaylogo": False, "responsive": True}

_CSS_COLORS = (
    f":root {{ --bad: {REGRESSION_COLOR}; --good: {IMPROVEMENT_COLOR}; --font: {FONT_FAMILY}; }}"
)

#: The style of every page: inline, so a page needs no other file for it.
CSS = (
    _CSS_COLORS
    + """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; --accent: #2f5d8a; }
* { box-sizing: border-box; }
body { margin: 0; font-family: var(--font); font-size: 15px; line-height: 1.5;
  color: var(--ink); background: var(--bg); }
.wrap { max-width: 1280px; margin: 0 auto; padding: 0 24px; }
header.top { background: #fff; border-bottom: 1px solid var(--line); padding: 14px 0 16px;
  margin-bottom: 24px; }
header.top nav { font-size: 13px; color: var(--muted); margin-bottom: 2px; }
header.top nav a { margin-right: 14px; }
h1 { font-size: 26px; margin: 0; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 19px; margin: 32px 0 10px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.subtitle { margin: 4px 0 0; color: var(--muted); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
section.card { overflow-x: auto; background: #fff; border: 1px solid var(--line);
  border-radius: 8px; padding: 16px 20px; margin-bottom: 20px; }
section.card > h2:first-child { margin-top: 0; }
.note { color: var(--muted); font-size: 13.5px; margin: 4px 0 10px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12.5px; }
.nowrap { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:hover { background: #f0f4f8; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace;
  font-size: 13px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.badge.regression { background: #fdecea; color: var(--bad); }
.badge.improvement { background: #e8f5e9; color: var(--good); }
.badge.ok { background: #e8f5e9; color: var(--good); }
.badge.failed { background: #fdecea; color: var(--bad); }
.badge.partial, .badge.noisy { background: #fff4e5; color: #b45309; }
.sub { display: block; color: var(--muted); font-size: 12px; font-weight: normal; }
.hint { color: var(--muted); font-size: 12px; margin-left: 6px; white-space: nowrap; }
pre { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace;
  font-size: 12.5px; background: #f5f7fa; border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 10px; margin: 6px 0; white-space: pre-wrap; overflow-wrap: anywhere;
  max-height: 420px; overflow-y: auto; }
pre.error { color: var(--bad); }
pre.tail { max-height: none; }
details > summary { cursor: pointer; color: var(--muted); font-size: 13.5px; }
img.figure { max-width: 100%; height: auto; display: block; margin: 8px auto 0; }
.dirty { color: var(--bad); font-size: 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 18px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
/* Two fixed columns: a chart is drawn as soon as it is parsed, at its column's width, so
   the grid must not change shape when the second chart arrives. */
.pair { display: grid; gap: 16px; grid-template-columns: repeat(2, minmax(0, 1fr)); }
.pair.single { grid-template-columns: minmax(0, 1fr); }
@media (max-width: 900px) { .pair { grid-template-columns: minmax(0, 1fr); } }
.chart-box { min-width: 0; }
.chart-box .plotly-graph-div { width: 100%; }
.missing { display: flex; align-items: center; justify-content: center; min-height: 120px;
  color: var(--muted); border: 1px dashed var(--line); border-radius: 6px; padding: 12px;
  text-align: center; }
footer { color: var(--muted); font-size: 12.5px; padding: 24px; }
"""
)

#: The page every other extends: header with navigation, title and subtitle; ``content``.
BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · mnistbench</title>
<style>{{ css }}</style>
{%- if plotly == "file" %}
<script src="{{ plotly_js }}"></script>
{%- elif plotly == "inline" %}
<script>{{ plotly_source }}</script>
{%- endif %}
</head>
<body>
<header class="top"><div class="wrap">
{%- if nav %}
<nav>{% for href, text in nav %}<a href="{{ href }}">{{ text }}</a>{% endfor %}</nav>
{%- endif %}
<h1>{{ title }}</h1>
{%- if subtitle %}
<p class="subtitle">{{ subtitle }}</p>
{%- endif %}
</div></header>
<main class="wrap">
{% block content %}{% endblock %}
</main>
<footer class="wrap">Written by mnistbench {{ version }}.</footer>
</body>
</html>
"""


class _Loader(BaseLoader):
    def get_source(self, environment, template):
        if template != "base.html":
            raise TemplateNotFound(template)
        return BASE, None, lambda: True


@cache
def environment() -> Environment:
    """The jinja2 environment of every page: autoescaping on, undefined names an error."""
    env = Environment(
        loader=_Loader(),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["plain"] = plain
    env.filters["breakable"] = breakable
    return env


def breakable(name: Any) -> Markup:
    """``name`` escaped, with a line-break opportunity after each underscore: long metric
    names (``inference_samples_per_second_normalized``) wrap in narrow table cells."""
    return Markup(str(escape(str(name))).replace("_", "_<wbr>"))


def render(
    template: str,
    *,
    title: str,
    subtitle: str = "",
    nav: Sequence[tuple[str, str]] = (),
    plotly: str | None = "file",
    **context: Any,
) -> str:
    """Render ``template`` (jinja2 source extending ``base.html``) to a whole page.

    :param title: the page's ``<title>`` and heading; escaped like every value.
    :param subtitle: a line under the heading, "" for none.
    :param nav: ``(href, text)`` links above the heading.
    :param plotly: ``"file"``: load :data:`PLOTLY_JS` from beside the page (write it
        with :func:`write_plotly_js`); ``"inline"``: embed plotly's JavaScript in the
        page (about 4.6 MB, one self-contained file); None: a page without charts.
    :param context: the template's other variables.
    """
    if plotly not in ("file", "inline", None):
        raise ValueError(f"plotly must be 'file', 'inline' or None, not {plotly!r}")
    return (
        environment()
        .from_string(template)
        .render(
            title=title,
            subtitle=subtitle,
            nav=list(nav),
            plotly=plotly,
            plotly_js=PLOTLY_JS,
            plotly_source=Markup(_plotly_source()) if plotly == "inline" else "",
            css=Markup(CSS),
            version=__version__,
            **context,
        )
    )


@cache
def _plotly_source() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def write_plotly_js(out_dir: Path) -> Path:
    """Write plotly's JavaScript as :data:`PLOTLY_JS` in ``out_dir`` unless it is there already.

    Returns its path. The bundle is the installed plotly package's, so the pages work
    offline; it is rewritten when it differs (another plotly version wrote it).
    """
    path = Path(out_dir) / PLOTLY_JS
    source = _plotly_source().encode()
    if not (path.is_file() and path.stat().st_size == len(source) and path.read_bytes() == source):
        with atomic_writer(path, "wb") as handle:
            handle.write(source)
    return path


def write_page(path: Path, page: str) -> Path:
    """Write the HTML ``page`` to ``path`` atomically (UTF-8); returns the path."""
    path = Path(path)
    with atomic_writer(path, "w") as handle:
        handle.write(page)
    return path


def plain(value: Any) -> str:
    """``value`` as display text: "-" for None and NaN, the string otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    try:
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return "-"
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a count read back from a column with empty cells
    return str(value)


def plot_text(value: Any) -> str:
    """``value`` as text for plotly (trace names, hover text, annotations), shown literally.

    Plotly renders a few HTML tags and entities in its text; escaping turns every ``<``
    and ``&`` of a label into an entity that plotly displays as the character itself.
    """
    return html.escape(plain(value), quote=False)


def chart(fig: go.Figure, chart_id: str) -> Markup:
    """``fig`` as a ``<div id=chart_id>`` and the script that draws it (plotly loaded by the page).

    The figure's JSON is plotly's, which escapes ``<``, ``>`` and ``/``, so no string in
    the figure can close the script element.
    """
    return Markup(
        '<div class="chart-box">'
        + fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            div_id=chart_id,
            config=CHART_CONFIG,
            default_width="100%",
            default_height=f"{int(fig.layout.height or 360)}px",
        )
        + "</div>"
    )


def style_figure(
    fig: go.Figure,
    *,
    title: str,
    y_title: str,
    x_title: str = "",
    height: int = 360,
    legend: bool = False,
) -> go.Figure:
    """Give ``fig`` the look every chart shares: white, light grid, titled axes, system font.

    ``title``, ``y_title`` and ``x_title`` are shown literally (escaped for plotly here).
    With ``legend`` the legend sits under the plot, where long labels have room.
    """
    fig.update_layout(
        template="plotly_white",
        title={"text": plot_text(title), "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        font={"family": FONT_FAMILY, "size": 12, "color": "#1f2933"},
        height=height,
        margin={"l": 64, "r": 24, "t": 56, "b": 48},
        hoverlabel={"align": "left", "font": {"family": FONT_FAMILY}},
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0, "xanchor": "left"},
        colorway=list(SERIES_COLORS),
    )
    fig.update_xaxes(
        title_text=plot_text(x_title) if x_title else None,
        showline=True,
        linecolor="#9aa5b1",
        gridcolor="#edf0f3",
    )
    fig.update_yaxes(
        title_text=plot_text(y_title),
        showline=True,
        linecolor="#9aa5b1",
        gridcolor="#edf0f3",
        zeroline=False,
    )
    return fig
