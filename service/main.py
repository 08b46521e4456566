"""The app factory: ``create_app()`` builds the FastAPI app; nothing loads at import time.

    uvicorn --factory service.main:create_app        # settings from UNSPIN_* variables

The lifespan hook starts the micro-batcher and loads the Restorer once, in a thread, so
``/healthz`` answers at once and ``/readyz`` turns 200 when the model is in memory; on shutdown
it stops the batcher, which cancels the running model call. Tests pass ``load_restorer`` (a
fake) or override :func:`get_restorer` in ``app.dependency_overrides``.

The OpenAPI document states the app's own limits and the served model's recommended threshold
(``schemas.state_limits``) and declares Bearer authentication on ``/v1`` only when
``UNSPIN_API_KEY`` is set. Beside this module: ``routes`` (thin routers), ``schemas`` (the
request and response bodies: the one parser of a request), ``deps`` (dependencies),
``middleware`` (early refusals, body limits), ``errors`` (error answers), ``batcher``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from service import languagetool, routes
from service.batcher import Batcher, Timeout
from service.deps import ServedRestorer, get_batcher, get_restorer, get_settings, require_api_key
from service.errors import add_error_handlers
from service.middleware import BodySizeLimit, ReadableRefusals, ShedEarly
from service.schemas import state_limits
from service.settings import Settings

__all__ = ["create_app", "get_batcher", "get_restorer", "get_settings", "load_default_restorer"]

logger = logging.getLogger(__name__)

RestorerLoader = Callable[[Settings], ServedRestorer]


def load_default_restorer(settings: Settings) -> ServedRestorer:
    """``rewrite.Restorer`` from ``settings.model_dir`` (None: the shipped default model)."""
    from rewrite import Restorer  # imported here: torch and the model load in the lifespan only
    from rewrite.model_folder import hide_developer_warnings

    hide_developer_warnings()  # the server's log is for its operators
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

    protected = [Depends(require_api_key)] if settings.api_key else []  # for every /v1 router
    app.include_router(routes.health)
    app.include_router(routes.api, dependencies=protected)
    app.include_router(routes.page)
    app.include_router(languagetool.router)  # /v2: LanguageTool's API, its own key check
    _state_limits_in_openapi(app, settings)
    app.mount("/static", StaticFiles(directory=str(routes.STATIC_DIR)), name="static")
    add_error_handlers(app)
    _add_middlewares(app, settings)
    return app


def _add_middlewares(app: FastAPI, settings: Settings) -> None:
    """Innermost first (each ``add_middleware`` wraps the ones before it); see service.middleware."""
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ShedEarly, settings=settings)  # before parsing: a refusal skips the rest
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(ReadableRefusals)  # outermost: every early answer waits for the body


def _state_limits_in_openapi(app: FastAPI, settings: Settings) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = state_limits(
                build(),
                max_text_chars=settings.max_text_chars,
                max_batch_texts=settings.max_batch_texts,
                threshold=served_threshold(settings),
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def served_threshold(settings: Settings) -> float | None:
    """The recommended ``min_confidence`` of the model folder the service serves in its mode, read
    from its ``finder.json`` or ``restorer.json`` (light: no weights load); ``None`` when the folder
    cannot tell."""
    from rewrite.errors import ModelError
    from rewrite.restorer import DEFAULT_MODEL, recommended_threshold, shipped_model

    folder = Path(shipped_model(str(settings.model_dir)) if settings.model_dir else DEFAULT_MODEL)
    if not folder.is_dir():
        return None
    try:
        return recommended_threshold(folder, settings.mode)
    except ModelError:
        return None


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


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unspin")
    except PackageNotFoundError:
        return "0+unknown"
