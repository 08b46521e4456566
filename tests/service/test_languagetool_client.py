"""A real LanguageTool client (``language_tool_python``) against ``unspin serve`` with the shipped
model, started as users start it, on a loopback port. The client must only ever talk to that
server: it downloads nothing (no Java LanguageTool) when given ``remote_server``."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.service.service_fakes import REPO, SAMPLE_ARTICLE, free_port, wait_until

pytestmark = pytest.mark.slow

language_tool_python = pytest.importorskip("language_tool_python")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code != 503
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def server_url():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNSPIN_") or k == "UNSPIN_CACHE"}
    env["PYTHONPATH"] = str(REPO)
    env["UNSPIN_REQUEST_TIMEOUT_S"] = "180"  # whole articles through the spin finder, on a busy machine too
    command = [sys.executable, "-c", "from unspin.cli import main; main()", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url) or server.poll() is not None, timeout_s=300)
        assert server.poll() is None, "unspin serve exited"
        assert httpx.get(url + "/readyz").status_code == 200, httpx.get(url + "/readyz").text
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def tool(server_url, tmp_path, monkeypatch):
    """``LanguageTool("en-US", remote_server=...)``, with every HTTP request it makes recorded and
    its download path pointed at an empty folder that must stay empty."""
    import requests
    from language_tool_python import download_lt

    monkeypatch.setenv("LTP_PATH", str(tmp_path / "ltp"))
    monkeypatch.setattr(download_lt.LocalLanguageTool, "download",
                        lambda self: pytest.fail("language_tool_python tried to download LanguageTool"))
    urls: list[str] = []
    send = requests.Session.send
    monkeypatch.setattr(requests.Session, "send", lambda self, request, **kw: urls.append(request.url) or send(
        self, request, **kw))
    client = language_tool_python.LanguageTool("en-US", remote_server=server_url)
    yield client
    client.close()
    assert urls and all(u.startswith(server_url + "/v2/") for u in urls), urls
    assert not (tmp_path / "ltp").exists()


def restore(url: str, text: str, min_confidence: float | None = None) -> dict:
    body = {"text": text} if min_confidence is None else {"text": text, "min_confidence": min_confidence}
    return httpx.post(url + "/v1/restore", json=body, timeout=120).json()["results"][0]


def test_the_sample_article_gets_matches_on_the_spun_words(tool, server_url):
    article = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    matches = tool.check(article)
    assert matches, "no matches for the sample article"
    found = [(article[m.offset : m.offset + m.error_length], m.replacements[0]) for m in matches]
    assert ("mentioned", "said") in found
    expected = restore(server_url, article)["edits"]  # the model's threshold, as /v2/check uses
    assert found == [(edit["original"], edit["replacement"]) for edit in expected]
    assert [m.offset for m in matches] == [edit["offset"] for edit in expected]
    assert {m.rule_id for m in matches} <= {"UNSPIN_WORD", "UNSPIN_PHRASE", "UNSPIN_INSERTION", "UNSPIN_DELETION"}
    assert {m.rule_issue_type for m in matches} == {"style"}


def test_emoji_and_cjk_before_spun_words_do_not_move_the_matches(tool, server_url):
    # The client turns LanguageTool's UTF-16 offsets back into code points; with code points on
    # the wire every match after 😀, 👍🏽, 𠀋 or 🎉 would land that many characters too far.
    text = ("😀👍🏽 東京 𠀋: U.S. Secretary of State Marco Rubio mentioned on Wednesday that 🎉 not less than "
            "15 individuals had been hurt in the assaults.")
    tool.picky = True  # every edit, as /v1/restore with min_confidence 0
    matches = tool.check(text)
    expected = restore(server_url, text, min_confidence=0.0)
    assert expected["edits"], "the model found nothing to restore in the test text"
    assert [(m.offset, m.error_length, m.replacements[0]) for m in matches] == [
        (e["offset"], e["length"], e["replacement"]) for e in expected["edits"]]
    assert [text[m.offset : m.offset + m.error_length] for m in matches] == [e["original"] for e in expected["edits"]]
    assert tool.correct(text) == expected["text"]


def test_languages_other_than_english_are_refused(server_url):
    response = httpx.post(server_url + "/v2/check", data={"text": "Hallo Welt.", "language": "de-DE"})
    assert response.status_code == 400 and "English only" in response.json()["detail"]
    with pytest.raises(ValueError):  # the client checks the code against /v2/languages first
        language_tool_python.LanguageTool("de-DE", remote_server=server_url)
