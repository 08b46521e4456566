"""Batch conversion of files and folders, safe to kill and resume.

    >>> summary = convert_files(["docs/"], ConvertConfig(out="clean/", report="report.jsonl"))
    >>> summary.ok, summary.failed, summary.words_per_second
    (1180, 3, 2410.5)

What a run does (``convert_files`` reads in this order):

1. ``discover``: the files under each source (recursive, ``--glob`` filters, hidden names and
   the output folder skipped) and their paths relative to the sources' common folder; the output
   tree mirrors that (``docs/a/b.md`` -> ``clean/a/b.md``). Named pipes, sockets and devices are
   reported as skipped and never opened (a FIFO would block the run). ``check_paths`` then
   refuses an output folder around a source and a report path that is, or could be, an input or
   an output.
2. ``Manifest.open``: the SQLite manifest ``clean/.unspin-manifest.sqlite`` (locked against a
   second run) and removal of temporary files a killed run left behind.
3. ``make_engine``: the restorer loaded once per worker (in this process, in ``--workers N``
   spawned processes, or in Ray actors) and asked for its model id.
4. ``_batches``: each input is read and hashed; one the manifest records with the same hash,
   model id and settings is skipped (its recorded report line is re-emitted); the others go to
   the workers in small batches.
5. Workers parse each file (``rewrite.formats``), send its sentences to ``restore_many`` in one
   batch, keep the edits that fall inside prose, and return the rendered bytes.
6. ``_Recorder.finish``: the output is written to a temporary file, fsynced and renamed over
   the target; only then is the manifest row written. A kill at any moment therefore leaves
   either the old state or a complete output; a rerun redoes anything without a row.
"""

from __future__ import annotations

import bisect
import dataclasses
import fnmatch
import hashlib
import json
import logging
import multiprocessing
import os
import re
import sqlite3
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .errors import InputError, ModelError, UnspinError
from .formats import Change, Document, FormatOptions, format_of, parse
from .text import count_words, split_sentences

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".unspin-manifest.sqlite"
TEMP_MARK = ".unspin-tmp-"
CONVERTER_VERSION = "1"  # bump when the same input and model would give different output
STATUSES = ("ok", "partial", "failed", "skipped")


def _field(default, help: str, **kwargs):
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


@dataclasses.dataclass
class ConvertConfig:
    """Settings of one conversion run (``unspin convert`` flags map one to one)."""

    out: str = _field("", "Output folder; the input tree is mirrored inside it.")
    globs: tuple[str, ...] = _field((), "Only files under a source folder whose relative path or name matches one of these patterns.")
    report: str | None = _field(None, "JSONL report: one line per document (path, status, spin ratio, edits, errors).")
    workers: int = _field(1, "Restorer processes (local) or actors (ray); each loads the model once.")
    engine: str = _field("local", "'local' (this machine) or 'ray' (a Ray cluster).")
    address: str | None = _field(None, "Ray cluster address ('auto', 'ray://head:10001'); none starts a local Ray.")
    field: str = _field("text", "JSONL: the field holding the text.")
    column: str = _field("text", "CSV: the header name of the column holding the text.")
    min_confidence: float | None = _field(None, "Drop edits the model is less sure of than this (0..1; None: the model's recommendation).")
    protect_quotes: bool = _field(False, "Leave text inside quotation marks as it is.")
    batch_files: int = _field(16, "Documents sent to a worker at a time.")
    batch_chars: int = _field(200_000, "Characters sent to a worker at a time (a batch closes at either limit).")
    progress: bool | None = _field(None, "Progress bar; None: a bar when stderr is a terminal, log lines otherwise.")
    log_every: float = _field(10.0, "Seconds between progress log lines when there is no bar.")

    def __post_init__(self) -> None:
        if not str(self.out):
            raise InputError("no output folder; pass --out DIR")
        if self.engine not in ("local", "ray"):
            raise InputError(f"unknown engine {self.engine!r}; choose 'local' or 'ray'")
        if self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise InputError(f"--min-confidence must be between 0 and 1, got {self.min_confidence}")
        if self.batch_files < 1 or self.batch_chars < 1:
            raise InputError("batch_files and batch_chars must be at least 1")
        if self.address and self.engine != "ray":
            raise InputError("--address only applies to --engine ray")
        self.globs = tuple(self.globs)

    def options(self) -> "ConvertOptions":
        return ConvertOptions(FormatOptions(self.field, self.column), self.min_confidence, self.protect_quotes)


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


# --------------------------------------------------------------------------- restorers


@dataclasses.dataclass(frozen=True)
class RestorerFactory:
    """Picklable recipe for a worker's restorer: ``Restorer.from_pretrained(model_dir, backend)``."""

    model_dir: str | None = None
    backend: str = "auto"  # one of rewrite.backends.BACKENDS
    threads: int | None = None  # backend threads in this worker (None: the library default)

    def __call__(self):
        from . import Restorer

        return Restorer.from_pretrained(self.model_dir, backend=self.backend, threads=self.threads or 0)


def model_id(info: dict) -> str:
    """A stable id for a restorer's ``model_info``: its ``id``, else the weights' hash (so a
    copied or moved model folder keeps its id), else its name; with the backend when it is not
    exact-greedy-equivalent for sure (int8 output differs slightly), so switching redoes files."""
    for key in ("id", "sha256", "hash", "version", "name"):
        if info.get(key):
            backend = info.get("backend")
            return f"{info[key]}+{backend}" if backend else str(info[key])
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- per document


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

    def report_line(self) -> dict:
        return {
            "path": self.rel,
            "status": self.status,
            "cached": self.cached,
            "sha256": self.sha256,
            "words": self.words,
            "spin_ratio": self.spin_ratio,
            "edits": self.edits,
            "errors": self.errors,
        }

    @classmethod
    def failure(cls, rel: str, sha256: str | None, reason: str, cacheable: bool = True) -> "DocResult":
        return cls(rel, "failed", sha256, errors=[{"reason": reason}], cacheable=cacheable)

    @classmethod
    def skipped(cls, rel: str, reason: str) -> "DocResult":
        """A path that is not a regular file (a FIFO, socket or device): never opened or cached."""
        return cls(rel, "skipped", errors=[{"reason": reason}], cacheable=False)


@dataclasses.dataclass
class _Unit:
    """A sentence sent to the restorer: ``segments[seg].text[start:start+len(text)]``."""

    doc: int
    seg: int
    start: int
    text: str

    @property
    def view(self) -> str:
        """What the model reads: line breaks as spaces (a hard-wrapped sentence stays one
        sentence) and unpaired surrogates as U+FFFD; same length, so offsets carry over."""
        return _MODEL_VIEW_RE.sub(lambda m: " " if m.group() in "\r\n" else "\ufffd", self.text)


_MODEL_VIEW_RE = re.compile("[\r\n\ud800-\udfff]")


def _units(doc_index: int, document: Document) -> list[_Unit]:
    units = []
    for seg_index, segment in enumerate(document.segments):
        for start, end in split_sentences(segment.text):
            sentence = segment.text[start:end]
            if count_words(sentence):
                units.append(_Unit(doc_index, seg_index, start, sentence))
    return units


def _accepted(unit: _Unit, restoration, segment) -> list[Change]:
    """The restoration's edits that match the sentence and fall inside editable prose."""
    view = unit.view
    changes = []
    for edit in restoration.edits:
        offset, length = int(edit.offset), int(edit.length)
        if not (0 <= offset <= offset + length <= len(view)) or view[offset : offset + length] != edit.original:
            logger.debug("dropping an edit that does not match its sentence: %r", edit)
            continue
        a = unit.start + offset
        if segment.editable(a, a + length):
            original = unit.text[offset : offset + length]
            changes.append(Change(a, length, original, edit.replacement, float(edit.confidence)))
    return changes


def _non_overlapping(changes: list[Change]) -> list[Change]:
    kept: list[Change] = []
    for ch in sorted(changes, key=lambda c: (c.offset, c.length)):
        if kept and ch.offset < kept[-1].offset + kept[-1].length:
            continue
        if kept and ch.length == 0 and ch.offset == kept[-1].offset + kept[-1].length and kept[-1].length == 0:
            continue
        kept.append(ch)
    return kept


def _report_edits(document: Document, changes: list[list[Change]]) -> list[dict]:
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


def _finish_document(job: Job, document: Document, units: list[_Unit], restorations: list) -> DocResult:
    per_segment: list[list[Change]] = [[] for _ in document.segments]
    for unit, restoration in zip(units, restorations):
        per_segment[unit.seg].extend(_accepted(unit, restoration, document.segments[unit.seg]))
    per_segment = [_non_overlapping(changes) for changes in per_segment]
    output = document.render(per_segment)
    words = sum(count_words(u.text) for u in units)  # counted as the restorer counts its spin ratio
    changed = sum(count_words(ch.original) or 1 for changes in per_segment for ch in changes)
    return DocResult(
        job.rel,
        "partial" if document.problems else "ok",
        job.sha256,
        output,
        words,
        round(min(1.0, changed / words), 4) if words else 0.0,
        _report_edits(document, per_segment),
        list(document.problems),
    )


def convert_jobs(jobs: list[Job], restorer, options: ConvertOptions) -> list[DocResult]:
    """Convert a batch of files with one ``restore_many`` call for all their sentences.

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


# --------------------------------------------------------------------------- discovery


@dataclasses.dataclass
class Plan:
    """The inputs of a run: absolute paths and their '/'-separated paths relative to ``base``."""

    base: Path
    files: list[tuple[Path, str]]
    ignored: int = 0  # files in source folders with a suffix no handler reads
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (rel, why): not regular files


def discover(sources: Iterable[str | os.PathLike], globs: tuple[str, ...] = (), exclude: Iterable[Path] = ()) -> Plan:
    """Files to convert. Folders are walked recursively (names starting with '.' skipped) and
    filtered by ``globs`` (fnmatch on the relative path or the name; default: every supported
    suffix); files named directly are always taken. Paths are relative to the sources' common
    folder, so one folder maps to the output folder's top. A path that passes the filters but is
    not a regular file (``non_regular``) goes to ``Plan.skipped``, unopened."""
    paths = [Path(s) for s in sources]
    if not paths:
        raise InputError("no input given; pass files or folders to convert")
    for path in paths:
        if not path.exists():
            raise InputError(f"{path} does not exist")
    resolved = [p.resolve() for p in paths]
    base = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in resolved]))
    excluded = [Path(e).resolve() for e in exclude]
    seen: dict[Path, str] = {}
    skipped: dict[str, str] = {}
    ignored = 0

    def take(file: Path, rel: str) -> None:
        kind = non_regular(file)
        if kind:
            skipped.setdefault(rel, f"{kind}, not a regular file; skipped without opening it")
        else:
            seen.setdefault(file, rel)

    for path in resolved:
        if not path.is_dir():
            take(path, path.relative_to(base).as_posix())
            continue
        for root, dirs, names in os.walk(path):
            root_path = Path(root)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(root_path / d, excluded))
            for name in sorted(names):
                file = root_path / name
                if name.startswith(".") or _inside(file, excluded):
                    continue
                rel = file.relative_to(base).as_posix()
                if globs:
                    if not any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in globs):
                        continue
                elif format_of(file.suffix) is None:
                    ignored += 1
                    continue
                take(file, rel)
    files = sorted(((path, rel) for path, rel in seen.items()), key=lambda item: item[1])
    return Plan(base, files, ignored, sorted(skipped.items()))


_FILE_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def non_regular(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file (following links), e.g. ``"a named pipe
    (FIFO)"``; ``None`` for a regular file and for a path that cannot be looked at (reading it
    then fails and is reported as unreadable). Decided by ``stat``: the path is not opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def check_paths(sources: list[Path], out: Path, report: Path | None, plan: Plan) -> None:
    """Refuse paths that would make a run read its own output or overwrite an input.

    ``sources``, ``out`` and ``report`` are resolved. No source may lie inside ``out`` (its
    outputs would overwrite it). The report may not be a source or a file to convert, may not
    lie inside a source folder (outside ``out``), and may not be the manifest or the output of
    an input (``out/REL``)."""
    for source in sources:
        if _inside(source, [out]):
            raise InputError(f"{source} is inside --out {out}; choose an output folder outside the inputs")
    if report is None:
        return
    inputs = {path for path, _ in plan.files} | set(sources)
    folders = [source for source in sources if source.is_dir()]
    if report in inputs or (_inside(report, folders) and not _inside(report, [out])):
        raise InputError(
            f"--report {report} is among the inputs; writing it would overwrite or add an input. "
            "Put the report outside the folders being converted"
        )
    if report == out / MANIFEST_NAME or report in {out / rel for _, rel in plan.files}:
        raise InputError(f"--report {report} is an output of this run; choose another report path")


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


# --------------------------------------------------------------------------- output files


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_temp_files(out: Path) -> int:
    """Delete temporary files a killed run left in ``out``; returns how many."""
    removed = 0
    for root, _, names in os.walk(out):
        for name in names:
            if name.startswith(".") and TEMP_MARK in name:
                os.unlink(os.path.join(root, name))
                removed += 1
    if removed:
        logger.info("removed %d temporary files left by an interrupted run", removed)
    return removed


class Manifest:
    """``.unspin-manifest.sqlite``: one row per finished input, written after its output.

    Rows: ``path`` (relative), ``sha256`` (of the input bytes), ``model_id``, ``settings``
    (``ConvertOptions.settings_id``), ``status``, ``report`` (the report line as JSON) and
    ``finished`` (Unix time). Commits are grouped (every ``commit_every`` seconds): a row lost to
    a kill only means that file is converted again, to the same bytes.
    """

    def __init__(self, out: Path, commit_every: float = 1.0):
        self.path = out / MANIFEST_NAME
        self._lock_fd = _lock(self.path)
        self.db = sqlite3.connect(self.path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, model_id TEXT NOT NULL,"
            " settings TEXT NOT NULL, status TEXT NOT NULL, report TEXT NOT NULL, finished REAL NOT NULL)"
        )
        self.db.commit()
        self.commit_every = commit_every
        self._last_commit = time.monotonic()

    def lookup(self, rel: str) -> tuple[str, str, str, str, dict] | None:
        row = self.db.execute("SELECT sha256, model_id, settings, status, report FROM files WHERE path = ?", (rel,)).fetchone()
        return None if row is None else (*row[:4], json.loads(row[4]))

    def record(self, result: DocResult, model: str, settings: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (result.rel, result.sha256, model, settings, result.status, json.dumps(result.report_line()), time.time()),
        )
        if time.monotonic() - self._last_commit >= self.commit_every:
            self.commit()

    def commit(self) -> None:
        self.db.commit()
        self._last_commit = time.monotonic()

    def close(self) -> None:
        self.commit()
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)


def _lock(path: Path) -> int | None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise InputError(f"another 'unspin convert' is writing to {path.parent}; wait for it or use another --out") from None
    return fd


# --------------------------------------------------------------------------- engines


class InProcessEngine:
    """Restores in this process (``--workers 1``)."""

    def __init__(self, factory: Callable[[], object]):
        self.restorer = factory()

    def model_info(self) -> dict:
        return dict(self.restorer.model_info)

    def run(self, batches: Iterable[list[Job]], options: ConvertOptions) -> Iterator[list[DocResult]]:
        for batch in batches:
            yield convert_jobs(batch, self.restorer, options)

    def close(self) -> None:
        pass


_WORKER: dict = {}


def _init_worker(factory: Callable[[], object]) -> None:
    try:
        _WORKER["restorer"] = factory()
    except Exception as exc:  # noqa: BLE001 - handed to the parent by the first task
        _WORKER["error"] = exc


def _worker_restorer():
    if "error" in _WORKER:
        raise _WORKER["error"]
    return _WORKER["restorer"]


def _worker_model_info() -> dict:
    return dict(_worker_restorer().model_info)


def _worker_convert(jobs: list[Job], options: ConvertOptions) -> list[DocResult]:
    return convert_jobs(jobs, _worker_restorer(), options)


class ProcessPoolEngine:
    """``workers`` spawned processes, each loading the restorer once."""

    def __init__(self, factory: Callable[[], object], workers: int):
        self.workers = workers
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(factory,)
        )

    def model_info(self) -> dict:
        return self._result(self.pool.submit(_worker_model_info))

    def run(self, batches: Iterable[list[Job]], options: ConvertOptions) -> Iterator[list[DocResult]]:
        pending = set()
        for batch in batches:
            if len(pending) >= 2 * self.workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield self._result(future)
            pending.add(self.pool.submit(_worker_convert, batch, options))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield self._result(future)

    @staticmethod
    def _result(future):
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise UnspinError(f"a worker process died ({exc}); rerun the same command to resume") from exc

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def make_engine(config: ConvertConfig, factory: Callable[[], object]):
    if config.engine == "ray":
        from .ray_engine import RayEngine

        if isinstance(factory, RestorerFactory) and factory.threads is None:
            factory = dataclasses.replace(factory, threads=1)  # each actor reserves one CPU
        return RayEngine(factory, config.workers, config.address)
    if config.workers == 1:
        return InProcessEngine(factory)
    if isinstance(factory, RestorerFactory) and factory.threads is None:
        factory = dataclasses.replace(factory, threads=max(1, (os.cpu_count() or 1) // config.workers))
    return ProcessPoolEngine(factory, config.workers)


# --------------------------------------------------------------------------- the run


@dataclasses.dataclass
class Summary:
    """Counts of one run. ``cached`` files were finished by an earlier run and skipped."""

    total: int = 0
    ok: int = 0
    partial: int = 0
    failed: int = 0
    skipped: int = 0  # not regular files (FIFOs, sockets, devices): reported, never opened
    cached: int = 0
    ignored: int = 0
    words: int = 0
    edits: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, first reason)

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else 0.0

    @property
    def any_failed(self) -> bool:
        return bool(self.partial or self.failed)

    def describe(self) -> str:
        parts = [f"{_count(self.total, 'file')}: {self.ok} ok, {self.partial} partial, {self.failed} failed"
                 + (f", {self.skipped} skipped (not regular files)" if self.skipped else "")]
        if self.cached:
            parts.append(f"{self.cached} of them unchanged since an earlier run")
        if self.ignored:
            parts.append(f"{_count(self.ignored, 'file')} with other suffixes ignored")
        parts.append(f"{self.words:,} words, {self.edits:,} edits in {self.seconds:.1f} s ({self.words_per_second:,.0f} words/s)")
        return "; ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


class _Progress:
    """A tqdm bar (files, words/s, ETA) on a terminal; a log line every ``every`` s otherwise."""

    def __init__(self, total: int, enabled: bool | None, every: float):
        self.total, self.every = total, every
        self.done = self.words = 0
        self.start = self._last = time.monotonic()
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="file", desc="Converting", dynamic_ncols=True)

    def update(self, words: int) -> None:
        self.done += 1
        self.words += words
        now = time.monotonic()
        rate = self.words / max(now - self.start, 1e-9)
        if self.bar is not None:
            self.bar.update(1)
            if now - self._last >= 0.5:
                self.bar.set_postfix_str(f"{rate:,.0f} words/s", refresh=False)
                self._last = now
        elif now - self._last >= self.every:
            self._last = now
            files_rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / files_rate if files_rate else float("inf")
            logger.info(
                "converted %d/%d files, %s words, %.0f words/s, ETA %s",
                self.done, self.total, f"{self.words:,}", rate, _duration(eta),
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class _Recorder:
    """Writes each result in the crash-safe order: output (atomic), manifest row, report line."""

    def __init__(self, out: Path, manifest: Manifest, report, model: str, settings: str, summary: Summary, progress: _Progress):
        self.out, self.manifest, self.report = out, manifest, report
        self.model, self.settings = model, settings
        self.summary, self.progress = summary, progress

    def finish(self, result: DocResult) -> None:
        target = self.out / result.rel
        if not result.cached:
            if result.output is not None:
                atomic_write(target, result.output)
            elif result.cacheable and target.is_file():
                target.unlink()  # an output of an earlier version of this input would be stale
            if result.cacheable and result.sha256 is not None:
                self.manifest.record(result, self.model, self.settings)
        if self.report is not None:
            self.report.write(json.dumps(result.report_line(), ensure_ascii=False) + "\n")
            self.report.flush()
        s = self.summary
        setattr(s, result.status, getattr(s, result.status) + 1)
        s.cached += result.cached
        s.edits += len(result.edits)
        if not result.cached:
            s.words += result.words
        if result.status != "ok":
            s.failures.append((result.rel, result.errors[0]["reason"] if result.errors else result.status))
            logger.warning("%s: %s", result.rel, "; ".join(e["reason"] for e in result.errors[:3]))
        self.progress.update(0 if result.cached else result.words)


def _batches(plan: Plan, out: Path, manifest: Manifest, model: str, settings: str, config: ConvertConfig, recorder: _Recorder) -> Iterator[list[Job]]:
    """Read and hash each input; hand finished ones straight to ``recorder``; yield the rest in
    batches of at most ``batch_files`` files / ``batch_chars`` bytes."""
    batch: list[Job] = []
    size = 0
    for path, rel in plan.files:
        kind = non_regular(path)  # it may have been replaced since discovery
        if kind:
            recorder.finish(DocResult.skipped(rel, f"{kind}, not a regular file; skipped without opening it"))
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            recorder.finish(DocResult.failure(rel, None, f"unreadable: {exc.strerror or exc}", cacheable=False))
            continue
        sha = hashlib.sha256(data).hexdigest()
        row = manifest.lookup(rel)
        if row is not None and row[:3] == (sha, model, settings):
            line = row[4]
            if row[3] == "failed" or (out / rel).is_file():
                recorder.finish(DocResult(rel, row[3], sha, None, line.get("words", 0), line.get("spin_ratio"),
                                          line.get("edits", []), line.get("errors", []), cached=True))
                continue
        batch.append(Job(rel, data, sha))
        size += len(data)
        if len(batch) >= config.batch_files or size >= config.batch_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def convert_files(sources: Iterable[str | os.PathLike], config: ConvertConfig, restorer_factory: Callable[[], object] | None = None) -> Summary:
    """Convert ``sources`` into ``config.out``; see the module docstring for the steps.

    ``restorer_factory``: a picklable callable returning an object with ``restore_many`` and
    ``model_info`` (default: ``RestorerFactory()``, the shipped model). Per-file problems are
    recorded in the summary and the report; ``UnspinError`` is raised only for problems that stop
    the whole run (no input, a locked output folder, a model that does not load).
    """
    sources = list(sources)
    out = Path(config.out)
    report_path = Path(config.report).resolve() if config.report else None
    plan = discover(sources, config.globs, exclude=[out] + ([report_path] if report_path else []))
    check_paths([Path(source).resolve() for source in sources], out.resolve(), report_path, plan)
    out.mkdir(parents=True, exist_ok=True)
    factory = restorer_factory or RestorerFactory()
    options = config.options()
    summary = Summary(total=len(plan.files) + len(plan.skipped), ignored=plan.ignored)
    manifest = Manifest(out)
    report = progress = engine = None
    try:
        remove_temp_files(out)
        engine = make_engine(config, factory)
        model = model_id(engine.model_info())
        logger.info("converting %d files into %s with model %s (%s engine, %d workers)",
                    len(plan.files), out, model, config.engine, config.workers)
        if report_path is not None:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report = open(report_path, "w", encoding="utf-8")
        progress = _Progress(summary.total, config.progress, config.log_every)
        recorder = _Recorder(out, manifest, report, model, options.settings_id(), summary, progress)
        for rel, reason in plan.skipped:
            recorder.finish(DocResult.skipped(rel, reason))
        start = time.monotonic()
        batches = _batches(plan, out, manifest, model, options.settings_id(), config, recorder)
        for results in engine.run(batches, options):
            for result in results:
                recorder.finish(result)
        summary.seconds = time.monotonic() - start
    finally:
        if progress is not None:
            progress.close()
        if engine is not None:
            engine.close()
        if report is not None:
            report.close()
        manifest.close()
    logger.debug("%s", summary.describe())
    return summary


__all__ = [
    "ConvertConfig",
    "ConvertOptions",
    "DocResult",
    "Job",
    "Manifest",
    "RestorerFactory",
    "Summary",
    "UnspinError",
    "check_paths",
    "convert_files",
    "convert_jobs",
    "discover",
    "model_id",
]
