"""Refusals that clients can read: a real server (``unspin serve`` in a process of its own, on
loopback) refuses large bodies with its status and JSON error, whichever common client sends
them; urllib, requests and httpx all send the whole body before they read the answer."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import pytest
import requests

from tests.service.service_fakes import serve_subprocess, server_ready, wait_until

MB = 1_000_000
SIZES = {"2 MB": 2 * MB, "16 MB": 16 * MB}
CHUNK = 64 * 1024


def _body(size: int) -> bytes:
    """A JSON restore request of exactly ``size`` bytes."""
    head, tail = b'{"text": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def _slowly(size: int, pause_s: float = 0.01) -> Iterator[bytes]:
    """``_body(size)`` in 64 KiB chunks with a pause between them (a chunked upload)."""
    body = _body(size)
    for start in range(0, len(body), CHUNK):
        time.sleep(pause_s)
        yield body[start : start + CHUNK]


def _urllib(url: str, data, headers: dict[str, str]) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _lower(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), json.loads(error.read())


def _requests(url: str, data, headers: dict[str, str]) -> tuple[int, dict, dict]:
    response = requests.post(url, data=data, headers={"Content-Type": "application/json", **headers}, timeout=60)
    return response.status_code, _lower(response.headers), response.json()


def _httpx(url: str, data, headers: dict[str, str]) -> tuple[int, dict, dict]:
    response = httpx.post(url, content=data, headers={"Content-Type": "application/json", **headers}, timeout=60)
    return response.status_code, _lower(response.headers), response.json()


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


CLIENTS = {"urllib": _urllib, "requests": _requests, "httpx": _httpx}


def _chunked(client: str) -> dict[str, str]:
    # urllib sends an iterable chunked only when told to; requests and httpx do it themselves.
    return {"Transfer-Encoding": "chunked"} if client == "urllib" else {}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    """A served fake app with the default limits (a 1 MB body); yields its URL and process id."""
    process, url = serve_subprocess("tests.service.service_fakes:slow_fake_app", {"UNSPIN_API_KEY": "k" * 24})
    try:
        wait_until(lambda: server_ready(url), timeout_s=60)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


AUTH = {"Authorization": "Bearer " + "k" * 24}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("client", CLIENTS)
def test_a_body_over_the_limit_gets_a_readable_413(server, client, size):
    url, _pid = server
    status, _headers, body = CLIENTS[client](url + "/v1/restore", _body(SIZES[size]), AUTH)
    assert status == 413
    assert "UNSPIN_MAX_BODY_BYTES" in body["detail"]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_slow_chunked_upload_over_the_limit_gets_a_readable_413(server, client):
    url, _pid = server
    status, _headers, body = CLIENTS[client](url + "/v1/restore", _slowly(2 * MB), {**AUTH, **_chunked(client)})
    assert status == 413
    assert "UNSPIN_MAX_BODY_BYTES" in body["detail"]


@pytest.mark.parametrize("client", CLIENTS)
def test_refusals_inside_the_body_limit_are_readable_too(server, client):
    url, _pid = server
    body = _body(900_000)
    status, headers, answer = CLIENTS[client](url + "/v1/restore", body, {})  # no API key
    assert status == 401 and "API key" in answer["detail"] and headers["www-authenticate"] == "Bearer"
    status, _headers, answer = CLIENTS[client](url + "/v1/nowhere", body, AUTH)  # answered unread
    assert status == 404 and answer == {"detail": "Not Found"}


def test_a_connection_stays_usable_after_a_drained_refusal(server):
    url, _pid = server
    with requests.Session() as session:
        first = session.post(url + "/v1/nowhere", data=_body(900_000), timeout=60)
        second = session.post(url + "/v1/restore", json={"text": "they mentioned"}, headers=AUTH, timeout=60)
    assert first.status_code == 404
    assert second.status_code == 200 and second.json()["results"][0]["text"] == "they said"


def test_a_body_past_the_drain_bound_is_answered_then_the_connection_closed(server):
    url, _pid = server
    host, port = url.removeprefix("http://").split(":")
    head = f"POST /v1/restore HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        # 40 MB declared, 10 kB sent: the server answers without waiting for the rest, and closes.
        sock.sendall(f"{head}Content-Length: {40 * MB}\r\n\r\n".encode() + _body(40 * MB)[:10_000])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"\r\nconnection: close\r\n" in rest.lower()
    assert b"UNSPIN_MAX_BODY_BYTES" in rest


def _peak_rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="reads /proc")
def test_discarding_a_refused_body_keeps_the_server_memory_flat(server):
    url, pid = server
    _httpx(url + "/v1/restore", _body(2 * MB), AUTH)  # the first refusal warms every path up
    before = _peak_rss_kib(pid)
    for _ in range(3):
        status, _headers, _body_ = _httpx(url + "/v1/restore", _body(16 * MB), AUTH)
        assert status == 413
        status, _headers, _body_ = _httpx(url + "/v1/restore", _slowly(16 * MB, pause_s=0), {})
        assert status == 413
    grown_mib = (_peak_rss_kib(pid) - before) / 1024
    assert grown_mib < 4, f"the server's peak memory grew {grown_mib:.1f} MiB while discarding 96 MB"


@pytest.fixture(scope="module")
def busy_server() -> Iterator[str]:
    """A served fake app that takes 10 ms a character (timed at start-up) and accepts bodies and
    texts of 4 MB, so that a 2 MB text is refused 503 for its cost, not 413 for its size."""
    settings = {"UNSPIN_MAX_BODY_BYTES": str(4 * MB), "UNSPIN_MAX_TEXT_CHARS": str(4 * MB),
                "UNSPIN_TEST_SECONDS_PER_CHAR": "0.01"}  # fmt: skip
    process, url = serve_subprocess("tests.service.service_fakes:slow_fake_app", settings)
    try:
        wait_until(lambda: server_ready(url), timeout_s=60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("client", CLIENTS)
def test_a_request_too_costly_to_admit_gets_a_readable_503(busy_server, client, chunked):
    body = _slowly(2 * MB, pause_s=0) if chunked else _body(2 * MB)
    status, headers, answer = CLIENTS[client](busy_server + "/v1/restore", body, _chunked(client) if chunked else {})
    assert status == 503 and int(headers["retry-after"]) >= 1
    assert "send fewer or shorter texts" in answer["detail"]
