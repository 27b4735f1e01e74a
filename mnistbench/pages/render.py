"""What every HTML page shares: its templates and style, escaping, and atomic writing.

A page is a jinja2 template in ``mnistbench/templates/`` that extends ``base.html``
(filling ``{% block content %}``), rendered by :func:`render` with autoescaping on: every
value a template prints is escaped unless it is :class:`markupsafe.Markup`, so text from
plugins and runs (labels, versions, commits, errors) shows literally and cannot inject
markup. The figures are the SVG of the same drawings as the PNGs
(:func:`mnistbench.figures.style.svg`), already escaped there, and go in as Markup.

Pages make no network request and need no other file: the style (``style.css``) and the
figures' hover script (``tips.js``) are inlined, fonts are the system's.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from mnistbench import __version__
from mnistbench import format as fmt
from mnistbench.atomic import atomic_writer
from mnistbench.figures.style import GOOD_COLOR, WRONG_COLOR


@cache
def environment() -> Environment:
    """The jinja2 environment of every page: the package's templates, autoescaping on,
    undefined names an error."""
    env = Environment(
        loader=PackageLoader("mnistbench", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["plain"] = fmt.text
    env.filters["breakable"] = breakable
    return env


def breakable(name: Any) -> Markup:
    """``name`` escaped, with a line-break opportunity after each underscore: long metric
    names (``inference_samples_per_second_normalized``) wrap in narrow table cells."""
    return Markup(str(escape(str(name))).replace("_", "_<wbr>"))


def figure(svg_text: str) -> Markup:
    """An SVG figure (:func:`mnistbench.figures.style.svg`) to put in a page as it is."""
    return Markup(svg_text)


def render(
    template: str,
    *,
    title: str,
    subtitle: str = "",
    nav: list[tuple[str, str]] | None = None,
    **context: Any,
) -> str:
    """Render the page ``template`` (a file of ``mnistbench/templates``) to a whole page.

    :param title: the page's ``<title>`` and heading; escaped like every value.
    :param subtitle: a line under the heading, "" for none.
    :param nav: ``(href, text)`` links above the heading.
    :param context: the template's other variables.
    """
    return (
        environment()
        .get_template(template)
        .render(
            title=title,
            subtitle=subtitle,
            nav=list(nav or ()),
            version=__version__,
            bad_color=WRONG_COLOR,
            good_color=GOOD_COLOR,
            **context,
        )
    )


def write_page(path: Path, page: str) -> Path:
    """Write the HTML ``page`` to ``path`` atomically (UTF-8); returns the path."""
    path = Path(path)
    with atomic_writer(path, "w") as handle:
        handle.write(page)
    return path
