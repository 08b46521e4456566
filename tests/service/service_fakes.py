"""Helpers for the service tests: a fake Restorer, running apps, and a live server for the browser.

The fake swaps a handful of known spun words back ("mentioned" -> "said") and reports proper
edits, so the tests check the service's mechanics (offsets, batching, limits), not model quality.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from rewrite.errors import InputError
from rewrite.text import model_cost
from service.main import create_app
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLE_ARTICLE = REPO / "seeds" / "sample_spun_article.txt"
DEFAULT_MODEL_WEIGHTS = REPO / "rewrite" / "models" / "default" / "model.safetensors"

# spun word -> (standard word, confidence the fake reports)
SWAPS: dict[str, tuple[str, float]] = {
    "mentioned": ("said", 0.9),
    "individuals": ("people", 0.8),
    "struggle": ("war", 0.7),
    "assaults": ("attacks", 0.6),
    "useless": ("dead", 0.4),
    "however": ("but", 0.3),
}
_WORD = re.compile(r"\w+")
_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"")


@dataclass
class FakeEdit:
    offset: int
    length: int
    original: str
    replacement: str
    confidence: float


@dataclass
class FakeRestoration:
    text: str
    edits: list[FakeEdit]
    spin_ratio: float


def fake_restore(text: str, min_confidence: float = 0.0, protect_quotes: bool = False):
    """What the fake restorer answers for one text (also used to compute expected answers)."""
    if "\x00" in text:
        raise InputError("text contains a NUL character; remove it")
    quoted = [m.span() for m in _QUOTED.finditer(text)] if protect_quotes else []
    edits: list[FakeEdit] = []
    words = list(_WORD.finditer(text))
    for match in words:
        swap = SWAPS.get(match.group())
        if swap is None or swap[1] < (min_confidence or 0.0):
            continue
        if any(start <= match.start() < end for start, end in quoted):
            continue
        edits.append(FakeEdit(match.start(), len(match.group()), match.group(), *swap))
    restored = apply_edits(text, edits)
    return FakeRestoration(restored, edits, len(edits) / len(words) if words else 0.0)


def apply_edits(text: str, edits) -> str:
    """Apply edits (dicts or objects with offset/length/replacement) to ``text``."""
    out, pos = [], 0
    for edit in edits:
        get = edit.get if isinstance(edit, dict) else lambda key, e=edit: getattr(e, key)
        out.append(text[pos : get("offset")])
        out.append(get("replacement"))
        pos = get("offset") + get("length")
    out.append(text[pos:])
    return "".join(out)


@dataclass
class FakeRestorer:
    """Stands in for rewrite.Restorer; records every restore_many call.

    ``gate``: when given, each call waits for it to be set (to hold the model "busy").
    ``fail``: an exception every call raises (a broken model).
    """

    gate: threading.Event | None = None
    delay_s: float = 0.0
    fail: Exception | None = None
    calls: list[tuple[list[str], float, bool]] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    model_info: dict = field(
        default_factory=lambda: {
            "name": "fake-unspin",
            "version": "test-1",
            "parameters": 123,
            "metrics": {"exact_match": 0.5},
        }
    )

    def restore(self, text: str, min_confidence: float = 0.0, protect_quotes: bool = False):
        return self.restore_many([text], min_confidence, protect_quotes)[0]

    def restore_many(self, texts, min_confidence: float = 0.0, protect_quotes: bool = False):
        self.calls.append((list(texts), min_confidence, protect_quotes))
        self.started.set()
        if self.gate is not None and not self.gate.wait(timeout=10):
            raise RuntimeError("test gate never opened")
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        return [fake_restore(text, min_confidence, protect_quotes) for text in texts]


class CancellableRestorer(FakeRestorer):
    """A fake whose ``restore_many`` works like the real one under a ``cancel`` event: it
    "computes" ``seconds_per_char`` per character of model work (``rewrite.text.model_cost``:
    nothing for a line without an English word, which the real one never sends to its model) in
    steps of ``step_s``, checking ``cancel`` before each step (as ``rewrite.Restorer`` does
    before each model batch).

    ``cancelled`` counts the calls that stopped early; ``running`` is set while a call works.
    """

    def __init__(self, seconds_per_char: float = 0.001, step_s: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.seconds_per_char = seconds_per_char
        self.step_s = step_s
        self.cancelled = 0
        self.running = threading.Event()

    def restore_many(self, texts, min_confidence=None, protect_quotes=False, cancel=None):
        from rewrite.errors import Cancelled

        self.calls.append((list(texts), min_confidence, protect_quotes))
        self.started.set()
        self.running.set()
        try:
            deadline = time.monotonic() + self.seconds_per_char * sum(model_cost(t) for t in texts)
            while time.monotonic() < deadline:
                if cancel is not None and cancel.is_set():
                    self.cancelled += 1
                    raise Cancelled("stopped on request")
                time.sleep(self.step_s)
            return [fake_restore(text, min_confidence or 0.0, protect_quotes) for text in texts]
        finally:
            self.running.clear()


def stuck_app():
    """App factory for the shutdown test (``serve_subprocess``): a model whose every call
    takes 120 s and cannot be interrupted; it writes UNSPIN_TEST_STARTED when a call starts."""
    import os

    class Stuck(FakeRestorer):
        def restore_many(self, texts, min_confidence=None, protect_quotes=False):
            Path(os.environ["UNSPIN_TEST_STARTED"]).write_text("busy")
            time.sleep(120)
            return super().restore_many(texts, min_confidence, protect_quotes)

    return create_app(Settings(warmup=False), load_restorer=lambda _settings: Stuck())


def slow_fake_app():
    """App factory for tests against a real server (``serve_subprocess``): settings from the
    UNSPIN_* variables, a fake model that takes ``UNSPIN_TEST_SECONDS_PER_CHAR`` (default 0.001)
    a character, timed at start-up like the real one."""
    import os

    fake = CancellableRestorer(seconds_per_char=float(os.environ.get("UNSPIN_TEST_SECONDS_PER_CHAR", "0.001")))
    return create_app(Settings(), load_restorer=lambda _settings: fake)


# `unspin serve` with the app factory named first on the command line instead of the product's.
SERVE_LAUNCHER = (
    "import sys, service.cli; service.cli.APP_FACTORY = sys.argv.pop(1); from unspin.cli import main; main()"
)


def serve_subprocess(factory: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start ``unspin serve`` serving the app of ``factory`` (``module:callable``) on a free
    loopback port, in a process of its own; return the process and the base URL. The caller
    waits for it to be ready and stops it."""
    import os

    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    command = [sys.executable, "-c", SERVE_LAUNCHER, factory, "serve", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(command, cwd=REPO, env=environment), f"http://127.0.0.1:{port}"


def server_ready(url: str) -> bool:
    """``GET /readyz`` of the server at ``url`` answers 200."""
    import httpx

    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def fuzz_app(max_text_chars: int = 500):
    """The app the schema fuzzing test runs against, texts capped at ``max_text_chars`` so that
    generated data reaches the limits: the real ``rewrite.Restorer`` over a fake model that swaps
    known spun words (``tests.rewrite.fakes.SwapBackend``)."""
    from rewrite import Restorer
    from tests.rewrite.fakes import SwapBackend

    restorer = Restorer(SwapBackend())
    return create_app(isolated_settings(max_text_chars=max_text_chars), load_restorer=lambda _settings: restorer)


def isolated_settings(**values) -> Settings:
    """Settings from ``values`` and defaults only, whatever UNSPIN_* variables the shell has."""
    import os

    import pytest

    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("UNSPIN_"):
                patch.delenv(name)
        return Settings(**values)


def run_batcher(scenario, **options):
    """``asyncio.run`` of ``scenario(batcher)`` with a started ``Batcher(**options)``, stopped after."""
    import asyncio

    from service.batcher import Batcher

    async def main():
        batcher = Batcher(**options)
        await batcher.start()
        try:
            return await scenario(batcher)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def free_port() -> int:
    """A loopback port free right now (for a server started in another process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gated_loader(gate: threading.Event, restorer=None):
    """A ``load_restorer`` that holds the model "loading" until ``gate`` is set (10 s at most)."""

    def load(_settings):
        gate.wait(timeout=10)
        return restorer if restorer is not None else FakeRestorer()

    return load


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; a generous limit (it costs nothing when all goes well)
    so that a busy machine does not fail the test."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.005)


@contextmanager
def running_app(
    restorer=None, *, loader=None, wait_ready: bool = True, **settings
) -> Iterator[TestClient]:
    """A TestClient over create_app (lifespan run), with ``restorer`` as the loaded model."""
    fake = restorer if restorer is not None else FakeRestorer()
    settings.setdefault("warmup", False)  # tests count model calls; test_service_overload times it
    app = create_app(isolated_settings(**settings), load_restorer=loader or (lambda _settings: fake))
    with TestClient(app, raise_server_exceptions=False) as client:
        if wait_ready:
            wait_until(lambda: client.get("/readyz").status_code == 200)
        yield client


# --- a real server on a free loopback port, for the browser tests ---------------------------


@contextmanager
def live_server(app) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on 127.0.0.1; yield its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout_s=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


