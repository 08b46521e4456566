"""Text the model cannot restore (no English word) costs nothing: the service answers it 200
unchanged without calling the model, and admission counts model work, not characters."""

from __future__ import annotations

import pytest

from rewrite import Restorer
from service.batcher import Batcher
from tests.rewrite.fakes import SwapBackend
from tests.service.service_fakes import CancellableRestorer, running_app

# 4,000 characters each, written for these tests.
FOREIGN = {
    "Japanese": ("東京都は月曜日、新しい政策を発表した。少なくとも十五人が負傷した。\n" * 200)[:4000],
    "Russian": ("Правительство объявило в понедельник о новых мерах. Пострадали 15 человек.\n" * 60)[:4000],
    "emoji": ("😀👩‍👩‍👧 🎉🎉 👍🏽 🇯🇵 2024 — 15 % \n" * 300)[:4000],
}


@pytest.mark.parametrize("language", FOREIGN)
def test_text_without_english_is_answered_unchanged_without_the_model(language):
    backend = SwapBackend()  # a fake model that records every batch it is given
    with running_app(Restorer(backend)) as client:
        client.post("/v1/restore", json={"text": "They mentioned it."})  # the model is used...
        response = client.post("/v1/restore", json={"text": FOREIGN[language]})
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert (result["text"], result["edits"]) == (FOREIGN[language], [])
    assert backend.inputs == ["They mentioned it."]  # ...but never for the foreign text


def test_foreign_text_is_admitted_by_a_slow_busy_model_and_answered_at_once():
    # The fake takes 10 ms a character of model work: 4,000 characters of English would be 40 s.
    fake = CancellableRestorer(seconds_per_char=0.01)
    with running_app(fake, warmup=True, request_timeout_s=5.0, batch_wait_ms=0) as client:
        english = client.post("/v1/restore", json={"text": "they mentioned " * 267})
        foreign = client.post("/v1/restore", json={"texts": list(FOREIGN.values())})
    assert english.status_code == 503  # 4,000 characters of English: 40 s, refused for its cost
    # 12,000 characters counted as English would be 120 s: refused too, or a 504 after 5 s
    assert foreign.status_code == 200


def test_admission_counts_model_work_not_characters():
    batcher = Batcher(timeout_s=10.0, admit_share=0.8)  # 8 s of work may wait
    batcher.throughput.add(1000, 1.0)  # measured: 1,000 characters of English a second
    cjk_in_english = "Tokyo " + "東" * 1000  # 1,006 characters; 3 byte tokens each for the 東
    assert batcher.cost([cjk_in_english]) == 6 + 12 * 1000
    assert batcher.refusal(batcher.cost([cjk_in_english])) is not None  # ~12 s of model work
    assert batcher.refusal(len(cjk_in_english)) is None  # what counting characters said: ~1 s
    assert batcher.cost(["東" * 20_000, "😀" * 5000]) == 0  # never sent to the model
