"""The service with the shipped default model (rewrite/models/default): API and review page."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.service.service_fakes import (
    DEFAULT_MODEL_WEIGHTS,
    SAMPLE_ARTICLE,
    apply_edits,
    isolated_settings,
    live_server,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_the_default_model_ships():
    assert DEFAULT_MODEL_WEIGHTS.is_file(), f"{DEFAULT_MODEL_WEIGHTS} is missing: the package must ship its model"


@pytest.fixture(scope="module")
def real_app():
    # The default loader (rewrite.Restorer, shipped model). The sample article goes in as one request:
    # on a busy machine the spin finder needs more than the default 30 s, and admission would answer 503.
    return create_app(isolated_settings(request_timeout_s=180))


@pytest.fixture(scope="module")
def real_client(real_app):
    with TestClient(real_app) as client:
        wait_until(lambda: client.get("/readyz").status_code != 503 or _failed(client), 300)
        assert client.get("/readyz").json()["status"] == "ready", client.get("/readyz").json()
        yield client


def _failed(client) -> bool:
    return client.get("/readyz").json()["status"] == "failed"


def test_model_endpoint_describes_the_shipped_model(real_client):
    info = real_client.get("/v1/model").json()
    assert info["name"]
    assert info.get("version") or info.get("hash")


def test_sample_article_restores_with_consistent_edits(real_client):
    article = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    response = real_client.post("/v1/restore", json={"text": article})
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["edits"], "the default model found no spun wording in the sample article"
    assert apply_edits(article, result["edits"]) == result["text"]
    for edit in result["edits"]:
        assert article[edit["offset"] : edit["offset"] + edit["length"]] == edit["original"]
        assert 0.0 <= edit["confidence"] <= 1.0
    assert 0.0 < result["spin_ratio"] <= 1.0


def test_batch_of_texts_matches_single_requests(real_client):
    texts = [
        "Rubio mentioned the talks had been productive.",
        "Not less than 15 individuals were killed in a single day.",
    ]
    batch = real_client.post("/v1/restore", json={"texts": texts}).json()["results"]
    singles = [
        real_client.post("/v1/restore", json={"text": text}).json()["results"][0] for text in texts
    ]
    for together, alone in zip(batch, singles, strict=True):
        # Padding in a batch may move the probabilities in the last float digits, nothing more.
        assert together["text"] == alone["text"]
        assert _without_confidence(together["edits"]) == _without_confidence(alone["edits"])
        expected = [edit["confidence"] for edit in alone["edits"]]
        assert [edit["confidence"] for edit in together["edits"]] == pytest.approx(expected, abs=1e-3)


def _without_confidence(edits):
    """Edits without their scores: batch shapes move bf16 scores in the third decimal."""
    return [{**{k: v for k, v in edit.items() if k != "confidence"},
             "alternatives": [a["value"] for a in edit.get("alternatives", [])]} for edit in edits]


def test_review_page_with_the_real_model(browser):
    article = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    # the whole sample article in one request: the spin finder needs more than the default 30 s on a busy machine
    with live_server(create_app(isolated_settings(request_timeout_s=180))) as url:
        wait_until(lambda: httpx.get(url + "/readyz").json()["status"] != "loading", 300)
        assert httpx.get(url + "/readyz").status_code == 200
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/")
        page.fill("#source", article)
        page.click("#restore")
        page.wait_for_selector("#result:not([hidden])", timeout=240_000)
        # The slider opens where `unspin rewrite` stands: the model's threshold (finder.json here).
        from rewrite.restorer import recommended_threshold

        threshold = recommended_threshold(DEFAULT_MODEL_WEIGHTS.parent)
        assert page.inner_text("#model-threshold") == f"model's threshold {threshold:.2f}"
        answer = httpx.post(url + "/v1/restore", json={"text": article, "min_confidence": 0}, timeout=240)
        every, flags = answer.json()["results"][0]["edits"], answer.json()["results"][0]["flags"]
        kept = [edit for edit in every if edit["confidence"] >= threshold]
        found = f"; {len(flags)} found but not restored (dotted)" if flags else ""
        assert page.inner_text("#edit-count") == f"{len(kept)} of {len(every)} edits shown{found}"
        assert page.locator("#restored mark.flag").count() == len(flags) > 0  # the detector's places, unrestored
        page.locator("#restored mark.flag").first.hover()
        page.locator("#tooltip").wait_for(state="visible")
        assert "Found, not restored:" in page.locator("#tooltip").inner_text()
        page.mouse.move(0, 0)
        assert page.locator("#curve-plot circle.curve-point").count() > 0  # markup_metrics.json's curve
        marks = page.locator("#restored mark.edit")
        assert marks.count() > 0
        marks.first.hover()
        tooltip = page.locator("#tooltip")
        tooltip.wait_for(state="visible")
        assert "Spun original:" in tooltip.inner_text()
        assert "Confidence:" in tooltip.inner_text()
        context.close()


def test_text_without_english_is_answered_200_unchanged_by_the_shipped_model(real_client):
    from tests.service.test_service_foreign_text import FOREIGN

    # one paragraph each: 4,000 characters of Japanese took 42 s and then a 504 before
    texts = [text.replace("\n", " ") for text in FOREIGN.values()]
    response = real_client.post("/v1/restore", json={"texts": texts})
    assert response.status_code == 200
    assert [(r["text"], r["edits"]) for r in response.json()["results"]] == [(t, []) for t in texts]
