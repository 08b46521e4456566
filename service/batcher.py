"""Micro-batching: concurrent requests share one ``restore_many`` call.

A request puts its texts in a bounded queue and awaits a future. One worker task takes the first
waiting job, keeps gathering for ``wait_ms`` (or until ``max_batch_texts`` texts are in hand), and
runs ``restorer.restore_many`` in a thread so the event loop keeps serving. Jobs with different
options (``min_confidence``, ``protect_quotes``) or restorers go in separate calls::

    t=0ms  A: ["x"]      t=2ms  B: ["y", "z"]       t=5ms  -> restore_many(["x", "y", "z"])
                                                            A gets [r0], B gets [r1, r2]

When more than ``queue_size`` texts are waiting, ``submit`` raises ``QueueFull`` (the app answers
503 with Retry-After); a job that is not answered within ``timeout_s`` raises ``Timeout`` (504).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from rewrite.errors import InputError

logger = logging.getLogger(__name__)


class RestorerLike(Protocol):
    def restore_many(
        self, texts: list[str], min_confidence: float | None = None, protect_quotes: bool = False
    ) -> list[Any]: ...


class BatcherError(Exception):
    """Base of the batcher's errors; the message is meant for the client."""


class QueueFull(BatcherError):
    """Too many texts are already waiting for the model."""


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
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> tuple[int, Options]:
        return id(self.restorer), self.options


class Batcher:
    """Gathers concurrent restore jobs into few ``restore_many`` calls, one call at a time."""

    def __init__(
        self,
        *,
        wait_ms: float = 5.0,
        max_batch_texts: int = 64,
        queue_size: int = 256,
        timeout_s: float = 30.0,
    ) -> None:
        self.wait_s = wait_ms / 1000.0
        self.max_batch_texts = max_batch_texts
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self._pending: deque[_Job] = deque()
        self._pending_texts = 0
        self._in_flight: list[_Job] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task | None = None
        self.calls = 0  # restore_many calls made (for metrics and tests)

    @property
    def pending_texts(self) -> int:
        """Texts queued and not yet handed to the model."""
        return self._pending_texts

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="unspin-batcher")

    async def stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
        stopped = NotRunning("the server is shutting down; retry later")
        for job in [*self._in_flight, *self._pending]:
            _settle(job, error=stopped)
        self._pending.clear()
        self._in_flight.clear()
        self._pending_texts = 0

    async def submit(
        self, restorer: RestorerLike, texts: list[str], options: Options = Options()
    ) -> list[Any]:
        """Restore ``texts`` with ``restorer``, sharing a model call with concurrent jobs."""
        if self._worker is None:
            raise NotRunning("the service is not running; retry later")
        if self._pending_texts + len(texts) > self.queue_size:
            raise QueueFull(
                f"the server is busy ({self._pending_texts} texts waiting, limit "
                f"{self.queue_size}); retry after the Retry-After delay"
            )
        job = _Job(restorer, list(texts), options, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._pending_texts += len(job.texts)
        self._wakeup.set()
        try:
            return await asyncio.wait_for(job.future, self.timeout_s)
        except TimeoutError:
            self._forget(job)
            raise Timeout(
                f"the restoration took longer than {self.timeout_s:g} s; send shorter or fewer "
                "texts, or retry later"
            ) from None
        except asyncio.CancelledError:  # client went away
            self._forget(job)
            raise

    def _forget(self, job: _Job) -> None:
        """Drop a job that nobody waits for any more, if the worker has not taken it yet."""
        try:
            self._pending.remove(job)
        except ValueError:
            return
        self._pending_texts -= len(job.texts)

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather()
            self._in_flight = self._take_batch()
            for group in _group(self._in_flight):
                await self._serve(group)
            self._in_flight = []

    async def _gather(self) -> None:
        """Wait up to ``wait_s`` after the oldest job arrived, or until a batch is full."""
        deadline = self._pending[0].queued_at + self.wait_s
        while self._pending_texts < self.max_batch_texts:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Job]:
        """Pop live jobs from the queue up to ``max_batch_texts`` texts (at least one job)."""
        batch: list[_Job] = []
        size = 0
        while self._pending:
            job = self._pending[0]
            if batch and size + len(job.texts) > self.max_batch_texts:
                break
            self._pending.popleft()
            self._pending_texts -= len(job.texts)
            if job.future.done():  # timed out or cancelled while waiting
                continue
            batch.append(job)
            size += len(job.texts)
        return batch

    async def _serve(self, jobs: list[_Job]) -> None:
        """One restore_many call for jobs sharing a restorer and options."""
        try:
            results = await self._call(jobs[0], [text for job in jobs for text in job.texts])
        except InputError as error:
            if len(jobs) == 1:
                _settle(jobs[0], error=error)
                return
            # One job's text is bad: serve each job alone so the others still get answers.
            for job in jobs:
                await self._serve([job])
            return
        except Exception as error:  # a model failure must not kill the worker
            logger.exception("restore_many failed for %d jobs", len(jobs))
            for job in jobs:
                _settle(job, error=error)
            return
        start = 0
        for job in jobs:
            _settle(job, result=results[start : start + len(job.texts)])
            start += len(job.texts)

    async def _call(self, first: _Job, texts: list[str]) -> list[Any]:
        self.calls += 1
        options = first.options
        results = await asyncio.to_thread(
            first.restorer.restore_many,
            texts,
            min_confidence=options.min_confidence,
            protect_quotes=options.protect_quotes,
        )
        results = list(results)
        if len(results) != len(texts):
            raise RuntimeError(
                f"restore_many returned {len(results)} results for {len(texts)} texts"
            )
        return results


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
