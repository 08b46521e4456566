"""Markdown: paragraphs, headings and table cells; fenced/indented code, inline code, URLs, link
targets, HTML and front matter untouched."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from .document import Document, Segment, line_spans
from .encoding import Decoded


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
    lines = line_spans(text)
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
