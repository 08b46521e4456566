"""Request and response bodies of the HTTP API.

The response follows LanguageTool's matches: each change is an edit with an ``offset`` and a
``length`` into the text that was sent, counted in Unicode code points (an emoji is one), the
``original`` text found there, its ``replacement`` and a ``confidence``::

    POST /v1/restore {"text": "Rubio mentioned on Wednesday."}
    -> {"model": {"name": "unspin-default", "version": "1a2b3c4d"},
        "results": [{"text": "Rubio said on Wednesday.",
                     "edits": [{"offset": 6, "length": 9, "original": "mentioned",
                                "replacement": "said", "confidence": 0.93}],
                     "spin_ratio": 0.25}]}
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

_SAMPLE_TEXT = "Rubio mentioned on Wednesday."
_SAMPLE_EDIT = {
    "offset": 6,
    "length": 9,
    "original": "mentioned",
    "replacement": "said",
    "confidence": 0.93,
}


def _check_encodable(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); they are not text and could not be sent back.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"contains an unpaired surrogate at code point {error.start}; send valid Unicode"
        ) from None
    return text


UnicodeText = Annotated[str, AfterValidator(_check_encodable)]

# Defaults of the limits the schema states; an app states its own (``state_limits``).
MAX_TEXT_CHARS = 20_000
MAX_BATCH_TEXTS = 64


def _not_null(schema: dict[str, Any]) -> None:
    """Leaving the field out is allowed; sending null is not (the validator says so)."""
    schema.pop("default", None)
    choices = schema.pop("anyOf", [])
    schema.update(next((choice for choice in choices if choice.get("type") != "null"), {}))


def _text_schema(schema: dict[str, Any]) -> None:
    _not_null(schema)
    schema["maxLength"] = MAX_TEXT_CHARS


def _texts_schema(schema: dict[str, Any]) -> None:
    _not_null(schema)
    schema.update(minItems=1, maxItems=MAX_BATCH_TEXTS)
    schema["items"] = {**schema.get("items", {}), "maxLength": MAX_TEXT_CHARS}


class RestoreRequest(BaseModel):
    """One text (``text``) or several (``texts``) to restore, and how."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["text"]}, {"required": ["texts"]}],
            "examples": [
                {"text": _SAMPLE_TEXT},
                {
                    "texts": [_SAMPLE_TEXT, "Not less than 15 individuals were killed."],
                    "min_confidence": 0.5,
                    "protect_quotes": True,
                },
            ]
        },
    )

    text: UnicodeText | None = Field(
        None,
        description="One text to restore, at most maxLength code points (413 beyond). Send "
        "exactly one of `text` and `texts`.",
        json_schema_extra=_text_schema,
    )
    texts: list[UnicodeText] | None = Field(
        None,
        description="Several texts to restore (1 to maxItems, each at most maxLength code points; "
        "413 beyond), answered in the same order.",
        json_schema_extra=_texts_schema,
    )
    min_confidence: float | None = Field(
        None, ge=0.0, le=1.0, strict=True, allow_inf_nan=False,
        description="Drop edits whose confidence is below this (a number from 0 to 1). Default "
        "(null or left out): the model's recommended threshold (see GET /v1/model); 0 returns every edit.",
    )  # fmt: skip
    protect_quotes: bool = Field(False, strict=True, description="Leave quoted speech untouched (true or false).")

    @field_validator("texts")
    @classmethod
    def _texts_not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("the list is empty; send at least one text")
        return value

    @model_validator(mode="after")
    def _exactly_one_input(self) -> RestoreRequest:
        for name in ("text", "texts"):
            if name in self.model_fields_set and getattr(self, name) is None:
                kind = "a string" if name == "text" else "a list of strings"
                raise ValueError(f'"{name}" is null; send {kind} or leave the field out')
        if (self.text is None) == (self.texts is None):
            raise ValueError('send exactly one of "text" (a string) or "texts" (a list of strings)')
        return self

    def all_texts(self) -> list[str]:
        """The texts to restore, in order (one when the request used ``text``)."""
        return [self.text] if self.text is not None else list(self.texts or [])


class AlternativeOut(BaseModel):
    """Another wording the restorer weighed for a place, with its score (higher: likelier)."""

    value: str = Field(description="The wording.")
    score: float = Field(description="The chooser's score (its logistic is a confidence).")


class EditOut(BaseModel):
    """One change: ``length`` code points at ``offset`` in the sent text were replaced."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_SAMPLE_EDIT]})

    offset: int = Field(description="Start of the change in the sent text, in code points.")
    length: int = Field(description="Length of the replaced span in the sent text, in code points.")
    original: str = Field(description="The spun wording found at offset (the replaced span).")
    replacement: str = Field(description="The standard wording put in its place.")
    confidence: float = Field(description="The model's confidence in this edit, 0 to 1.")
    alternatives: list[AlternativeOut] = Field(
        default_factory=list, description="Other wordings weighed for the place, best first (at most 3).")


class FlagOut(BaseModel):
    """A place the detector is sure a spinner changed, which no edit restores."""

    model_config = ConfigDict(from_attributes=True)

    offset: int = Field(description="Start of the place in the sent text, in code points.")
    length: int = Field(description="Length of the place, in code points.")
    text: str = Field(description="The words at the place.")
    probability: float = Field(description="The detector's probability that a spinner changed them, 0 to 1.")


class RestorationOut(BaseModel):
    """The restored text of one input and the edits that turn the input into it."""

    model_config = ConfigDict(from_attributes=True)

    text: str = Field(description="The restored text (the input with every edit applied).")
    edits: list[EditOut] = Field(description="The changes, in order of offset.")
    spin_ratio: float = Field(description="Share of the input's words that were restored.")
    flags: list[FlagOut] = Field(default_factory=list, description="Places found but not restored (no replacement).")


class ModelRef(BaseModel):
    """Which model produced an answer."""

    name: str = Field(description="Model name, from its model card.")
    version: str = Field(description="Model version or weights hash.")


class RestoreResponse(BaseModel):
    """One result per sent text, in the order sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "unspin-default", "version": "1a2b3c4d"},
                    "results": [
                        {
                            "text": "Rubio said on Wednesday.",
                            "edits": [_SAMPLE_EDIT],
                            "spin_ratio": 0.25,
                        }
                    ],
                }
            ]
        }
    )

    model: ModelRef
    results: list[RestorationOut]


class CurvePoint(BaseModel):
    """The model's quality at one threshold, on annotated real spun text."""

    model_config = ConfigDict(extra="ignore")

    min_confidence: float = Field(description="Edits below this confidence dropped.")
    recall: float = Field(description="Share of the places real spinners changed that were restored.")
    wrongful_per_100_words: float = Field(description="Edits outside those places, per 100 words.")


class CurveOut(BaseModel):
    """The served model's quality curve (``unspin evaluate --markup``), for choosing a threshold."""

    min_confidence: float | None = Field(
        description="The model's own threshold: what requests without min_confidence get."
    )
    source: str | None = Field(None, description="What the curve was measured on.")
    files_scored: int | None = Field(None, description="Annotated files scored.")
    points: list[CurvePoint] = Field(description="One per threshold scored, by min_confidence; empty when none.")


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` says what went wrong and what to do."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "text is 25001 characters; the limit is 20000"}]}
    )

    detail: str
    errors: list[dict[str, Any]] | None = Field(
        None, description="For 422: each problem with its location in the request body."
    )


class HealthOut(BaseModel):
    """Liveness and readiness answers."""

    status: str = Field(description='"ok", "ready", "loading" or "failed".')
    detail: str | None = None


def state_limits(
    openapi: dict[str, Any], *, max_text_chars: int, max_batch_texts: int, threshold: float | None = None
) -> dict[str, Any]:
    """Write an app's configured limits into the ``RestoreRequest`` schema of its OpenAPI
    document (``maxLength`` of ``text`` and of each of ``texts``, ``maxItems`` of ``texts``), into
    the form of LanguageTool's ``/v2/check`` (``maxLength`` of ``text``) and, when known, the
    served model's recommended ``min_confidence`` (its ``restorer.json``)."""
    fields = openapi["components"]["schemas"]["RestoreRequest"]["properties"]
    fields["text"]["maxLength"] = max_text_chars
    fields["texts"]["maxItems"] = max_batch_texts
    fields["texts"]["items"]["maxLength"] = max_text_chars
    if threshold is not None:
        fields["min_confidence"]["description"] += f" The served model recommends {threshold:g}."
    check = openapi["paths"].get("/v2/check", {}).get("post")
    if check is not None:
        form = copy.deepcopy(check["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"])
        form["properties"]["text"]["maxLength"] = max_text_chars
        check["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"] = form
    return openapi
