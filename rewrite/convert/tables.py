"""Parquet files and ``datasets`` folders: a text column restored beside the original, streamed in
batches and resumable.

    $ unspin convert reviews.parquet --column text --out clean/    # -> clean/reviews.parquet
    $ unspin convert reviews_ds/ --column text --out clean/        # -> clean/reviews_ds/ (save_to_disk)

    >>> ds = map_dataset(restorer, datasets.load_from_disk("reviews_ds"), "text")
    >>> ds.column_names
    ['text', 'label', 'text_restored', 'text_edits', 'spin_ratio']

The output keeps every input column and row, in order, and adds ``NAME_restored`` (the restored
text), ``NAME_edits`` (the edits as a JSON list of ``{offset, length, original, replacement,
confidence}`` in code points of the cell) and ``spin_ratio``. A null cell gives nulls; a cell
the restorer fails on gives nulls too and the table is reported as partial.

How a run streams and resumes (``convert_table``): the rows are read in batches of
``batch_rows`` (``ParquetFile.iter_batches``; a ``datasets`` folder is memory-mapped), so memory
does not grow with the file. Each finished batch's three new columns go to a part file (Arrow
IPC) under ``OUT/.unspin-parts/``, written atomically; a rerun with the same input, model and
settings skips the batches that have a part. When every batch has one, the output is assembled
(input batches zipped with their parts) at a temporary path and renamed into place; then the
manifest row is written and the parts are removed.

``pyarrow`` and ``datasets`` are imported only here and only when a table is converted (extra
``unspin[convert]``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import InputError, UnspinError
from ..files import atomic_target
from .docs import ConvertOptions, DocResult, RowBatch, RowResults, changed_words, restore_cells, restore_rows, spin_ratio

logger = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
PARTS_DIR = ".unspin-parts"
MAX_REPORTED_ERRORS = 100
_ROW_GROUP_BYTES = 32 << 20  # Parquet output: a row group is written when this much is buffered


def table_kind(path: Path) -> str | None:
    """``"parquet"`` for a Parquet file, ``"datasets"`` for a ``save_to_disk`` folder (a Dataset
    or a DatasetDict), else None. Looks at names only; nothing is opened."""
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()):
            return "datasets"
        return None
    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else None


def new_columns(column: str) -> tuple[str, str, str]:
    """The columns a conversion adds: restored text, edits as JSON, spin ratio."""
    return f"{column}_restored", f"{column}_edits", "spin_ratio"


def _require():
    """``(pyarrow, pyarrow.parquet, datasets)``, or an ``InputError`` naming the extra."""
    try:
        import datasets
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise InputError(
            f"Parquet files and datasets folders need pyarrow and datasets ({exc.name} is not installed): "
            "pip install 'unspin[convert]'"
        ) from None
    return pyarrow, pyarrow.parquet, datasets


# --------------------------------------------------------------------------- reading


@dataclasses.dataclass
class _Split:
    """One stream of rows: a Parquet file, a Dataset, or one split of a DatasetDict."""

    name: str | None
    schema: object  # pyarrow.Schema
    rows: int
    batches: Callable[[list[str] | None], Iterator]  # columns (None: all) -> a fresh iterator of record batches / tables
    dataset: object = None  # the datasets.Dataset (datasets folders only)


class _Table:
    """An input table: its splits, read lazily in batches of ``batch_rows``."""

    def __init__(self, path: Path, kind: str, batch_rows: int):
        pa, pq, datasets = _require()
        self.kind = kind
        if kind == "parquet":
            try:
                schema, rows = pq.read_schema(path), pq.read_metadata(path).num_rows
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"not a readable Parquet file: {exc}") from None
            self.splits = [_Split(None, schema, rows, lambda columns: _parquet_batches(pq, path, batch_rows, columns))]
            return
        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as exc:  # noqa: BLE001 - datasets raises many kinds (an empty split: IndexError)
            raise InputError(f"datasets.load_from_disk cannot read it ({type(exc).__name__}: {exc})") from None
        items = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
        self.splits = [
            _Split(name, ds.features.arrow_schema, ds.num_rows,
                   lambda columns, ds=ds: (ds.select_columns(columns) if columns else ds).with_format("arrow").iter(batch_size=batch_rows),
                   ds)
            for name, ds in items
        ]

    def check_column(self, column: str) -> None:
        check_column([(split.name, split.schema) for split in self.splits], column)

    @property
    def rows(self) -> int:
        return sum(split.rows for split in self.splits)


def _parquet_batches(pq, path: Path, batch_rows: int, columns: list[str] | None) -> Iterator:
    """Record batches of ``batch_rows`` rows, reading pages as they are needed (not a whole row
    group's column chunks at once, which can be most of a file written in one go)."""
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 22).iter_batches(batch_size=batch_rows, columns=columns)


def check_column(schemas: list[tuple], column: str) -> None:
    """``InputError`` unless each ``(split name, pyarrow schema)`` has ``column`` holding strings
    and none of the columns a conversion adds."""
    pa = _require()[0]
    for name, schema in schemas:
        names = list(schema.names)
        where = f" (split {name!r})" if name else ""
        if column not in names:
            raise InputError(f"no column {column!r}{where}; its columns: {', '.join(names)}. "
                             "Name the text column with --column")
        kind = schema.field(column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
                or getattr(pa.types, "is_string_view", lambda _: False)(kind)):
            raise InputError(f"column {column!r}{where} holds {kind}, not text; name the text column with --column")
        clash = [added for added in new_columns(column) if added in names]
        if clash:
            raise InputError(f"the table already has {', '.join(clash)}{where} (converted before?); "
                             "convert the original table")


def hash_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (their relative paths and bytes), read in chunks."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file())
    for file in files:
        if file != path:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- parts


def parts_root(out: Path, rel: str) -> Path:
    return out / PARTS_DIR / hashlib.sha256(rel.encode()).hexdigest()[:16]


def remove_parts(out: Path, rel: str) -> None:
    """Delete a table's parts (after its manifest row is committed), and the parts folder once empty."""
    root = parts_root(out, rel)
    if root.is_dir():
        shutil.rmtree(root)
    try:
        root.parent.rmdir()
    except OSError:  # absent, or other tables' parts are still there
        pass


class _Parts:
    """The part files of one conversion of one table: ``SPLIT-START-ROWS.arrow``, each holding
    the new columns of one batch and, in its schema metadata, the batch's counts."""

    def __init__(self, out: Path, rel: str, key: str, column: str):
        pa, _, datasets = _require()
        self.pa = pa
        root = parts_root(out, rel)
        self.folder = root / key
        if root.is_dir():
            for other in root.iterdir():  # parts of another input version, model or setting
                if other != self.folder:
                    shutil.rmtree(other) if other.is_dir() else other.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        restored, edits, ratio = new_columns(column)
        self.features = datasets.Features({restored: datasets.Value("string"), edits: datasets.Value("string"),
                                           ratio: datasets.Value("float64")})
        self.schema = self.features.arrow_schema

    def path(self, tag: tuple) -> Path:
        split, start, rows = tag
        return self.folder / f"{split or '_'}-{start:012d}-{rows}.arrow"

    def write(self, result: RowResults) -> dict:
        """Write one batch's new columns; returns its counts."""
        pa = self.pa
        split, start, _ = result.tag
        cells = result.cells
        counts = {
            "words": sum(cell.words for cell in cells if cell.error is None),
            "changed": changed_words(e["original"] for cell in cells for e in cell.edits or ()),
            "edits": sum(len(cell.edits or ()) for cell in cells),
            "errors": [{"row": start + k, **({"split": split} if split else {}), "reason": cell.error}
                       for k, cell in enumerate(cells) if cell.error][:MAX_REPORTED_ERRORS],
            "failed": sum(1 for cell in cells if cell.error),
        }
        names = self.schema.names
        table = pa.table({
            names[0]: pa.array([cell.restored for cell in cells], pa.string()),
            names[1]: pa.array([None if cell.edits is None else json.dumps(cell.edits, ensure_ascii=False) for cell in cells],
                               pa.string()),
            names[2]: pa.array([cell.spin_ratio for cell in cells], pa.float64()),
        }, schema=self.schema.with_metadata({**self.schema.metadata, b"unspin": json.dumps(counts).encode()}))
        with atomic_target(self.path(result.tag)) as tmp:
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        return counts

    def counts(self, tag: tuple) -> dict | None:
        """The counts of a finished batch, or None when it has no part yet."""
        file = self.path(tag)
        if not file.is_file():
            return None
        with self.pa.memory_map(str(file)) as source:
            return json.loads(self.pa.ipc.open_stream(source).schema.metadata[b"unspin"])

    def read(self, tag: tuple):
        with self.pa.memory_map(str(self.path(tag))) as source:
            return self.pa.ipc.open_stream(source).read_all()


# --------------------------------------------------------------------------- a run


@dataclasses.dataclass
class TableRun:
    """What converting tables needs from the run: the engine and the settings."""

    out: Path
    engine: object
    options: ConvertOptions
    model: str
    settings: str
    batch_rows: int = 256
    log_every: float = 10.0


def convert_table(path: Path, rel: str, run: TableRun, sha256: str) -> DocResult:
    """Convert one table into ``run.out / rel``; see the module docstring. Per-table problems (no
    such column, unreadable file, missing extra) come back as a failed result."""
    column = run.options.formats.column
    try:
        _require()
    except InputError as exc:  # not recorded as done: installing the extra and rerunning converts it
        return DocResult.failure(rel, sha256, str(exc), cacheable=False)
    try:
        table = _Table(path, table_kind(path), run.batch_rows)
        table.check_column(column)
    except InputError as exc:
        return DocResult.failure(rel, sha256, str(exc))
    key = hashlib.sha256(json.dumps([sha256, run.model, run.settings, run.batch_rows]).encode()).hexdigest()[:16]
    parts = _Parts(run.out, rel, key, column)
    totals = {"words": 0, "changed": 0, "edits": 0, "errors": [], "failed": 0}
    progress = _RowProgress(rel, table.rows, run.log_every)

    def add(counts: dict, rows: int) -> None:
        for name in ("words", "changed", "edits", "failed"):
            totals[name] += counts[name]
        totals["errors"] = (totals["errors"] + counts["errors"])[:MAX_REPORTED_ERRORS]
        progress.update(rows)

    tags: dict[str | None, list[tuple]] = {split.name: [] for split in table.splits}

    def pending() -> Iterator[RowBatch]:
        for split, tag, batch in _tagged_batches(table, [column]):
            tags[split.name].append(tag)
            counts = parts.counts(tag)
            if counts is not None:  # finished by an earlier run
                add(counts, tag[2])
                continue
            yield RowBatch(tag, batch.column(column).to_pylist())

    for result in run.engine.run(pending(), run.options, work=restore_rows):
        add(parts.write(result), result.tag[2])
    target = run.out / rel
    _assemble(table, parts, target, tags)
    errors = totals["errors"]
    if totals["failed"] > len(errors):
        errors = errors + [{"reason": f"... {totals['failed'] - len(errors)} more rows failed"}]
    words = totals["words"]
    return DocResult(
        rel, "partial" if totals["failed"] else "ok", sha256, None, words,
        spin_ratio(words, totals["changed"]), [], errors,
        written=True, rows=table.rows, edit_count=totals["edits"],
    )


def _tagged_batches(table: _Table, columns: list[str] | None = None) -> Iterator[tuple]:
    """``(split, (split name, first row, rows), batch)`` for every batch of every split."""
    for split in table.splits:
        start = 0
        for batch in split.batches(columns):
            yield split, (split.name, start, batch.num_rows), batch
            start += batch.num_rows


class _RowProgress:
    def __init__(self, rel: str, total: int, every: float):
        self.rel, self.total, self.every = rel, total, every
        self.done = 0
        self.start = self._last = time.monotonic()

    def update(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            logger.info("%s: %s/%s rows (%.0f rows/s)", self.rel, f"{self.done:,}", f"{self.total:,}",
                        self.done / max(now - self.start, 1e-9))


def _assemble(table: _Table, parts: _Parts, target: Path, tags: dict) -> None:
    """Write the output in the input's format: every input column, then the parts' columns
    (``tags``: each split's batches, in order)."""
    pa, pq, datasets = _require()
    if table.kind == "parquet":
        split = table.splits[0]
        schema = _output_schema(split.schema, parts, datasets)
        with atomic_target(target) as tmp:
            with pq.ParquetWriter(str(tmp), schema) as writer:
                buffered, size = [], 0
                for (_, tag, batch), done in itertools.zip_longest(_tagged_batches(table), tags[None], fillvalue=(None,) * 3):
                    if tag != done:
                        raise UnspinError(f"{target.name}: the input changed during the run; rerun to convert it again")
                    added = parts.read(tag)
                    arrays = list(batch.columns) + [added.column(k).combine_chunks() for k in range(added.num_columns)]
                    buffered.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
                    size += buffered[-1].nbytes
                    if size >= _ROW_GROUP_BYTES:
                        writer.write_table(pa.Table.from_batches(buffered, schema=schema))
                        buffered, size = [], 0
                if buffered:
                    writer.write_table(pa.Table.from_batches(buffered, schema=schema))
        return
    merged = {}
    for split in table.splits:
        added = [datasets.Dataset.from_file(str(parts.path(tag))) for tag in tags[split.name]]
        new = datasets.concatenate_datasets(added) if added else datasets.Dataset.from_dict(
            {name: [] for name in parts.features}, features=parts.features)
        merged[split.name] = datasets.concatenate_datasets([split.dataset, new], axis=1)
    result = merged[None] if None in merged else datasets.DatasetDict(merged)
    quiet = not datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the run has its own progress report
    try:
        with atomic_target(target) as tmp:
            result.save_to_disk(str(tmp))
    finally:
        if not quiet:
            datasets.enable_progress_bars()


def _output_schema(schema, parts: _Parts, datasets):
    """The input schema plus the parts' columns, with ``datasets`` feature metadata covering all."""
    pa = parts.pa
    fields = list(schema) + list(parts.schema)
    metadata = dict(schema.metadata or {})
    features = datasets.Features.from_arrow_schema(schema)
    features.update(parts.features)
    metadata.update(features.arrow_schema.metadata or {})
    return pa.schema(fields, metadata=metadata)


# --------------------------------------------------------------------------- in Python


def map_dataset(restorer, dataset, column: str, batch_size: int = 64, min_confidence: float | None = None,
                protect_quotes: bool = False, **map_kwargs):
    """``dataset`` (a ``datasets.Dataset`` or ``DatasetDict``) with ``COLUMN_restored``,
    ``COLUMN_edits`` (JSON) and ``spin_ratio`` added, restored ``batch_size`` rows per
    ``restore_many`` call through ``Dataset.map(batched=True)``.

        >>> ds = map_dataset(Restorer.from_pretrained(), Dataset.from_dict({"text": ["They mentioned it."]}), "text")
        >>> ds[0]["text_restored"], json.loads(ds[0]["text_edits"])[0]["replacement"]
        ('They said it.', 'said')

    ``map_kwargs`` go to ``Dataset.map`` (``num_proc``, ``desc``, ``load_from_cache_file``, ...).
    """
    _, _, datasets = _require()
    if isinstance(dataset, datasets.DatasetDict):
        return datasets.DatasetDict({name: map_dataset(restorer, split, column, batch_size, min_confidence, protect_quotes, **map_kwargs)
                                     for name, split in dataset.items()})
    check_column([(None, dataset.features.arrow_schema)], column)
    options = ConvertOptions(min_confidence=min_confidence, protect_quotes=protect_quotes)
    restored, edits, ratio = new_columns(column)

    def restore_batch(batch: dict) -> dict:
        cells = restore_cells(batch[column], restorer, options)
        return {
            restored: [cell.restored for cell in cells],
            edits: [None if cell.edits is None else json.dumps(cell.edits, ensure_ascii=False) for cell in cells],
            ratio: [cell.spin_ratio for cell in cells],
        }

    map_kwargs.setdefault("desc", f"Restoring {column}")
    # Hashing the function for the cache would pickle the model; name the result instead.
    model = json.dumps(dict(getattr(restorer, "model_info", {}) or {}), sort_keys=True, default=str)
    fingerprint = hashlib.sha256(json.dumps([dataset._fingerprint, column, model, dataclasses.asdict(options)]).encode())
    map_kwargs.setdefault("new_fingerprint", fingerprint.hexdigest()[:16])
    return dataset.map(restore_batch, batched=True, batch_size=batch_size, **map_kwargs)
