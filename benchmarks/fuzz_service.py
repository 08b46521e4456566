"""Schemathesis against the HTTP service, the way an outside tester runs it: ``unspin serve`` in a
process of its own on 127.0.0.1, then the ``schemathesis`` command line against its
``/openapi.json`` with every built-in check, every phase (examples, coverage, fuzzing,
stateful), valid and invalid data; then a count of what came back.

    python benchmarks/fuzz_service.py                        # 2,000 examples an operation: ~2,100 requests
    python benchmarks/fuzz_service.py --max-examples 50 --seed 7
    python benchmarks/fuzz_service.py --mode auto            # the spin finder too (slower per text)
    python benchmarks/fuzz_service.py --model DIR            # another model folder

The server is the product: the shipped model (or ``--model``), by default in ``--mode fast``
(the T5 alone, tens of milliseconds a short text: most valid generated requests reach the model),
with ``UNSPIN_MAX_TEXT_CHARS=500`` so that generated data reaches the limits. The slow test
``tests/service/test_service_schema_fuzz.py`` runs the same checks, fewer examples, against a
fake model. Both read ``benchmarks/schemathesis.toml``. The run's events are read back from
schemathesis's NDJSON report: it prints the requests sent, their status codes, the server
errors (5xx) and the failed checks by name (a failed check is a schema violation: an
undocumented status code, content type or header, a body that does not match its schema,
invalid data accepted or valid data refused). Exit code 0 when there are none.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "benchmarks" / "schemathesis.toml"


def count_events(ndjson: Path) -> tuple[Counter, Counter]:
    """Status codes of every request sent, and checks by outcome and name (``("failure",
    "not_a_server_error")``), from a schemathesis NDJSON report (one ``ScenarioFinished`` event
    per scenario holds its requests and the checks run on their responses)."""
    statuses: Counter = Counter()
    checked: Counter = Counter()
    for line in ndjson.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        scenario = event.get("ScenarioFinished")
        if scenario is None:
            continue
        recorder = scenario["recorder"]
        for interaction in recorder.get("interactions", {}).values():
            response = interaction.get("response") or {}
            statuses[str(response.get("status_code", "no response"))] += 1
        for checks in recorder.get("checks", {}).values():
            for check in checks:
                checked[check["status"], check["name"]] += 1
    return statuses, checked


def server_errors(statuses: Counter) -> int:
    return sum(n for status, n in statuses.items() if status.startswith("5"))


def failures(checked: Counter) -> dict[str, int]:
    return {name: n for (outcome, name), n in sorted(checked.items()) if outcome == "failure"}


def report(statuses: Counter, checked: Counter) -> str:
    failed = failures(checked)
    lines = [
        "| requests | status codes | server errors (5xx) | checks run | failed checks |",
        "|---:|---|---:|---:|---|",
        f"| {sum(statuses.values())} | {', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))} | "
        f"{server_errors(statuses)} | {sum(checked.values())} | "
        f"{', '.join(f'{name}: {n}' for name, n in failed.items()) or '0'} |",
    ]
    return "\n".join(lines)


@click.command()
@click.option("--max-examples", default=2000, show_default=True, help="Test cases an operation and phase.")
@click.option("--seed", default=1, show_default=True, help="Seed of the generated data.")
@click.option("--model", type=click.Path(exists=True, file_okay=False), default=None,
              help="Model folder to serve (default: the shipped one).")
@click.option("--mode", type=click.Choice(["fast", "auto"]), default="fast", show_default=True,
              help="unspin serve --mode: fast is the T5 alone, auto the spin finder too.")
@click.option("--max-text-chars", default=500, show_default=True, help="UNSPIN_MAX_TEXT_CHARS of the server.")
@click.option("--keep-report", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to keep schemathesis's JUnit and NDJSON reports in.")
def main(max_examples: int, seed: int, model: str | None, mode: str, max_text_chars: int, keep_report: Path | None) -> None:
    """Fuzz the service's OpenAPI document; count requests, server errors and failed checks."""
    with tempfile.TemporaryDirectory() as tmp, served(model, mode, max_text_chars) as url:
        reports = keep_report or Path(tmp)
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
            "--checks", "all", "--max-examples", str(max_examples), "--seed", str(seed),
            "--continue-on-failure", "--report", "junit,ndjson", "--report-dir", str(reports), "--no-color",
        ]  # fmt: skip
        click.echo(f"server {url}; model {model or 'shipped'}, mode {mode}; {max_examples} examples", err=True)
        finished = subprocess.run(command, capture_output=True, text=True)
        ndjson = sorted(reports.glob("ndjson-*.ndjson"))
        if not ndjson:
            raise click.ClickException(f"schemathesis wrote no report (exit {finished.returncode}):\n{finished.stdout[-3000:]}{finished.stderr[-3000:]}")
        statuses, checked = count_events(ndjson[-1])
    click.echo(finished.stdout[-1500:], err=True)
    click.echo(f"schemathesis --max-examples {max_examples} --seed {seed}, all checks and phases:\n")
    click.echo(report(statuses, checked))
    if server_errors(statuses) or failures(checked) or finished.returncode != 0:
        raise SystemExit(1)


@contextmanager
def served(model: str | None, mode: str, max_text_chars: int):
    """``unspin serve`` on a free loopback port in a process of its own; yields its URL once
    ``/readyz`` answers 200, stops it after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "unspin", "serve", "--port", str(port), "--mode", mode, "--log-level", "warning"]
    if model:
        command += ["--model", model]
    environment = {**os.environ, "UNSPIN_MAX_TEXT_CHARS": str(max_text_chars)}
    process = subprocess.Popen(command, cwd=REPO, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while not _ready(url):
            if process.poll() is not None:
                raise click.ClickException(f"unspin serve exited with {process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise click.ClickException("unspin serve was not ready in 300 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    main()
