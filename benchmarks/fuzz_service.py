"""Schemathesis against the HTTP service, the way an outside tester runs it: the ``schemathesis``
command line against ``/openapi.json`` of a server on 127.0.0.1, every built-in check, every
phase (examples, coverage, fuzzing), valid and invalid data; then a count of what came back.

    python benchmarks/fuzz_service.py                        # 2,000 examples an operation: ~2,100 requests
    python benchmarks/fuzz_service.py --max-examples 50 --seed 7
    python benchmarks/fuzz_service.py --model default        # the shipped model instead of the fake (slow)

The server is the app of the slow test ``tests/service/test_service_schema_fuzz.py``
(``tests.service.service_fakes.fuzz_app``: the real ``rewrite.Restorer`` over a fake model that
swaps known spun words, texts capped at 500 characters so that generated data reaches the
limits), in a thread of this process; ``--model`` serves a real model folder instead. The run's
events are read back from schemathesis's NDJSON report: it prints the requests sent, their
status codes, the server errors (5xx) and the failed checks by name (a failed check is a schema
violation: an undocumented status code, content type or header, a body that does not match its
schema, invalid data accepted or valid data refused). Exit code 0 when there are none.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: the tests package holds the fake

from tests.service.service_fakes import FUZZ_CONFIG_TOML, fuzz_app, live_server, wait_until  # noqa: E402


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
@click.option("--model", default=None, help="Serve this model folder ('default': the shipped one) instead of the fake.")
@click.option("--keep-report", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to keep schemathesis's JUnit and NDJSON reports in.")
def main(max_examples: int, seed: int, model: str | None, keep_report: Path | None) -> None:
    """Fuzz the service's OpenAPI document; count requests, server errors and failed checks."""
    app = fuzz_app(load_restorer=_real_model(model) if model else None)
    with tempfile.TemporaryDirectory() as tmp, live_server(app) as url:
        wait_until(lambda: _ready(url), timeout_s=300)
        reports = keep_report or Path(tmp)
        config = Path(tmp) / "schemathesis.toml"
        config.write_text(FUZZ_CONFIG_TOML, encoding="utf-8")
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{url}/openapi.json",
            "--checks", "all", "--max-examples", str(max_examples), "--seed", str(seed),
            "--continue-on-failure", "--report", "junit,ndjson", "--report-dir", str(reports), "--no-color",
        ]  # fmt: skip
        click.echo(f"server {url}; {'model ' + model if model else 'fake model'}; {max_examples} examples", err=True)
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


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _real_model(model: str):
    from service.main import load_default_restorer
    from service.settings import Settings

    folder = None if model == "default" else Path(model)
    return lambda _settings: load_default_restorer(Settings(model_dir=folder, warmup=False))


if __name__ == "__main__":
    main()
