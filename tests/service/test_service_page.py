"""The review page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from service.main import create_app
from tests.service.service_fakes import (
    SAMPLE_ARTICLE,
    FakeRestorer,
    apply_edits,
    fake_restore,
    isolated_settings,
    live_server,
)

pytestmark = pytest.mark.slow  # a real browser: a few seconds


@pytest.fixture(scope="module")
def fake_server():
    fake = FakeRestorer()
    with live_server(create_app(isolated_settings(), load_restorer=lambda settings: fake)) as url:
        yield url


# A made-up curve (not measured on anything): recall and wrongful edits per 100 words falling with
# the threshold, as `unspin evaluate --markup` writes them to markup_metrics.json.
CURVE = [{"min_confidence": t, "recall": r, "wrongful_per_100_words": w, "edits": 9}
         for t, r, w in ((0.0, 0.20, 1.2), (0.3, 0.18, 0.9), (0.5, 0.15, 0.6), (0.7, 0.10, 0.3), (0.9, 0.05, 0.1))]


def model_with_a_threshold(folder, min_confidence=0.5) -> FakeRestorer:
    """The fake restorer with a model folder's threshold and markup curve, as the real one has."""
    (folder / "markup_metrics.json").write_text(json.dumps({"source": "made up", "files_scored": 3, "curve": CURVE}))
    fake = FakeRestorer()
    fake.config = SimpleNamespace(min_confidence=min_confidence)
    fake.model_info = {**fake.model_info, "path": str(folder)}
    return fake


@pytest.fixture(scope="module")
def threshold_server(tmp_path_factory):
    fake = model_with_a_threshold(tmp_path_factory.mktemp("model"))
    with live_server(create_app(isolated_settings(), load_restorer=lambda settings: fake)) as url:
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: message.type == "error"
        and not message.text.startswith("Failed to load resource")  # expected 4xx answers
        and errors.append(message.text),
    )
    yield page
    context.close()
    assert errors == [], f"the page logged errors: {errors}"


def restore_in_page(page, url, text):
    page.goto(url + "/")
    page.fill("#source", text)
    page.click("#restore")
    page.wait_for_selector("#result:not([hidden])")


def test_sample_article_edits_are_highlighted_with_tooltips(page, fake_server):
    article = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    expected = fake_restore(article)
    assert len(expected.edits) >= 5, "the sample article should exercise several edits"

    restore_in_page(page, fake_server, article)

    marks = page.locator("#restored mark.edit")
    assert marks.count() == len(expected.edits)
    assert marks.all_inner_texts() == [edit.replacement for edit in expected.edits]
    assert page.locator("#restored").text_content() == expected.text
    total = len(expected.edits)
    assert page.inner_text("#edit-count") == f"{total} of {total} edits shown"

    # Hovering an edit shows the spun original and the confidence.
    first = expected.edits[0]
    marks.first.hover()
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    assert f"Spun original: “{first.original}”" in tooltip.inner_text()
    assert f"Confidence: {first.confidence:.2f}" in tooltip.inner_text()
    page.mouse.move(0, 0)
    tooltip.wait_for(state="hidden")


def test_keyboard_focus_shows_the_tooltip_too(page, fake_server):
    restore_in_page(page, fake_server, "They mentioned it however late.")
    page.locator("#restored mark.edit").nth(1).focus()
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    assert "Spun original: “however”" in tooltip.inner_text()
    assert "Confidence: 0.30" in tooltip.inner_text()
    page.keyboard.press("Escape")
    tooltip.wait_for(state="hidden")


def test_slider_hides_low_confidence_edits_and_copy_takes_what_is_shown(browser, fake_server):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    article = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    expected = fake_restore(article)
    restore_in_page(page, fake_server, article)

    page.focus("#confidence")
    for _ in range(10):  # 10 steps of 0.05
        page.keyboard.press("ArrowRight")
    assert page.inner_text("#confidence-value") == "0.50"

    kept = [edit for edit in expected.edits if edit.confidence >= 0.5]
    assert 0 < len(kept) < len(expected.edits)
    marks = page.locator("#restored mark.edit")
    assert marks.count() == len(kept)
    shown_text = apply_edits(article, kept)
    assert page.locator("#restored").text_content() == shown_text
    assert page.inner_text("#edit-count") == f"{len(kept)} of {len(expected.edits)} edits shown"

    page.click("#copy")
    expect(page.locator("#status")).to_have_text("Copied the restored text.")
    assert page.evaluate("navigator.clipboard.readText()") == shown_text
    context.close()


def test_emoji_and_cjk_offsets_line_up_in_the_page(page, fake_server):
    text = "😀👍🏽 東京 individuals mentioned “ok” 🎉 assaults"
    restore_in_page(page, fake_server, text)
    assert page.locator("#restored").text_content() == "😀👍🏽 東京 people said “ok” 🎉 attacks"
    assert page.locator("#restored mark.edit").all_inner_texts() == ["people", "said", "attacks"]


def test_errors_are_shown_and_the_api_key_field_works(page):
    fake = FakeRestorer()
    app = create_app(isolated_settings(api_key="s3cret"), load_restorer=lambda settings: fake)
    with live_server(app) as url:
        page.goto(url + "/")
        page.fill("#source", "They mentioned it.")
        page.click("#restore")
        error = page.locator("#error")
        error.wait_for(state="visible")
        assert "401" in error.inner_text() and "missing API key" in error.inner_text()

        page.click("details summary")
        page.fill("#api-key", "s3cret")
        page.click("#restore")
        page.wait_for_selector("#restored mark.edit")
        assert error.is_hidden()
        assert page.locator("#restored").text_content() == "They said it."


def test_empty_input_asks_for_text_without_calling_the_server(page, fake_server):
    page.goto(fake_server + "/")
    page.click("#restore")
    assert page.locator("#error").inner_text() == "Paste some text first."
    assert page.locator("#result").is_hidden()


def test_the_slider_opens_at_the_models_threshold_and_slides_down_to_the_rest(page, threshold_server):
    article = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    every = fake_restore(article).edits
    kept = [edit for edit in every if edit.confidence >= 0.5]
    assert 0 < len(kept) < len(every)

    restore_in_page(page, threshold_server, article)
    assert page.input_value("#confidence") == "0.5"
    assert page.inner_text("#confidence-value") == "0.50"
    assert page.inner_text("#model-threshold") == "model's threshold 0.50"
    assert page.locator("#restored mark.edit").count() == len(kept)
    assert page.locator("#restored").text_content() == apply_edits(article, kept)
    assert page.inner_text("#edit-count") == f"{len(kept)} of {len(every)} edits shown"

    page.focus("#confidence")
    for _ in range(10):  # down to 0.00
        page.keyboard.press("ArrowLeft")
    assert page.inner_text("#confidence-value") == "0.00"
    assert page.inner_text("#edit-count") == f"{len(every)} of {len(every)} edits shown"
    assert page.locator("#restored").text_content() == fake_restore(article).text
    assert page.inner_text("#model-threshold") == "model's threshold 0.50"  # still says where the model stands


def test_the_curve_shows_where_the_slider_sits(page, threshold_server):
    restore_in_page(page, threshold_server, "They mentioned it however late.")
    figure = page.locator("#curve")
    expect(figure).to_be_visible()
    assert page.locator("#curve-plot circle.curve-point").count() == len(CURVE)
    marker = page.locator("#curve-marker")
    ring = page.locator("#curve-plot circle.model-point")
    assert marker.get_attribute("data-min-confidence") == "0.5"
    assert marker.get_attribute("cx") == ring.get_attribute("cx")  # at the model's threshold
    caption = page.inner_text("#curve-caption")
    assert "At 0.50 (scored at 0.50) on 3 annotated files" in caption and "15.0% of the spun places" in caption
    assert "0.60 wrongful edits per 100 words" in caption

    page.focus("#confidence")
    page.keyboard.press("ArrowLeft")  # 0.45: between the scored 0.3 and 0.5
    assert marker.get_attribute("data-min-confidence") == "0.3"
    assert float(marker.get_attribute("cx")) > float(ring.get_attribute("cx"))  # more wrongful edits: right
    assert float(marker.get_attribute("cy")) < float(ring.get_attribute("cy"))  # more recall: higher
    assert "At 0.45 (scored at 0.30)" in page.inner_text("#curve-caption")


def test_a_model_without_a_threshold_or_curve_opens_at_zero(page, fake_server):
    restore_in_page(page, fake_server, "They mentioned it however late.")
    assert page.inner_text("#confidence-value") == "0.00"
    assert page.locator("#model-threshold").is_hidden()
    assert page.locator("#curve").is_hidden()


def test_behind_an_api_key_the_threshold_comes_with_the_first_restore(page, tmp_path):
    fake = model_with_a_threshold(tmp_path, min_confidence=0.62)
    app = create_app(isolated_settings(api_key="s3cret"), load_restorer=lambda settings: fake)
    with live_server(app) as url:
        page.goto(url + "/")  # the curve's request gets a 401: no key yet
        page.click("details summary")
        page.fill("#api-key", "s3cret")
        page.fill("#source", "They mentioned it however late.")
        page.click("#restore")
        page.wait_for_selector("#result:not([hidden])")
        assert page.inner_text("#model-threshold") == "model's threshold 0.62"
        assert page.input_value("#confidence") == "0.62"  # off the 0.05 grid: the slider steps by 0.01
        assert page.inner_text("#edit-count") == "1 of 2 edits shown"  # said (0.9) yes, but (0.3) no
