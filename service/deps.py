"""Request dependencies: settings, the loaded Restorer, the batcher and the API-key check.

They read what the lifespan hook put on ``app.state``; tests replace them through
``app.dependency_overrides`` (``app.dependency_overrides[get_restorer] = lambda: fake``).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.batcher import Batcher, RestorerLike
from service.settings import Settings


class ServedRestorer(RestorerLike, Protocol):
    """What the service uses of ``rewrite.Restorer``."""

    model_info: dict[str, Any]


class ModelNotReady(HTTPException):
    """503 while the model is loading or after it failed to load."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(503, detail=detail, headers={"Retry-After": str(retry_after_s)})


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_restorer(request: Request) -> ServedRestorer:
    state = request.app.state
    if state.restorer is not None:
        return state.restorer
    retry = state.settings.retry_after_s
    if state.load_error is not None:
        raise ModelNotReady(f"the model failed to load: {state.load_error}", retry)
    raise ModelNotReady("the model is still loading; retry shortly (see GET /readyz)", retry)


def get_batcher(request: Request) -> Batcher:
    return request.app.state.batcher


_bearer = HTTPBearer(auto_error=False, description="The key set in UNSPIN_API_KEY, if any.")


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """When ``UNSPIN_API_KEY`` is set, demand ``Authorization: Bearer <key>``."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not secrets.compare_digest(given, expected):
        detail = (
            "missing API key: send the header 'Authorization: Bearer <key>'"
            if credentials is None
            else "wrong API key"
        )
        raise HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def key_accepted(settings: Settings, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header value passes :func:`require_api_key` (always, when no
    key is set); for checks made before FastAPI parses the request."""
    if settings.api_key is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    expected = settings.api_key.get_secret_value().encode()
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), expected)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RestorerDep = Annotated[ServedRestorer, Depends(get_restorer)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]
