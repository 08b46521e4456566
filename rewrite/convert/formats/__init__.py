"""Format handlers for batch conversion: bytes in, prose segments out, bytes back.

A handler decodes a file, finds the prose the restorer may change and returns a ``Document``:
its ``segments`` (what the restorer reads) and ``render(changes)``, which splices accepted
edits back into the decoded text and encodes it as the input was encoded. Everything outside an
accepted edit is put back character for character, so a file with nothing to restore comes back
byte for byte (BOM, ``\\r\\n`` line endings and declared charset included).

A segment carries the *editable runs* of its text: stretches that map one-to-one onto the
source. An edit is applied only when it lies inside one run, so markup, code, URLs, entities and
container prefixes in a segment are shown to the model but can never be changed:

    >>> doc = parse(b"Use `code` here.\\n", ".md", FormatOptions())
    >>> seg = doc.segments[0]
    >>> seg.text, seg.editable(0, 3), seg.editable(4, 10)
    ('Use `code` here.', True, False)

Formats (``SUFFIXES``): ``.txt`` (paragraphs), ``.md`` (paragraphs, headings and table cells;
fenced/indented code, inline code, URLs, link targets, HTML and front matter untouched),
``.jsonl`` (one string field per line; other fields and key order kept), ``.csv``/``.tsv`` (one
column; other cells and the dialect kept), ``.html`` (text nodes through ``html.parser``; markup,
attributes, comments, scripts, styles and code untouched).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ...errors import InputError
from .csv import parse_csv
from .document import Document, Segment
from .encoding import Decoded, decode
from .html import parse_html
from .jsonl import parse_jsonl
from .md import parse_md
from .txt import parse_txt

SUFFIXES = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}


@dataclasses.dataclass(frozen=True)
class FormatOptions:
    """Per-format settings: the JSONL field and the CSV column holding the prose."""

    field: str = "text"
    column: str = "text"


# format -> parser(decoded, options, suffix); one module per format
PARSERS: dict[str, Callable[[Decoded, FormatOptions, str], Document]] = {
    "txt": lambda decoded, options, suffix: parse_txt(decoded),
    "md": lambda decoded, options, suffix: parse_md(decoded),
    "html": lambda decoded, options, suffix: parse_html(decoded),
    "jsonl": lambda decoded, options, suffix: parse_jsonl(decoded, options.field),
    "csv": lambda decoded, options, suffix: parse_csv(decoded, options.column, suffix),
}


def format_of(suffix: str) -> str | None:
    return SUFFIXES.get(suffix.lower())


def parse(data: bytes, suffix: str, options: FormatOptions) -> Document:
    """Decode and parse one file; ``InputError`` says why a file cannot be converted at all."""
    fmt = format_of(suffix)
    if fmt is None:
        raise InputError(f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(sorted(SUFFIXES))}")
    return PARSERS[fmt](decode(data, fmt), options, suffix.lower())


__all__ = ["Decoded", "Document", "FormatOptions", "PARSERS", "SUFFIXES", "Segment", "decode", "format_of", "parse"]
