"""CSV/TSV: the cell of one named column on each row is a segment; other cells and the dialect kept."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable

from ...errors import InputError
from .document import Document, Segment
from .encoding import Decoded


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
