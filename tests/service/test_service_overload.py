"""Under load: work nobody waits for is stopped, work that cannot finish in time is refused at
once (503 + Retry-After), a client that hangs up frees the model, and SIGTERM ends a busy server."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from rewrite import Restorer
from rewrite.errors import Cancelled
from service import routes
from service.batcher import Batcher, Options, Overloaded, Throughput, Timeout, accepts_cancel
from service.main import create_app
from service.schemas import RestoreRequest
from tests.rewrite.fakes import FunctionBackend
from tests.service.service_fakes import (
    CancellableRestorer,
    FakeRestorer,
    isolated_settings,
    live_server,
    run_batcher,
    running_app,
    serve_subprocess,
    server_ready,
    wait_until,
)


async def _until(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)


# --- cancellation ----------------------------------------------------------------------------


@pytest.mark.timing
def test_after_a_timeout_the_model_call_stops_and_the_model_is_free_again():
    heavy_s = 10.0
    fake = CancellableRestorer(seconds_per_char=heavy_s / 1000)  # "heavy": 1,000 characters = 10 s

    async def scenario(batcher):
        with pytest.raises(Timeout):
            await batcher.submit(fake, ["x" * 1000])
        timed_out = time.monotonic()
        await _until(lambda: not batcher.busy, timeout_s=heavy_s)
        freed = time.monotonic() - timed_out
        # 14 characters: 0.14 s of work, given the time a busy machine may need (not the 0.3 s)
        result = await batcher.submit(fake, ["they mentioned"], timeout_s=heavy_s)
        return freed, time.monotonic() - timed_out, result

    freed, answered, [result] = run_batcher(scenario, timeout_s=0.3, wait_ms=0)
    # Stopped, not run to its end: a bound from the call's own length, not an idle machine's speed.
    assert freed < heavy_s / 4 and answered < heavy_s / 4
    assert result.text == "they said"
    assert fake.cancelled == 1


def test_a_client_that_goes_away_stops_its_model_call():
    fake = CancellableRestorer(seconds_per_char=0.01)

    async def scenario(batcher):
        job = asyncio.create_task(batcher.submit(fake, ["x" * 1000]))
        await _until(fake.running.is_set)
        job.cancel()  # what the route does when the client disconnects
        await _until(lambda: not batcher.busy, timeout_s=1)
        return batcher.cancelled_calls

    assert run_batcher(scenario, timeout_s=30, wait_ms=0) == 1
    assert fake.cancelled == 1


def test_a_call_goes_on_while_one_of_its_jobs_is_still_waited_for():
    fake = CancellableRestorer(seconds_per_char=0.002)

    async def scenario(batcher):
        gone = asyncio.create_task(batcher.submit(fake, ["a" * 100]))
        kept = asyncio.create_task(batcher.submit(fake, ["they mentioned " * 10]))
        await _until(fake.running.is_set)
        gone.cancel()
        return await kept

    [result] = run_batcher(scenario, timeout_s=30, wait_ms=20)
    assert result.text.startswith("they said")
    assert fake.cancelled == 0 and len(fake.calls) == 1


def test_a_restorer_without_cancel_still_works_and_is_not_passed_one():
    fake = FakeRestorer()
    assert not accepts_cancel(fake) and accepts_cancel(CancellableRestorer())
    assert accepts_cancel(Restorer(FunctionBackend(str)))

    async def scenario(batcher):
        return await batcher.submit(fake, ["mentioned"])

    assert run_batcher(scenario)[0].text == "said"


def test_the_restorer_stops_before_its_next_model_batch_when_cancelled():
    cancel = threading.Event()
    seen = []

    def rewrite(sentence):
        seen.append(sentence)
        cancel.set()  # a request goes away while the first batch runs
        return sentence

    restorer = Restorer(FunctionBackend(rewrite))
    texts = [f"Sentence number {k} is here." for k in range(100)]
    with pytest.raises(Cancelled, match="after 32 of 100 sentences"):
        restorer.restore_many(texts, cancel=cancel)
    assert len(seen) == 32  # one batch (batch_size 32), not 100 sentences
    assert len(restorer.restore_many(texts[:3], cancel=threading.Event())) == 3


# --- admission: shed early instead of timing out ---------------------------------------------


def test_throughput_is_characters_over_seconds_of_recent_calls():
    throughput = Throughput(window=2)
    assert throughput.chars_per_s is None
    throughput.add(100, 1.0)
    throughput.add(300, 1.0)
    assert throughput.chars_per_s == 200
    throughput.add(1000, 1.0)  # the oldest call drops out
    assert throughput.chars_per_s == 650
    throughput.add(0, 0.0)  # ignored
    assert throughput.chars_per_s == 650
    assert not throughput.stale
    throughput.max_age_s = 0.0  # the newest sample is old: the speed may have changed since
    assert throughput.stale and throughput.chars_per_s == 650


def test_a_call_that_ran_into_the_limit_still_tells_the_speed():
    fake = CancellableRestorer(seconds_per_char=0.01)  # 100 characters a second

    async def scenario(batcher):
        with pytest.raises(Timeout):
            await batcher.submit(fake, ["x" * 1000])  # 10 s of work, stopped after 0.5 s
        # the stopped call is over once the batcher has taken its outcome (after the thread ends)
        await _until(lambda: not batcher.busy and batcher._call is None)
        speed = batcher.throughput.chars_per_s  # at most 1,000 / 0.5
        with pytest.raises(Overloaded):
            await batcher.submit(fake, ["y" * 1000])  # refused at once, not another 504
        return speed, batcher.shed_jobs

    speed, shed = run_batcher(scenario, timeout_s=0.5, wait_ms=0)
    assert speed is not None and speed <= 2000  # at most 1,000 characters in the 0.5 s it ran
    assert shed == 0  # refused on arrival (Overloaded, not a Timeout), never queued


@pytest.mark.timing
def test_work_that_cannot_finish_in_time_is_refused_at_once_with_retry_after():
    fake = CancellableRestorer(seconds_per_char=0.001)  # 1,000 characters a second

    async def scenario(batcher):
        await batcher.submit(fake, ["a" * 200])  # times the model: ~1,000 chars/s
        running = asyncio.create_task(batcher.submit(fake, ["b" * 5000]))  # ~5 s of work
        await _until(fake.running.is_set)
        started = time.monotonic()
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(fake, ["c" * 4000])  # 5 s + 4 s > 0.8 x 10 s
        waited = time.monotonic() - started
        shed = batcher.shed_jobs
        fits = await batcher.submit(fake, ["they mentioned"])  # 5 s + 0.01 s fits
        await running
        with pytest.raises(Overloaded) as too_big:
            await batcher.submit(fake, ["d" * 9000])  # alone 9 s > 8 s
        return refused.value, (waited, shed), fits, too_big.value

    # (a busy machine makes the measured speed lower: up to 1.5x here still passes)
    refused, (waited, shed), fits, too_big = run_batcher(scenario, timeout_s=10.0, wait_ms=0, retry_after_s=1)
    assert shed == 0 and waited < 10.0 / 4  # refused on arrival, not queued and shed later
    assert "busy" in str(refused) and 1 <= refused.retry_after_s <= 10
    assert fits[0].text == "they said"
    assert "send fewer or shorter texts" in str(too_big)


@pytest.mark.timing
def test_a_call_running_long_before_any_was_timed_bounds_the_speed():
    fake = CancellableRestorer(seconds_per_char=0.01)  # 100 characters a second

    async def scenario(batcher):
        first = asyncio.create_task(batcher.submit(fake, ["x" * 600]))  # 6 s of work
        await _until(fake.running.is_set)
        assert batcher.estimated_wait_s(1500) is None  # nothing known yet: admitted
        await asyncio.sleep(4.2)  # running for over half the budget: under 600 chars / 4.2 s
        started = time.monotonic()
        with pytest.raises(Overloaded):
            await batcher.submit(fake, ["y" * 1500])  # would need over 10 s
        waited = time.monotonic() - started
        await first
        return waited, batcher.shed_jobs

    waited, shed = run_batcher(scenario, timeout_s=10.0, wait_ms=0)
    assert shed == 0 and waited < 10.0 / 4  # refused on arrival, not queued and shed later


def test_queued_jobs_that_a_slower_model_cannot_finish_in_time_get_503_not_504():
    fake = CancellableRestorer(seconds_per_char=0.001)  # 1,000 characters a second

    async def scenario(batcher):
        await batcher.submit(fake, ["a" * 200])  # times the model
        fake.seconds_per_char = 0.004  # the machine gets 4x slower after that
        outcomes = await asyncio.gather(
            *(batcher.submit(fake, [f"{k} " + "b" * 148]) for k in range(8)), return_exceptions=True
        )  # 1,200 characters: 1.2 s at the measured speed (admitted), 4.8 s at the real one
        return outcomes, batcher.shed_jobs

    outcomes, shed = run_batcher(scenario, timeout_s=2.0, wait_ms=0, batch_seconds=0.2, check_s=0.05)
    kinds = [type(outcome).__name__ for outcome in outcomes]
    assert "Timeout" not in kinds  # none waits into a 504
    assert kinds[0] == "list" and "Overloaded" in kinds and shed == kinds.count("Overloaded")
    assert all(isinstance(outcome, (list, Overloaded)) for outcome in outcomes)
    assert all(outcome.retry_after_s >= 1 for outcome in outcomes if isinstance(outcome, Overloaded))


def test_a_job_admitted_near_the_edge_is_not_shed_for_a_small_dip_in_speed():
    fake = CancellableRestorer(seconds_per_char=0.001)

    async def scenario(batcher):
        await batcher.submit(fake, ["a" * 500])  # times the model: ~1,000 characters a second
        running = asyncio.create_task(batcher.submit(fake, ["b" * 2000]))
        await _until(fake.running.is_set)
        rate = batcher.speed()
        ahead = batcher.estimated_wait_s(0)
        size = int((0.78 * batcher.timeout_s - ahead) * rate)  # admitted just inside the budget
        queued = asyncio.create_task(batcher.submit(fake, ["c" * size]))
        await asyncio.sleep(0.05)
        assert not queued.done()  # admitted
        batcher.throughput.add(int(rate), 1.15)  # one slower call: the speed dips ~5%
        batcher._shed_late()
        kept = not queued.done()
        queued.cancel()
        await asyncio.gather(queued, running, return_exceptions=True)
        return kept, batcher.shed_jobs

    kept, shed = run_batcher(scenario, timeout_s=10.0, wait_ms=0, check_s=0.05)
    assert kept and shed == 0  # before: shed at once, a 503 seconds after it was admitted


def test_a_running_call_long_overdue_sheds_the_jobs_queued_behind_it_while_it_runs():
    fake = CancellableRestorer(seconds_per_char=0.001)

    async def scenario(batcher):
        await batcher.submit(fake, ["a" * 200])  # times the model: ~1,000 characters a second
        fake.seconds_per_char = 0.02  # now 50 a second: the next call takes 2 s, not 0.1 s
        running = asyncio.create_task(batcher.submit(fake, ["x" * 100], timeout_s=30))  # ends, however busy the machine
        await _until(fake.running.is_set)
        queued = [asyncio.create_task(batcher.submit(fake, [f"{k} " + "y" * 98])) for k in range(2)]
        await asyncio.sleep(0)  # both admitted: 0.3 s of work at the measured speed
        assert not any(task.done() for task in queued)
        await asyncio.wait(queued)
        shed_while_running = not running.done()
        await running
        return [task.exception() for task in queued], shed_while_running

    errors, shed_while_running = run_batcher(scenario, timeout_s=3.0, wait_ms=0, check_s=0.05)
    assert all(isinstance(error, Overloaded) for error in errors)  # before: both waited into a 504
    assert shed_while_running


def test_a_stale_speed_lets_one_job_through_to_time_the_model_again():
    fake = CancellableRestorer(seconds_per_char=0.001)

    async def scenario(batcher):
        batcher.throughput.add(10, 10.0)  # measured long ago on a crawling machine: 1 char/s
        with pytest.raises(Overloaded):
            await batcher.submit(fake, ["x" * 100])  # 100 s of work at that speed
        batcher.throughput.max_age_s = 0.0  # ... and now that measurement is stale
        probe = asyncio.create_task(batcher.submit(fake, ["they mentioned " * 20]))  # idle: let through
        await _until(fake.running.is_set)
        with pytest.raises(Overloaded):
            await batcher.submit(fake, ["y" * 100])  # one probe at a time
        return await probe, batcher.throughput.chars_per_s

    [result], speed = run_batcher(scenario, timeout_s=5.0, wait_ms=0)
    assert result.text.startswith("they said")
    assert speed > 20  # measured again (the old sample still weighs in)


def test_before_any_call_is_timed_everything_within_the_queue_is_admitted():
    fake = CancellableRestorer(seconds_per_char=0.0)

    async def scenario(batcher):
        assert batcher.estimated_wait_s(10**6) is None
        return await batcher.submit(fake, ["x" * 10**5])

    assert len(run_batcher(scenario, timeout_s=5)) == 1


def test_one_call_holds_about_batch_seconds_of_work():
    fake = CancellableRestorer(seconds_per_char=0.0005)

    async def scenario(batcher):
        await batcher.submit(fake, ["a" * 400])  # times the model
        jobs = [batcher.submit(fake, [f"{k} " + "b" * 400]) for k in range(6)]
        return await asyncio.gather(*jobs)

    run_batcher(scenario, timeout_s=30, wait_ms=50, batch_seconds=1.0)  # ~2,000 chars a call
    sizes = [len(texts) for texts, _, _ in fake.calls[1:]]
    assert sum(sizes) == 6 and len(sizes) >= 2  # uncapped, the six (2,412 chars) go in one call


@pytest.mark.timing
def test_the_model_is_timed_at_start_up_before_it_is_ready():
    fake = CancellableRestorer(seconds_per_char=0.001)
    with running_app(fake, warmup=True) as client:
        batcher = client.app.state.batcher
        assert len(fake.calls) == 1 and batcher.throughput.chars_per_s is not None
        assert 100 < batcher.throughput.chars_per_s < 1100  # ~1,000 characters a second
        huge = client.post("/v1/restore", json={"texts": ["x" * 20_000] * 3})  # ~60 s of work
    assert huge.status_code == 503 and "send fewer or shorter texts" in huge.json()["detail"]
    assert len(fake.calls) == 1


def test_overload_through_the_app_is_503_with_retry_after():
    fake = CancellableRestorer(seconds_per_char=0.001)
    with running_app(fake, request_timeout_s=2.0, batch_wait_ms=0, retry_after_s=1) as client:
        assert client.post("/v1/restore", json={"text": "a" * 300}).status_code == 200
        response = client.post("/v1/restore", json={"texts": ["b" * 1000] * 3})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert "send fewer or shorter texts" in response.json()["detail"]


def test_a_request_the_batcher_would_refuse_is_refused_before_fastapi_parses_it(monkeypatch):
    fake = CancellableRestorer(seconds_per_char=0.001)
    with running_app(fake, request_timeout_s=2.0, batch_wait_ms=0, retry_after_s=1, max_text_chars=2000) as client:
        client.post("/v1/restore", json={"text": "a" * 300})  # times the model: ~1,000 chars/s
        routed = []  # requests the route handed on to the batcher (it builds their Options)
        monkeypatch.setattr(routes, "Options", lambda **kw: routed.append(1) or Options(**kw))
        fits = client.post("/v1/restore", json={"text": "they mentioned"})
        too_big = client.post("/v1/restore", json={"texts": ["b" * 1000] * 3})  # ~3 s > 0.8 x 2 s
        malformed = client.post("/v1/restore", json={"text": "c", "texts": ["d"]})
        too_long = client.post("/v1/restore", json={"text": "e" * 2001})
    assert fits.status_code == 200
    assert too_long.status_code == 413  # over the text limit: the route says so, not 503
    assert "UNSPIN_MAX_TEXT_CHARS" in too_long.json()["detail"]
    assert too_big.status_code == 503 and int(too_big.headers["Retry-After"]) >= 1
    assert "send fewer or shorter texts" in too_big.json()["detail"]
    assert malformed.status_code == 422  # not a well-formed request: the full path says why
    assert routed == [1]  # only the request that fits reached the batcher through the route
    assert len(fake.calls) == 2


def test_an_early_refusal_does_not_skip_the_api_key_check():
    fake = CancellableRestorer(seconds_per_char=0.001)
    with running_app(fake, request_timeout_s=2.0, batch_wait_ms=0, api_key="k" * 24) as client:
        auth = {"Authorization": "Bearer " + "k" * 24}
        client.post("/v1/restore", json={"text": "a" * 300}, headers=auth)
        huge = {"texts": ["b" * 1000] * 3}
        without_key = client.post("/v1/restore", json=huge)
        wrong_key = client.post("/v1/restore", json=huge, headers={"Authorization": "Bearer nope"})
        with_key = client.post("/v1/restore", json=huge, headers=auth)
    assert without_key.status_code == 401 and wrong_key.status_code == 401
    assert with_key.status_code == 503 and "Retry-After" in with_key.headers


def test_a_body_over_the_limit_still_gets_413_after_a_timed_call():
    fake = CancellableRestorer(seconds_per_char=0.0001)
    with running_app(fake, batch_wait_ms=0, max_body_bytes=2000) as client:
        client.post("/v1/restore", json={"text": "a" * 300})
        declared = client.post("/v1/restore", json={"text": "b" * 3000})

        def chunks():
            yield b'{"text": "'
            for _ in range(10):
                yield b"c" * 500
            yield b'"}'

        streamed = client.post("/v1/restore", content=chunks(), headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and streamed.status_code == 413


# --- a client that hangs up, through a real server --------------------------------------------


@pytest.mark.timing
def test_a_client_that_hangs_up_frees_the_model_for_the_next_request():
    fake = CancellableRestorer(seconds_per_char=0.01)
    app = create_app(isolated_settings(batch_wait_ms=0, warmup=False), load_restorer=lambda _settings: fake)
    with live_server(app) as url:
        wait_until(lambda: httpx.get(url + "/readyz").status_code == 200, timeout_s=10)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/restore", json={"text": "x" * 3000}, timeout=0.5)  # 30 s of work
        hung_up = time.monotonic()
        wait_until(lambda: fake.cancelled == 1, timeout_s=10)
        response = httpx.post(url + "/v1/restore", json={"text": "they mentioned"}, timeout=30)
        answered = time.monotonic() - hung_up
        cancelled_calls = app.state.batcher.cancelled_calls
    assert response.status_code == 200 and response.json()["results"][0]["text"] == "they said"
    # Not after the abandoned call's 30 s (the 2 s target is measured with the real model
    # in the README); a quarter of it leaves room for a busy machine.
    assert answered < 30 / 4
    assert cancelled_calls == 1


# --- SIGTERM ---------------------------------------------------------------------------------


@pytest.mark.timing
@pytest.mark.slow
def test_sigterm_stops_a_busy_server_within_the_shutdown_timeout(tmp_path):
    started = tmp_path / "started"
    env = {"UNSPIN_SHUTDOWN_TIMEOUT_S": "1", "UNSPIN_TEST_STARTED": str(started)}
    server, url = serve_subprocess("tests.service.service_fakes:stuck_app", env)
    try:
        wait_until(lambda: server_ready(url), timeout_s=60)
        client = threading.Thread(target=_post_quietly, args=(url,), daemon=True)
        client.start()
        wait_until(started.exists, timeout_s=10)  # the model is busy with an uninterruptible call
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=20)
        took = time.monotonic() - sent
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    # 1 s for running requests, up to 2 s for the model call, then exit: not the 120 s that call
    # would hold the process; a sixth of it leaves room for a busy machine.
    assert took < 120 / 6


def _post_quietly(url: str) -> None:
    try:
        httpx.post(url + "/v1/restore", json={"text": "mentioned"}, timeout=60)
    except httpx.HTTPError:
        pass


def test_a_slow_warm_up_is_served_anyway_without_a_speed_estimate(monkeypatch):
    import service.main

    monkeypatch.setattr(service.main, "WARMUP_TIMEOUT_S", 0.2)
    fake = CancellableRestorer(seconds_per_char=0.01)  # the warm-up text takes ~3 s
    with running_app(fake, warmup=True) as client:  # ready, not "failed"
        assert client.app.state.load_error is None
        assert client.app.state.batcher.throughput.chars_per_s is None
        fake.seconds_per_char = 0.0
        assert client.post("/v1/restore", json={"text": "they mentioned"}).json()["results"][0]["text"] == "they said"
