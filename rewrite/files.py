"""File helpers shared by the converter, ``unspin rewrite`` and the training tools: byte-order
marks, crash-safe writes and the temporary files they leave when killed.

    >>> detect_bom(b"\\xef\\xbb\\xbfhi")
    (b'\\xef\\xbb\\xbf', 'utf-8')
    >>> atomic_write(Path("out/a.txt"), b"done")   # readers see the old file or the new one, never half
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

TEMP_MARK = ".unspin-tmp-"

_BOMS = (  # longest first: the UTF-32-LE BOM starts like the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def detect_bom(data: bytes) -> tuple[bytes, str] | None:
    """``(bom, codec)`` when ``data`` starts with a UTF-8/16/32 byte-order mark, else ``None``.

        >>> detect_bom(b"\\xff\\xfeh\\x00i\\x00")
        (b'\\xff\\xfe', 'utf-16-le')
    """
    return next(((bom, codec) for bom, codec in _BOMS if data.startswith(bom)), None)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file in the same folder."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a path (pyarrow, ``datasets``).

    When the block ends without an error, what was written there (a file or a folder) is
    fsynced and replaces ``path``; on an error it is removed. A kill leaves only the temporary
    path, which ``remove_temp_files`` deletes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        for file in [tmp] if tmp.is_file() else sorted(f for f in tmp.rglob("*") if f.is_file()):
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)  # a folder cannot be renamed over a full one
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


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
    """Delete temporary files and folders a killed run left in ``out``; returns how many."""
    removed = 0
    for root, dirs, names in os.walk(out):
        for name in [*names, *dirs]:
            if name.startswith(".") and TEMP_MARK in name:
                _remove(Path(root, name))
                removed += 1
        dirs[:] = [d for d in dirs if not (d.startswith(".") and TEMP_MARK in d)]
    if removed:
        logger.info("removed %d temporary files left by an interrupted run", removed)
    return removed
