"""Run ``unspin convert`` on a Ray cluster: actors hold the model, the driver owns the files.

The driver (the machine running ``unspin convert --engine ray``) walks the inputs, reads and
hashes them, and writes outputs, manifest and report exactly as the local engine does; only the
restoring moves to ``workers`` Ray actors, each loading the restorer once. Batches of files travel
through Ray's object store, so the cluster needs no shared filesystem, only:

* the ``unspin`` package (with its ``ray`` extra) importable on every node, and
* the model folder readable on every node at the path given with ``--model`` (the shipped
  default is inside the package, so installing the package is enough).

    >>> engine = RayEngine(RestorerFactory("models/news"), workers=8, address="ray://head:10001")
    >>> engine.model_info()["id"]
    'news-2026-01'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from ..errors import InputError
from .docs import ConvertOptions, convert_jobs

logger = logging.getLogger(__name__)


class ConvertActor:
    """One Ray actor: a restorer loaded once, converting batches of files."""

    def __init__(self, factory: Callable[[], object]):
        self.error: Exception | None = None
        try:
            self.restorer = factory()
        except Exception as exc:  # noqa: BLE001 - re-raised by every call, so the driver sees it
            self.error = exc

    def _restorer(self):
        if self.error is not None:
            raise self.error
        return self.restorer

    def model_info(self) -> dict:
        return dict(self._restorer().model_info)

    def run(self, work: Callable, batch, options: ConvertOptions):
        return work(batch, self._restorer(), options)


class RayEngine:
    """``workers`` actors (1 CPU each); at most two batches in flight per actor.

    ``address``: None joins the Ray instance this process already started (``ray.init``) or
    starts a local one; ``"auto"`` joins the cluster this machine belongs to; ``"ray://host:10001"``
    connects through Ray Client.
    """

    def __init__(self, factory: Callable[[], object], workers: int, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise InputError("the Ray engine needs Ray: pip install 'unspin[ray]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            self.started = True
        elif address:
            logger.info("Ray is already initialised in this process; ignoring address %s", address)
        actor = ray.remote(num_cpus=1)(ConvertActor)
        self.actors = [actor.remote(factory) for _ in range(workers)]

    def model_info(self) -> dict:
        return self.ray.get(self.actors[0].model_info.remote())

    def run(self, batches: Iterable, options: ConvertOptions, work: Callable = convert_jobs) -> Iterator:
        ray = self.ray
        options_ref = ray.put(options)
        idle = list(self.actors) * 2  # two slots per actor: one running, one queued
        in_flight: dict = {}
        for batch in batches:
            while not idle:
                yield from self._collect(in_flight, idle)
            actor = idle.pop(0)
            in_flight[actor.run.remote(work, batch, options_ref)] = actor
        while in_flight:
            yield from self._collect(in_flight, idle)

    def _collect(self, in_flight: dict, idle: list) -> Iterator:
        done, _ = self.ray.wait(list(in_flight), num_returns=1)
        for ref in done:
            idle.append(in_flight.pop(ref))
            yield self.ray.get(ref)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started:
            self.ray.shutdown()
