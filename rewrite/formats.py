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

import bisect
import codecs
import csv
import dataclasses
import functools
import html
import io
import json
import re
from collections.abc import Iterable
from html.parser import HTMLParser

from .edits import Edit, apply_edits
from .errors import InputError

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

# Bare URLs, www. hosts and e-mail addresses are never edited, whatever the format.
_URL_RE = re.compile(r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)[^\s<>\"'`]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_BOMS = (  # longest first: the UTF-32-LE BOM starts like the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHARSET_RE = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class FormatOptions:
    """Per-format settings: the JSONL field and the CSV column holding the prose."""

    field: str = "text"
    column: str = "text"


# --------------------------------------------------------------------------- encoding


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A decoded file and how to encode it back: ``encode(decode(data)) == data``."""

    text: str
    codec: str
    bom: bytes = b""
    errors: str = "strict"  # "xmlcharrefreplace" for HTML in a legacy charset

    def encode(self, text: str) -> bytes:
        try:
            return self.bom + text.encode(self.codec, self.errors)
        except UnicodeEncodeError as exc:
            raise InputError(f"the restored text cannot be written as {self.codec}: {exc.reason}") from exc


def decode(data: bytes, fmt: str) -> Decoded:
    """Decode ``data``: a BOM wins, then (HTML only) a declared charset, then strict UTF-8.

    Raises ``InputError`` for binary data (NUL bytes), an unknown declared charset or bytes that
    do not decode.
    """
    found = detect_bom(data)
    if found is not None:
        bom, codec = found
        return _decode_strict(data[len(bom) :], codec, bom)
    if b"\x00" in data:
        raise InputError("binary file (contains NUL bytes); only text formats can be converted")
    if fmt == "html":
        match = _CHARSET_RE.search(data[:4096])
        if match:
            declared = (match.group(1) or match.group(2)).decode("ascii")
            try:
                codec = codecs.lookup(declared).name
            except LookupError:
                raise InputError(f"unknown charset {declared!r} declared in the file; fix the declaration") from None
            if codec not in ("utf-8", "utf-16", "utf-32"):
                return _decode_strict(data, codec, b"", "xmlcharrefreplace")
    return _decode_strict(data, "utf-8", b"")


def detect_bom(data: bytes) -> tuple[bytes, str] | None:
    """``(bom, codec)`` when ``data`` starts with a UTF-8/16/32 byte-order mark, else ``None``.

        >>> detect_bom(b"\\xff\\xfeh\\x00i\\x00")
        (b'\\xff\\xfe', 'utf-16-le')
    """
    return next(((bom, codec) for bom, codec in _BOMS if data.startswith(bom)), None)


def _decode_strict(data: bytes, codec: str, bom: bytes, errors: str = "strict") -> Decoded:
    try:
        return Decoded(data.decode(codec), codec, bom, errors)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid {codec} (byte {exc.start + len(bom)}: {exc.reason}); "
            "convert the file to UTF-8 or declare its charset"
        ) from None


# --------------------------------------------------------------------------- segments


class Segment:
    """A piece of prose the restorer reads, with the stretches of it that may be edited.

    ``runs``: sorted, disjoint ``(start, end, source_start)`` triples; ``text[start:end]`` is
    ``source[source_start:source_start + end - start]`` character for character. ``where`` locates
    the segment for the report (``{"line": 3, "field": "text"}``); ``value_span`` is set for
    segments that are a whole JSON string or CSV cell, re-encoded as a unit when edited.
    """

    __slots__ = ("text", "where", "runs", "value_span", "quoted")

    def __init__(self, text: str, where: dict, value_span: tuple[int, int] | None = None, quoted: bool = False):
        self.text = text
        self.where = where
        self.runs: list[tuple[int, int, int]] = []
        self.value_span = value_span
        self.quoted = quoted

    @classmethod
    def whole(cls, text: str, where: dict, source_start: int = 0, **kwargs) -> "Segment":
        """A segment whose text is the source from ``source_start``; everything but URLs editable."""
        seg = cls(text, where, **kwargs)
        seg.add_run(0, len(text), source_start)
        seg.protect_urls()
        return seg

    def add_run(self, start: int, end: int, source_start: int) -> None:
        """Mark ``text[start:end]`` editable (call in increasing ``start`` order)."""
        if end <= start:
            return
        if self.runs:
            last_start, last_end, last_source = self.runs[-1]
            if last_end == start and last_source + (last_end - last_start) == source_start:
                self.runs[-1] = (last_start, end, last_source)
                return
        self.runs.append((start, end, source_start))

    def protect(self, start: int, end: int) -> None:
        """Make ``text[start:end]`` read-only."""
        kept: list[tuple[int, int, int]] = []
        for run_start, run_end, source in self.runs:
            if run_end <= start or run_start >= end:
                kept.append((run_start, run_end, source))
                continue
            if run_start < start:
                kept.append((run_start, start, source))
            if run_end > end:
                kept.append((end, run_end, source + end - run_start))
        self.runs = kept

    def protect_urls(self) -> None:
        for match in _URL_RE.finditer(self.text):
            self.protect(*match.span())

    def _run_at(self, a: int, b: int) -> tuple[int, int, int] | None:
        """The run holding ``[a, b)`` (an insertion at a run's edge counts as inside it)."""
        k = bisect.bisect_right(self.runs, (a, float("inf"))) - 1
        for run in self.runs[max(k, 0) : k + 2]:
            if run[0] <= a and b <= run[1]:
                return run
        return None

    def editable(self, a: int, b: int) -> bool:
        return 0 <= a <= b <= len(self.text) and self._run_at(a, b) is not None

    def source_span(self, a: int, b: int) -> tuple[int, int]:
        run = self._run_at(a, b)
        if run is None:
            raise ValueError(f"[{a}, {b}) is not editable")
        return run[2] + a - run[0], run[2] + b - run[0]


class Document:
    """A parsed file: segments to restore, per-line problems, and how to write it back."""

    def __init__(self, decoded: Decoded, segments: list[Segment], problems: list[dict] | None = None):
        self.decoded = decoded
        self.segments = segments
        self.problems = problems or []  # [{"line": 4, "reason": "..."}]

    def encode_value(self, segment: Segment, value: str) -> str:
        raise NotImplementedError(f"{type(self).__name__} has no value segments")

    def render(self, changes: list[list[Edit]]) -> bytes:
        """The file with ``changes[i]`` (segment ``i``'s accepted edits, sorted) applied."""
        text = self.decoded.text
        edits: list[Edit] = []  # in the decoded file's coordinates
        for segment, seg_changes in zip(self.segments, changes, strict=True):
            if not seg_changes:
                continue
            if segment.value_span is not None:
                start, end = segment.value_span
                value = self.encode_value(segment, apply_edits(segment.text, seg_changes))
                edits.append(Edit(start, end - start, text[start:end], value, 1.0))
                continue
            for ch in seg_changes:
                start, end = segment.source_span(ch.offset, ch.offset + ch.length)
                # Inside one editable run the source is the segment's text, so apply_edits checks it.
                edits.append(Edit(start, end - start, ch.original, ch.replacement, ch.confidence))
        return self.decoded.encode(apply_edits(text, edits))


def _lines(text: str) -> list[tuple[int, int, int]]:
    """``(start, content_end, end)`` of each line; a line ends at ``\\r\\n``, ``\\r`` or ``\\n``."""
    lines = []
    for match in _LINE_RE.finditer(text):
        if match.start() == match.end():
            break
        line = match.group()
        content = len(line.rstrip("\r\n"))
        lines.append((match.start(), match.start() + content, match.end()))
    return lines


# --------------------------------------------------------------------------- .txt


def parse_txt(decoded: Decoded) -> Document:
    """Paragraphs (runs of non-blank lines) are segments."""
    text = decoded.text
    segments, start, end = [], None, None
    for line_start, content_end, _ in _lines(text):
        if text[line_start:content_end].strip():
            start = line_start if start is None else start
            end = content_end
        elif start is not None:
            segments.append(Segment.whole(text[start:end], {}, start))
            start = None
    if start is not None:
        segments.append(Segment.whole(text[start:end], {}, start))
    return Document(decoded, segments)


# --------------------------------------------------------------------------- .md


@functools.lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _front_matter_lines(text: str, lines: list[tuple[int, int, int]]) -> int:
    """Number of lines of a leading ``---``/``+++`` front-matter block (0 when there is none)."""
    if not lines:
        return 0
    fence = text[lines[0][0] : lines[0][1]].rstrip()
    if fence not in ("---", "+++"):
        return 0
    closers = {fence, "..."} if fence == "---" else {fence}
    for k, (start, content_end, _) in enumerate(lines[1:], start=1):
        if text[start:content_end].rstrip() in closers:
            return k + 1
    return 0


def parse_md(decoded: Decoded) -> Document:
    """Inline content of paragraphs, headings and table cells; see ``_md_segment``."""
    text = decoded.text
    lines = _lines(text)
    skip = _front_matter_lines(text, lines)
    source = "\n" * skip + (text[lines[skip][0] :] if skip < len(lines) else "")
    tokens = _markdown().parse(source)
    segments: list[Segment] = []
    cursors: dict[int, int] = {}  # line -> column after the last table cell found on it
    for k, token in enumerate(tokens):
        if token.type != "inline" or token.map is None or not token.content.strip():
            continue
        in_cell = k > 0 and tokens[k - 1].type in ("th_open", "td_open")
        segment = _md_segment(token, text, lines, cursors, in_cell)
        if segment.runs:
            segments.append(segment)
    return Document(decoded, segments)


def _locate_line(src_line: str, content_line: str, cursor: int, in_cell: bool) -> int:
    """Column where ``content_line`` (markdown-it's view of the line) sits in ``src_line``; -1 if
    it cannot be found verbatim (a tab expanded into spaces, for example)."""
    if not in_cell:
        for candidate in (src_line, src_line.rstrip()):
            if candidate.endswith(content_line) and len(candidate) - len(content_line) >= cursor:
                return len(candidate) - len(content_line)
    return src_line.find(content_line, cursor)


def _md_segment(token, text: str, lines, cursors: dict[int, int], in_cell: bool) -> Segment:
    """One inline token as a segment: its content with the source's line endings, editable
    where the content is prose (``_md_prose_mask``) and maps verbatim onto the source."""
    content = token.content
    mask = _md_prose_mask(content, token.children or [])
    content_lines = content.split("\n")
    pieces: list[str] = []
    editable: list[tuple[int, int, int]] = []  # (seg_start, seg_end, source_start)
    seg_pos = content_pos = 0
    for k, content_line in enumerate(content_lines):
        line_no = token.map[0] + k
        if line_no >= len(lines):
            break
        line_start, content_end, line_end = lines[line_no]
        src_line = text[line_start:content_end]
        col = _locate_line(src_line, content_line, cursors.get(line_no, 0), in_cell)
        pieces.append(content_line)
        if col >= 0:
            cursors[line_no] = col + len(content_line)
            for a, b in _true_runs(mask, content_pos, content_pos + len(content_line)):
                editable.append((seg_pos + a - content_pos, seg_pos + b - content_pos, line_start + col + a - content_pos))
        seg_pos += len(content_line)
        content_pos += len(content_line)
        if k < len(content_lines) - 1:
            ending = text[content_end:line_end] or "\n"
            pieces.append(ending)
            if col >= 0 and mask[content_pos] and content_end < line_end:
                editable.append((seg_pos, seg_pos + len(ending), content_end))
            seg_pos += len(ending)
            content_pos += 1
    segment = Segment("".join(pieces), {})
    for start, end, source in editable:
        segment.add_run(start, end, source)
    segment.protect_urls()
    return segment


def _true_runs(mask: list[bool], start: int, end: int) -> Iterable[tuple[int, int]]:
    k = start
    while k < end:
        if not mask[k]:
            k += 1
            continue
        j = k
        while j < end and mask[j]:
            j += 1
        yield k, j
        k = j


def _md_prose_mask(content: str, children) -> list[bool]:
    """True for each character of an inline token's ``content`` that is plain text.

    Walks markdown-it's child tokens in order with a cursor into ``content``: text tokens are
    found verbatim (or word by word when escapes or entities changed them) and marked; code
    spans, autolinks, inline HTML, emphasis markers, link and image targets are stepped over.
    """
    mask = [False] * len(content)
    pos = 0
    in_autolink = False
    for tok in children:
        kind = tok.type
        if kind == "text":
            if not in_autolink:
                pos = _mark_text(content, tok.content, pos, mask)
        elif kind == "softbreak":
            at = content.find("\n", pos)
            if at >= 0:
                mask[at] = True
                pos = at + 1
        elif kind == "hardbreak":
            at = content.find("\n", pos)
            pos = at + 1 if at >= 0 else pos
        elif kind == "code_inline":
            pos = _skip_code_span(content, pos, len(tok.markup))
        elif kind == "html_inline":
            at = content.find(tok.content, pos)
            pos = at + len(tok.content) if at >= 0 else pos
        elif kind == "link_open":
            if tok.markup in ("autolink", "linkify"):
                in_autolink = True
                at = content.find("<", pos) if tok.markup == "autolink" else -1
                end = content.find(">", at) if at >= 0 else -1
                pos = end + 1 if end >= 0 else pos
            else:
                at = content.find("[", pos)
                pos = at + 1 if at >= 0 else pos
        elif kind == "link_close":
            if in_autolink:
                in_autolink = False
            else:
                pos = _skip_link_tail(content, pos)
        elif kind == "image":
            at = content.find("![", pos)
            if at >= 0:
                close = _matching_bracket(content, at + 1)
                pos = _skip_link_tail(content, close) if close >= 0 else at + 2
        elif tok.markup and kind.endswith(("_open", "_close")):  # em, strong, s
            at = content.find(tok.markup, pos)
            pos = at + len(tok.markup) if at >= 0 else pos
    return mask


_WORDS_RE = re.compile(r"\w+(?:[ '’-]+\w+)*")


def _mark_text(content: str, piece: str, pos: int, mask: list[bool]) -> int:
    at = content.find(piece, pos)
    if at >= 0:
        mask[at : at + len(piece)] = [True] * len(piece)
        return at + len(piece)
    # Escapes or entities changed the text ("\\*" -> "*", "&amp;" -> "&"): mark its words only.
    for match in _WORDS_RE.finditer(piece):
        word = match.group()
        at = content.find(word, pos)
        if at < 0:
            continue
        if at > 0 and (content[at - 1].isalnum() or content[at - 1] in "&#\\"):
            continue
        mask[at : at + len(word)] = [True] * len(word)
        pos = at + len(word)
    return pos


def _skip_code_span(content: str, pos: int, ticks: int) -> int:
    """Position after the code span opened by the first run of exactly ``ticks`` backticks."""
    runs = [m for m in re.finditer(r"`+", content[pos:]) if len(m.group()) == ticks]
    if len(runs) < 2:
        return pos
    return pos + runs[1].end()


def _matching_bracket(content: str, open_at: int) -> int:
    depth, k = 0, open_at
    while k < len(content):
        ch = content[k]
        if ch == "\\":
            k += 2
            continue
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return -1


def _skip_link_tail(content: str, pos: int) -> int:
    """From a link text's end: past ``](dest "title")``, ``][ref]`` or ``]``."""
    close = content.find("]", pos)
    if close < 0:
        return pos
    k = close + 1
    if content.startswith("(", k):
        depth = 0
        while k < len(content):
            ch = content[k]
            if ch == "\\":
                k += 2
                continue
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return k + 1
            k += 1
        return len(content)
    if content.startswith("[", k):
        end = content.find("]", k)
        return end + 1 if end >= 0 else k
    return k


# --------------------------------------------------------------------------- .html

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


# --------------------------------------------------------------------------- .jsonl

_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON = json.JSONDecoder()


def _json_value_spans(line: str) -> dict[str, tuple[int, int]]:
    """Source span of each top-level value of a JSON object (the last one for a repeated key)."""
    spans: dict[str, tuple[int, int]] = {}
    k = _JSON_WS.match(line, 0).end() + 1  # after "{"
    k = _JSON_WS.match(line, k).end()
    if line[k] == "}":
        return spans
    while True:
        key, k = json.decoder.scanstring(line, k + 1)
        k = _JSON_WS.match(line, k).end() + 1  # after ":"
        k = _JSON_WS.match(line, k).end()
        _, end = _JSON.raw_decode(line, k)
        spans[key] = (k, end)
        k = _JSON_WS.match(line, end).end()
        if line[k] == "}":
            return spans
        k = _JSON_WS.match(line, k + 1).end()  # after ","


class JsonlDocument(Document):
    def encode_value(self, segment: Segment, value: str) -> str:
        # Keep the line's style: \\u escapes if the original used them, raw UTF-8 otherwise.
        return json.dumps(value, ensure_ascii=segment.quoted)


def parse_jsonl(decoded: Decoded, field: str) -> Document:
    """The string value of ``field`` on each line is a segment (re-encoded when edited)."""
    text = decoded.text
    segments: list[Segment] = []
    problems: list[dict] = []
    objects = 0
    for line_no, (start, content_end, _) in enumerate(_lines(text), start=1):
        line = text[start:content_end]
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append({"line": line_no, "reason": f"malformed JSON: {exc.msg} at column {exc.colno}"})
            continue
        if not isinstance(obj, dict):
            problems.append({"line": line_no, "reason": f"not a JSON object but a {type(obj).__name__}"})
            continue
        value = obj.get(field)
        if not isinstance(value, str):
            continue
        objects += 1
        value_start, value_end = _json_value_spans(line)[field]
        raw = line[value_start:value_end]
        segment = Segment(value, {"line": line_no, "field": field}, (start + value_start, start + value_end), "\\u" in raw)
        segment.add_run(0, len(value), 0)
        segment.protect_urls()
        segments.append(segment)
    if objects == 0 and text.strip() and not problems:
        raise InputError(f"no line has a string field {field!r}; name the field holding the text with --field")
    return JsonlDocument(decoded, segments, problems)


# --------------------------------------------------------------------------- .csv


@dataclasses.dataclass
class _Record:
    start: int
    content_end: int
    end: int
    cells: list[tuple[int, int]]


def _csv_records(text: str, delimiter: str, quote: str = '"') -> Iterable[_Record]:
    """Raw records of ``text``: a quoted cell may span lines; a record ends at a line ending."""
    k, n = 0, len(text)
    while k < n:
        start, cells = k, []
        while True:
            cell_start = k
            if k < n and text[k] == quote:
                k += 1
                while k < n:
                    if text[k] == quote:
                        if text.startswith(quote, k + 1):
                            k += 2
                            continue
                        k += 1
                        break
                    k += 1
            while k < n and text[k] not in (delimiter, "\r", "\n"):
                k += 1
            cells.append((cell_start, k))
            if k < n and text[k] == delimiter:
                k += 1
                continue
            break
        content_end = k
        k += 2 if text.startswith("\r\n", k) else (1 if k < n else 0)
        yield _Record(start, content_end, k, cells)


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    sample = text[:65536]
    first_line = sample.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        if delimiter in first_line:
            return delimiter
    except csv.Error:
        pass
    counts = {d: first_line.count(d) for d in ",;\t|"}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


class CsvDocument(Document):
    def __init__(self, *args, delimiter: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.delimiter = delimiter

    def encode_value(self, segment: Segment, value: str) -> str:
        needs_quotes = any(ch in value for ch in (self.delimiter, '"', "\r", "\n"))
        if segment.quoted or needs_quotes:
            return '"' + value.replace('"', '""') + '"'
        return value


def parse_csv(decoded: Decoded, column: str, suffix: str = ".csv") -> Document:
    """The cell of ``column`` (named in the header row) on each row is a segment."""
    text = decoded.text
    delimiter = _sniff_delimiter(text, suffix)
    dialect = {"delimiter": delimiter, "quotechar": '"', "doublequote": True, "strict": True}
    segments: list[Segment] = []
    problems: list[dict] = []
    header: list[str] | None = None
    index = -1
    for row_no, record in enumerate(_csv_records(text, delimiter), start=1):
        raw = text[record.start : record.end]
        if not raw.strip("\r\n"):
            continue
        try:
            rows = list(csv.reader(io.StringIO(raw, newline=""), **dialect))
            if len(rows) != 1 or len(rows[0]) != len(record.cells):
                raise csv.Error("the row could not be split into cells")
        except csv.Error as exc:
            if header is None:
                raise InputError(f"the header row is not valid CSV ({exc}); fix the file") from None
            problems.append({"row": row_no, "reason": f"malformed CSV row: {exc}"})
            continue
        row = rows[0]
        if header is None:
            header = row
            if column not in header:
                raise InputError(f"no column {column!r} in the header {header}; name the text column with --column")
            index = header.index(column)
            continue
        if len(row) != len(header):
            problems.append({"row": row_no, "reason": f"malformed CSV row: {len(row)} cells, the header has {len(header)}"})
            continue
        cell_start, cell_end = record.cells[index]
        value = row[index]
        if not value.strip():
            continue
        quoted = text.startswith('"', cell_start)
        segment = Segment(value, {"row": row_no, "column": column}, (cell_start, cell_end), quoted)
        segment.add_run(0, len(value), 0)
        segment.protect_urls()
        segments.append(segment)
    return CsvDocument(decoded, segments, problems, delimiter=delimiter)


# --------------------------------------------------------------------------- dispatch


def format_of(suffix: str) -> str | None:
    return SUFFIXES.get(suffix.lower())


def parse(data: bytes, suffix: str, options: FormatOptions) -> Document:
    """Decode and parse one file; ``InputError`` says why a file cannot be converted at all."""
    fmt = format_of(suffix)
    if fmt is None:
        raise InputError(f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(sorted(SUFFIXES))}")
    decoded = decode(data, fmt)
    if fmt == "txt":
        return parse_txt(decoded)
    if fmt == "md":
        return parse_md(decoded)
    if fmt == "html":
        return parse_html(decoded)
    if fmt == "jsonl":
        return parse_jsonl(decoded, options.field)
    return parse_csv(decoded, options.column, suffix.lower())
