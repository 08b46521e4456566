"""Corpus readers: any clean text a user has -> documents of paragraphs.

Supported inputs (a path may be a file or a folder, read recursively):

* ``.txt``: one paragraph a line. A blank line separates documents (the Wikipedia slice). A file
  without blank lines has no document marks, so each paragraph (line) is a document; a file of
  one line (a State of the Union address) is one document. A file whose lines all look like
  ``YYYY-MM-DD<TAB>text`` is a news-items file: one document per date.
* ``.jsonl`` / ``.csv`` / ``.parquet``: one document a row, text in ``text_column``, read with
  ``datasets``' local loaders.

Each document gets a ``source`` (the folder name for the shared corpora, else the file stem) for
per-source weights, and a stable ``doc_id`` used to split train/validation/test by document.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import CorpusError

TEXT_SUFFIXES = {".txt"}
TABLE_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}\t")


@dataclasses.dataclass
class Document:
    doc_id: str
    source: str
    paragraphs: list[str]


def corpus_files(path: str | Path) -> list[Path]:
    """All readable corpus files under ``path`` (sorted, so runs are reproducible)."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus path {path} does not exist")
    if path.is_file():
        return [path]
    suffixes = TEXT_SUFFIXES | set(TABLE_SUFFIXES)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise CorpusError(f"no corpus files (.txt, .jsonl, .csv, .parquet) under {path}")
    return files


def source_name(file: Path) -> str:
    """Folder name for files in a corpus folder (``sotu_1790_1992``), else the file stem."""
    parent = file.parent.name
    return parent if parent and parent not in (".", "") else file.stem


def read_text_lines(file: Path) -> list[str]:
    """Lines of a UTF-8 text file; binary or undecodable input raises ``CorpusError``."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {file}: {exc.strerror}") from exc
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{file} looks binary (NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CorpusError(
            f"{file}: not UTF-8 at byte {exc.start} (line {line}); convert it, e.g. iconv -f latin1 -t utf-8"
        ) from exc
    return text.splitlines()


def read_text_file(file: Path, source: str) -> Iterator[Document]:
    lines = read_text_lines(file)
    nonblank = [line for line in lines if line.strip()]
    if nonblank and all(_DATED.match(line) for line in nonblank[:50]):
        by_date: dict[str, list[str]] = {}
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            date, sep, text = line.partition("\t")
            if not sep:
                raise CorpusError(f"{file}:{lineno}: expected DATE<TAB>text")
            by_date.setdefault(date, []).append(text)
        for date, paras in by_date.items():
            yield Document(f"{source}/{date}", source, paras)
        return
    filled = [k for k, line in enumerate(lines) if line.strip()]
    if filled and filled[-1] - filled[0] + 1 == len(filled):  # no blank line between paragraphs
        for n, line in enumerate(nonblank):  # no document marks: a paragraph a document
            yield Document(f"{source}/{file.stem}/{n}", source, [line])
        return
    block: list[str] = []
    n = 0
    for line in lines + [""]:
        if line.strip():
            block.append(line)
        elif block:
            yield Document(f"{source}/{file.stem}/{n}", source, block)
            n += 1
            block = []


def read_table_file(file: Path, source: str, text_column: str, doc_column: str | None) -> Iterator[Document]:
    import datasets

    loader = TABLE_SUFFIXES[file.suffix.lower()]
    try:
        table = datasets.load_dataset(loader, data_files=str(file), split="train")
    except Exception as exc:  # datasets raises many types for malformed files
        raise CorpusError(f"cannot read {file} as {loader}: {exc}") from exc
    if text_column not in table.column_names:
        raise CorpusError(
            f"{file} has no column {text_column!r} (columns: {table.column_names}); pass --text-column"
        )
    if doc_column and doc_column not in table.column_names:
        raise CorpusError(f"{file} has no column {doc_column!r} for --doc-column")
    for i, row in enumerate(table):
        text = row[text_column]
        if not isinstance(text, str):
            continue
        doc = str(row[doc_column]) if doc_column else str(i)
        yield Document(f"{source}/{doc}", source, [p for p in text.splitlines() if p.strip()])


def read_corpus(path: str | Path, text_column: str = "text", doc_column: str | None = None) -> Iterator[Document]:
    """Documents of every corpus file under ``path``."""
    for file in corpus_files(path):
        source = source_name(file)
        if file.suffix.lower() in TEXT_SUFFIXES:
            yield from read_text_file(file, source)
        else:
            yield from read_table_file(file, source, text_column, doc_column)
