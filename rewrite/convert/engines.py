"""Where a conversion run restores: in this process, in spawned worker processes, or on Ray.

Each engine loads the restorer once per worker from a picklable factory (``RestorerFactory``)
and runs a work function on batches: ``convert_jobs`` turns ``Job``s (files) into ``DocResult``s,
``restore_rows`` turns a ``RowBatch`` (table cells) into ``RowResults``. Results may come back in
another order than the batches went out.

    >>> engine = make_engine("local", 2, None, RestorerFactory("models/news"))
    >>> model_id(engine.model_info())
    'a3f9c2e1b0d4+ct2-float32'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import UnspinError
from ..model_folder import available_cpus
from .docs import ConvertOptions, convert_jobs


@dataclasses.dataclass(frozen=True)
class RestorerFactory:
    """Picklable recipe for a worker's restorer: ``Restorer.from_pretrained(model_dir, backend)``."""

    model_dir: str | None = None
    backend: str = "auto"  # one of rewrite.backends.BACKENDS
    threads: int | None = None  # backend threads in this worker (None: the library default)

    def __call__(self):
        from .. import Restorer

        return Restorer.from_pretrained(self.model_dir, backend=self.backend, threads=self.threads or 0)


def model_id(info: dict) -> str:
    """A stable id for a restorer's ``model_info``: its ``id``, else the weights' hash (so a
    copied or moved model folder keeps its id), else its name; with the backend when it is not
    exact-greedy-equivalent for sure (int8 output differs slightly), so switching redoes files."""
    for key in ("id", "sha256", "hash", "version", "name"):
        if info.get(key):
            backend = info.get("backend")
            return f"{info[key]}+{backend}" if backend else str(info[key])
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()[:16]


class InProcessEngine:
    """Restores in this process (``--workers 1``)."""

    def __init__(self, factory: Callable[[], object]):
        self.restorer = factory()

    def model_info(self) -> dict:
        return dict(self.restorer.model_info)

    def run(self, batches: Iterable, options: ConvertOptions, work: Callable = convert_jobs) -> Iterator:
        for batch in batches:
            yield work(batch, self.restorer, options)

    def close(self) -> None:
        pass


_WORKER: dict = {}


def _init_worker(factory: Callable[[], object]) -> None:
    try:
        _WORKER["restorer"] = factory()
    except Exception as exc:  # noqa: BLE001 - handed to the parent by the first task
        _WORKER["error"] = exc


def _worker_restorer():
    if "error" in _WORKER:
        raise _WORKER["error"]
    return _WORKER["restorer"]


def _worker_model_info() -> dict:
    return dict(_worker_restorer().model_info)


def _worker_run(work: Callable, batch, options: ConvertOptions):
    return work(batch, _worker_restorer(), options)


class ProcessPoolEngine:
    """``workers`` spawned processes, each loading the restorer once."""

    def __init__(self, factory: Callable[[], object], workers: int):
        self.workers = workers
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(factory,)
        )

    def model_info(self) -> dict:
        return self._result(self.pool.submit(_worker_model_info))

    def run(self, batches: Iterable, options: ConvertOptions, work: Callable = convert_jobs) -> Iterator:
        pending = set()
        for batch in batches:
            if len(pending) >= 2 * self.workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield self._result(future)
            pending.add(self.pool.submit(_worker_run, work, batch, options))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield self._result(future)

    @staticmethod
    def _result(future):
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise UnspinError(f"a worker process died ({exc}); rerun the same command to resume") from exc

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def make_engine(engine: str, workers: int, address: str | None, factory: Callable[[], object]):
    """The engine for ``--engine`` (``local`` or ``ray``) with ``workers`` restorers."""
    if engine == "ray":
        from .ray_engine import RayEngine

        if isinstance(factory, RestorerFactory) and factory.threads is None:
            factory = dataclasses.replace(factory, threads=1)  # each actor reserves one CPU
        return RayEngine(factory, workers, address)
    if workers == 1:
        return InProcessEngine(factory)
    if isinstance(factory, RestorerFactory) and factory.threads is None:
        factory = dataclasses.replace(factory, threads=max(1, available_cpus() // workers))
    return ProcessPoolEngine(factory, workers)
