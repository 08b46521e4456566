"""LanguageTool's API (/v2/check, /v2/languages) over the fake restorer: the answer's shape, UTF-16
offsets, languages, the data form, limits, API key and load shedding as for /v1/restore."""

from __future__ import annotations

import json
import threading

import pytest

from service.languagetool import Document, document_from_data, rule_id, utf16_index
from tests.service.service_fakes import CancellableRestorer, FakeRestorer, gated_loader, running_app


def check(client, text=None, language="en-US", **fields):
    form = {"language": language, **fields}
    if text is not None:
        form["text"] = text
    return client.post("/v2/check", data=form)


def utf16_slice(text: str, offset: int, length: int) -> str:
    """What a LanguageTool client finds at (offset, length) counted in UTF-16 units."""
    units = text.encode("utf-16-le")
    return units[2 * offset : 2 * (offset + length)].decode("utf-16-le")


def test_each_edit_is_a_match_shaped_like_languagetools(client):
    text = "Rubio mentioned the struggle. It ended."
    answer = check(client, text).json()
    assert answer["software"]["name"] == "unspin" and answer["software"]["apiVersion"] == 1
    assert answer["language"] == {"name": "English (US)", "code": "en-US",
                                  "detectedLanguage": {"name": "English (US)", "code": "en-US"}}
    said, war = answer["matches"]
    assert said == {
        "message": "“mentioned” looks like a spinner's synonym for “said” (confidence 0.90).",
        "shortMessage": "Spun word",
        "offset": 6,
        "length": 9,
        "replacements": [{"value": "said"}],
        "context": {"text": text, "offset": 6, "length": 9},
        "sentence": "Rubio mentioned the struggle.",
        "type": {"typeName": "Other"},
        "rule": {"id": "UNSPIN_WORD", "description": "A word an article spinner swapped for a synonym",
                 "issueType": "style", "category": {"id": "UNSPIN", "name": "Spun wording (unspin)"}},
        "confidence": 0.9,
        "ignoreForIncompleteSentence": False,
        "contextForSureMatch": 0,
    }
    assert (war["offset"], war["length"], war["replacements"]) == (20, 8, [{"value": "war"}])


def test_offsets_count_utf16_units_past_emoji_and_cjk(client):
    text = "😀👍🏽 東京 individuals 𠀋 mentioned “ok” 🎉 assaults"
    matches = check(client, text).json()["matches"]
    # The code-point offsets /v1/restore gives would land two units early per emoji before.
    assert [utf16_slice(text, m["offset"], m["length"]) for m in matches] == ["individuals", "mentioned", "assaults"]
    assert [m["offset"] for m in matches] == [10, 25, 43]  # code points 7, 21, 38
    for match in matches:
        context = match["context"]
        assert utf16_slice(context["text"], context["offset"], context["length"]) == utf16_slice(
            text, match["offset"], match["length"])


def test_utf16_index_counts_astral_code_points_twice():
    assert [utf16_index("ab")(i) for i in range(3)] == [0, 1, 2]
    index = utf16_index("😀 东 𠀋x")  # U+1F600 and U+2000B are astral; U+4E1C is not
    assert [index(i) for i in range(7)] == [0, 2, 3, 4, 5, 7, 8]


def test_context_is_cut_with_dots_and_newlines_become_spaces(client):
    text = "x" * 60 + "\nThey mentioned it.\n" + "y" * 60
    [match] = check(client, text).json()["matches"]
    context = match["context"]
    assert context["text"].startswith("...") and context["text"].endswith("...")
    assert "\n" not in context["text"]
    assert context["text"][context["offset"] : context["offset"] + context["length"]] == "mentioned"
    assert match["sentence"] == "They mentioned it."


@pytest.mark.parametrize(
    ("original", "replacement", "rule"),
    [("mentioned", "said", "UNSPIN_WORD"), ("isn't", "is not", "UNSPIN_PHRASE"),
     ("not less than", "at least", "UNSPIN_PHRASE"), ("in a single day", "overnight", "UNSPIN_PHRASE"),
     ("", "the", "UNSPIN_INSERTION"), ("very ", "", "UNSPIN_DELETION")],
)
def test_a_rule_per_shape_of_edit(original, replacement, rule):
    assert rule_id(original, replacement) == rule


@pytest.mark.parametrize(
    ("language", "answered"),
    [("en", "en"), ("en-US", "en-US"), ("en-GB", "en-GB"), ("EN-us", "en-US"), ("en-AU", "en-AU"), ("auto", "en")],
)
def test_english_in_any_variant_is_accepted(client, language, answered):
    response = check(client, "They mentioned it.", language=language)
    assert response.status_code == 200
    assert response.json()["language"]["code"] == answered
    assert len(response.json()["matches"]) == 1


@pytest.mark.parametrize("language", ["de", "fr-FR", "english", "", "en-XX"])
def test_other_languages_are_a_clear_400(client, fake, language):
    response = check(client, "Sie erwähnte es.", language=language)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert f"language {language!r} is not supported" in detail and "en-US" in detail and "auto" in detail
    assert fake.calls == []


def test_languages_lists_english_variants_as_languagetool_does(client):
    answer = client.get("/v2/languages").json()
    assert {"name": "English (US)", "code": "en", "longCode": "en-US"} in answer
    assert {entry["code"] for entry in answer} == {"en"}


@pytest.mark.parametrize(
    ("form", "says"),
    [({"language": "en-US"}, "send exactly one of the form fields text"),
     ({"language": "en-US", "text": "a", "data": "{}"}, "send exactly one of the form fields text"),
     ({"text": "They mentioned it."}, "missing the form field language"),
     ({"language": "en-US", "data": "[1]"}, "data must be JSON such as"),
     ({"language": "en-US", "data": "{not json"}, "data must be JSON such as"),
     ({"language": "en-US", "data": '{"annotation": [{"text": 3}]}'}, "data.annotation[0] must have"),
     ({"language": "en-US", "text": "a", "level": "strict"}, "level is 'strict'; send one of default, picky"),
     ({"language": "en-US", "text": "a", "enabledOnly": "yes"}, "enabledOnly is 'yes'; send one of false, true")],
)
def test_malformed_forms_are_400_with_a_reason(client, fake, form, says):
    response = client.post("/v2/check", data=form)
    assert response.status_code == 400
    assert says in response.json()["detail"]
    assert fake.calls == []


def test_a_body_that_is_not_a_form_is_415(client):
    response = client.post("/v2/check", json={"text": "They mentioned it.", "language": "en-US"})
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["detail"]


def test_fields_in_the_query_string_work_too(client):
    response = client.post("/v2/check?language=en-GB&text=They%20mentioned%20it.")
    assert response.status_code == 200
    assert [m["replacements"] for m in response.json()["matches"]] == [[{"value": "said"}]]


def test_data_annotations_get_offsets_in_the_sent_markup(client):
    annotation = [{"text": "😀 A "}, {"markup": "<b>"}, {"text": "individuals mentioned"},
                  {"markup": "</b>", "interpretAs": ""}, {"markup": "<p>", "interpretAs": "\n\n"},
                  {"text": "assaults"}]
    full = "".join(part.get("text", part.get("markup")) for part in annotation)
    answer = check(client, None, data=json.dumps({"annotation": annotation})).json()
    assert [utf16_slice(full, m["offset"], m["length"]) for m in answer["matches"]] == [
        "individuals", "mentioned", "assaults"]


def test_an_edit_over_markup_is_not_reported():
    document = document_from_data(json.dumps({"annotation": [{"text": "A "}, {"markup": "<b>"}, {"text": "b"}]}))
    assert document == Document("A <b>b", "A b", (0, 1, 5, 6))
    assert document.span(2, 1) == (5, 1)  # "b"
    assert document.span(0, 3) is None  # "A b" runs over "<b>"
    assert document.span(3, 0) == (6, 0)  # an insertion at the end


def test_the_models_threshold_by_default_and_every_edit_when_picky(client, fake):
    check(client, "They mentioned it.")
    check(client, "They mentioned it.", level="picky")
    assert [min_confidence for _texts, min_confidence, _quotes in fake.calls] == [None, 0.0]


def test_rules_can_be_disabled_or_enabled_alone(client):
    text = "They mentioned the assaults."
    assert check(client, text, disabledRules="UNSPIN_WORD").json()["matches"] == []
    assert len(check(client, text, enabledRules="UNSPIN_PHRASE", enabledOnly="true").json()["matches"]) == 0
    assert len(check(client, text, enabledRules="UNSPIN_WORD", enabledOnly="true").json()["matches"]) == 2


def test_a_text_over_the_limit_is_413_like_v1():
    with running_app(max_text_chars=100) as client:
        assert check(client, "a" * 100).status_code == 200
        response = check(client, "a" * 101)
    assert response.status_code == 413
    assert "the limit is 100 (UNSPIN_MAX_TEXT_CHARS)" in response.json()["detail"]


def test_the_api_key_as_a_bearer_header_or_languagetools_apikey_field():
    key = "k" * 24
    with running_app(api_key=key) as client:
        missing = check(client, "They mentioned it.")
        wrong = check(client, "They mentioned it.", apiKey="nope")
        by_field = check(client, "They mentioned it.", apiKey=key)
        by_header = client.post("/v2/check", data={"text": "x", "language": "en"},
                                headers={"Authorization": f"Bearer {key}"})
        languages = client.get("/v2/languages")
    assert missing.status_code == 401 and "form field apiKey" in missing.json()["detail"]
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong API key"
    assert by_field.status_code == 200 and by_header.status_code == 200
    assert languages.status_code == 200  # like /healthz: nothing to protect


def test_while_the_model_loads_it_is_503_with_retry_after():
    gate = threading.Event()
    with running_app(loader=gated_loader(gate), wait_ready=False) as client:
        response = check(client, "They mentioned it.")
        gate.set()
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert "still loading" in response.json()["detail"]


def test_overload_is_503_with_retry_after_like_v1():
    fake = CancellableRestorer(seconds_per_char=0.001)
    with running_app(fake, request_timeout_s=2.0, batch_wait_ms=0, retry_after_s=1) as client:
        assert check(client, "a" * 300).status_code == 200  # times the model: ~1,000 chars/s
        response = check(client, "b" * 3000)  # ~3 s of work > the 2 s limit
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    assert "send fewer or shorter texts" in response.json()["detail"]


def test_the_openapi_document_describes_the_form():
    with running_app(FakeRestorer()) as client:
        operation = client.get("/openapi.json").json()["paths"]["/v2/check"]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"text", "language", "level", "apiKey"} <= set(form["properties"])
    assert form["properties"]["text"]["maxLength"] == 20_000  # the app's own limit
    assert "annotation" in operation["description"]  # data, described
    assert {"400", "401", "413", "503"} <= set(operation["responses"])


def test_the_finders_alternatives_follow_the_replacement():
    from rewrite.edits import Edit
    from service.languagetool import to_matches

    text = "Rubio mentioned it."
    edit = Edit(6, 9, "mentioned", "said", 0.9, alternatives=({"value": "noted", "score": -1.0},
                                                               {"value": "said", "score": -2.0}))
    [match] = to_matches(Document(text, text), [edit])
    assert [r["value"] if isinstance(r, dict) else r.value for r in match.replacements] == ["said", "noted"]
