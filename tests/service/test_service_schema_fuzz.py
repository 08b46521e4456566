"""Schemathesis against the running app (loopback server; the real ``rewrite.Restorer`` with a
fake model that swaps known spun words): every operation of the
OpenAPI document with generated valid and invalid requests, every built-in check (no 5xx, status
codes, content types, headers and bodies as documented, invalid data rejected, valid data
accepted). Bounded: ``UNSPIN_FUZZ_EXAMPLES`` examples an operation and phase (default 25);

    UNSPIN_FUZZ_EXAMPLES=600 python -m pytest -q -s tests/service/test_service_schema_fuzz.py

prints how many requests were sent (the hand run for the issue used >= 2,000).
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.service.service_fakes import REPO, fuzz_app, live_server, server_ready, wait_until

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("UNSPIN_FUZZ_EXAMPLES", "25"))
CONFIG = SchemathesisConfig.from_path(REPO / "benchmarks" / "schemathesis.toml")  # shared with benchmarks/fuzz_service.py
STATUSES: Counter = Counter()


# The document the app serves (building it starts nothing); requests go to a live server.
schema = schemathesis.openapi.from_dict(fuzz_app().openapi(), config=CONFIG)


@pytest.fixture(scope="module")
def server_url():
    with live_server(fuzz_app()) as url:
        wait_until(lambda: server_ready(url))  # the model loads after the server starts: 503 till then
        yield url
    print(f"\nschemathesis: {sum(STATUSES.values())} requests, status codes {dict(sorted(STATUSES.items()))}")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_matches_its_schema(case, server_url):
    response = case.call_and_validate(base_url=server_url)
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, response.text
