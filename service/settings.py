"""Service settings, read from ``UNSPIN_*`` environment variables (or passed to ``create_app``).

    UNSPIN_MODEL_DIR=runs/my-model UNSPIN_API_KEY=s3cret unspin serve

Every field below is one variable: ``max_text_chars`` is ``UNSPIN_MAX_TEXT_CHARS``, and so on.
``UNSPIN_CORS_ORIGINS`` takes a comma-separated list (``https://a.example,https://b.example``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Limits, model location and access control for the HTTP service."""

    model_config = SettingsConfigDict(env_prefix="UNSPIN_", extra="ignore", frozen=True)

    model_dir: Path | None = Field(
        None, description="Model folder to serve; unset means the shipped default model."
    )
    backend: str = Field(
        "auto",
        description="Restorer backend passed to Restorer.from_pretrained: auto, torch, torch-greedy, "
        "ct2 or ct2-float32 (see rewrite.backends).",
    )
    mode: Literal["auto", "fast", "find"] = Field(
        "auto",
        description="Restorer mode passed to Restorer.from_pretrained: auto (the spin finder where the model "
        "has one), fast (the T5's edits alone) or find.",
    )
    threads: int = Field(
        0,
        ge=0,
        description="Threads the model computes with in each server process; 0 keeps the library "
        "default. `unspin serve --workers N` sets it to CPUs / N when unset.",
    )
    max_text_chars: int = Field(
        20_000, gt=0, description="Longest accepted text, in Unicode code points (413 beyond)."
    )
    max_body_bytes: int = Field(
        1_000_000,
        gt=0,
        description="Largest accepted request body in bytes (413 beyond, answered once the rest of "
        "the body, up to 16 MiB, has been read and discarded, so that every client can read it).",
    )
    max_batch_texts: int = Field(
        64, gt=0, description="Most texts in one request's `texts` list (413 beyond)."
    )
    model_batch_texts: int = Field(
        64, gt=0, description="Most texts the micro-batcher hands to one restore_many call."
    )
    queue_size: int = Field(
        256, gt=0, description="Most texts waiting for the model; beyond it, 503 with Retry-After."
    )
    request_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a request may wait for its restoration (504 beyond)."
    )
    batch_seconds: float = Field(
        4.0,
        gt=0,
        description="Seconds of model work (at the measured speed) the batcher puts in one call; "
        "the jobs of a call are answered together.",
    )
    admit_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Share of request_timeout_s the estimated wait may fill; beyond it a request "
        "is answered 503 with Retry-After at once instead of waiting into a 504. Queued requests "
        "are held to the same share of the time they have left while they wait.",
    )
    warmup: bool = Field(
        True,
        description="Restore one short text at start-up (before /readyz turns 200) to time the "
        "model, so that load shedding works from the first request.",
    )
    shutdown_timeout_s: float = Field(
        10.0,
        ge=0,
        description="After SIGTERM, seconds running requests may still finish; then they are "
        "cancelled and the model call is stopped.",
    )
    batch_wait_ms: float = Field(
        5.0, ge=0, description="Milliseconds the batcher waits to gather concurrent requests."
    )
    retry_after_s: int = Field(
        1, ge=0, description="Value of the Retry-After header sent with 503 answers."
    )
    api_key: SecretStr | None = Field(
        None, description="When set, /v1/* requires `Authorization: Bearer <api_key>`."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS; empty means no CORS headers."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from rewrite.backends import BACKENDS  # light: the backends import torch only when loading

        if value not in BACKENDS:
            raise ValueError(f"unknown backend {value!r}; set UNSPIN_BACKEND to one of {', '.join(BACKENDS)}")
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _check_limits(self) -> Settings:
        if self.max_batch_texts > self.queue_size:
            raise ValueError(
                f"max_batch_texts ({self.max_batch_texts}) is larger than queue_size "
                f"({self.queue_size}), so a full request could never be queued; raise "
                "UNSPIN_QUEUE_SIZE or lower UNSPIN_MAX_BATCH_TEXTS"
            )
        return self
