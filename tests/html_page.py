"""An HTML page as the page tests read it, parsed with the standard library: sections,
links, sources, scripts, table rows, the text of elements by class, and whether every
tag is closed in order. Tests import it as ``from html_page import Page``."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


class Page(HTMLParser):
    """What the tests read of a page: sections, links, sources, scripts, table rows, the
    text of elements by class, and whether every tag is closed in order."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[str] = []
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.sources: list[str] = []
        self.scripts: list[str] = []
        self.rows: list[list[str]] = []
        self.by_class: dict[str, list[str]] = {}
        self.unbalanced: list[str] = []
        self._stack: list[str] = []
        self._cell: list[str] | None = None
        self._collect: list[tuple[str, int, list[str]]] = []
        self.feed(source)
        self.close()
        self.unbalanced += [f"unclosed <{tag}>" for tag in self._stack]

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in VOID:
            self._stack.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "section":
            self.sections.append(attrs.get("id", ""))
        if tag in ("a", "link") and "href" in attrs:
            self.hrefs.append(attrs["href"])
        for name in ("src", "data", "poster", "srcset"):
            if name in attrs and tag != "script":
                self.sources.append(attrs[name])
        if tag == "script":
            self.scripts.append(attrs.get("src") or "inline")
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []
        for name in (attrs.get("class") or "").split():
            self._collect.append((name, len(self._stack), []))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self._stack or self._stack[-1] != tag:
            self.unbalanced.append(f"</{tag}> closes <{self._stack[-1] if self._stack else ''}>")
            return
        depth = len(self._stack)
        for name, _, parts in [c for c in self._collect if c[1] == depth]:
            self.by_class.setdefault(name, []).append("".join(parts))
        self._collect = [c for c in self._collect if c[1] != depth]
        self._stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _, _, parts in self._collect:
            parts.append(data)
