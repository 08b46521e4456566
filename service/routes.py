"""HTTP routes: thin layers over the batcher and the Restorer.

``api`` (``/v1``) carries no authentication of its own: ``create_app`` adds the API-key check
(and so the Bearer scheme in the OpenAPI document) only when ``UNSPIN_API_KEY`` is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse

from rewrite.errors import ModelError
from rewrite.model_folder import read_json
from service.batcher import Options
from service.deps import BatcherDep, RestorerDep, SettingsDep
from service.schemas import (
    CurveOut,
    CurvePoint,
    ErrorOut,
    HealthOut,
    ModelRef,
    RestorationOut,
    RestoreRequest,
    RestoreResponse,
)
from service.settings import Settings

logger = logging.getLogger(__name__)

STATIC_DIR = files("service") / "static"

# Status logged for a request whose client hung up before the answer (nginx's convention).
CLIENT_CLOSED_REQUEST = 499
T = TypeVar("T")

# Content-Security-Policy for the review page: its own script and style only.
PAGE_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": description}
    for code, description in {
        401: "Missing or wrong API key (only when UNSPIN_API_KEY is set).",
        413: "Body, a text or the list of texts is over its limit.",
        422: "Malformed request; `detail` says what is wrong.",
        503: "Model not loaded yet, or the queue is full; see Retry-After.",
        504: "The restoration took longer than the request time limit.",
    }.items()
}

health = APIRouter(tags=["health"])
api = APIRouter(prefix="/v1", tags=["restore"])
page = APIRouter(include_in_schema=False)


@health.get("/healthz", response_model=HealthOut, response_model_exclude_none=True)
async def healthz() -> HealthOut:
    """The process is up and answering."""
    return HealthOut(status="ok")


@health.get(
    "/readyz",
    response_model=HealthOut,
    response_model_exclude_none=True,
    responses={503: {"model": HealthOut}},
)
async def readyz(request: Request) -> Any:
    """200 once the model is loaded; 503 while it loads or if loading failed."""
    state = request.app.state
    if state.restorer is not None:
        return HealthOut(status="ready")
    if state.load_error is not None:
        body = HealthOut(status="failed", detail=state.load_error)
    else:
        body = HealthOut(status="loading", detail="the model is loading")
    return JSONResponse(body.model_dump(), status_code=503)


@api.post("/restore", response_model=RestoreResponse, responses=_ERRORS)
async def restore(
    request: Request, body: RestoreRequest, restorer: RestorerDep, batcher: BatcherDep, settings: SettingsDep
) -> Any:
    """Restore spun text to its standard wording, with every change as an edit.

    Send ``text`` (one string) or ``texts`` (a list); the answer has one result per text, in
    order. Edit offsets and lengths count Unicode code points of the text you sent. When the
    server has more work queued than it can finish in time, the answer is 503 with Retry-After
    at once.
    """
    texts = body.all_texts()
    check_limits(texts, settings, single=body.text is not None)
    options = Options(min_confidence=body.min_confidence, protect_quotes=body.protect_quotes)
    try:
        results = await unless_client_leaves(request, batcher.submit(restorer, texts, options))
    except ClientLeft:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return RestoreResponse(
        model=model_ref(restorer.model_info),
        results=[RestorationOut.model_validate(result) for result in results],
    )


@api.get("/model", responses={k: v for k, v in _ERRORS.items() if k in (401, 503)})
async def model(restorer: RestorerDep) -> dict[str, Any]:
    """The served model's card: name, version, training facts and metrics, and ``min_confidence``,
    the threshold edits are kept at when a request gives none."""
    info = dict(restorer.model_info)
    info.pop("path", None)  # the server's file system is nobody's business
    info["min_confidence"] = model_threshold(restorer)
    return jsonable_encoder(info)


@api.get("/model/curve", response_model=CurveOut, responses={k: v for k, v in _ERRORS.items() if k in (401, 503)})
async def model_curve(restorer: RestorerDep) -> CurveOut:
    """The served model's quality curve on annotated real spun text (its folder's
    ``markup_metrics.json``): recall and wrongful edits per 100 words at each ``min_confidence``,
    and the model's own threshold. ``points`` is empty for a model never scored that way."""
    metrics = _markup_metrics(restorer.model_info.get("path"))
    return CurveOut(
        min_confidence=model_threshold(restorer),
        source=metrics.get("source"),
        files_scored=metrics.get("files_scored"),
        points=[CurvePoint.model_validate(row) for row in metrics.get("curve") or []],
    )


def model_threshold(restorer: Any) -> float | None:
    """The threshold the restorer applies when a request gives none (``rewrite.Restorer``'s
    ``config.min_confidence``, from the model folder's restorer.json); ``None`` if it has none."""
    value = getattr(getattr(restorer, "config", None), "min_confidence", None)
    return float(value) if value is not None else None


def _markup_metrics(folder: str | None) -> dict[str, Any]:
    path = Path(folder) / "markup_metrics.json" if folder else None
    if path is None or not path.is_file():
        return {}
    try:
        return read_json(path)
    except ModelError as error:  # a broken file costs the page its curve, not the service
        logger.warning("%s", error)
        return {}


@page.get("/")
async def review_page() -> FileResponse:
    """The review page: paste text, restore it, review each edit."""
    return FileResponse(
        str(STATIC_DIR / "index.html"),
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


class ClientLeft(Exception):
    """The client closed the connection before its answer was ready."""


async def unless_client_leaves(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it (the batcher then drops the
    job and stops a model call nobody waits for) and raise ``ClientLeft``.

    The body has been read, so the next ASGI message is ``http.disconnect``: it comes when the
    client hangs up (or, under some test clients, only after the answer)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.create_task(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        watcher.cancel()
    if task.cancelled() or not task.done():
        logger.info("client left %s before its answer; its work was cancelled", request.url.path)
        raise ClientLeft
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def check_limits(texts: list[str], settings: Settings, *, single: bool = False) -> None:
    """413 when there are too many texts or one is too long (counted in code points)."""
    if len(texts) > settings.max_batch_texts:
        raise HTTPException(
            413,
            detail=f"{len(texts)} texts sent; the limit is {settings.max_batch_texts} a request "
            "(UNSPIN_MAX_BATCH_TEXTS); split them over several requests",
        )
    for index, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            where = "text" if single else f"texts[{index}]"
            raise HTTPException(
                413,
                detail=f"{where} is {len(text)} characters; the limit is "
                f"{settings.max_text_chars} (UNSPIN_MAX_TEXT_CHARS); split it into parts",
            )


def model_ref(info: dict[str, Any]) -> ModelRef:
    """Name and version from ``restorer.model_info`` (``hash`` stands in for a missing version)."""
    name = info.get("name") or "unknown"
    version = info.get("version") or info.get("hash") or "unknown"
    return ModelRef(name=str(name), version=str(version))
