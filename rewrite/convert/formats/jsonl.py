"""JSON Lines: one string field per line is a segment; other fields and key order kept."""

from __future__ import annotations

import json
import re

from ...errors import InputError
from .document import Document, Segment, line_spans
from .encoding import Decoded


_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON = json.JSONDecoder()


def _json_value_spans(line: str) -> dict[str, tuple[int, int]]:
    """Source span of each top-level value of a JSON object (the last one for a repeated key)."""
    spans: dict[str, tuple[int, int]] = {}
    k = _JSON_WS.match(line, 0).end() + 1  # after "{"
    k = _JSON_WS.match(line, k).end()
    if line[k] == "}":
        return spans
    while True:
        key, k = json.decoder.scanstring(line, k + 1)
        k = _JSON_WS.match(line, k).end() + 1  # after ":"
        k = _JSON_WS.match(line, k).end()
        _, end = _JSON.raw_decode(line, k)
        spans[key] = (k, end)
        k = _JSON_WS.match(line, end).end()
        if line[k] == "}":
            return spans
        k = _JSON_WS.match(line, k + 1).end()  # after ","


class JsonlDocument(Document):
    def encode_value(self, segment: Segment, value: str) -> str:
        # Keep the line's style: \\u escapes if the original used them, raw UTF-8 otherwise.
        return json.dumps(value, ensure_ascii=segment.quoted)


def parse_jsonl(decoded: Decoded, field: str) -> Document:
    """The string value of ``field`` on each line is a segment (re-encoded when edited)."""
    text = decoded.text
    segments: list[Segment] = []
    problems: list[dict] = []
    objects = 0
    for line_no, (start, content_end, _) in enumerate(line_spans(text), start=1):
        line = text[start:content_end]
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append({"line": line_no, "reason": f"malformed JSON: {exc.msg} at column {exc.colno}"})
            continue
        if not isinstance(obj, dict):
            problems.append({"line": line_no, "reason": f"not a JSON object but a {type(obj).__name__}"})
            continue
        value = obj.get(field)
        if not isinstance(value, str):
            continue
        objects += 1
        value_start, value_end = _json_value_spans(line)[field]
        raw = line[value_start:value_end]
        segment = Segment(value, {"line": line_no, "field": field}, (start + value_start, start + value_end), "\\u" in raw)
        segment.add_run(0, len(value), 0)
        segment.protect_urls()
        segments.append(segment)
    if objects == 0 and text.strip() and not problems:
        raise InputError(f"no line has a string field {field!r}; name the field holding the text with --field")
    return JsonlDocument(decoded, segments, problems)
