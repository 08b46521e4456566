"""ASGI middlewares of the service, outermost first (``create_app`` adds them in this order):

- ``ReadableRefusals``: an answer given before the request body was read (413, 503, 401, 404 ...)
  is held back until the rest of the body has been read and thrown away, up to
  ``DRAIN_LIMIT_BYTES`` and ``DRAIN_TIMEOUT_S``; past that bound the answer goes out with
  ``Connection: close``. Most clients (urllib, requests, httpx, browsers' fetch) send the whole
  body before reading the answer: without this they saw a broken pipe, not the 413.
- ``ShedEarly``: 503 + Retry-After for a restore request the batcher would refuse, decided
  before FastAPI parses and validates it.
- ``BodySizeLimit``: 413 for a body over ``max_bytes``, by Content-Length or as it streams in.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import routes
from service.batcher import Batcher
from service.deps import key_accepted
from service.schemas import RestoreRequest
from service.settings import Settings

logger = logging.getLogger(__name__)

# How much of a refused request's body is read and thrown away before the answer goes out (the
# memory used stays that of one chunk); beyond it the connection is closed after the answer.
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
DRAIN_TIMEOUT_S = 30.0


class ReadableRefusals:
    """Read and discard the unread rest of the request body before an answer starts, so that a
    client that sends its whole body before reading sees the status and the JSON error."""

    def __init__(self, app: ASGIApp, limit_bytes: int = DRAIN_LIMIT_BYTES, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        self.app = app
        self.limit_bytes = limit_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        stream = _BodyStream(receive)

        async def send_after_draining(message: Message) -> None:
            if message["type"] == "http.response.start" and not stream.done:
                if not await stream.drain(self._bound(scope), self.timeout_s):
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, stream.receive, send_after_draining)

    def _bound(self, scope: Scope) -> int:
        """Bytes to discard at most; none when the declared length is over the bound anyway,
        or when the client waits for ``100 Continue`` (it has not sent the body)."""
        declared = _header(scope, b"content-length") or ""
        if declared.isdigit() and int(declared) > self.limit_bytes:
            return 0
        if (_header(scope, b"expect") or "").lower() == "100-continue":
            return 0
        return self.limit_bytes


class _BodyStream:
    """A request's ``receive``, noting when the body has been read to its end."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.received = 0
        self.done = False

    async def receive(self) -> Message:
        message = await self._receive()
        self._note(message)
        return message

    def _note(self, message: Message) -> None:
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
        else:  # http.disconnect: nothing more will come
            self.done = True

    async def drain(self, limit_bytes: int, timeout_s: float) -> bool:
        """Read and drop the rest of the body; False when it is over ``limit_bytes`` in all or
        takes over ``timeout_s`` (the connection is then closed after the answer)."""
        deadline = time.monotonic() + timeout_s
        while not self.done:
            if self.received >= limit_bytes:
                return False
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await self.receive()
            except TimeoutError:
                logger.info("stopped discarding a refused request's body after %.0f s", timeout_s)
                return False
        return self.received <= limit_bytes


def _has_body(scope: Scope) -> bool:
    declared = _header(scope, b"content-length")
    if declared is not None:
        return declared.strip() not in ("", "0")
    return (_header(scope, b"transfer-encoding") or "").lower() == "chunked"


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
        declared = _header(scope, b"content-length") or ""
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse({"detail": self._too_large().detail}, status_code=413)
            await response(scope, receive, send)
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


class ShedEarly:
    """503 + Retry-After for a ``POST /v1/restore`` that the batcher would refuse, decided from
    the raw body before FastAPI validates and routes it. The body is parsed by the route's own
    schema (``RestoreRequest``) and the decision is the batcher's own (``Batcher.refusal`` of the
    texts' cost), so nothing is refused that the full path would admit; a refusal just costs a
    fraction of the CPU, and a flood of clients that resend at once gets its 503s quickly and
    leaves the CPU to the model. Requests that are not well-formed, over a size limit (body, text
    or number of texts) or without the right API key are passed on to get their 4xx."""

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
        texts = self._texts(body)
        refused = batcher.refusal(batcher.cost(texts)) if texts is not None else None
        if refused is None or not key_accepted(self.settings, _header(scope, b"authorization")):
            await self.app(scope, receive, send)
            return
        retry = max(self.settings.retry_after_s, refused.retry_after_s)
        response = JSONResponse({"detail": str(refused)}, status_code=503, headers={"Retry-After": str(retry)})
        await response(scope, receive, send)

    def _texts(self, body: bytes | None) -> list[str] | None:
        """The texts of a valid restore request within the route's limits
        (``routes.check_limits``), or ``None`` for anything the full path should answer."""
        if body is None:
            return None
        try:
            texts = RestoreRequest.model_validate_json(body).all_texts()
            routes.check_limits(texts, self.settings)
        except (ValidationError, HTTPException):
            return None
        return texts

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


def _header(scope: Scope, name: bytes) -> str | None:
    value = dict(scope["headers"]).get(name)
    return value.decode("latin-1") if value is not None else None
