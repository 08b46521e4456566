"""LanguageTool's HTTP API (``POST /v2/check``, ``GET /v2/languages``) over the restorer, so that
editors and libraries that speak it (the LanguageTool browser add-ons, LibreOffice, LTeX,
``language_tool_python``) underline spun wording with the original one click away::

    POST /v2/check  language=en-US&text=Rubio mentioned it.
    -> {"software": {"name": "unspin", ...}, "language": {"name": "English (US)", "code": "en-US", ...},
        "matches": [{"message": "“mentioned” looks like a spinner's synonym for “said” (confidence 0.93).",
                     "shortMessage": "Spun word", "offset": 6, "length": 9,
                     "replacements": [{"value": "said"}],
                     "context": {"text": "Rubio mentioned it.", "offset": 6, "length": 9},
                     "sentence": "Rubio mentioned it.",
                     "rule": {"id": "UNSPIN_WORD", "issueType": "style", ...}, ...}]}

Each edit of the restorer is one match. Unlike ``/v1/restore`` (code points), offsets and lengths
count UTF-16 code units, as LanguageTool's clients expect: an emoji before a spun word moves it by
two. Form fields: ``text`` (or ``data``, LanguageTool's JSON of text and markup annotations),
``language`` (English: ``en``, ``en-US``, ``en-GB``, ... or ``auto``; anything else is a 400),
``level=picky`` for every edit instead of those at the model's threshold, ``disabledRules`` /
``enabledRules`` / ``enabledOnly`` over the rule ids below, and ``apiKey`` as an alternative to the
``Authorization: Bearer`` header when ``UNSPIN_API_KEY`` is set. Limits, load shedding and error
answers (``{"detail": ...}``) are those of ``/v1/restore``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from bisect import bisect_left
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rewrite.text import count_words, split_sentences
from service.batcher import Options
from service.deps import BatcherDep, RestorerDep, SettingsDep, key_accepted
from service.routes import _ERRORS as V1_ERRORS
from service.routes import CLIENT_CLOSED_REQUEST, ClientLeft, check_limits, unless_client_leaves
from service.schemas import MAX_TEXT_CHARS, ErrorOut
from service.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v2", tags=["languagetool"])

# name, code, longCode: the English variants a client may ask for (``auto`` is accepted too).
LANGUAGES = (
    ("English", "en", "en"),
    ("English (US)", "en", "en-US"),
    ("English (GB)", "en", "en-GB"),
    ("English (Australian)", "en", "en-AU"),
    ("English (Canadian)", "en", "en-CA"),
    ("English (New Zealand)", "en", "en-NZ"),
    ("English (South African)", "en", "en-ZA"),
)
_BY_CODE = {long_code.lower(): (name, long_code) for name, _code, long_code in LANGUAGES}
CONTEXT_CHARS = 40  # code points of context on each side of a match, as LanguageTool's server
MAX_FORM_FIELDS = 64
_LINE_RE = re.compile(r"[^\r\n]+")


# --- response bodies -------------------------------------------------------------------------


class LanguageOut(BaseModel):
    name: str = Field(description='The language\'s name, e.g. "English (US)".')
    code: str = Field(description='Short code, e.g. "en".')
    longCode: str = Field(description='Code with the variant, e.g. "en-US".')


class Software(BaseModel):
    name: str = "unspin"
    version: str
    apiVersion: int = 1
    premium: bool = False
    status: str = ""


class DetectedLanguage(BaseModel):
    name: str
    code: str


class CheckedLanguage(BaseModel):
    name: str
    code: str
    detectedLanguage: DetectedLanguage


class Replacement(BaseModel):
    value: str = Field(description="Text to put in place of the match.")


class MatchContext(BaseModel):
    text: str = Field(description="The text around the match ('...' where cut), newlines as spaces.")
    offset: int = Field(description="Start of the match in `text`, in UTF-16 code units.")
    length: int = Field(description="Length of the match, in UTF-16 code units.")


class Category(BaseModel):
    id: str
    name: str


class Rule(BaseModel):
    id: str = Field(description="UNSPIN_WORD, UNSPIN_PHRASE, UNSPIN_INSERTION or UNSPIN_DELETION.")
    description: str
    issueType: str = "style"
    category: Category


class MatchType(BaseModel):
    typeName: str = "Other"


class Match(BaseModel):
    """One restorer edit as LanguageTool reports a problem."""

    message: str
    shortMessage: str
    offset: int = Field(description="Start in the sent text, in UTF-16 code units.")
    length: int = Field(description="Length in the sent text, in UTF-16 code units.")
    replacements: list[Replacement] = Field(description="The standard wording first, then alternatives.")
    context: MatchContext
    sentence: str
    type: MatchType = MatchType()
    rule: Rule
    confidence: float = Field(description="The model's confidence in this edit, 0 to 1 (unspin's own field).")
    ignoreForIncompleteSentence: bool = False
    contextForSureMatch: int = 0


class Warnings(BaseModel):
    incompleteResults: bool = False


class CheckResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "LanguageTool's answer to /v2/check."})

    software: Software
    warnings: Warnings = Warnings()
    language: CheckedLanguage
    matches: list[Match]


# --- rules: one per shape of edit -------------------------------------------------------------

CATEGORY = Category(id="UNSPIN", name="Spun wording (unspin)")
RULES = {
    "UNSPIN_WORD": Rule(id="UNSPIN_WORD", description="A word an article spinner swapped for a synonym",
                        category=CATEGORY),
    "UNSPIN_PHRASE": Rule(id="UNSPIN_PHRASE", description="Wording an article spinner rephrased",
                          category=CATEGORY),
    "UNSPIN_INSERTION": Rule(id="UNSPIN_INSERTION", description="Words an article spinner dropped",
                             category=CATEGORY),
    "UNSPIN_DELETION": Rule(id="UNSPIN_DELETION", description="Words an article spinner added",
                            category=CATEGORY),
}


def rule_id(original: str, replacement: str) -> str:
    """The rule an edit falls under, by its shape: ``("mentioned", "said") -> "UNSPIN_WORD"``,
    ``("not less than", "at least") -> "UNSPIN_PHRASE"``, ``("", "the") -> "UNSPIN_INSERTION"``,
    ``("very", "") -> "UNSPIN_DELETION"``."""
    if not original.strip():
        return "UNSPIN_INSERTION"
    if not replacement.strip():
        return "UNSPIN_DELETION"
    if count_words(original) <= 1 and count_words(replacement) <= 1:
        return "UNSPIN_WORD"
    return "UNSPIN_PHRASE"


def _messages(rule: str, original: str, replacement: str, confidence: float) -> tuple[str, str]:
    """(message, shortMessage) of a match."""
    sure = f" (confidence {confidence:.2f})"
    if rule == "UNSPIN_INSERTION":
        return f"A spinner seems to have dropped “{replacement}” here{sure}.", "Dropped wording"
    if rule == "UNSPIN_DELETION":
        return f"“{original}” looks like a spinner's addition; the standard wording leaves it out{sure}.", "Added wording"
    kind = "synonym" if rule == "UNSPIN_WORD" else "rewording"
    return f"“{original}” looks like a spinner's {kind} for “{replacement}”{sure}.", f"Spun {rule[7:].lower()}"


# --- the request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckParams:
    """The form of one ``/v2/check`` request, checked."""

    document: Document
    language: tuple[str, str]  # (name, code) answered in the ``language`` block
    picky: bool
    disabled: frozenset[str]
    enabled: frozenset[str]
    enabled_only: bool


@dataclass(frozen=True)
class Document:
    """What the client sent (``full``) and the plain text the model reads (``plain``).

    For ``text`` they are the same. For ``data`` the plain text joins the text annotations and the
    ``interpretAs`` of markup; ``origin[i]`` is where ``plain[i]`` sits in ``full`` (``None`` for
    a character that stands in for markup), with ``origin[len(plain)] == len(full)``::

        {"annotation": [{"text": "A "}, {"markup": "<b>"}, {"text": "b"}]}
        -> full "A <b>b", plain "A b", origin [0, 1, 5, 6]
    """

    full: str
    plain: str
    origin: tuple[int | None, ...] | None = None  # None: plain is full

    def span(self, offset: int, length: int) -> tuple[int, int] | None:
        """The (offset, length) in ``full`` of a span of ``plain``; ``None`` when the span runs
        over markup (its characters do not lie side by side in ``full``)."""
        if self.origin is None:
            return offset, length
        if length == 0:
            at = self.origin[offset]
            return (at, 0) if at is not None else None
        first, last = self.origin[offset], self.origin[offset + length - 1]
        if first is None or last is None or last - first != length - 1:
            return None
        if any(self.origin[i] is None for i in range(offset, offset + length)):
            return None
        return first, length


def document_from_data(data: str) -> Document:
    """A ``Document`` from LanguageTool's ``data`` field (400 when it is not that JSON)."""
    try:
        annotations = json.loads(data).get("annotation")
    except (ValueError, AttributeError, RecursionError):
        annotations = None
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise _bad_request('data must be JSON such as {"annotation": [{"text": "A "}, {"markup": "<b>"}, '
                           '{"text": "test"}]}')
    full: list[str] = []
    plain: list[str] = []
    origin: list[int | None] = []
    at = 0
    for index, item in enumerate(annotations):
        text, markup, interpret = item.get("text"), item.get("markup"), item.get("interpretAs", "")
        if isinstance(text, str) and markup is None:
            origin.extend(range(at, at + len(text)))
            full.append(text)
            plain.append(text)
            at += len(text)
        elif isinstance(markup, str) and text is None and isinstance(interpret, str):
            origin.extend([None] * len(interpret))
            full.append(markup)
            plain.append(interpret)
            at += len(markup)
        else:
            raise _bad_request(f'data.annotation[{index}] must have a string "text" or a string "markup" '
                               '(and optionally "interpretAs")')
    origin.append(at)
    return Document("".join(full), "".join(plain), tuple(origin))


async def check_params(request: Request, settings: SettingsDep) -> CheckParams:
    """Read and check the form (query string and urlencoded body), the API key first."""
    form = await _form(request)
    _require_key(settings, request.headers.get("authorization"), form.get("apiKey"))
    text, data = form.get("text"), form.get("data")
    if (text is None) == (data is None):
        raise _bad_request("send exactly one of the form fields text (the text to check) or data "
                           "(LanguageTool's JSON of annotations)")
    document = Document(text, text) if text is not None else document_from_data(data)
    _check_unicode(document.full)
    return CheckParams(
        document=document,
        language=_language(form.get("language")),
        picky=_choice(form, "level", ("default", "picky")) == "picky",
        disabled=_rule_set(form.get("disabledRules")),
        enabled=_rule_set(form.get("enabledRules")),
        enabled_only=_choice(form, "enabledOnly", ("false", "true")) == "true",
    )


async def _form(request: Request) -> dict[str, str]:
    """The query parameters and the urlencoded body as one dict (the body wins)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("", "application/x-www-form-urlencoded"):
        raise HTTPException(415, detail=f"the body is {kind}; send the form fields as "
                                        "application/x-www-form-urlencoded (as LanguageTool's clients do)")
    fields = dict(request.query_params)
    body = await request.body()
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict",
                          max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError as error:
        raise _bad_request(f"the form is not valid UTF-8 (byte {error.start}); send UTF-8 text") from None
    except ValueError:
        raise _bad_request(f"the form has more than {MAX_FORM_FIELDS} fields") from None
    fields.update({name: values[-1] for name, values in parsed.items()})
    return fields


def _require_key(settings: Settings, authorization: str | None, form_key: str | None) -> None:
    """``UNSPIN_API_KEY``, when set, as ``Authorization: Bearer`` or LanguageTool's ``apiKey`` field."""
    if settings.api_key is None or key_accepted(settings, authorization):
        return
    expected = settings.api_key.get_secret_value().encode()
    if form_key is not None and secrets.compare_digest(form_key.encode(), expected):
        return
    given = authorization is not None or form_key is not None
    detail = ("wrong API key" if given else
              "missing API key: send the header 'Authorization: Bearer <key>' or the form field apiKey")
    raise HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _language(value: str | None) -> tuple[str, str]:
    if value is None:
        raise _bad_request("missing the form field language; send language=en-US (or en, en-GB, auto)")
    if value.lower() == "auto":
        return "English", "en"
    found = _BY_CODE.get(value.lower())
    if found is None:
        codes = ", ".join(long_code for _name, _code, long_code in LANGUAGES)
        raise _bad_request(f"language {value!r} is not supported: unspin restores English only; send "
                           f"language= one of {codes} or auto (GET /v2/languages lists them)")
    return found


def _choice(form: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    """The field's value, one of ``choices`` (the first when the field is left out)."""
    value = form.get(name, choices[0])
    if value not in choices:
        raise _bad_request(f"{name} is {value!r}; send one of {', '.join(choices)} or leave it out")
    return value


def _rule_set(value: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (value or "").split(",") if part.strip())


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # "%ED%A0%80" cannot get here (strict UTF-8), JSON "\ud800" can
        raise _bad_request(f"the text has an unpaired surrogate at code point {error.start}; "
                           "send valid Unicode") from None


def _bad_request(detail: str) -> HTTPException:
    return HTTPException(400, detail=detail)


# --- edits to matches -------------------------------------------------------------------------


def utf16_index(text: str):
    """A function from a code-point index of ``text`` to its UTF-16 index: each code point past
    U+FFFF before it (an emoji, a rare CJK ideograph) counts two. ``"😀 said"``: 2 -> 3."""
    astral = [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF]
    if not astral:
        return lambda index: index
    return lambda index: index + bisect_left(astral, index)


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of ``text``, line by line (as the restorer cuts it)."""
    spans = []
    for line in _LINE_RE.finditer(text):
        spans += [(line.start() + s, line.start() + e) for s, e in split_sentences(line.group())]
    return spans


def _sentence_at(text: str, sentences: list[tuple[int, int]], offset: int) -> str:
    starts = [start for start, _end in sentences]
    index = bisect_left(starts, offset + 1) - 1
    if index < 0:
        return ""
    start, end = sentences[index]
    return text[start:end]


def _context(full: str, offset: int, length: int) -> MatchContext:
    left, right = max(0, offset - CONTEXT_CHARS), min(len(full), offset + length + CONTEXT_CHARS)
    prefix = "..." if left else ""
    window = full[left:right]
    text = prefix + re.sub(r"[\r\n\t]", " ", window) + ("..." if right < len(full) else "")
    units = utf16_index(window)
    start = units(offset - left)
    return MatchContext(text=text, offset=len(prefix) + start, length=units(offset - left + length) - start)


def to_matches(document: Document, edits: list[Any]) -> list[Match]:
    """The restorer's edits of ``document.plain`` as matches on ``document.full``, in UTF-16 units."""
    units = utf16_index(document.full)
    sentences = _sentences(document.plain)
    matches = []
    for edit in edits:
        placed = document.span(edit.offset, edit.length)
        if placed is None:
            logger.debug("edit at %d (%r) runs over markup; not reported", edit.offset, edit.original)
            continue
        offset, length = placed
        rule = rule_id(edit.original, edit.replacement)
        message, short = _messages(rule, edit.original, edit.replacement, edit.confidence)
        # ``alternatives``: other standard wordings the restorer weighed ({"value", "score"}), best first.
        values = dict.fromkeys([edit.replacement, *(a["value"] for a in getattr(edit, "alternatives", ()))])
        matches.append(Match(
            message=message,
            shortMessage=short,
            offset=units(offset),
            length=units(offset + length) - units(offset),
            replacements=[Replacement(value=value) for value in values],
            context=_context(document.full, offset, length),
            sentence=_sentence_at(document.plain, sentences, edit.offset),
            rule=RULES[rule],
            confidence=edit.confidence,
        ))
    return matches


def _wanted(match: Match, params: CheckParams) -> bool:
    rule = match.rule.id
    if params.enabled_only:
        return rule in params.enabled
    return rule not in params.disabled


# --- routes ----------------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    **{code: V1_ERRORS[code] for code in (401, 413, 503, 504)},
    400: {"model": ErrorOut, "description": "No text/data, data that is not LanguageTool's JSON, or a language "
                                            "other than English."},
    415: {"model": ErrorOut, "description": "A body that is not application/x-www-form-urlencoded."},
}

# The form as the OpenAPI document states it. ``data`` (LanguageTool's JSON of annotations, a
# string no schema can check) is left to the operation's description.
_FORM = {
    "type": "object",
    "required": ["text", "language"],
    "properties": {
        "text": {"type": "string", "maxLength": MAX_TEXT_CHARS,
                 "description": "The text to check, at most maxLength code points (413 beyond)."},
        "language": {"type": "string", "enum": [long_code for _n, _c, long_code in LANGUAGES] + ["auto"],
                     "description": "English or a variant of it; any other language is a 400."},
        "level": {"type": "string", "enum": ["default", "picky"],
                  "description": "picky: every edit, not only those at the model's threshold."},
        "disabledRules": {"type": "string", "description": "Comma-separated rule ids to leave out."},
        "enabledRules": {"type": "string", "description": "Comma-separated rule ids (with enabledOnly=true)."},
        "enabledOnly": {"type": "string", "enum": ["true", "false"]},
        "apiKey": {"type": "string", "description": "The UNSPIN_API_KEY, if the server has one."},
    },
}


@router.get("/languages", response_model=list[LanguageOut])
async def languages() -> list[LanguageOut]:
    """The languages ``/v2/check`` accepts: English and its variants (and ``auto``)."""
    return [LanguageOut(name=name, code=code, longCode=long_code) for name, code, long_code in LANGUAGES]


@router.post(
    "/check",
    response_model=CheckResponse,
    responses=_ERRORS,
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"application/x-www-form-urlencoded": {"schema": _FORM}}}},
)
async def check(
    request: Request,
    params: Annotated[CheckParams, Depends(check_params)],
    restorer: RestorerDep,
    batcher: BatcherDep,
    settings: SettingsDep,
) -> Any:
    """Check text as LanguageTool's API does: each spun wording the restorer finds is a match.

    Send the form fields ``text`` and ``language`` as application/x-www-form-urlencoded. Instead
    of ``text``, ``data`` may carry LanguageTool's JSON of annotations,
    ``{"annotation": [{"text": "A "}, {"markup": "<b>"}, {"text": "test"}]}``; the model reads the
    text and each markup's ``interpretAs``, and offsets count in the whole. Offsets and lengths
    count UTF-16 code units."""
    plain = params.document.plain
    check_limits([plain], settings, single=True)
    options = Options(min_confidence=0.0 if params.picky else None)
    try:
        [result] = await unless_client_leaves(request, batcher.submit(restorer, [plain], options))
    except ClientLeft:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    name, code = params.language
    return CheckResponse(
        software=Software(version=request.app.version),
        language=CheckedLanguage(name=name, code=code, detectedLanguage=DetectedLanguage(name=name, code=code)),
        matches=[m for m in to_matches(params.document, result.edits) if _wanted(m, params)],
    )
