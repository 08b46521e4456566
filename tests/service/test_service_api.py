"""Every endpoint through the real app, with a fake Restorer."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient

from service.main import create_app, get_restorer
from service.settings import Settings

from tests.service.service_fakes import (
    FakeRestorer,
    apply_edits,
    gated_loader,
    isolated_settings,
    running_app,
    wait_until,
)


def test_healthz_answers_at_once(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_is_503_while_loading_then_200():
    gate = threading.Event()
    with running_app(loader=gated_loader(gate), wait_ready=False) as client:
        assert client.get("/healthz").status_code == 200
        loading = client.get("/readyz")
        assert loading.status_code == 503
        assert loading.json()["status"] == "loading"
        busy = client.post("/v1/restore", json={"text": "x"})
        assert busy.status_code == 503
        assert "loading" in busy.json()["detail"]
        assert busy.headers["Retry-After"] == "1"
        gate.set()
        wait_until(lambda: client.get("/readyz").status_code == 200)
        assert client.get("/readyz").json()["status"] == "ready"
        assert client.post("/v1/restore", json={"text": "x"}).status_code == 200


def test_readyz_reports_a_model_that_failed_to_load():
    def broken_loader(settings):
        raise FileNotFoundError("no model.safetensors in /nowhere; train or download a model")

    with running_app(loader=broken_loader, wait_ready=False) as client:
        wait_until(lambda: client.get("/readyz").json()["status"] != "loading")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "failed",
            "detail": "no model.safetensors in /nowhere; train or download a model",
        }
        restore = client.post("/v1/restore", json={"text": "x"})
        assert restore.status_code == 503
        assert "failed to load: no model.safetensors" in restore.json()["detail"]
        assert client.get("/v1/model").status_code == 503


def test_default_loader_passes_model_dir_backend_and_threads(monkeypatch, tmp_path):
    import rewrite

    seen = {}

    class Restorer:
        @classmethod
        def from_pretrained(cls, path=None, backend="auto", threads=0):
            seen.update(path=path, backend=backend, threads=threads)
            return FakeRestorer()

    monkeypatch.setattr(rewrite, "Restorer", Restorer, raising=False)
    app = create_app(Settings(model_dir=tmp_path, backend="torch", threads=3))
    with TestClient(app) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200)
    assert seen == {"path": tmp_path, "backend": "torch", "threads": 3}


def test_restore_one_text(client, fake):
    text = "Rubio mentioned that 15 individuals were killed."
    response = client.post("/v1/restore", json={"text": text})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "fake-unspin", "version": "test-1"}
    [result] = body["results"]
    assert result["text"] == "Rubio said that 15 people were killed."
    assert result["edits"] == [
        {
            "offset": 6,
            "length": 9,
            "original": "mentioned",
            "replacement": "said",
            "confidence": 0.9,
        },
        {
            "offset": 24,
            "length": 11,
            "original": "individuals",
            "replacement": "people",
            "confidence": 0.8,
        },
    ]
    assert result["spin_ratio"] == pytest.approx(2 / 7)
    assert apply_edits(text, result["edits"]) == result["text"]
    assert fake.calls == [([text], None, False)]  # None: the model's recommended threshold


def test_restore_many_texts_keeps_order(client):
    texts = ["however it ended", "", "nothing to do", "assaults 😀 mentioned"]
    response = client.post("/v1/restore", json={"texts": texts})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["text"] for r in results] == ["but it ended", "", "nothing to do", "attacks 😀 said"]
    for text, result in zip(texts, results):
        assert apply_edits(text, result["edits"]) == result["text"]


def test_offsets_count_code_points_not_utf16_units(client):
    text = "😀👍🏽 東京 mentioned"  # 3 emoji code points (6 UTF-16 units), CJK, then the word
    [result] = client.post("/v1/restore", json={"text": text}).json()["results"]
    [edit] = result["edits"]
    utf16_offset = len(text[: text.index("mentioned")].encode("utf-16-le")) // 2
    assert (edit["offset"], utf16_offset) == (7, 10)
    assert text[edit["offset"] : edit["offset"] + edit["length"]] == "mentioned"


def test_options_reach_the_restorer(client, fake):
    text = "“individuals mentioned” however useless"
    response = client.post(
        "/v1/restore", json={"text": text, "min_confidence": 0.35, "protect_quotes": True}
    )
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["text"] == "“individuals mentioned” however dead"
    assert fake.calls == [([text], 0.35, True)]


def test_model_endpoint_returns_model_info(client):
    response = client.get("/v1/model")
    assert response.status_code == 200
    assert response.json() == {
        "name": "fake-unspin",
        "version": "test-1",
        "parameters": 123,
        "metrics": {"exact_match": 0.5},
        "min_confidence": None,  # the fake has no threshold of its own
    }


def test_model_threshold_and_curve_come_from_the_model_folder(tmp_path):
    from types import SimpleNamespace

    rows = [{"min_confidence": t, "recall": r, "wrongful_per_100_words": w, "edits": 4}
            for t, r, w in ((0.0, 0.2, 1.1), (0.5, 0.15, 0.6))]  # made up
    (tmp_path / "markup_metrics.json").write_text(json.dumps({"source": "x", "files_scored": 2, "curve": rows}))
    fake = FakeRestorer(model_info={"name": "m", "version": "1", "path": str(tmp_path)})
    fake.config = SimpleNamespace(min_confidence=0.5)
    with running_app(fake) as client:
        assert client.get("/v1/model").json()["min_confidence"] == 0.5
        curve = client.get("/v1/model/curve").json()
        (tmp_path / "markup_metrics.json").write_text("{broken")
        broken = client.get("/v1/model/curve")
    assert curve == {"min_confidence": 0.5, "source": "x", "files_scored": 2,
                     "points": [{k: v for k, v in row.items() if k != "edits"} for row in rows]}
    assert broken.status_code == 200 and broken.json()["points"] == []


def test_a_model_never_scored_on_markup_has_an_empty_curve(client):
    assert client.get("/v1/model/curve").json() == {
        "min_confidence": None, "source": None, "files_scored": None, "points": []}


def test_model_hash_stands_in_for_a_missing_version():
    fake = FakeRestorer(model_info={"name": "m", "hash": "abc123"})
    with running_app(fake) as client:
        body = client.post("/v1/restore", json={"text": "x"}).json()
    assert body["model"] == {"name": "m", "version": "abc123"}


def test_dependency_override_replaces_the_restorer():
    app = create_app(Settings(), load_restorer=lambda settings: FakeRestorer())
    other = FakeRestorer(model_info={"name": "override", "version": "2"})
    app.dependency_overrides[get_restorer] = lambda: other
    with TestClient(app) as client:
        body = client.post("/v1/restore", json={"text": "they mentioned"}).json()
    assert body["model"]["name"] == "override"
    assert body["results"][0]["text"] == "they said"
    assert len(other.calls) == 1


def test_review_page_is_served_with_its_assets(client):
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="restore"' in page.text and 'id="confidence"' in page.text
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert kind in response.headers["content-type"]


def test_openapi_documents_the_restore_shape_with_examples(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/restore"]["post"]
    assert {"200", "401", "413", "422", "503", "504"} <= set(operation["responses"])
    components = schema["components"]["schemas"]
    assert components["RestoreRequest"]["examples"][0] == {"text": "Rubio mentioned on Wednesday."}
    assert set(components["EditOut"]["properties"]) == {
        "offset",
        "length",
        "original",
        "replacement",
        "confidence",
    }
    assert components["RestoreResponse"]["examples"][0]["results"][0]["edits"][0]["offset"] == 6
    assert "/healthz" in schema["paths"] and "/readyz" in schema["paths"]


def test_openapi_states_exactly_one_input_strict_types_and_the_configured_limits():
    with running_app(max_text_chars=500, max_batch_texts=8, queue_size=8) as client:
        schema = client.get("/openapi.json").json()
    request = schema["components"]["schemas"]["RestoreRequest"]
    assert request["oneOf"] == [{"required": ["text"]}, {"required": ["texts"]}]
    assert request["additionalProperties"] is False
    fields = request["properties"]
    assert fields["text"] == {**fields["text"], "type": "string", "maxLength": 500}
    assert (fields["texts"]["type"], fields["texts"]["minItems"], fields["texts"]["maxItems"]) == ("array", 1, 8)
    assert fields["texts"]["items"] == {"type": "string", "maxLength": 500}
    assert fields["protect_quotes"]["type"] == "boolean"
    assert {"type": "number", "minimum": 0.0, "maximum": 1.0} in fields["min_confidence"]["anyOf"]
    defaults = create_app(isolated_settings(), load_restorer=lambda _settings: FakeRestorer()).openapi()
    assert defaults["components"]["schemas"]["RestoreRequest"]["properties"]["text"]["maxLength"] == 20_000


def test_openapi_declares_bearer_auth_only_when_an_api_key_is_set():
    open_schema = create_app(isolated_settings(), load_restorer=lambda _settings: FakeRestorer()).openapi()
    assert "securitySchemes" not in open_schema.get("components", {})
    assert all("security" not in op for path in open_schema["paths"].values() for op in path.values())
    keyed = create_app(isolated_settings(api_key="s3cret"), load_restorer=lambda _settings: FakeRestorer()).openapi()
    assert keyed["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert keyed["paths"]["/v1/restore"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in keyed["paths"]["/healthz"]["get"]


def test_unknown_path_and_wrong_method_are_json_errors(client):
    missing = client.get("/v2/restore")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    wrong = client.get("/v1/restore")
    assert wrong.status_code == 405
    assert "detail" in wrong.json()


@pytest.mark.slow  # imports torch and runs the tiny model: seconds, not milliseconds
def test_the_real_restorer_class_with_the_tiny_model(tiny_model_dir):
    """The default loader and rewrite.Restorer's own Edit/Restoration types, end to end.

    The tiny model is random, so this checks wiring (loading, model card, serialisation), not
    what it restores.
    """
    app = create_app(Settings(model_dir=tiny_model_dir))
    texts = ["Rubio mentioned 😀 the talks.", "", "Not less than 15 individuals died."]
    with TestClient(app) as client:
        wait_until(lambda: client.get("/readyz").json()["status"] != "loading", 60)
        assert client.get("/readyz").json()["status"] == "ready"
        info = client.get("/v1/model").json()
        assert info["name"] == tiny_model_dir.name
        assert "path" not in info
        response = client.post("/v1/restore", json={"texts": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": tiny_model_dir.name, "version": info["version"]}
    assert len(body["results"]) == 3
    for text, result in zip(texts, body["results"]):
        assert apply_edits(text, result["edits"]) == result["text"]
    assert body["results"][1] == {"text": "", "edits": [], "spin_ratio": 0.0}
