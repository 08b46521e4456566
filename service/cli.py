"""``unspin serve``: run the HTTP service with uvicorn (a thin layer over service.main)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click
from pydantic import ValidationError

from rewrite.restorer import MODES
from service.settings import Settings

APP_FACTORY = "service.main:create_app"  # read when the command runs (tests serve a fake app)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Model folder to serve (default: UNSPIN_MODEL_DIR, else the shipped model).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes; each loads its own copy of the model.",
)
@click.option(
    "--backend",
    default=None,
    help="Decoding backend: auto, torch, torch-greedy, ct2, ct2-float32 (default: UNSPIN_BACKEND, else auto).",
)
@click.option(
    "--mode",
    default=None,
    type=click.Choice(MODES),
    help="auto: the spin finder where the model has one; fast: the T5's edits alone (default: UNSPIN_MODE, else auto).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    host: str, port: int, model_dir: Path | None, workers: int, backend: str | None, mode: str | None, log_level: str
) -> None:
    """Serve POST /v1/restore, LanguageTool's POST /v2/check and the review page at http://HOST:PORT/.

    Limits, API key and CORS come from UNSPIN_* environment variables, for example
    UNSPIN_API_KEY, UNSPIN_MAX_TEXT_CHARS, UNSPIN_QUEUE_SIZE, UNSPIN_CORS_ORIGINS. On SIGTERM
    running requests get UNSPIN_SHUTDOWN_TIMEOUT_S seconds (10) to finish; then they are
    cancelled, the model call is stopped and the process exits.
    """
    import uvicorn

    if model_dir is not None:
        # Set in the environment so that every worker process builds the same settings.
        os.environ["UNSPIN_MODEL_DIR"] = str(model_dir.resolve())
    if backend is not None:
        os.environ["UNSPIN_BACKEND"] = backend
    if mode is not None:
        os.environ["UNSPIN_MODE"] = mode
    if workers > 1 and not os.environ.get("UNSPIN_THREADS"):
        # Each worker would otherwise compute with every CPU, and N workers would fight over them.
        from rewrite.model_folder import available_cpus  # light: no torch

        os.environ["UNSPIN_THREADS"] = str(max(1, available_cpus() // workers))
    try:
        settings = Settings()
    except ValidationError as error:
        raise click.UsageError(f"invalid UNSPIN_* setting:\n{error}") from None
    if settings.api_key is None and not _is_loopback(host):
        click.echo(
            f"warning: listening on {host} without an API key; set UNSPIN_API_KEY to require one",
            err=True,
        )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
