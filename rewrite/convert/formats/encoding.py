"""Decoding a file and encoding it back exactly: a BOM wins, then (HTML) a declared charset, then
strict UTF-8.

    >>> decoded = decode(codecs.BOM_UTF8 + b"caf\\xc3\\xa9\\r\\n", "txt")
    >>> decoded.text, decoded.encode(decoded.text) == codecs.BOM_UTF8 + b"caf\\xc3\\xa9\\r\\n"
    ('café\\r\\n', True)
"""

from __future__ import annotations

import codecs
import dataclasses
import re

from ...errors import InputError
from ...files import detect_bom

_CHARSET_RE = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A decoded file and how to encode it back: ``encode(decode(data)) == data``."""

    text: str
    codec: str
    bom: bytes = b""
    errors: str = "strict"  # "xmlcharrefreplace" for HTML in a legacy charset

    def encode(self, text: str) -> bytes:
        try:
            return self.bom + text.encode(self.codec, self.errors)
        except UnicodeEncodeError as exc:
            raise InputError(f"the restored text cannot be written as {self.codec}: {exc.reason}") from exc


def decode(data: bytes, fmt: str) -> Decoded:
    """Decode ``data``: a BOM wins, then (HTML only) a declared charset, then strict UTF-8.

    Raises ``InputError`` for binary data (NUL bytes), an unknown declared charset or bytes that
    do not decode.
    """
    found = detect_bom(data)
    if found is not None:
        bom, codec = found
        return _decode_strict(data[len(bom) :], codec, bom)
    if b"\x00" in data:
        raise InputError("binary file (contains NUL bytes); only text formats can be converted")
    if fmt == "html":
        match = _CHARSET_RE.search(data[:4096])
        if match:
            declared = (match.group(1) or match.group(2)).decode("ascii")
            try:
                codec = codecs.lookup(declared).name
            except LookupError:
                raise InputError(f"unknown charset {declared!r} declared in the file; fix the declaration") from None
            if codec not in ("utf-8", "utf-16", "utf-32"):
                return _decode_strict(data, codec, b"", "xmlcharrefreplace")
    return _decode_strict(data, "utf-8", b"")


def _decode_strict(data: bytes, codec: str, bom: bytes, errors: str = "strict") -> Decoded:
    try:
        return Decoded(data.decode(codec), codec, bom, errors)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid {codec} (byte {exc.start + len(bom)}: {exc.reason}); "
            "convert the file to UTF-8 or declare its charset"
        ) from None
