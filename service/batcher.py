"""Micro-batching with admission control: concurrent requests share one ``restore_many`` call,
work nobody waits for is stopped, and work that cannot finish in time is refused at once.

A request puts its texts in a bounded queue and awaits a future. One worker task takes the first
waiting job, keeps gathering for ``wait_ms`` (or until ``max_batch_texts`` texts, or about
``batch_seconds`` of model work, are in hand), and runs ``restorer.restore_many`` in a daemon
thread so the event loop keeps serving. Jobs with different options (``min_confidence``,
``protect_quotes``) or restorers go in separate calls::

    t=0ms  A: ["x"]      t=2ms  B: ["y", "z"]       t=5ms  -> restore_many(["x", "y", "z"])
                                                            A gets [r0], B gets [r1, r2]

Admission (``submit``): more than ``queue_size`` waiting texts raise ``QueueFull``; and once a
call has been timed, a job whose estimated finish (the work queued and in flight ahead of it
plus its own, at the measured speed) lies beyond ``admit_share`` of the time limit raises
``Overloaded`` with the seconds after which to retry. Work is counted by ``cost`` (default
``rewrite.text.model_cost``: characters of English, a character of another script as the byte
tokens it costs the model, nothing for lines the restorer never sends to it); "characters" and
"chars" below mean these units. The app answers both with 503
and Retry-After, at once, instead of letting the request wait into a 504.

Shedding: the speed can drop after a job was admitted (other work on the machine, a flood of
requests to answer). Before each call, after it and every ``check_s`` while it runs, the
estimate is made again for every queued job, and one that would now finish after its deadline
is answered ``Overloaded`` (503 + Retry-After) at once instead of waiting into a 504. A call
that runs well past its expected time lowers the estimate while it runs.

Cancellation: a job not answered within ``timeout_s`` raises ``Timeout`` (504); a job whose
client went away is cancelled. When no job of the running call is still waited for, the call's
``cancel`` event is set; a restorer whose ``restore_many`` takes ``cancel`` (``rewrite.Restorer``
checks it between model batches) stops within one batch and the model is free for the next call.
``stop`` does the same for everything, waiting at most ``grace_s`` for the model thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rewrite.errors import InputError
from rewrite.text import model_cost

logger = logging.getLogger(__name__)


# A running call is overdue once it has taken OVERDUE_FACTOR times its expected time plus
# OVERDUE_S (the floor keeps the fixed cost of a small call from reading as a slow model).
OVERDUE_FACTOR = 1.5
# A queued job is shed once its estimated finish comes within this share of the limit (or one
# check interval) of its deadline, see Batcher._shed_late.
SHED_MARGIN_SHARE = 0.05
OVERDUE_S = 1.0


class RestorerLike(Protocol):
    """What the batcher calls; ``cancel`` is optional (see ``accepts_cancel``)."""

    def restore_many(
        self, texts: list[str], min_confidence: float | None = None, protect_quotes: bool = False
    ) -> list[Any]: ...


class BatcherError(Exception):
    """Base of the batcher's errors; the message is meant for the client."""


class QueueFull(BatcherError):
    """Too many texts are already waiting for the model."""

    retry_after_s: int | None = None


class Overloaded(QueueFull):
    """The work queued ahead would not let this job finish within the time limit."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Timeout(BatcherError):
    """The restoration was not ready within the request time limit."""


class NotRunning(BatcherError):
    """The batcher is stopped (the server is shutting down)."""


@dataclass(frozen=True)
class Options:
    min_confidence: float | None = None
    protect_quotes: bool = False


@dataclass(eq=False)
class _Job:
    restorer: RestorerLike
    texts: list[str]
    options: Options
    future: asyncio.Future
    chars: int  # the texts' cost (Batcher.cost)
    queued_at: float = field(default_factory=time.monotonic)
    deadline: float = math.inf  # monotonic time by which the answer is due
    probe: bool = False  # let through on a stale speed to measure it again; never shed

    @property
    def key(self) -> tuple[int, Options]:
        return id(self.restorer), self.options


@dataclass(eq=False)
class _Call:
    """One ``restore_many`` call in flight: its jobs, size, start and cancel event."""

    jobs: list[_Job]
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.chars = sum(job.chars for job in self.jobs)

    def abandoned(self) -> bool:
        return all(job.future.done() for job in self.jobs)


class Throughput:
    """Characters per second the model got through in its last ``window`` timed calls
    (characters over seconds, so long calls weigh more); ``None`` before the first. ``stale``
    when the newest is older than ``max_age_s``: the speed may have changed since.

        >>> t = Throughput(); t.add(1000, 0.5); t.add(3000, 0.5); t.chars_per_s
        4000.0
    """

    def __init__(self, window: int = 16, max_age_s: float = 120.0) -> None:
        self.max_age_s = max_age_s
        self._calls: deque[tuple[int, float, float]] = deque(maxlen=window)

    def add(self, chars: int, seconds: float) -> None:
        if chars > 0 and seconds > 0:
            self._calls.append((chars, seconds, time.monotonic()))

    @property
    def chars_per_s(self) -> float | None:
        if not self._calls:
            return None
        return sum(c for c, _, _ in self._calls) / sum(s for _, s, _ in self._calls)

    @property
    def stale(self) -> bool:
        return not self._calls or self._calls[-1][2] < time.monotonic() - self.max_age_s


def accepts_cancel(restorer: object) -> bool:
    """True when ``restorer.restore_many`` takes a ``cancel`` event (``rewrite.Restorer`` does)."""
    try:
        parameters = inspect.signature(restorer.restore_many).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError, AttributeError):
        return False
    return "cancel" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


class Batcher:
    """Gathers concurrent restore jobs into few ``restore_many`` calls, one call at a time."""

    def __init__(
        self,
        *,
        wait_ms: float = 5.0,
        max_batch_texts: int = 64,
        queue_size: int = 256,
        timeout_s: float = 30.0,
        batch_seconds: float = 4.0,
        admit_share: float = 0.8,
        retry_after_s: int = 1,
        check_s: float = 0.25,
        cost: Callable[[str], int] = model_cost,
    ) -> None:
        self.wait_s = wait_ms / 1000.0
        self.max_batch_texts = max_batch_texts
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self.batch_seconds = batch_seconds
        self.admit_share = admit_share
        self.retry_after_s = retry_after_s
        self.check_s = check_s  # how often queued jobs are checked against their deadline
        self._cost = cost
        self.throughput = Throughput()
        self._pending: deque[_Job] = deque()
        self._pending_texts = 0
        self._pending_chars = 0
        self._call: _Call | None = None
        self._thread: threading.Thread | None = None
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task | None = None
        self.calls = 0  # restore_many calls made (for metrics and tests)
        self.cancelled_calls = 0  # calls told to stop because nobody waited for them
        self.shed_jobs = 0  # queued jobs answered Overloaded because the speed dropped

    def cost(self, texts: list[str]) -> int:
        """The model work ``texts`` stand for, in the units admission plans with."""
        return sum(self._cost(text) for text in texts)

    @property
    def pending_texts(self) -> int:
        """Texts queued and not yet handed to the model."""
        return self._pending_texts

    @property
    def busy(self) -> bool:
        """True while a model call runs (or a cancelled one has not returned yet)."""
        return self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="unspin-batcher")

    async def stop(self, grace_s: float = 2.0) -> None:
        """Fail every job with ``NotRunning``, tell the running call to stop, and wait at most
        ``grace_s`` for the model thread (a daemon thread: it never holds up the exit)."""
        worker, self._worker = self._worker, None
        call = self._call
        if call is not None:
            call.cancel.set()
        if worker is not None:
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
        stopped = NotRunning("the server is shutting down; retry later")
        for job in [*(call.jobs if call else []), *self._pending]:
            _settle(job, error=stopped)
        self._pending.clear()
        self._pending_texts = self._pending_chars = 0
        self._call = None
        deadline = time.monotonic() + grace_s
        while self.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.busy:
            logger.warning("the model call did not stop within %.1f s; leaving it behind", grace_s)

    async def submit(
        self,
        restorer: RestorerLike,
        texts: list[str],
        options: Options = Options(),
        *,
        timeout_s: float | None = None,
    ) -> list[Any]:
        """Restore ``texts`` with ``restorer``, sharing a model call with concurrent jobs, within
        ``timeout_s`` (default: the batcher's limit)."""
        if self._worker is None:
            raise NotRunning("the service is not running; retry later")
        if self._pending_texts + len(texts) > self.queue_size:
            raise QueueFull(
                f"the server is busy ({self._pending_texts} texts waiting, limit "
                f"{self.queue_size}); retry after the Retry-After delay"
            )
        limit = self.timeout_s if timeout_s is None else timeout_s
        job = _Job(restorer, list(texts), options, asyncio.get_running_loop().create_future(), self.cost(texts))
        job.deadline = job.queued_at + limit
        self._admit(job)
        job.future.add_done_callback(lambda _future: self._on_done(job))
        self._pending.append(job)
        self._pending_texts += len(job.texts)
        self._pending_chars += job.chars
        self._wakeup.set()
        try:
            return await asyncio.wait_for(job.future, limit)
        except TimeoutError:
            raise Timeout(
                f"the restoration took longer than {limit:g} s; send shorter or fewer "
                "texts, or retry later"
            ) from None

    def speed(self) -> float | None:
        """Characters per second to plan with: the measured speed, lowered by a running call
        that is overdue (``OVERDUE_FACTOR`` times its expected time and ``OVERDUE_S`` more; before
        any call was timed, half the admitted wait): it has not got through its characters in
        ``elapsed`` seconds, so the speed is now below ``call.chars / elapsed``. ``None`` before
        any call was timed."""
        rate = self.throughput.chars_per_s
        call = self._call
        if call is None:
            return rate
        elapsed = time.monotonic() - call.started
        if rate is None:
            overdue = elapsed >= self.timeout_s * self.admit_share / 2
        else:
            overdue = elapsed >= OVERDUE_FACTOR * call.chars / rate + OVERDUE_S
        if overdue:
            bound = call.chars / elapsed
            rate = bound if rate is None else min(rate, bound)
        return rate

    def estimated_wait_s(self, chars: int) -> float | None:
        """Seconds until ``chars`` more characters would be restored, given the work queued and
        in flight and ``speed()``; ``None`` before any call was timed."""
        rate = self.speed()
        if rate is None:
            return None
        return (self._in_flight_left(rate) + self._pending_chars + chars) / rate

    def _in_flight_left(self, rate: float) -> float:
        """Characters of the running call still to do, at ``rate``."""
        call = self._call
        if call is None or call.cancel.is_set():
            return 0.0
        return max(0.0, call.chars - (time.monotonic() - call.started) * rate)

    def refusal(self, chars: int = 0) -> Overloaded | None:
        """The ``Overloaded`` a job of ``chars`` characters would get if it arrived now, or
        ``None`` when it would be admitted (``service.middleware.ShedEarly`` asks it before FastAPI
        parses the request)."""
        wait = self.estimated_wait_s(chars)
        if wait is None or wait <= self.timeout_s * self.admit_share or self._probe_due():
            return None
        return self._overloaded(chars, wait)

    def _probe_due(self) -> bool:
        """The measured speed is stale and the model idle: the next job is let through to
        measure it again."""
        return self.throughput.stale and self._call is None and not self._pending and not self.busy

    def _admit(self, job: _Job) -> None:
        """Raise ``Overloaded`` when ``job`` would not finish within the share of the limit.
        When the speed is stale and the model idle, the job is let through to measure it again."""
        wait = self.estimated_wait_s(job.chars)
        if wait is None or wait <= self.timeout_s * self.admit_share:
            return
        if self._probe_due():
            logger.info("the measured speed is stale; admitting a job of %d characters to time it", job.chars)
            job.probe = True
            return
        raise self._overloaded(job.chars, wait)

    def _overloaded(self, chars: int, wait: float) -> Overloaded:
        """The 503 for a job of ``chars`` characters that would wait ``wait`` seconds."""
        budget = self.timeout_s * self.admit_share
        alone = chars / (self.speed() or 1.0)
        retry = max(self.retry_after_s, math.ceil(wait - budget))
        if alone > budget:
            message = (
                f"this request needs about {alone:.0f} s of model time at the current speed, over "
                f"the {self.timeout_s:g} s limit; send fewer or shorter texts"
            )
        else:
            message = (
                f"the server is busy (about {wait:.0f} s of work ahead, limit {self.timeout_s:g} s); "
                "retry after the Retry-After delay"
            )
        return Overloaded(message, retry)

    def _shed_late(self) -> None:
        """Answer ``Overloaded`` now to every queued job that can no longer finish before its
        deadline (estimated wait over the time it has left, less ``_shed_margin_s``), because the
        model got slower after it was admitted; the jobs behind it then wait that much less.

        Admission keeps ``1 - admit_share`` of the limit in reserve, and this test spends it: a job
        admitted near the edge is not shed a moment later for a small dip in the measured speed
        (that made 503s arrive seconds late under a flood), only when it would really be late."""
        rate = self.speed()
        if rate is None or not self._pending:
            return
        now = time.monotonic()
        ahead = self._in_flight_left(rate)
        for job in list(self._pending):
            if job.future.done():
                continue
            wait = (ahead + job.chars) / rate
            if job.probe or wait <= job.deadline - now - self._shed_margin_s:
                ahead += job.chars
                continue
            self.shed_jobs += 1
            logger.info("shedding a queued job of %d characters: about %.1f s of work ahead, %.1f s left",
                        job.chars, wait, job.deadline - now)
            _settle(job, error=self._overloaded(job.chars, wait))

    @property
    def _shed_margin_s(self) -> float:
        """Time kept before a queued job's deadline for the estimate's error and the next check,
        at most half the reserve that admission keeps (so that no job is shed as it arrives)."""
        reserve = (1 - self.admit_share) * self.timeout_s
        return min(reserve / 2, max(self.check_s, SHED_MARGIN_SHARE * self.timeout_s))

    def _on_done(self, job: _Job) -> None:
        """A job was answered, timed out or cancelled: drop it from the queue if it is still
        there, and stop the running call if nobody waits for it any more."""
        try:
            self._pending.remove(job)
        except ValueError:
            pass
        else:
            self._pending_texts -= len(job.texts)
            self._pending_chars -= job.chars
        call = self._call
        if call is not None and job in call.jobs and call.abandoned() and not call.cancel.is_set():
            call.cancel.set()
            self.cancelled_calls += 1
            logger.info("stopping a model call of %d texts: nobody waits for it", sum(len(j.texts) for j in call.jobs))

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather()
            self._shed_late()
            for group in _group(self._take_batch()):
                await self._serve(group)

    async def _gather(self) -> None:
        """Wait up to ``wait_s`` after the oldest job arrived, or until a batch is full."""
        deadline = self._pending[0].queued_at + self.wait_s
        while self._pending_texts < self.max_batch_texts and self._pending_chars < self._call_chars():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _call_chars(self) -> float:
        """Most characters for one call: about ``batch_seconds`` of work (no cap before the
        first call is timed), so that the jobs of one call, answered together, are not held
        long by one another."""
        rate = self.throughput.chars_per_s
        return math.inf if rate is None else rate * self.batch_seconds

    def _take_batch(self) -> list[_Job]:
        """Pop live jobs from the queue up to ``max_batch_texts`` texts and about
        ``batch_seconds`` of work (at least one job)."""
        batch: list[_Job] = []
        size = chars = 0
        limit = self._call_chars()
        while self._pending:
            job = self._pending[0]
            if batch and (size + len(job.texts) > self.max_batch_texts or chars + job.chars > limit):
                break
            self._pending.popleft()
            self._pending_texts -= len(job.texts)
            self._pending_chars -= job.chars
            if job.future.done():  # timed out or cancelled while waiting
                continue
            batch.append(job)
            size += len(job.texts)
            chars += job.chars
        return batch

    async def _serve(self, jobs: list[_Job]) -> None:
        """One restore_many call for jobs sharing a restorer and options."""
        jobs = [job for job in jobs if not job.future.done()]
        if not jobs:
            return
        call = _Call(jobs)
        self._call = call
        try:
            results = await self._call_model(call)
        except InputError as error:
            if len(jobs) == 1:
                _settle(jobs[0], error=error)
                return
            # One job's text is bad: serve each job alone so the others still get answers.
            for job in jobs:
                await self._serve([job])
            return
        except Exception as error:  # a model failure must not kill the worker
            if call.cancel.is_set():
                elapsed = time.monotonic() - call.started
                logger.info("a model call stopped after %.1f s: %s", elapsed, error)
                if elapsed >= self.timeout_s * self.admit_share:
                    # It did not get through call.chars in elapsed s: the speed is below that.
                    self.throughput.add(call.chars, elapsed)
            else:
                logger.exception("restore_many failed for %d jobs", len(jobs))
            for job in jobs:
                _settle(job, error=error)
            return
        finally:
            if self._call is call:
                self._call = None
        elapsed = time.monotonic() - call.started
        if not call.cancel.is_set() or elapsed >= self.timeout_s * self.admit_share:
            # (a call stopped early on a client's hang-up says little about the speed)
            self.throughput.add(call.chars, elapsed)
        start = 0
        for job in jobs:
            _settle(job, result=results[start : start + len(job.texts)])
            start += len(job.texts)

    async def _call_model(self, call: _Call) -> list[Any]:
        """``restore_many`` in a daemon thread; returns its results (checked for count)."""
        self.calls += 1
        first = call.jobs[0]
        texts = [text for job in call.jobs for text in job.texts]
        kwargs: dict[str, Any] = {
            "min_confidence": first.options.min_confidence,
            "protect_quotes": first.options.protect_quotes,
        }
        if accepts_cancel(first.restorer):
            kwargs["cancel"] = call.cancel
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def work() -> None:
            try:
                outcome: tuple[bool, Any] = (True, list(first.restorer.restore_many(texts, **kwargs)))
            except BaseException as error:  # noqa: BLE001 - handed to the event loop
                outcome = (False, error)
            try:
                loop.call_soon_threadsafe(_resolve, done, outcome)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        # Wait for a previous, cancelled call to return first: one model call at a time.
        while self.busy:
            await asyncio.sleep(0.01)
        self._thread = threading.Thread(target=work, name="unspin-model", daemon=True)
        self._thread.start()
        while not done.done():
            await asyncio.wait({done}, timeout=self.check_s)
            self._shed_late()
        results = done.result()
        if len(results) != len(texts):
            raise RuntimeError(f"restore_many returned {len(results)} results for {len(texts)} texts")
        return results


def _resolve(future: asyncio.Future, outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _group(jobs: list[_Job]) -> list[list[_Job]]:
    groups: dict[tuple[int, Options], list[_Job]] = {}
    for job in jobs:
        groups.setdefault(job.key, []).append(job)
    return list(groups.values())


def _settle(
    job: _Job, *, result: list[Any] | None = None, error: BaseException | None = None
) -> None:
    if job.future.done():  # the client stopped waiting
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)
