"""The app factory: ``create_app()`` builds the FastAPI app; nothing loads at import time.

    uvicorn --factory service.main:create_app        # settings from UNSPIN_* variables

The lifespan hook starts the micro-batcher and loads the Restorer once, in a thread, so
``/healthz`` answers at once and ``/readyz`` turns 200 when the model is in memory; on shutdown
it stops the batcher, which cancels the running model call. Tests pass ``load_restorer`` (a
fake) or override :func:`get_restorer` in ``app.dependency_overrides``.

The OpenAPI document states the app's own limits (``schemas.state_limits``) and declares Bearer
authentication on ``/v1`` only when ``UNSPIN_API_KEY`` is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rewrite.errors import InputError
from service import languagetool, routes
from service.batcher import Batcher, NotRunning, Overloaded, QueueFull, Timeout
from service.deps import (
    ServedRestorer,
    get_batcher,
    get_restorer,
    get_settings,
    key_accepted,
    require_api_key,
)
from service.schemas import state_limits
from service.settings import Settings

__all__ = ["create_app", "get_batcher", "get_restorer", "get_settings", "load_default_restorer"]

logger = logging.getLogger(__name__)

RestorerLoader = Callable[[Settings], ServedRestorer]


def load_default_restorer(settings: Settings) -> ServedRestorer:
    """``rewrite.Restorer`` from ``settings.model_dir`` (None: the shipped default model)."""
    from rewrite import Restorer  # imported here: torch and the model load in the lifespan only

    return Restorer.from_pretrained(settings.model_dir, backend=settings.backend, threads=settings.threads,
                                    mode=settings.mode)


def create_app(
    settings: Settings | None = None, *, load_restorer: RestorerLoader | None = None
) -> FastAPI:
    """Build the service; ``settings`` default to the ``UNSPIN_*`` environment variables."""
    settings = settings or Settings()
    app = FastAPI(
        title="unspin",
        summary="Restore spun text to its standard wording, with every change as an edit.",
        version=_package_version(),
        lifespan=_lifespan(settings, load_restorer or load_default_restorer),
    )
    app.state.settings = settings
    app.state.restorer = None
    app.state.load_error = None
    app.state.batcher = None

    app.include_router(routes.health)
    app.include_router(routes.api, dependencies=[Depends(require_api_key)] if settings.api_key else [])
    app.include_router(routes.page)
    app.include_router(languagetool.router)  # /v2: LanguageTool's API, its own key check
    _state_limits_in_openapi(app, settings)
    app.mount("/static", StaticFiles(directory=str(routes.STATIC_DIR)), name="static")
    _add_error_handlers(app)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ShedEarly, settings=settings)  # outermost: a refusal skips the rest
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _state_limits_in_openapi(app: FastAPI, settings: Settings) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = state_limits(
                build(), max_text_chars=settings.max_text_chars, max_batch_texts=settings.max_batch_texts
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _lifespan(settings: Settings, load_restorer: RestorerLoader):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher = Batcher(
            wait_ms=settings.batch_wait_ms,
            max_batch_texts=settings.model_batch_texts,
            queue_size=settings.queue_size,
            timeout_s=settings.request_timeout_s,
            batch_seconds=settings.batch_seconds,
            admit_share=settings.admit_share,
            retry_after_s=settings.retry_after_s,
        )
        await batcher.start()
        app.state.batcher = batcher
        loading = asyncio.create_task(_load(app, settings, load_restorer), name="unspin-load")
        try:
            yield
        finally:
            loading.cancel()
            await batcher.stop()

    return lifespan


def _load_and_describe(settings: Settings, load_restorer: RestorerLoader) -> ServedRestorer:
    restorer = load_restorer(settings)
    restorer.model_info  # noqa: B018 - read now: it may hash the weights or find a broken card
    return restorer


# Timed once at start-up (``UNSPIN_WARMUP``), so that admission knows the model's speed before
# the first request: a short paragraph of spun news prose, written for this purpose.
WARMUP_TEXT = (
    "Officials mentioned on Monday that not less than 15 individuals had been hurt in the capital. "
    "The talks ended without progress, however both sides agreed to meet again in a single week. "
    "Rescue teams were making ready for more rain, and the government acknowledged the delays."
)


WARMUP_TIMEOUT_S = 120.0


async def _load(app: FastAPI, settings: Settings, load_restorer: RestorerLoader) -> None:
    try:
        restorer = await asyncio.to_thread(_load_and_describe, settings, load_restorer)
        if settings.warmup:
            await _time_model(app.state.batcher, restorer, settings)
    except Exception as error:  # reported by /readyz and every /v1 call; the process stays up
        app.state.load_error = str(error) or type(error).__name__
        logger.error("could not load the model: %s", app.state.load_error)
        return
    app.state.restorer = restorer
    logger.info("model loaded: %s", _describe(restorer))


async def _time_model(batcher: Batcher, restorer: ServedRestorer, settings: Settings) -> None:
    """Restore ``WARMUP_TEXT`` once so that the batcher has a speed before the first request. A
    model that fails here is broken (the error propagates); one that is merely slow (a busy
    machine) is served anyway, and shedding starts once a call has been timed."""
    started = time.monotonic()
    try:
        await batcher.submit(restorer, [WARMUP_TEXT], timeout_s=WARMUP_TIMEOUT_S)
    except Timeout:
        logger.warning("timing the model took over %g s; serving without a speed estimate", WARMUP_TIMEOUT_S)
        return
    logger.info("model timed on start-up: %.2f s for %d characters", time.monotonic() - started, len(WARMUP_TEXT))


def _describe(restorer: ServedRestorer) -> str:
    try:
        info = restorer.model_info
        return f"{info.get('name')} {info.get('version') or info.get('hash')}"
    except Exception:  # only for the log line
        return type(restorer).__name__


def _add_error_handlers(app: FastAPI) -> None:
    """Map every error a client can cause to a 4xx/503/504 with a ``detail`` that says why."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_problem(item) for item in error.errors()]
        detail = "; ".join(
            f"{p['where']}: {p['msg']}" if p["where"] else p["msg"] for p in problems
        )
        return JSONResponse({"detail": detail, "errors": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        status, detail = error.status_code, error.detail
        cause = error.__cause__
        if status == 400 and isinstance(cause, UnicodeDecodeError):  # FastAPI's body parsing
            status = 422
            detail = f"the body is not valid UTF-8 (byte {cause.start}); send UTF-8 JSON"
        elif status == 400 and isinstance(cause, RecursionError):
            status = 422
            detail = "the body's JSON is nested too deeply; send a flat object"
        return JSONResponse({"detail": detail}, status_code=status, headers=error.headers)

    @app.exception_handler(InputError)
    async def bad_input(request: Request, error: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(QueueFull)
    @app.exception_handler(NotRunning)
    async def busy(request: Request, error: Exception) -> JSONResponse:
        retry = max(request.app.state.settings.retry_after_s, getattr(error, "retry_after_s", None) or 0)
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": str(retry)})

    @app.exception_handler(Timeout)
    async def too_slow(request: Request, error: Timeout) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=504)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error; the server log has the details"}, status_code=500
        )


def _problem(item: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error as {where, msg, type}, readable and without echoing the input."""
    loc = [part for part in item.get("loc", ()) if part != "body"]
    kind = item.get("type", "")
    msg = str(item.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "json_invalid":
        reason = (item.get("ctx") or {}).get("error", "")
        at = f" at character {loc[0]}" if loc and isinstance(loc[0], int) else ""
        return {"where": "", "msg": f"the body is not valid JSON{at}: {reason}", "type": kind}
    if kind == "missing" and not loc:
        msg = 'the body is empty; send JSON such as {"text": "..."}'
    elif kind == "model_attributes_type" and not loc:
        msg = (
            'the body must be a JSON object such as {"text": "..."}, '
            "sent with Content-Type: application/json"
        )
    elif kind == "extra_forbidden":
        msg = 'unknown field; the fields are "text", "texts", "min_confidence", "protect_quotes"'
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return {"where": where.lstrip("."), "msg": msg, "type": kind}


class BodySizeLimit:
    """413 for a request body over ``max_bytes``, by Content-Length or as the bytes stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(
            413,
            detail=f"the request body is over {self.max_bytes} bytes (UNSPIN_MAX_BODY_BYTES); "
            "send fewer or shorter texts",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException passes through FastAPI's body parsing untouched.
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = self._too_large()
        response = JSONResponse({"detail": error.detail}, status_code=413)
        await response(scope, receive, send)


class ShedEarly:
    """503 + Retry-After for a ``POST /v1/restore`` that the batcher would refuse, decided from
    the raw body before FastAPI parses, validates and routes it. The decision is the batcher's own
    (``Batcher.refusal`` of the body's text characters), so nothing is refused that the full path
    would admit; a refusal just costs a fraction of the CPU, and a flood of clients that resend at
    once gets its 503s quickly and leaves the CPU to the model. Requests that are not well-formed,
    over a size limit (body, text or number of texts) or without the right API key are passed on
    to get their 4xx."""

    PATH = "/v1/restore"

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        batcher = self._batcher(scope)
        if batcher is None:
            await self.app(scope, receive, send)
            return
        body, receive = await _read_body(receive, self.settings.max_body_bytes)
        texts = _texts(body) if body is not None else None
        refused = batcher.refusal(sum(len(text) for text in texts)) if self._within_limits(texts) else None
        if refused is None or not key_accepted(self.settings, _header(scope, b"authorization")):
            await self.app(scope, receive, send)
            return
        retry = max(self.settings.retry_after_s, refused.retry_after_s)
        response = JSONResponse({"detail": str(refused)}, status_code=503, headers={"Retry-After": str(retry)})
        await response(scope, receive, send)

    def _within_limits(self, texts: list[str] | None) -> bool:
        """Texts that pass the route's own limits (``routes.check_limits``); others go on to it
        for their 413."""
        if texts is None:
            return False
        try:
            routes.check_limits(texts, self.settings)
        except HTTPException:
            return False
        return True

    def _batcher(self, scope: Scope) -> Batcher | None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.PATH:
            return None
        declared = _header(scope, b"content-length") or ""
        if declared.isdigit() and int(declared) > self.settings.max_body_bytes:
            return None  # BodySizeLimit answers 413 without reading it
        return getattr(scope["app"].state, "batcher", None) if "app" in scope else None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The request body (``None`` past ``limit`` bytes or on a disconnect) and a ``receive`` that
    hands the app the same messages again, then the rest of the stream."""
    messages: list[Message] = []
    size = 0
    complete = False
    while not complete and size <= limit:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        complete = not message.get("more_body", False)

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    body = b"".join(m.get("body", b"") for m in messages) if complete and size <= limit else None
    return body, replay


def _texts(body: bytes) -> list[str] | None:
    """The texts of a well-formed restore request, or ``None`` for anything the full path
    should answer (it says what is wrong)."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(request, dict):
        return None
    text, texts = request.get("text"), request.get("texts")
    if isinstance(text, str) and texts is None:
        return [text]
    if text is None and isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts):
        return texts
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    value = dict(scope["headers"]).get(name)
    return value.decode("latin-1") if value is not None else None


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unspin")
    except PackageNotFoundError:
        return "0+unknown"
