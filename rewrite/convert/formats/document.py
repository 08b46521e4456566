"""What every format handler returns: a ``Document`` of ``Segment``s (the prose the restorer
reads, with the stretches of it that may be edited) that renders accepted edits back into bytes."""

from __future__ import annotations

import bisect
import re

from ...edits import Edit, apply_edits
from .encoding import Decoded

# Bare URLs, www. hosts and e-mail addresses are never edited, whatever the format.
_URL_RE = re.compile(r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)[^\s<>\"'`]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")


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
        if "://" not in self.text and "www." not in self.text and "@" not in self.text:
            return  # nothing _URL_RE could match; scanning prose for it costs more than the rest of parsing
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


def line_spans(text: str) -> list[tuple[int, int, int]]:
    """``(start, content_end, end)`` of each line; a line ends at ``\\r\\n``, ``\\r`` or ``\\n``."""
    lines = []
    for match in _LINE_RE.finditer(text):
        if match.start() == match.end():
            break
        line = match.group()
        content = len(line.rstrip("\r\n"))
        lines.append((match.start(), match.start() + content, match.end()))
    return lines
