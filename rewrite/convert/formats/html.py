"""HTML: text nodes through ``html.parser``; markup, attributes, comments, scripts, styles and code
untouched."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from .document import Document, Segment
from .encoding import Decoded


# Inline elements continue a segment; any other tag, comment or declaration ends it.
INLINE_TAGS = frozenset(
    "a abbr b bdi bdo big cite data del dfn em font i ins mark q s small span strike strong sub sup "
    "time u".split()
)
# Text inside these is never sent to the restorer.
SKIP_TAGS = frozenset("script style code pre kbd samp var tt textarea template svg math".split())


class _HtmlSegmenter(HTMLParser):
    """Collects text nodes into segments with their source offsets (``getpos`` at each event)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=False)
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.skip_depth = 0
        self.pieces: list[tuple[str, int | None]] = []  # (text, source offset if verbatim)
        self.segments: list[Segment] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def flush(self) -> None:
        pieces, self.pieces = self.pieces, []
        seg_text = "".join(text for text, _ in pieces)
        if not seg_text.strip():
            return
        segment, pos = Segment(seg_text, {}), 0
        for text, source in pieces:
            if source is not None:
                segment.add_run(pos, pos + len(text), source)
            pos += len(text)
        segment.protect_urls()
        self.segments.append(segment)

    def handle_starttag(self, tag, attrs):
        if tag in SKIP_TAGS:
            self.skip_depth += 1
        if tag not in INLINE_TAGS:
            self.flush()

    def handle_endtag(self, tag):
        if tag in SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        if tag not in INLINE_TAGS:
            self.flush()

    def handle_data(self, data):
        if self.skip_depth or not data:
            return
        start = self._offset()
        verbatim = self.text[start : start + len(data)] == data
        self.pieces.append((data, start if verbatim else None))

    def handle_entityref(self, name):
        if not self.skip_depth:
            self.pieces.append((html.unescape(f"&{name};"), None))

    def handle_charref(self, name):
        if not self.skip_depth:
            self.pieces.append((html.unescape(f"&#{name};"), None))

    def handle_comment(self, data):
        self.flush()

    def handle_decl(self, decl):
        self.flush()

    def handle_pi(self, data):
        self.flush()

    def unknown_decl(self, data):
        self.flush()


def parse_html(decoded: Decoded) -> Document:
    parser = _HtmlSegmenter(decoded.text)
    parser.feed(decoded.text)
    parser.close()
    parser.flush()
    return Document(decoded, parser.segments)
