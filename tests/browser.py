"""A real browser for the tests of the HTML pages: headless Chromium driven by Playwright.

Chromium is Debian's (``apt-get install chromium``, at :data:`CHROMIUM`), never a browser
Playwright downloads. :meth:`Browser.visit` opens a page from the file system the way a
user would, finds its figures (inline SVG) and returns what a test checks: console
errors, uncaught page errors, dialogs (an ``alert`` an injected script raised), every
request that left the file system (aborted, so a test never reaches the network), the
page's visible text, what the hover shows over a mark, and a full-page screenshot.
:func:`distinct_colors` tells a drawn screenshot from a blank one.

The ``browser`` fixture (tests/conftest.py) launches one per test module and skips the
test where Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Debian's Chromium: the only browser the tests use.
CHROMIUM = Path("/usr/bin/chromium")
#: Schemes a page may load from: the file system and inline data.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
#: Every figure of a page is an inline SVG of this class.
CHART_SELECTOR = "svg.figure"
#: The marks of a figure that show a value on hover.
MARK_SELECTOR = "svg.figure [data-tip]"
#: The box the pages' script shows beside the pointer.
TIP_SELECTOR = "#tip"
VIEWPORT = {"width": 1280, "height": 900}


@dataclass
class Visit:
    """What a browser saw on one page."""

    url: str
    title: str
    #: The page's visible text (``document.body.innerText``).
    text: str
    #: Figures found (inline SVGs of class ``figure``).
    charts: int
    #: The text drawn in the figures (titles, axes, legends, labels), one line per element.
    chart_text: str
    #: The marks of the figures that show a value on hover.
    marks: int
    #: Every ``<script>`` element: its ``src``, or "inline" for one with the code inside.
    scripts: list[str]
    screenshot: Path
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    #: URLs the page requested that are not ``file:`` or ``data:`` (all aborted).
    external_requests: list[str] = field(default_factory=list)
    #: ``href`` of every link, as the page resolved it.
    links: list[str] = field(default_factory=list)
    #: The tooltip shown while the mouse rested on ``hover``, "" without one.
    hover_text: str = ""


class Browser:
    """A launched headless Chromium; :meth:`visit` opens one page in a fresh context."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    @property
    def version(self) -> str:
        return self._browser.version

    def visit(
        self,
        page_path: Path,
        screenshot: Path,
        *,
        chart_selector: str = CHART_SELECTOR,
        hover: str | None = None,
        timeout_s: float = 30.0,
    ) -> Visit:
        """Open ``page_path`` (a file), look at its figures, screenshot the page.

        :param screenshot: where the full-page PNG is written (parents created).
        :param chart_selector: the figures to count.
        :param hover: a selector (e.g. one of :func:`mark_selector`) to rest the mouse on;
            the tooltip's text is ``Visit.hover_text`` (a timeout raises when none shows).
        :param timeout_s: how long the page and the tooltip may take.
        """
        console_errors: list[str] = []
        page_errors: list[str] = []
        dialogs: list[str] = []
        external: list[str] = []

        def route(request_route: Any) -> None:
            url = request_route.request.url
            if url.startswith(LOCAL_SCHEMES):
                request_route.continue_()
            else:
                external.append(url)
                request_route.abort()

        def dialog(opened: Any) -> None:
            dialogs.append(f"{opened.type}: {opened.message}")
            opened.dismiss()

        context = self._browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        try:
            context.route("**/*", route)
            page = context.new_page()
            page.on(
                "console",
                lambda message: message.type == "error" and console_errors.append(message.text),
            )
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("dialog", dialog)
            url = Path(page_path).resolve().as_uri()
            page.goto(url, wait_until="load", timeout=timeout_s * 1000)
            charts = page.eval_on_selector_all(chart_selector, "charts => charts.length")
            marks = page.eval_on_selector_all(MARK_SELECTOR, "marks => marks.length")
            scripts = page.eval_on_selector_all(
                "script", "scripts => scripts.map(s => s.getAttribute('src') || 'inline')"
            )
            chart_text = page.eval_on_selector_all(
                f"{chart_selector} text", "texts => texts.map(t => t.textContent).join('\\n')"
            )
            hover_text = ""
            if hover is not None:
                page.hover(hover, force=True)
                page.wait_for_selector(TIP_SELECTOR, state="visible", timeout=timeout_s * 1000)
                hover_text = page.inner_text(TIP_SELECTOR)
            links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
            text = page.inner_text("body")
            title = page.title()
            screenshot = Path(screenshot)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
        return Visit(
            url=url,
            title=title,
            text=text,
            charts=charts,
            chart_text=chart_text,
            marks=marks,
            scripts=scripts,
            screenshot=screenshot,
            console_errors=console_errors,
            page_errors=page_errors,
            dialogs=dialogs,
            external_requests=external,
            links=links,
            hover_text=hover_text,
        )


def mark_selector(figure: int = 0, mark: int = 0) -> str:
    """The ``mark``-th mark that shows a value (0-based) of the page's ``figure``-th figure."""
    return f"{CHART_SELECTOR} >> nth={figure} >> [data-tip] >> nth={mark}"


def unavailable() -> str | None:
    """Why no browser can run here, or None when Chromium and Playwright are both present."""
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[dev]'"
    return None


@contextmanager
def launch() -> Iterator[Browser]:
    """Start Debian's headless Chromium through Playwright; stopped on exit."""
    from playwright.sync_api import sync_playwright

    # Chromium's sandbox refuses to run as root (CI containers run as root).
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    args += ["--disable-gpu", "--disable-dev-shm-usage", "--font-render-hinting=none"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield Browser(chromium)
        finally:
            chromium.close()


def distinct_colors(png: Path) -> int:
    """The number of distinct RGB colours in the image at ``png``: 1 for a blank page."""
    from PIL import Image

    with Image.open(png) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 24)
    return len(colors)
