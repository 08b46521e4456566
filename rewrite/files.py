"""File helpers shared by the converter, ``unspin rewrite`` and the training tools: byte-order
marks, crash-safe writes and the temporary files they leave when killed.

    >>> detect_bom(b"\\xef\\xbb\\xbfhi")
    (b'\\xef\\xbb\\xbf', 'utf-8')
    >>> atomic_write(Path("out/a.txt"), b"done")   # readers see the old file or the new one, never half
"""

from __future__ import annotations

import codecs
import logging
import os
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
