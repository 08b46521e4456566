"""The review page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

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
