"""Plain text: paragraphs (runs of non-blank lines) are segments."""

from __future__ import annotations

from .document import Document, Segment, line_spans
from .encoding import Decoded


def parse_txt(decoded: Decoded) -> Document:
    """Paragraphs (runs of non-blank lines) are segments."""
    text = decoded.text
    segments, start, end = [], None, None
    for line_start, content_end, _ in line_spans(text):
        if text[line_start:content_end].strip():
            start = line_start if start is None else start
            end = content_end
        elif start is not None:
            segments.append(Segment.whole(text[start:end], {}, start))
            start = None
    if start is not None:
        segments.append(Segment.whole(text[start:end], {}, start))
    return Document(decoded, segments)
