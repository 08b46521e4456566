"""Limits, malformed input, API key and CORS: every client mistake gets a 4xx that says why."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.service.service_fakes import FakeRestorer, running_app

# --- 413: size limits ----------------------------------------------------------------------


def test_text_at_the_limit_passes_and_one_more_code_point_is_413():
    with running_app(max_text_chars=10) as client:
        emoji = "😀" * 10  # 10 code points, 40 UTF-8 bytes, 20 UTF-16 units: counted as 10
        assert client.post("/v1/restore", json={"text": emoji}).status_code == 200
        response = client.post("/v1/restore", json={"text": emoji + "x"})
    assert response.status_code == 413
    assert response.json()["detail"].startswith("text is 11 characters; the limit is 10")


def test_one_long_text_in_a_list_is_413_and_named():
    with running_app(max_text_chars=5) as client:
        response = client.post("/v1/restore", json={"texts": ["short", "far too long"]})
    assert response.status_code == 413
    assert response.json()["detail"].startswith("texts[1] is 12 characters")


def test_too_many_texts_is_413():
    with running_app(max_batch_texts=3) as client:
        assert client.post("/v1/restore", json={"texts": ["a"] * 3}).status_code == 200
        response = client.post("/v1/restore", json={"texts": ["a"] * 4})
    assert response.status_code == 413
    assert "4 texts sent; the limit is 3" in response.json()["detail"]


def test_body_over_the_limit_is_413_by_content_length():
    fake = FakeRestorer()
    with running_app(fake, max_body_bytes=100) as client:
        response = client.post("/v1/restore", json={"text": "x" * 200})
    assert response.status_code == 413
    assert "over 100 bytes" in response.json()["detail"]
    assert fake.calls == []


def test_streamed_body_over_the_limit_is_413_without_content_length():
    fake = FakeRestorer()

    def chunks():
        yield b'{"text": "'
        for _ in range(20):
            yield b"x" * 10
        yield b'"}'

    with running_app(fake, max_body_bytes=100) as client:
        response = client.post(
            "/v1/restore", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert "over 100 bytes" in response.json()["detail"]
        small = client.post(
            "/v1/restore",
            content=iter([b'{"text": ', b'"mentioned"}']),
            headers={"Content-Type": "application/json"},
        )
        assert small.status_code == 200
    assert len(fake.calls) == 1


# --- 422: malformed input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, 'send exactly one of "text"'),
        ({"text": "a", "texts": ["b"]}, 'send exactly one of "text"'),
        ({"texts": []}, "texts: the list is empty"),
        ({"text": 5}, "text: Input should be a valid string"),
        ({"text": None}, '"text" is null; send a string or leave the field out'),
        ({"texts": None, "text": "a"}, '"texts" is null'),
        ({"texts": "abc"}, "texts: Input should be a valid list"),
        ({"texts": ["ok", 3]}, "texts[1]: Input should be a valid string"),
        ({"text": "x", "min_confidence": 1.5}, "min_confidence: Input should be less than"),
        ({"text": "x", "min_confidence": -0.1}, "min_confidence: Input should be greater than"),
        ({"text": "x", "min_confidence": "high"}, "min_confidence: Input should be a valid number"),
        ({"text": "x", "protect_quotes": "maybe"}, "protect_quotes: Input should be a valid bool"),
        ({"text": "x", "protect_quotes": "yes"}, "protect_quotes: Input should be a valid bool"),
        ({"text": "x", "protect_quotes": 1}, "protect_quotes: Input should be a valid bool"),
        ({"text": "x", "min_confidence": True}, "min_confidence: Input should be a valid number"),
        ({"text": "x", "min_confidence": "0.5"}, "min_confidence: Input should be a valid number"),
        ({"text": "x", "min_confidance": 0.5}, "min_confidance: unknown field"),
        (["text"], "the body must be a JSON object"),
        ("just a string", "the body must be a JSON object"),
    ],
)
def test_malformed_json_bodies_are_422_with_a_reason(client, fake, body, says):
    response = client.post("/v1/restore", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert says in payload["detail"]
    assert payload["errors"] and all({"where", "msg", "type"} <= set(e) for e in payload["errors"])
    assert fake.calls == []


@pytest.mark.parametrize(
    ("raw", "content_type", "says"),
    [
        (b"", "application/json", "the body is empty"),
        (b'{"text": ', "application/json", "the body is not valid JSON at character 9"),
        (b'{"text": "\xff"}', "application/json", "the body is not valid UTF-8 (byte 10)"),
        (b'{"text": "\\ud800 lone"}', "application/json", "text: contains an unpaired surrogate"),
        (b'{"texts": ["ok", "\\udfff"]}', "application/json", "texts[1]: contains an unpaired"),
        (b'{"text": "x", "min_confidence": NaN}', "application/json", "min_confidence: Input should be a finite number"),
        (b'{"text": "x", "min_confidence": Infinity}', "application/json", "min_confidence: Input should be a finite number"),
        (b'{"text": "x"}', "text/plain", "sent with Content-Type: application/json"),
    ],
)
def test_malformed_raw_bodies_are_422_with_a_reason(client, fake, raw, content_type, says):
    response = client.post("/v1/restore", content=raw, headers={"Content-Type": content_type})
    assert response.status_code == 422
    assert says in response.json()["detail"]
    assert fake.calls == []


def test_deeply_nested_json_is_a_client_error(client):
    body = b"[" * 50_000 + b"]" * 50_000
    headers = {"Content-Type": "application/json"}
    response = client.post("/v1/restore", content=body, headers=headers)
    assert response.status_code == 422
    assert "nested too deeply" in response.json()["detail"]


def test_input_error_from_the_restorer_is_422(client):
    response = client.post("/v1/restore", json={"text": "bad \x00 byte"})
    assert response.status_code == 422
    assert response.json() == {"detail": "text contains a NUL character; remove it"}


def test_a_model_failure_is_a_500_with_a_json_detail_and_the_service_survives():
    fake = FakeRestorer(fail=RuntimeError("CUDA exploded at /secret/path"))
    with running_app(fake) as client:
        response = client.post("/v1/restore", json={"text": "x"})
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error; the server log has the details"}
        fake.fail = None
        assert client.post("/v1/restore", json={"text": "x"}).status_code == 200


_json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["text", "texts", "min_confidence", "protect_quotes", "x"]) | st.text(),
        children,
        max_size=4,
    ),
    max_leaves=12,
)


def test_no_client_input_gives_a_500():
    """Random JSON and random bytes: always 200, 413 or 422 with a JSON detail, never a 500."""
    with running_app(max_text_chars=20, max_body_bytes=400) as client:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=_json_values)
        def check_json(body):
            response = client.post(
                "/v1/restore",
                content=json.dumps(body, allow_nan=True),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code in (200, 413, 422), response.text
            if response.status_code == 200:
                assert isinstance(response.json()["results"], list)
            else:
                assert isinstance(response.json()["detail"], str)

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(raw=st.binary(max_size=600))
        def check_bytes(raw):
            response = client.post(
                "/v1/restore", content=raw, headers={"Content-Type": "application/json"}
            )
            assert response.status_code in (200, 413, 422), response.text

        check_json()
        check_bytes()


# --- 401: API key ----------------------------------------------------------------------------


def test_no_api_key_configured_means_open_access(client):
    assert client.post("/v1/restore", json={"text": "x"}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer wrong"}, "wrong API key"),
        ({"Authorization": "Bearer s3cret-but-longer"}, "wrong API key"),
        ({"Authorization": "Basic czNjcmV0"}, "missing API key"),
        ({"Authorization": "s3cret"}, "missing API key"),
    ],
)
def test_api_key_required_when_configured(headers, says):
    fake = FakeRestorer()
    with running_app(fake, api_key="s3cret") as client:
        for request in (
            lambda: client.post("/v1/restore", json={"text": "x"}, headers=headers),
            lambda: client.get("/v1/model", headers=headers),
        ):
            response = request()
            assert response.status_code == 401
            assert says in response.json()["detail"]
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert fake.calls == []


def test_right_api_key_is_accepted_and_probes_stay_open():
    with running_app(api_key="s3cret") as client:
        good = {"Authorization": "Bearer s3cret"}
        assert client.post("/v1/restore", json={"text": "x"}, headers=good).status_code == 200
        assert client.get("/v1/model", headers=good).status_code == 200
        for open_path in ("/healthz", "/readyz", "/"):
            assert client.get(open_path).status_code == 200, open_path


# --- CORS ------------------------------------------------------------------------------------


def _preflight(client, origin):
    return client.options(
        "/v1/restore",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_no_cors_headers_unless_configured(client):
    origin = {"Origin": "https://a.example"}
    response = client.post("/v1/restore", json={"text": "x"}, headers=origin)
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in _preflight(client, "https://a.example").headers


def test_cors_allows_only_the_configured_origins():
    with running_app(cors_origins=["https://a.example"]) as client:
        allowed = _preflight(client, "https://a.example")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://a.example"
        simple = client.post(
            "/v1/restore", json={"text": "x"}, headers={"Origin": "https://a.example"}
        )
        assert simple.headers["access-control-allow-origin"] == "https://a.example"
        other = _preflight(client, "https://evil.example")
        assert "access-control-allow-origin" not in other.headers
