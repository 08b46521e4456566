"""Converting documents: a batch of files (bytes in) -> restored files (bytes out) and report data.

    >>> convert_jobs([Job("a.txt", b"They mentioned it.\n", "sha")], restorer, ConvertOptions())[0].output
    b'They said it.\n'

Each file is parsed by its format handler (``rewrite.convert.formats``); the prose of all files in the
batch goes to the restorer in one ``restore_many`` call; the edits that fall inside editable
prose are spliced back and the file is rendered in its own encoding. ``ConvertOptions`` are the
settings a worker needs (small and picklable; Ray actors and spawned processes get them too).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import logging
import re
from pathlib import Path

from ..edits import Edit, apply_edits
from ..errors import InputError, ModelError
from ..text import count_words
from .formats import Document, FormatOptions, Segment, parse

logger = logging.getLogger(__name__)

CONVERTER_VERSION = "1"  # bump when the same input and model would give different output


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """What a worker needs besides the restorer (small and picklable)."""

    formats: FormatOptions = FormatOptions()
    min_confidence: float | None = None
    protect_quotes: bool = False

    def settings_id(self) -> str:
        """Hash of every setting that changes an output (a change redoes finished files)."""
        blob = json.dumps([CONVERTER_VERSION, dataclasses.asdict(self)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclasses.dataclass
class Job:
    """One input file sent to a worker."""

    rel: str  # path relative to the sources' common folder, '/'-separated
    data: bytes
    sha256: str


@dataclasses.dataclass
class DocResult:
    """What converting one file produced; ``output`` is None when the file failed."""

    rel: str
    status: str  # "ok", "partial" (some lines/rows failed), "failed" (no output) or "skipped" (not a file)
    sha256: str | None = None
    output: bytes | None = None
    words: int = 0
    spin_ratio: float | None = None
    edits: list[dict] = dataclasses.field(default_factory=list)
    errors: list[dict] = dataclasses.field(default_factory=list)
    cacheable: bool = True  # False: not recorded in the manifest, so a rerun tries again
    cached: bool = False
    written: bool = False  # the output is already in place (a table, written while it streamed)
    rows: int | None = None  # tables: rows read; their edits are in the output, not in ``edits``
    edit_count: int | None = None  # tables: edits made (``len(edits)`` for documents)

    @property
    def n_edits(self) -> int:
        return len(self.edits) if self.edit_count is None else self.edit_count

    def report_line(self) -> dict:
        line = {
            "path": self.rel,
            "status": self.status,
            "cached": self.cached,
            "sha256": self.sha256,
            "words": self.words,
            "spin_ratio": self.spin_ratio,
            "edits": self.edits,
            "errors": self.errors,
        }
        if self.rows is not None:
            line.update(rows=self.rows, edit_count=self.edit_count)
        return line

    @classmethod
    def from_manifest(cls, rel: str, sha256: str, status: str, line: dict) -> "DocResult":
        """The result an earlier run recorded (``report_line``), re-emitted without converting."""
        return cls(rel, status, sha256, None, line.get("words", 0), line.get("spin_ratio"), line.get("edits", []),
                   line.get("errors", []), cached=True, rows=line.get("rows"), edit_count=line.get("edit_count"))

    @classmethod
    def failure(cls, rel: str, sha256: str | None, reason: str, cacheable: bool = True) -> "DocResult":
        return cls(rel, "failed", sha256, errors=[{"reason": reason}], cacheable=cacheable)

    @classmethod
    def skipped(cls, rel: str, reason: str) -> "DocResult":
        """A path that is not a regular file (a FIFO, socket or device): never opened or cached."""
        return cls(rel, "skipped", errors=[{"reason": reason}], cacheable=False)


@dataclasses.dataclass
class _Unit:
    """A segment's text sent to the restorer (document ``doc``, segment ``seg``)."""

    doc: int
    seg: int
    text: str

    @property
    def view(self) -> str:
        """What the model reads: line breaks as spaces (a hard-wrapped sentence stays one
        sentence) and unpaired surrogates as U+FFFD; same length, so offsets carry over."""
        return _MODEL_VIEW_RE.sub(lambda m: " " if m.group() in "\r\n" else "\ufffd", self.text)


_MODEL_VIEW_RE = re.compile("[\r\n\ud800-\udfff]")


def _units(doc_index: int, document: Document) -> list[_Unit]:
    """A unit for each segment that holds a word: the restorer cuts it into sentences itself."""
    return [_Unit(doc_index, k, segment.text) for k, segment in enumerate(document.segments) if count_words(segment.text)]


def _accepted(unit: _Unit, restoration, segment) -> list[Edit]:
    """The restoration's edits that fall inside editable prose, in segment coordinates with the
    segment's own characters as ``original`` (the model read line breaks as spaces). An edit
    that does not match what the model read is a restorer bug: it is dropped, never spliced."""
    view = unit.view
    changes = []
    for edit in restoration.edits:
        offset, length = int(edit.offset), int(edit.length)
        if not (0 <= offset <= offset + length <= len(view)) or view[offset : offset + length] != edit.original:
            logger.debug("dropping an edit that does not match its sentence: %r", edit)
            continue
        if segment.editable(offset, offset + length):
            original = unit.text[offset : offset + length]
            changes.append(Edit(offset, length, original, edit.replacement, float(edit.confidence)))
    return changes


def _non_overlapping(changes: list[Edit]) -> list[Edit]:
    kept: list[Edit] = []
    for ch in sorted(changes, key=lambda c: (c.offset, c.length)):
        if kept and ch.offset < kept[-1].offset + kept[-1].length:
            continue
        if kept and ch.length == 0 and ch.offset == kept[-1].offset + kept[-1].length and kept[-1].length == 0:
            continue
        kept.append(ch)
    return kept


def _report_edits(document: Document, changes: list[list[Edit]]) -> list[dict]:
    """Edits for the report: source offsets (and line) for text formats, else the segment's
    location plus the offset inside its value."""
    text = document.decoded.text
    line_breaks: list[int] | None = None  # offsets of "\n", found once (counting per edit was quadratic)
    edits = []
    for segment, seg_changes in zip(document.segments, changes):
        for ch in seg_changes:
            item = {"original": ch.original, "replacement": ch.replacement, "confidence": round(ch.confidence, 4)}
            if segment.value_span is None:
                if line_breaks is None:
                    line_breaks = [m.start() for m in re.finditer("\n", text)]
                start, end = segment.source_span(ch.offset, ch.offset + ch.length)
                loc = {"line": bisect.bisect_left(line_breaks, start) + 1, "offset": start, "length": end - start}
            else:
                loc = {**segment.where, "offset": ch.offset, "length": ch.length}
            edits.append({**loc, **item})
    return edits


def changed_words(originals) -> int:
    """Words the edits with these ``original``s touch (an insertion counts as one word)."""
    return sum(count_words(original) or 1 for original in originals)


def spin_ratio(words: int, changed: int) -> float:
    """Share of ``words`` that edits touched, as the report and the table column give it."""
    return round(min(1.0, changed / words), 4) if words else 0.0


def _finish_document(job: Job, document: Document, units: list[_Unit], restorations: list) -> DocResult:
    per_segment: list[list[Edit]] = [[] for _ in document.segments]
    for unit, restoration in zip(units, restorations):
        per_segment[unit.seg].extend(_accepted(unit, restoration, document.segments[unit.seg]))
    per_segment = [_non_overlapping(changes) for changes in per_segment]
    output = document.render(per_segment)
    words = sum(count_words(u.text) for u in units)  # counted as the restorer counts its spin ratio
    return DocResult(
        job.rel,
        "partial" if document.problems else "ok",
        job.sha256,
        output,
        words,
        spin_ratio(words, changed_words(ch.original for changes in per_segment for ch in changes)),
        _report_edits(document, per_segment),
        list(document.problems),
    )


def convert_jobs(jobs: list[Job], restorer, options: ConvertOptions) -> list[DocResult]:
    """Convert a batch of files with one ``restore_many`` call for all their prose.

    A file that cannot be parsed fails alone. If the restorer raises on the batch (other than a
    ``ModelError``, which stops the run), the files are retried one by one so that only the one
    at fault fails; such failures are not cached in the manifest.
    """
    results: dict[int, DocResult] = {}
    documents: dict[int, Document] = {}
    units: list[_Unit] = []
    for k, job in enumerate(jobs):
        try:
            documents[k] = parse(job.data, Path(job.rel).suffix, options.formats)
        except InputError as exc:
            results[k] = DocResult.failure(job.rel, job.sha256, str(exc))
            continue
        units.extend(_units(k, documents[k]))
    try:
        restorations = _restore(restorer, [u.view for u in units], options)
        by_doc: dict[int, tuple[list, list]] = {k: ([], []) for k in documents}
        for unit, restoration in zip(units, restorations):
            by_doc[unit.doc][0].append(unit)
            by_doc[unit.doc][1].append(restoration)
        for k, document in documents.items():
            try:
                results[k] = _finish_document(jobs[k], document, *by_doc[k])
            except InputError as exc:
                results[k] = DocResult.failure(jobs[k].rel, jobs[k].sha256, str(exc))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - isolate the file at fault, keep the run going
        if len(documents) > 1:
            logger.warning("a batch of %d files failed (%s); retrying them one by one", len(documents), exc)
            for k in documents:
                results[k] = convert_jobs([jobs[k]], restorer, options)[0]
        else:
            for k in documents:
                if isinstance(exc, InputError):  # the restorer refused this text: a property of the file
                    results[k] = DocResult.failure(jobs[k].rel, jobs[k].sha256, str(exc))
                    continue
                logger.exception("converting %s failed", jobs[k].rel)
                results[k] = DocResult.failure(jobs[k].rel, jobs[k].sha256, f"conversion error: {exc!r}", cacheable=False)
    return [results[k] for k in range(len(jobs))]


def _restore(restorer, texts: list[str], options: ConvertOptions) -> list:
    if not texts:
        return []
    restorations = restorer.restore_many(texts, min_confidence=options.min_confidence, protect_quotes=options.protect_quotes)
    if len(restorations) != len(texts):
        raise ModelError(f"the restorer returned {len(restorations)} results for {len(texts)} sentences")
    return restorations


# --------------------------------------------------------------------------- table cells


@dataclasses.dataclass
class CellResult:
    """One restored table cell: ``restored`` is None when the cell is not a string or failed."""

    restored: str | None
    edits: list[dict] | None
    spin_ratio: float | None
    words: int = 0
    error: str | None = None


@dataclasses.dataclass
class RowBatch:
    """Cells of one column sent to a worker; ``tag`` comes back with the results (engines may
    answer out of order)."""

    tag: tuple
    texts: list


@dataclasses.dataclass
class RowResults:
    tag: tuple
    cells: list[CellResult]


def restore_cells(texts: list, restorer, options: ConvertOptions) -> list[CellResult]:
    """Restore table cells with one ``restore_many`` call, as a document's prose is restored:
    URLs stay untouched, line breaks are read as spaces, edits are in the cell's code points.

        >>> restore_cells(["They mentioned it.", None], restorer, ConvertOptions())[0].restored
        'They said it.'

    A cell the restorer fails on fails alone (``error`` set) after a retry cell by cell; a
    ``ModelError`` stops the run. Cells that are not strings come back as ``restored=None``.
    """
    segments = {k: Segment.whole(text, {}) for k, text in enumerate(texts) if isinstance(text, str)}
    words = {k: count_words(texts[k]) for k in segments}
    units = [_Unit(k, 0, texts[k]) for k in segments if words[k]]
    failed, error = set(), None
    try:
        restorations = _restore(restorer, [u.view for u in units], options)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - isolate the cell at fault
        if len(units) > 1:
            logger.warning("a batch of %d cells failed (%s); retrying them one by one", len(units), exc)
            return [restore_cells([text], restorer, options)[0] for text in texts]
        failed, error, restorations = {unit.doc for unit in units}, f"conversion error: {exc}", []
    accepted = {unit.doc: _non_overlapping(_accepted(unit, r, segments[unit.doc])) for unit, r in zip(units, restorations)}
    results = []
    for k, text in enumerate(texts):
        if k in failed:
            results.append(CellResult(None, None, None, words[k], error))
        elif k not in segments:
            results.append(CellResult(None, None, None))
        else:
            changes = accepted.get(k, [])
            edits = [ch.to_dict() for ch in changes]
            ratio = spin_ratio(words[k], changed_words(ch.original for ch in changes))
            results.append(CellResult(apply_edits(text, changes), edits, ratio, words[k]))
    return results


def restore_rows(batch: RowBatch, restorer, options: ConvertOptions) -> RowResults:
    """The engines' work function for tables (``convert_jobs`` is the one for files)."""
    return RowResults(batch.tag, restore_cells(batch.texts, restorer, options))
