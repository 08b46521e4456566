"""Micro-batching, the bounded queue (503) and the time limit (504)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rewrite.errors import InputError
from service.batcher import Batcher, NotRunning, QueueFull, Throughput, Timeout
from tests.service.service_fakes import FakeRestorer, run_batcher, running_app, wait_until

# --- through the app -------------------------------------------------------------------------


def test_concurrent_requests_are_served_by_fewer_model_calls():
    gate = threading.Event()
    fake = FakeRestorer(gate=gate)
    # batch_seconds: the gate makes the first call look slow; no cap on the call size here
    with running_app(fake, batch_wait_ms=5, batch_seconds=600) as client, ThreadPoolExecutor(8) as pool:
        batcher = client.app.state.batcher

        def post(i):
            return client.post("/v1/restore", json={"text": f"they mentioned {i}"})

        first = pool.submit(post, 0)
        wait_until(fake.started.is_set)  # the model is busy with request 0
        rest = [pool.submit(post, i) for i in range(1, 8)]
        wait_until(lambda: batcher.pending_texts == 7)  # 7 requests wait meanwhile
        gate.set()
        responses = [first.result()] + [future.result() for future in rest]

    assert [r.status_code for r in responses] == [200] * 8
    restored = [r.json()["results"][0]["text"] for r in responses]
    assert restored == [f"they said {i}" for i in range(8)]
    assert len(fake.calls) == 2  # 8 requests, 2 restore_many calls
    assert fake.calls[0][0] == ["they mentioned 0"]
    assert sorted(fake.calls[1][0]) == [f"they mentioned {i}" for i in range(1, 8)]


def test_requests_with_different_options_are_not_mixed():
    gate = threading.Event()
    fake = FakeRestorer(gate=gate)
    with running_app(fake) as client, ThreadPoolExecutor(4) as pool:
        batcher = client.app.state.batcher

        def post(text, **options):
            return client.post("/v1/restore", json={"text": text, **options})

        first = pool.submit(post, "warm up")
        wait_until(fake.started.is_set)
        plain = pool.submit(post, "however a")
        strict = pool.submit(post, "however b", min_confidence=0.5)
        wait_until(lambda: batcher.pending_texts == 2)
        gate.set()
        assert first.result().status_code == 200
        assert plain.result().json()["results"][0]["text"] == "but a"
        assert strict.result().json()["results"][0]["text"] == "however b"  # 0.3 < 0.5
    assert sorted((call[0], call[1]) for call in fake.calls[1:]) == [
        (["however a"], None),  # None: the model's recommended threshold
        (["however b"], 0.5),
    ]


def test_full_queue_is_503_with_retry_after():
    gate = threading.Event()
    fake = FakeRestorer(gate=gate)
    settings = {"queue_size": 3, "max_batch_texts": 2, "retry_after_s": 2}
    with running_app(fake, **settings) as client, ThreadPoolExecutor(4) as pool:
        batcher = client.app.state.batcher

        def post(body):
            return client.post("/v1/restore", json=body)

        busy = pool.submit(post, {"text": "a"})
        wait_until(fake.started.is_set)
        queued = pool.submit(post, {"texts": ["b", "c"]})
        wait_until(lambda: batcher.pending_texts == 2)

        full = post({"texts": ["d", "e"]})  # 2 waiting + 2 > 3
        assert full.status_code == 503
        assert full.headers["Retry-After"] == "2"
        assert "busy" in full.json()["detail"]

        fits = pool.submit(post, {"text": "f"})  # 2 waiting + 1 = 3 fits
        wait_until(lambda: batcher.pending_texts == 3)
        gate.set()
        assert [f.result().status_code for f in (busy, queued, fits)] == [200, 200, 200]
    assert sum(len(call[0]) for call in fake.calls) == 4  # the rejected texts never ran


def test_slow_restoration_is_504_and_the_job_queued_behind_it_is_shed():
    gate = threading.Event()
    fake = FakeRestorer(gate=gate)
    with running_app(fake, request_timeout_s=0.3) as client, ThreadPoolExecutor(2) as pool:
        batcher = client.app.state.batcher
        stuck = pool.submit(client.post, "/v1/restore", json={"text": "first"})
        wait_until(fake.started.is_set)
        waiting = client.post("/v1/restore", json={"text": "second"})
        # "first" has run over half the admitted wait: the model is slow, and "second" would
        # wait into a 504 behind it, so it is answered 503 before its time limit.
        assert waiting.status_code == 503 and waiting.headers["Retry-After"]
        stuck_response = stuck.result()
        assert stuck_response.status_code == 504
        assert "longer than 0.3 s" in stuck_response.json()["detail"]
        assert batcher.pending_texts == 0  # the shed job left the queue
        gate.set()
        wait_until(lambda: not batcher.busy)
        # "first" took over the limit for 5 characters: that is the model's speed now, so a
        # request that could not finish in time is refused at once rather than run into a 504.
        refused = client.post("/v1/restore", json={"text": "third"})
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        batcher.throughput = Throughput()  # the speed measured again (old samples expire)
        assert client.post("/v1/restore", json={"text": "third"}).status_code == 200
    assert [call[0] for call in fake.calls] == [["first"], ["third"]]  # "second" never ran


# --- the Batcher on its own ------------------------------------------------------------------


def test_batches_are_capped_at_max_batch_texts():
    fake = FakeRestorer()

    async def scenario(batcher):
        jobs = [batcher.submit(fake, [f"t{i}"]) for i in range(5)]
        return await asyncio.gather(*jobs)

    results = run_batcher(scenario, wait_ms=20, max_batch_texts=2)
    assert [r[0].text for r in results] == [f"t{i}" for i in range(5)]
    assert [len(call[0]) for call in fake.calls] == [2, 2, 1]


@pytest.mark.timing
def test_a_lone_request_waits_only_wait_ms():
    fake = FakeRestorer()

    async def scenario(batcher):
        started = time.monotonic()
        await batcher.submit(fake, ["x"])
        return time.monotonic() - started

    elapsed = run_batcher(scenario, wait_ms=30, timeout_s=30)
    assert 0.025 <= elapsed < 30 / 4  # gathered for wait_ms, not held until a batch fills or times out


def test_one_bad_text_does_not_fail_its_batch_mates():
    fake = FakeRestorer()

    async def scenario(batcher):
        jobs = [batcher.submit(fake, [text]) for text in ("ok mentioned", "bad \x00", "fine")]
        return await asyncio.gather(*jobs, return_exceptions=True)

    good, bad, fine = run_batcher(scenario, wait_ms=20)
    assert good[0].text == "ok said"
    assert isinstance(bad, InputError)
    assert fine[0].text == "fine"
    assert [len(call[0]) for call in fake.calls] == [3, 1, 1, 1]  # the batch, then one by one


def test_queue_full_and_timeout_errors():
    gate = threading.Event()
    fake = FakeRestorer(gate=gate)

    async def scenario(batcher):
        busy = asyncio.create_task(batcher.submit(fake, ["a"]))
        while not fake.started.is_set():
            await asyncio.sleep(0.005)
        queued = asyncio.create_task(batcher.submit(fake, ["b", "c"]))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await batcher.submit(fake, ["d"])
        with pytest.raises(Timeout):
            await asyncio.gather(busy, queued)
        gate.set()

    run_batcher(scenario, queue_size=2, timeout_s=0.2, wait_ms=0)


def test_wrong_result_count_from_the_restorer_is_an_error_not_a_hang():
    class Short(FakeRestorer):
        def restore_many(self, texts, min_confidence=0.0, protect_quotes=False):
            return super().restore_many(texts, min_confidence, protect_quotes)[:-1]

    async def scenario(batcher):
        with pytest.raises(RuntimeError, match="returned 1 results for 2 texts"):
            await batcher.submit(Short(), ["a", "b"])

    run_batcher(scenario)


def test_stopped_batcher_refuses_and_fails_waiting_jobs():
    gate = threading.Event()
    fake = FakeRestorer(gate=gate)

    async def main():
        batcher = Batcher(wait_ms=0)
        with pytest.raises(NotRunning):
            await batcher.submit(fake, ["x"])
        await batcher.start()
        busy = asyncio.create_task(batcher.submit(fake, ["a"]))
        while not fake.started.is_set():
            await asyncio.sleep(0.005)
        waiting = asyncio.create_task(batcher.submit(fake, ["b"]))
        await asyncio.sleep(0.01)
        await batcher.stop()
        gate.set()
        for job in (busy, waiting):
            with pytest.raises(NotRunning, match="shutting down"):
                await job

    asyncio.run(main())
