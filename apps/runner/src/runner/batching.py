"""Dynamic micro-batching for the receiver service (``runner.serve``).

Requests wait in one bounded queue. A single worker takes the first waiting job, then whatever else
arrives within ``max_wait_ms`` up to ``max_batch`` jobs, groups them by key (the reader and the
generation limit, or ``encode``) and runs each group as one call in one worker thread, so concurrent
requests share forward passes and the model never runs on two threads at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

__all__ = ["Job", "MicroBatcher", "QueueFull", "ShuttingDown"]


class QueueFull(RuntimeError):
    """The queue holds ``max_queue`` jobs: the caller should retry later (HTTP 429)."""


class ShuttingDown(RuntimeError):
    """The service stopped taking work (SIGTERM): retry on another instance (HTTP 503)."""


@attrs.define
class Job:
    key: Hashable
    payload: Any
    future: asyncio.Future[Any]
    queued_at: float = attrs.field(factory=time.perf_counter)
    started_at: float = 0.0
    batch_size: int = 0


RunBatch = Callable[[Hashable, Sequence[Any]], Sequence[Any]]


class MicroBatcher:
    """Collects jobs into batches and runs them on one worker thread.

    Args:
        run_batch: ``(key, payloads) -> results`` (one result per payload, in order); runs in the worker
            thread. An exception fails every job of that batch with it.
        max_batch: most jobs in one call.
        max_wait_ms: how long the first job of a batch waits for company.
        max_queue: most jobs waiting; one more is refused with :class:`QueueFull`.
        on_batch: called (on the event loop) with each batch's key and size, for metrics.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch: int = 8,
        max_wait_ms: float = 10.0,
        max_queue: int = 64,
        on_batch: Callable[[Hashable, int], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError(
                f"max_batch ({max_batch}) and max_queue ({max_queue}) must be >= 1, max_wait_ms ({max_wait_ms}) >= 0"
            )
        self.run_batch, self.max_batch, self.max_wait = run_batch, max_batch, max_wait_ms / 1000
        self.max_queue, self.on_batch = max_queue, on_batch
        self._queue: asyncio.Queue[Job | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="latentwire-batch")
        self.accepting = False
        self.in_flight = 0  # jobs taken from the queue whose batch has not finished

    @property
    def depth(self) -> int:
        """Jobs waiting in the queue (not yet in a batch)."""
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work())
        self.accepting = True

    async def submit(self, key: Hashable, payload: Any) -> Job:
        """Queue one job; its ``future`` resolves to the result. Refused when full or stopping."""
        if not self.accepting or self._queue is None:
            raise ShuttingDown("the service is shutting down and takes no new work")
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} requests are waiting (max_queue = {self.max_queue})")
        job = Job(key=key, payload=payload, future=asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return job

    async def drain(self) -> None:
        """Stop taking work, finish every queued and running job, then stop the worker."""
        self.accepting = False
        if self._queue is not None and self._worker is not None:
            self._queue.put_nowait(None)
            await self._worker
        self._pool.shutdown(wait=True)

    async def _take(self) -> list[Job] | None:
        assert self._queue is not None
        first = await self._queue.get()
        if first is None:
            return None
        jobs = [first]
        deadline = time.perf_counter() + self.max_wait
        while len(jobs) < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                nxt = (
                    self._queue.get_nowait() if left <= 0 else await asyncio.wait_for(self._queue.get(), left)
                )
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if nxt is None:  # drain asked: finish these, then stop
                self._queue.put_nowait(None)
                break
            jobs.append(nxt)
        return jobs

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while (jobs := await self._take()) is not None:
            live = [j for j in jobs if not j.future.done()]  # a caller that timed out gave its job up
            groups: OrderedDict[Hashable, list[Job]] = OrderedDict()
            for j in live:
                groups.setdefault(j.key, []).append(j)
            self.in_flight += len(live)
            try:
                for key, group in groups.items():
                    now = time.perf_counter()
                    for j in group:
                        j.started_at, j.batch_size = now, len(group)
                    if self.on_batch is not None:
                        self.on_batch(key, len(group))
                    payloads = [j.payload for j in group]
                    try:
                        results = await loop.run_in_executor(self._pool, self.run_batch, key, payloads)
                        if len(results) != len(group):
                            raise RuntimeError(f"run_batch gave {len(results)} results for {len(group)} jobs")
                    except Exception as e:  # every job of the batch learns why
                        for j in group:
                            if not j.future.done():
                                j.future.set_exception(e)
                        continue
                    for j, r in zip(group, results, strict=True):
                        if not j.future.done():
                            j.future.set_result(r)
            finally:
                self.in_flight -= len(live)


class IdempotencyStore:
    """The last ``size`` answers by idempotency key: a retried request gets the first one's answer
    (or waits on it while it runs) instead of being answered twice."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[str, asyncio.Future[Any]]] = OrderedDict()

    def get(self, key: str, body_digest: str) -> asyncio.Future[Any] | None:
        """The stored future for ``key``, or None. A key reused for another body raises ValueError."""
        hit = self._items.get(key)
        if hit is None:
            return None
        if hit[0] != body_digest:
            raise ValueError(f"idempotency key {key!r} was used before for a different request")
        if hit[1].done() and hit[1].exception() is not None:  # a failed attempt may be retried
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return hit[1]

    def put(self, key: str, body_digest: str, future: asyncio.Future[Any]) -> None:
        self._items[key] = (body_digest, future)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
