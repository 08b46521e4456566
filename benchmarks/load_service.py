"""Load test of the HTTP service on this machine (127.0.0.1 only), bounded in requests and time.

    python benchmarks/load_service.py                      # starts `uvicorn service.main` itself
    python benchmarks/load_service.py --model runs/m --requests 300 --concurrency 1,8,32
    python benchmarks/load_service.py --url http://127.0.0.1:8000 --pid 1234   # a running server

Each client sends one ~100-word paragraph per request (windows over the sample article) and
waits for the answer before sending the next. For each concurrency level it reports requests/s,
p50/p95/p99 latency and the error count, then the server's peak resident memory (VmHWM from
/proc, summed over the server and its children) as a markdown table.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import click
import httpx

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "seeds" / "sample_spun_article.txt"


@dataclass
class LevelResult:
    clients: int
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: Counter = field(default_factory=Counter)  # "HTTP 503", "ReadTimeout", ...
    wall_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_s) + self.errors

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the successful requests' latency, in milliseconds."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000


def paragraphs(source: Path, words: int, count: int) -> list[str]:
    """``count`` paragraphs of ``words`` words: overlapping windows over the source's words."""
    tokens = source.read_text(encoding="utf-8").split()
    if not tokens:
        raise click.UsageError(f"{source} has no words")
    out = []
    for i in range(count):
        start = (i * 37) % len(tokens)
        window = [tokens[(start + j) % len(tokens)] for j in range(words)]
        out.append(" ".join(window))
    return out


def require_loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise click.BadParameter(f"{url} is not on this machine; only 127.0.0.1 is allowed")
    return url.rstrip("/")


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of ``pid`` and its descendants, in MiB; None if unreadable."""
    total_kib, seen = 0, False
    for proc in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kib += int(line.split()[1])
                    seen = True
        except OSError:
            continue
    return total_kib / 1024 if seen else None


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return children + [d for child in children for d in _descendants(child)]


def start_server(model: Path | None, workers: int) -> tuple[subprocess.Popen, str]:
    """`uvicorn service.main:create_app` on a loopback socket this process binds and hands over."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    env = dict(os.environ)
    if model is not None:
        env["UNSPIN_MODEL_DIR"] = str(model.resolve())
    command = [
        sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory",
        "--fd", str(sock.fileno()), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env, pass_fds=(sock.fileno(),))
    sock.close()
    return process, f"http://127.0.0.1:{port}"


def wait_ready(url: str, process: subprocess.Popen | None, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise click.ClickException(f"the server exited with code {process.returncode}")
        try:
            ready = httpx.get(url + "/readyz", timeout=2)
            if ready.status_code == 200:
                return httpx.get(url + "/v1/model", timeout=5, headers=_auth()).json()
            if ready.json().get("status") == "failed":
                raise click.ClickException(f"the model failed to load: {ready.json()['detail']}")
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"the server was not ready within {timeout_s:g} s")


def _auth() -> dict[str, str]:
    key = os.environ.get("UNSPIN_API_KEY", "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


async def run_level(
    url: str, texts: list[str], clients: int, requests: int, max_seconds: float
) -> LevelResult:
    """``clients`` concurrent clients share ``requests`` requests; stop early at ``max_seconds``."""
    result = LevelResult(clients)
    next_index = 0
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120, headers=_auth()) as http:

        async def client() -> None:
            nonlocal next_index
            while next_index < requests and time.monotonic() < deadline:
                text = texts[next_index % len(texts)]
                next_index += 1
                started = time.perf_counter()
                try:
                    response = await http.post("/v1/restore", json={"text": text})
                    error = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                if error is None:
                    result.latencies_s.append(time.perf_counter() - started)
                else:
                    result.errors += 1
                    result.error_kinds[error] += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        result.wall_s = time.perf_counter() - started
    return result


def markdown(results: list[LevelResult], words: int) -> str:
    lines = [
        "| clients | requests | errors | req/s | words/s | p50 ms | p95 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rate = len(r.latencies_s) / r.wall_s if r.wall_s else 0.0
        lines.append(
            f"| {r.clients} | {r.requests} | {r.errors} | {rate:.2f} | {rate * words:.0f} | "
            f"{r.percentile_ms(50):.0f} | {r.percentile_ms(95):.0f} | {r.percentile_ms(99):.0f} |"
        )
    kinds = [f"{r.clients} clients: {dict(r.error_kinds)}" for r in results if r.errors]
    if kinds:
        lines += ["", "Errors: " + "; ".join(kinds)]
    return "\n".join(lines)


@click.command()
@click.option("--url", default=None, help="A running server on 127.0.0.1 (default: start one).")
@click.option("--pid", type=int, default=None, help="With --url: the server's pid, for memory.")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workers", default=1, show_default=True, help="uvicorn workers (own server).")
@click.option("--concurrency", default="1,8,32", show_default=True, help="Client counts to run.")
@click.option("--requests", default=200, show_default=True, help="Most requests per level.")
@click.option("--max-seconds", default=60.0, show_default=True, help="Time limit per level.")
@click.option("--words", default=100, show_default=True, help="Words per paragraph sent.")
@click.option("--warmup", default=4, show_default=True, help="Unmeasured requests first.")
@click.option("--startup-timeout", default=300.0, show_default=True, help="Seconds to await ready.")
def main(
    url, pid, model, workers, concurrency, requests, max_seconds, words, warmup, startup_timeout
):
    """Requests/s and latency of POST /v1/restore at several concurrency levels."""
    levels = [int(level) for level in concurrency.split(",") if level.strip()]
    if not levels or min(levels) < 1:
        raise click.BadParameter("give client counts such as 1,8,32", param_hint="--concurrency")
    process = None
    if url is None:
        process, url = start_server(model, workers)
        pid = process.pid
    else:
        url = require_loopback(url)
    try:
        info = wait_ready(url, process, startup_timeout)
        texts = paragraphs(SAMPLE, words, max(requests, warmup, 1))
        asyncio.run(run_level(url, texts, 1, warmup, max_seconds))
        results = []
        for clients in levels:
            click.echo(f"running {clients} client(s)...", err=True)
            results.append(asyncio.run(run_level(url, texts, clients, requests, max_seconds)))
        memory = peak_rss_mib(pid) if pid is not None else None
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    click.echo(
        f"Model {info.get('name')} {info.get('version')}; {words}-word paragraphs; "
        f"{os.cpu_count()} CPUs; at most {requests} requests or {max_seconds:g} s a level."
    )
    click.echo()
    click.echo(markdown(results, words))
    click.echo()
    peak = f"{memory:.0f} MiB" if memory is not None else "unknown (pass --pid)"
    click.echo(f"Server peak resident memory (VmHWM): {peak}")


if __name__ == "__main__":
    main()
