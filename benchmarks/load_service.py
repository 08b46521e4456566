"""Load test of the HTTP service on this machine (127.0.0.1 only), bounded in requests and time.

    python benchmarks/load_service.py                      # starts `uvicorn service.main` itself
    python benchmarks/load_service.py --model runs/m --requests 300 --concurrency 1,8,32
    python benchmarks/load_service.py --url http://127.0.0.1:8000 --pid 1234   # a running server
    python benchmarks/load_service.py --scenarios overload,overload-retry,heavy,disconnect  # overload probes
    python benchmarks/load_service.py --server-src /tmp/main-checkout          # another checkout's server
    python benchmarks/load_service.py --scenarios heavy --warmup 0 --server-env UNSPIN_WARMUP=0  # cold

Scenarios (``--scenarios``, comma-separated; with its own server each gets a fresh one):

``levels``: for each ``--concurrency`` level, that many clients each send one ~100-word
paragraph per request and wait for the answer before sending the next, until ``--requests``
requests or ``--max-seconds`` have passed.

``overload``: ``--overload-clients`` (64) clients do the same for ``--overload-seconds`` (30 s)
with ``--overload-words``-word texts (600: more work than the server can do in its 30 s time
limit). A server that sheds load answers 200, or 503 with Retry-After at once; none should wait
into a 504. These clients ignore Retry-After and send again at once, so the server spends its
CPU (2 cores here, shared with the model and with this script) on refusals.

``overload-retry``: the same, but a client refused with 503 waits the Retry-After seconds before
its next request, as an HTTP client should.

``heavy``: one request with 64 distinct ~4,000-character paragraphs (inside every limit, far
more work than the time limit allows), a small request every second while it runs, then small
requests from 2 s after its answer: they show whether the model is free again. A server that
knows its speed refuses the heavy request at once; on a cold one (no warm-up request, server
started with ``UNSPIN_WARMUP=0``) it is admitted and runs into the time limit (504).

``disconnect``: the same, but the client of the heavy request hangs up after
``--disconnect-after`` seconds; the small requests start 2 s later.

Each scenario prints a markdown table: status codes, latency percentiles of the 200 answers,
the slowest 503 answer (with the 95th percentile) and whether every 503 carried Retry-After; then the server's peak
resident memory (VmHWM from /proc, summed over the server and its children) and the machine's
1-minute load average before and after the scenario (other work on the machine shows there).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
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
SCENARIOS = ("levels", "overload", "overload-retry", "heavy", "disconnect")


@dataclass
class Sample:
    """One request: its HTTP status (or the client error's name), seconds, Retry-After header."""

    status: str
    seconds: float
    retry_after: str | None = None


@dataclass
class Run:
    """The requests of one row of a table."""

    name: str
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float | None = None

    def seconds(self, status: str) -> list[float]:
        return sorted(s.seconds for s in self.samples if s.status == status)

    def percentile_ms(self, q: float, status: str = "200") -> float:
        """Nearest-rank percentile of the latency of ``status`` answers, in milliseconds."""
        ordered = self.seconds(status)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000

    def statuses(self) -> str:
        counts = Counter(s.status for s in self.samples)
        return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) or "-"

    def shed_summary(self) -> str:
        """Slowest 503 answer (and the 95th percentile when there are 20 or more) and whether
        each carried Retry-After."""
        shed = [s for s in self.samples if s.status == "503"]
        if not shed:
            return "-"
        with_header = sum(1 for s in shed if s.retry_after)
        p95 = f" (p95 {self.percentile_ms(95, '503'):.0f} ms)" if len(shed) >= 20 else ""
        return f"{max(s.seconds for s in shed) * 1000:.0f} ms{p95}; Retry-After {with_header}/{len(shed)}"


def paragraphs(source: Path, words: int, count: int, min_chars: int = 0, seed: int = 0) -> list[str]:
    """``count`` distinct paragraphs of ``words`` words (or more, up to ``min_chars``
    characters): windows over the source's words, each starting elsewhere, with a fifth of the
    words dropped at random (seeded) so that few share a sentence: the restorer runs each
    distinct sentence once per call, so repeated sentences would cost nothing."""
    tokens = source.read_text(encoding="utf-8").split()
    if not tokens:
        raise click.UsageError(f"{source} has no words")
    out = []
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        start, window, chars, k = (i * 37) % len(tokens), [], 0, 0
        while len(window) < words or chars < min_chars:
            token = tokens[(start + k) % len(tokens)]
            k += 1
            if rng.random() < 0.2:
                continue
            window.append(token)
            chars += len(token) + 1
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


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants; None if unreadable."""
    ticks, seen = 0, False
    for proc in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        seen = True
    return ticks / os.sysconf("SC_CLK_TCK") if seen else None


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return children + [d for child in children for d in _descendants(child)]


def start_server(
    model: Path | None, workers: int, src: Path = REPO, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`uvicorn service.main:create_app` (from checkout ``src``, with ``extra_env``) on a
    loopback socket this process binds and hands over."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(src), **(extra_env or {}))
    if model is not None:
        env["UNSPIN_MODEL_DIR"] = str(model.resolve())
    command = [
        sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory",
        "--fd", str(sock.fileno()), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=src, env=env, pass_fds=(sock.fileno(),))
    sock.close()
    return process, f"http://127.0.0.1:{port}"


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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


async def _post(http: httpx.AsyncClient, body: dict, timeout: float | None = None) -> Sample:
    started = time.perf_counter()
    try:
        kwargs = {} if timeout is None else {"timeout": timeout}
        response = await http.post("/v1/restore", json=body, **kwargs)
        status, retry = str(response.status_code), response.headers.get("Retry-After")
    except httpx.HTTPError as exc:
        status, retry = type(exc).__name__, None
    return Sample(status, time.perf_counter() - started, retry)


def _client(url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=120, headers=_auth())


class RawConnection:
    """One keep-alive HTTP/1.1 connection that POSTs prepared JSON and reads the status line,
    headers and body, at a fraction of httpx's client CPU per request (httpx spends about 5 ms a
    request here: 64 clients resending at once saturated this script's core, and its own queueing
    showed up as the server's latency). A transport error closes the connection; the next request
    opens a new one."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = "".join(f"{name}: {value}\r\n" for name, value in _auth().items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> Sample:
        started = time.perf_counter()
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{self.head}\r\n".encode() + body
            )
            await self.writer.drain()
            status, headers = await self._read_head()
            await self.reader.readexactly(int(headers.get("content-length", "0")))
            if headers.get("connection", "").lower() == "close":
                self.close()
            return Sample(status, time.perf_counter() - started, headers.get("retry-after"))
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.close()
            return Sample(type(exc).__name__, time.perf_counter() - started)

    async def _read_head(self) -> tuple[str, dict[str, str]]:
        assert self.reader is not None
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status_line.split()[1].decode(), headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_level(url: str, texts: list[str], clients: int, requests: int | None, max_seconds: float,
                    name: str | None = None, honour_retry_after: bool = False) -> Run:
    """``clients`` closed-loop clients (one ``RawConnection`` each) share ``requests`` requests
    (None: no cap); each stops sending at ``max_seconds``; with ``honour_retry_after``, one
    refused with 503 waits the Retry-After seconds first. ``Run.client_cpu_s`` is this process's
    CPU time over the run: near ``wall_s`` means the client, not the server, set the pace."""
    run = Run(name or f"{clients} clients")
    bodies = [json.dumps({"text": text}).encode() for text in texts]
    next_index = 0
    deadline = time.monotonic() + max_seconds

    async def client() -> None:
        nonlocal next_index
        connection = RawConnection(url)
        try:
            while (requests is None or next_index < requests) and time.monotonic() < deadline:
                body = bodies[next_index % len(bodies)]
                next_index += 1
                sample = await connection.post("/v1/restore", body)
                run.samples.append(sample)
                if honour_retry_after and sample.status == "503" and (sample.retry_after or "").isdigit():
                    await asyncio.sleep(min(float(sample.retry_after), max(0.0, deadline - time.monotonic())))
        finally:
            connection.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    run.wall_s = time.perf_counter() - started
    run.client_cpu_s = time.process_time() - cpu_started
    return run


async def run_heavy(url: str, heavy: list[str], small: list[str], *, disconnect_after: float | None,
                    after_count: int = 3) -> list[Run]:
    """One heavy request (hung up on after ``disconnect_after`` s when given), a small request
    every second while it runs, then ``after_count`` small requests one after another from 2 s
    after its answer. Rows: the heavy request, the small ones during it, the small ones after."""
    label = "heavy (client hangs up)" if disconnect_after else "heavy"
    heavy_run, during, after = Run(label), Run("small, while it runs"), Run("small, from 2 s after it")
    async with _client(url, 4) as http:
        started = time.perf_counter()
        heavy_task = asyncio.create_task(_post(http, {"texts": heavy}, timeout=disconnect_after))
        k = 0
        while not heavy_task.done():
            try:
                await asyncio.wait_for(asyncio.shield(heavy_task), 1.0)
            except TimeoutError:
                during.samples.append(await _post(http, {"text": small[k % len(small)]}, timeout=60))
                k += 1
        heavy_run.samples.append(heavy_task.result())
        heavy_run.wall_s = time.perf_counter() - started
        during.wall_s = heavy_run.wall_s
        await asyncio.sleep(2.0)
        started = time.perf_counter()
        for j in range(after_count):
            after.samples.append(await _post(http, {"text": small[(k + j) % len(small)]}, timeout=60))
        after.wall_s = time.perf_counter() - started
    return [heavy_run, during, after]


def markdown(runs: list[Run]) -> str:
    lines = [
        "| run | requests | status codes | 200/s | p50 ms | p95 ms | p99 ms | max ms | slowest 503 | client CPU |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        ok = r.seconds("200")
        rate = len(ok) / r.wall_s if r.wall_s else 0.0
        slowest = max((s.seconds for s in r.samples), default=float("nan")) * 1000
        cpu = f"{r.client_cpu_s:.1f} s of {r.wall_s:.1f} s" if r.client_cpu_s is not None else "-"
        lines.append(
            f"| {r.name} | {len(r.samples)} | {r.statuses()} | {rate:.2f} | {r.percentile_ms(50):.0f} | "
            f"{r.percentile_ms(95):.0f} | {r.percentile_ms(99):.0f} | {slowest:.0f} | {r.shed_summary()} | {cpu} |"
        )
    return "\n".join(lines)


@click.command()
@click.option("--url", default=None, help="A running server on 127.0.0.1 (default: start one).")
@click.option("--pid", type=int, default=None, help="With --url: the server's pid, for memory.")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workers", default=1, show_default=True, help="uvicorn workers (own server).")
@click.option(
    "--server-src", type=click.Path(exists=True, file_okay=False, path_type=Path), default=REPO,
    help="Checkout whose service code the own server runs (e.g. a worktree of an older commit).",
)  # fmt: skip
@click.option("--server-env", multiple=True, metavar="NAME=VALUE", help="Environment of the own server (repeatable).")
@click.option("--scenarios", default="levels", show_default=True, help=f"Any of {', '.join(SCENARIOS)}.")
@click.option("--concurrency", default="1,8,32", show_default=True, help="levels: client counts to run.")
@click.option("--requests", default=200, show_default=True, help="levels: most requests per level.")
@click.option("--max-seconds", default=60.0, show_default=True, help="levels: time limit per level.")
@click.option("--words", default=100, show_default=True, help="Words per paragraph sent (levels, small).")
@click.option("--overload-clients", default=64, show_default=True, help="overload: clients.")
@click.option("--overload-seconds", default=30.0, show_default=True, help="overload: seconds of sending.")
@click.option("--overload-words", default=600, show_default=True, help="overload: words per text.")
@click.option("--heavy-texts", default=64, show_default=True, help="heavy: texts in the heavy request.")
@click.option("--heavy-chars", default=4000, show_default=True, help="heavy: characters per text.")
@click.option("--disconnect-after", default=3.0, show_default=True, help="disconnect: seconds before hanging up.")
@click.option("--warmup", default=4, show_default=True, help="Unmeasured requests first.")
@click.option("--startup-timeout", default=300.0, show_default=True, help="Seconds to await ready.")
def main(url, pid, model, workers, server_src, server_env, scenarios, concurrency, requests, max_seconds, words,
         overload_clients, overload_seconds, overload_words, heavy_texts, heavy_chars, disconnect_after,
         warmup, startup_timeout):
    """Status codes and latency of POST /v1/restore under steady and overload scenarios."""
    chosen = [s.strip() for s in scenarios.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown or not chosen:
        raise click.BadParameter(f"choose from {', '.join(SCENARIOS)}", param_hint="--scenarios")
    levels = [int(level) for level in concurrency.split(",") if level.strip()]
    if not levels or min(levels) < 1:
        raise click.BadParameter("give client counts such as 1,8,32", param_hint="--concurrency")
    if url is not None:
        url = require_loopback(url)
    extra_env = dict(item.split("=", 1) for item in server_env if "=" in item)
    if len(extra_env) != len(server_env):
        raise click.BadParameter("give NAME=VALUE", param_hint="--server-env")
    small = paragraphs(SAMPLE, words, max(requests, warmup, 64))
    click.echo(
        f"{os.cpu_count()} CPUs; server from {server_src}; {words}-word paragraphs; levels: at most "
        f"{requests} requests or {max_seconds:g} s a level."
    )
    for scenario in chosen:
        process, server_url, server_pid = None, url, pid
        if url is None:
            process, server_url = start_server(model, workers, server_src, extra_env)
            server_pid = process.pid
        try:
            info = wait_ready(server_url, process, startup_timeout)
            if warmup:
                asyncio.run(run_level(server_url, small, 1, warmup, max_seconds))
            click.echo(f"running {scenario}...", err=True)
            load_before = os.getloadavg()[0]
            cpu_before = cpu_seconds(server_pid) if server_pid is not None else None
            runs = asyncio.run(_scenario(scenario, server_url, small, locals()))
            cpu_after = cpu_seconds(server_pid) if server_pid is not None else None
            load_after = os.getloadavg()[0]
            memory = peak_rss_mib(server_pid) if server_pid is not None else None
        finally:
            if process is not None:
                stop_server(process)
        click.echo(f"\n### {scenario} (model {info.get('name')} {info.get('version')})\n")
        click.echo(markdown(runs))
        peak = f"{memory:.0f} MiB" if memory is not None else "unknown (pass --pid)"
        click.echo(f"\nServer peak resident memory (VmHWM): {peak}; load average (1 min) before and after: "
                   f"{load_before:.2f}, {load_after:.2f}")
        if cpu_before is not None and cpu_after is not None:
            answered = sum(len(run.samples) for run in runs)
            click.echo(f"Server CPU during the scenario: {cpu_after - cpu_before:.1f} s for {answered} requests "
                       f"(model work included)")


async def _scenario(scenario: str, url: str, small: list[str], o: dict) -> list[Run]:
    if scenario == "levels":
        return [await run_level(url, small, c, o["requests"], o["max_seconds"]) for c in o["levels"]]
    if scenario.startswith("overload"):
        texts = paragraphs(SAMPLE, o["overload_words"], 256, seed=1)
        honour = scenario == "overload-retry"
        name = (f"{o['overload_clients']} clients x {o['overload_seconds']:g} s, {o['overload_words']} words, "
                f"Retry-After {'honoured' if honour else 'ignored'}")
        return [await run_level(url, texts, o["overload_clients"], None, o["overload_seconds"], name, honour)]
    heavy = paragraphs(SAMPLE, 1, o["heavy_texts"], min_chars=o["heavy_chars"], seed=2)
    hang_up = o["disconnect_after"] if scenario == "disconnect" else None
    return await run_heavy(url, heavy, small, disconnect_after=hang_up)


if __name__ == "__main__":
    main()
