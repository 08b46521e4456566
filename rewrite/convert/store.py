"""Where a conversion run reads and writes: input discovery and path checks, and the SQLite
manifest that makes a run resumable (outputs are written with ``rewrite.files.atomic_write``).

    >>> plan = discover(["docs/"], globs=("*.md",))          # files, their relative paths, skipped ones
    >>> check_paths([Path("docs")], Path("clean"), Path("report.jsonl"), plan)
    >>> with Manifest.open(Path("clean")) as manifest: ...    # locked against a second run
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from .docs import DocResult
from .formats import format_of
from .tables import table_kind

MANIFEST_NAME = ".unspin-manifest.sqlite"


@dataclasses.dataclass
class Plan:
    """The inputs of a run: absolute paths and their '/'-separated paths relative to ``base``."""

    base: Path
    files: list[tuple[Path, str]]
    ignored: int = 0  # files in source folders with a suffix no handler reads
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (rel, why): not regular files
    tables: list[tuple[Path, str]] = dataclasses.field(default_factory=list)  # Parquet files, datasets folders


def discover(sources: Iterable[str | os.PathLike], globs: tuple[str, ...] = (), exclude: Iterable[Path] = ()) -> Plan:
    """Files to convert. Folders are walked recursively (names starting with '.' skipped) and
    filtered by ``globs`` (fnmatch on the relative path or the name; default: every supported
    suffix); files named directly are always taken. Paths are relative to the sources' common
    folder, so one folder maps to the output folder's top. A path that passes the filters but is
    not a regular file (``non_regular``) goes to ``Plan.skipped``, unopened. Parquet files and
    ``datasets`` folders (``tables.table_kind``) go to ``Plan.tables``; a datasets folder is one
    input, like a file: it is not walked, and named directly it maps to ``OUT/ITS_NAME``."""
    paths = [Path(s) for s in sources]
    if not paths:
        raise InputError("no input given; pass files or folders to convert")
    for path in paths:
        if not path.exists():
            raise InputError(f"{path} does not exist")
    resolved = [p.resolve() for p in paths]
    base = Path(os.path.commonpath([p if p.is_dir() and table_kind(p) is None else p.parent for p in resolved]))
    excluded = [Path(e).resolve() for e in exclude]
    seen: dict[Path, str] = {}
    tables: dict[Path, str] = {}
    skipped: dict[str, str] = {}
    ignored = 0

    def take(file: Path, rel: str) -> None:
        kind = non_regular(file)
        if table_kind(file) == "datasets":
            tables.setdefault(file, rel)
        elif kind:
            skipped.setdefault(rel, f"{kind}, not a regular file; skipped without opening it")
        else:
            (tables if table_kind(file) else seen).setdefault(file, rel)

    def wanted(rel: str, name: str) -> bool:
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in globs)

    for path in resolved:
        if not path.is_dir() or table_kind(path):
            take(path, path.relative_to(base).as_posix())
            continue
        for root, dirs, names in os.walk(path):
            root_path = Path(root)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(root_path / d, excluded))
            for name in list(dirs):
                folder = root_path / name
                if table_kind(folder):  # a datasets folder: one input, not walked
                    dirs.remove(name)
                    rel = folder.relative_to(base).as_posix()
                    if not globs or wanted(rel, name):
                        take(folder, rel)
            for name in sorted(names):
                file = root_path / name
                if name.startswith(".") or _inside(file, excluded):
                    continue
                rel = file.relative_to(base).as_posix()
                if globs:
                    if not wanted(rel, name):
                        continue
                elif format_of(file.suffix) is None and table_kind(file) is None:
                    ignored += 1
                    continue
                take(file, rel)
    files = sorted(((path, rel) for path, rel in seen.items()), key=lambda item: item[1])
    found = sorted(((path, rel) for path, rel in tables.items()), key=lambda item: item[1])
    return Plan(base, files, ignored, sorted(skipped.items()), found)


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
    inputs = {path for path, _ in plan.files + plan.tables} | set(sources)
    folders = [source for source in sources if source.is_dir()]
    if report in inputs or (_inside(report, folders) and not _inside(report, [out])):
        raise InputError(
            f"--report {report} is among the inputs; writing it would overwrite or add an input. "
            "Put the report outside the folders being converted"
        )
    if report == out / MANIFEST_NAME or report in {out / rel for _, rel in plan.files + plan.tables}:
        raise InputError(f"--report {report} is an output of this run; choose another report path")


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


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
