"""Error handlers: every error a client can cause becomes a 4xx/503/504 whose JSON ``detail``
says why and what to do; anything else is a 500 that points to the server log."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rewrite.errors import InputError
from service.batcher import NotRunning, QueueFull, Timeout

logger = logging.getLogger(__name__)


def add_error_handlers(app: FastAPI) -> None:
    """Register the handlers below on ``app``."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(InputError, bad_input)
    app.add_exception_handler(QueueFull, busy)
    app.add_exception_handler(NotRunning, busy)
    app.add_exception_handler(Timeout, too_slow)
    app.add_exception_handler(Exception, unexpected)


async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = [_problem(item) for item in error.errors()]
    detail = "; ".join(f"{p['where']}: {p['msg']}" if p["where"] else p["msg"] for p in problems)
    return JSONResponse({"detail": detail, "errors": problems}, status_code=422)


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


async def bad_input(request: Request, error: InputError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=422)


async def busy(request: Request, error: Exception) -> JSONResponse:
    retry = max(request.app.state.settings.retry_after_s, getattr(error, "retry_after_s", None) or 0)
    return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": str(retry)})


async def too_slow(request: Request, error: Timeout) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=504)


async def unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)


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
