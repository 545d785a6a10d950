"""The micro-batching queue: gather texts for a few milliseconds, run them in one forward pass.

Requests put their texts in a FIFO queue and wait on a future. One loop takes up to
``max_batch`` texts (from any requests, for any adapters), waiting at most ``max_wait`` after
the oldest one arrived, and runs the engine in a single worker thread, so the event loop keeps
accepting requests while the model computes. Everything that touches the engine (adapter
loads and deletes too) runs in that one thread, in order.
"""

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class QueueFull(Exception):
    pass


@dataclass(eq=False)
class Job:
    adapter: str
    texts: list[str]
    future: asyncio.Future
    results: list = field(default_factory=list)
    t0: float = 0.0         # when it was queued (time.monotonic)
    taken: int = 0          # texts handed to a batch so far
    cancelled: bool = False


class Batcher:
    def __init__(self, engine, max_batch: int, max_wait_s: float, max_queue: int, mixed: bool = True,
                 on_batch=None, after_batch=None):
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.mixed = mixed
        self.on_batch = on_batch or (lambda texts, adapters, seconds: None)
        self.after_batch = after_batch or (lambda: None)  # runs in the engine thread
        self._jobs: deque[Job] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="lorakit-engine")
        self._task: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        """Texts waiting for a forward pass."""
        return self._queued

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def call(self, fn, *args):
        """Run ``fn(*args)`` in the engine thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, adapter: str, texts: list[str], timeout: float) -> list[dict]:
        if self._queued + len(texts) > self.max_queue:
            raise QueueFull
        job = Job(adapter, texts, asyncio.get_running_loop().create_future(), t0=time.monotonic())
        self._jobs.append(job)
        self._queued += len(texts)
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        except (TimeoutError, asyncio.CancelledError):
            job.cancelled = True  # its texts not yet taken are dropped by the loop
            raise

    def _take(self) -> list[tuple[Job, int, int]]:
        """Up to max_batch texts, FIFO; a large request may be split across batches."""
        taken, room = [], self.max_batch
        while self._jobs and room > 0:
            job = self._jobs[0]
            if job.cancelled:
                self._jobs.popleft()
                self._queued -= len(job.texts) - job.taken
                continue
            if not self.mixed and taken:
                break  # the naive way: one request per forward pass
            n = min(room, len(job.texts) - job.taken)
            taken.append((job, job.taken, job.taken + n))
            job.taken += n
            room -= n
            self._queued -= n
            if job.taken == len(job.texts):
                self._jobs.popleft()
            if not self.mixed:
                break
        return taken

    async def _gather(self) -> None:
        if not self.mixed:
            return
        deadline = self._jobs[0].t0 + self.max_wait_s
        while self._queued < self.max_batch:
            delay = deadline - time.monotonic()
            if delay <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                return

    def _run(self, batch: list[tuple[Job, int, int]]):
        """In the engine thread: requests whose adapter was deleted meanwhile fail alone."""
        ok = [part for part in batch if part[0].adapter in self.engine.adapters]
        items = [(job.adapter, text) for job, a, b in ok for text in job.texts[a:b]]
        try:
            return ok, items, (self.engine.classify(items) if items else [])
        finally:
            self.after_batch()

    def _fail(self, job: Job, error: BaseException) -> None:
        job.cancelled = True
        if not job.future.done():
            job.future.set_exception(error)

    async def _loop(self) -> None:
        while True:
            if not self._jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._gather()
            batch = self._take()
            if not batch:
                continue
            started = time.monotonic()
            try:
                ok, items, results = await self.call(self._run, batch)
            except Exception as e:  # a bug: fail these requests, keep serving the others
                log.exception("forward pass failed")
                for job, _, _ in batch:
                    self._fail(job, e)
                continue
            if items:
                self.on_batch(len(items), len({name for name, _ in items}), time.monotonic() - started)
            for job, _, _ in batch:
                if not any(job is j for j, _, _ in ok):
                    self._fail(job, self.engine.unknown(job.adapter))
            pos = 0
            for job, a, b in ok:
                job.results.extend(results[pos:pos + b - a])
                pos += b - a
                if len(job.results) == len(job.texts) and not job.future.done():
                    job.future.set_result(job.results)
