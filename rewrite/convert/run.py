"""Batch conversion of files and folders, safe to kill and resume.

    >>> summary = convert_files(["docs/"], ConvertConfig(out="clean/", report="report.jsonl"))
    >>> summary.ok, summary.failed, summary.words_per_second
    (1180, 3, 2410.5)

This module holds the run (``convert_files``, its config and summary); each concern has its own
module: ``rewrite.convert.docs`` (one batch of documents: parse, restore, splice, render),
``rewrite.convert.store`` (discovery, path checks, the manifest) and
``rewrite.convert.engines`` (in-process, process-pool and Ray restorers).

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
5. Workers parse each file (``rewrite.convert.formats``), send its sentences to ``restore_many`` in one
   batch, keep the edits that fall inside prose, and return the rendered bytes.
6. ``_Recorder.finish``: the output is written to a temporary file, fsynced and renamed over
   the target; only then is the manifest row written. A kill at any moment therefore leaves
   either the old state or a complete output; a rerun redoes anything without a row.
7. ``_table``: Parquet files and ``datasets`` folders (``Plan.tables``) stream through the same
   engine in batches of rows, each finished batch kept as a part, so a rerun also resumes inside
   a table (``rewrite.convert.tables``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..errors import InputError, UnspinError
from ..files import atomic_write, remove_temp_files
from .docs import ConvertOptions, DocResult, Job, convert_jobs
from .engines import RestorerFactory, make_engine, model_id
from .formats import FormatOptions
from .store import MANIFEST_NAME, Manifest, Plan, check_paths, discover, non_regular
from .tables import TableRun, convert_table, hash_path, remove_parts

logger = logging.getLogger(__name__)

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
    column: str = _field("text", "CSV, Parquet and datasets folders: the name of the column holding the text.")
    min_confidence: float | None = _field(None, "Drop edits the model is less sure of than this (0..1; None: the model's recommendation).")
    protect_quotes: bool = _field(False, "Leave text inside quotation marks as it is.")
    batch_files: int = _field(16, "Documents sent to a worker at a time.")
    batch_chars: int = _field(200_000, "Characters sent to a worker at a time (a batch closes at either limit).")
    batch_rows: int = _field(256, "Parquet and datasets folders: rows sent to a worker at a time (each batch is one resumable part).")
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
        if self.batch_files < 1 or self.batch_chars < 1 or self.batch_rows < 1:
            raise InputError("batch_files, batch_chars and batch_rows must be at least 1")
        if self.address and self.engine != "ray":
            raise InputError("--address only applies to --engine ray")
        self.globs = tuple(self.globs)

    def options(self) -> "ConvertOptions":
        return ConvertOptions(FormatOptions(self.field, self.column), self.min_confidence, self.protect_quotes)


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
            elif result.cacheable and not result.written and target.is_file():
                target.unlink()  # an output of an earlier version of this input would be stale
            if result.cacheable and result.sha256 is not None:
                self.manifest.record(result, self.model, self.settings)
        if self.report is not None:
            self.report.write(json.dumps(result.report_line(), ensure_ascii=False) + "\n")
            self.report.flush()
        s = self.summary
        setattr(s, result.status, getattr(s, result.status) + 1)
        s.cached += result.cached
        s.edits += result.n_edits
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
            if row[3] == "failed" or (out / rel).is_file():
                recorder.finish(DocResult.from_manifest(rel, sha, row[3], row[4]))
                continue
        batch.append(Job(rel, data, sha))
        size += len(data)
        if len(batch) >= config.batch_files or size >= config.batch_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _table(path: Path, rel: str, run: TableRun, manifest: Manifest) -> DocResult:
    """A Parquet file or datasets folder: skipped when the manifest has it (same bytes, model and
    settings) and its output is there, else converted (``tables.convert_table``)."""
    try:
        sha = hash_path(path)
    except OSError as exc:
        return DocResult.failure(rel, None, f"unreadable: {exc.strerror or exc}", cacheable=False)
    row = manifest.lookup(rel)
    if row is not None and row[:3] == (sha, run.model, run.settings) and (row[3] == "failed" or (run.out / rel).exists()):
        return DocResult.from_manifest(rel, sha, row[3], row[4])
    return convert_table(path, rel, run, sha)


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
    summary = Summary(total=len(plan.files) + len(plan.tables) + len(plan.skipped), ignored=plan.ignored)
    manifest = Manifest(out)
    report = progress = engine = None
    try:
        remove_temp_files(out)
        engine = make_engine(config.engine, config.workers, config.address, factory)
        model = model_id(engine.model_info())
        logger.info("converting %d files into %s with model %s (%s engine, %d workers)",
                    len(plan.files) + len(plan.tables), out, model, config.engine, config.workers)
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
        tables = TableRun(out, engine, options, model, options.settings_id(), config.batch_rows, config.log_every)
        for path, rel in plan.tables:
            recorder.finish(_table(path, rel, tables, manifest))
            manifest.commit()  # the row is safe: the parts are not needed any more
            remove_parts(out, rel)
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

